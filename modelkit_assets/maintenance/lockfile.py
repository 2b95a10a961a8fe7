"""``assets.lock``: the exact versions a project uses, and installing them again.

The lockfile is JSON (stdlib only, diffable with ``indent=2``, and the format every other
output of the tool uses with ``--json``)::

    {
      "lockfile_version": 1,
      "store": "s3://bucket/prefix",        informational: where it was resolved (no secrets)
      "versioning": "major_minor",
      "assets": [
        {
          "spec": "nlp/tokenizer:0[vocab.txt]",   as written by the user
          "name": "nlp/tokenizer",
          "version": "0.2",                       what the spec resolved to
          "digest": "sha256:...",                 AssetMeta.digest(): paths, sizes, sha256s
          "is_directory": true,
          "files": 4,
          "size": 10034
        }
      ]
    }

``sync`` installs exactly the locked versions, concurrently, and fails (listing every
difference) if a version is missing or its manifest digest is not the locked one. With
``frozen`` it first checks that every spec still resolves to its locked version, so a
CI job fails when the lock is out of date instead of silently installing old versions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit_assets.errors import AssetsError, LockfileError, LockMismatchError, OfflineError
from modelkit_assets.localdisk import replace_file
from modelkit_assets.spec import AssetSpec

if TYPE_CHECKING:
    from modelkit_assets.manager import AssetsManager
    from modelkit_assets.manifest import AssetMeta
    from modelkit_assets.offline import Catalog

LOCKFILE_VERSION = 1
DIGEST_PREFIX = "sha256:"


@dataclass(frozen=True)
class LockedAsset:
    """One entry of a lockfile."""

    spec: str
    name: str
    version: str
    digest: str
    is_directory: bool
    files: int
    size: int | None

    @property
    def pinned(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def from_meta(cls, spec: str, meta: AssetMeta) -> LockedAsset:
        return cls(
            spec=spec,
            name=meta.name,
            version=meta.version,
            digest=DIGEST_PREFIX + meta.digest(),
            is_directory=meta.is_directory,
            files=len(meta.files),
            size=meta.size,
        )


@dataclass(frozen=True)
class Lockfile:
    """The content of an ``assets.lock``."""

    assets: tuple[LockedAsset, ...]
    versioning: str
    store: str | None = None

    def to_json(self) -> str:
        data = {
            "lockfile_version": LOCKFILE_VERSION,
            "store": self.store,
            "versioning": self.versioning,
            "assets": [asdict(a) for a in self.assets],
        }
        return json.dumps(data, indent=2) + "\n"

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a rename), so a crash never leaves half a lockfile."""
        replace_file(path, self.to_json().encode("utf-8"))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Lockfile:
        """Read and validate a lockfile.

        Raises
        ------
        LockfileError
            Naming the file and what is wrong with it.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise LockfileError(
                f"The lockfile {path} does not exist; create it with "
                f"`modelkit-assets lock SPEC... -o {path}`."
            ) from None
        except (OSError, ValueError) as err:
            raise LockfileError(f"The lockfile {path} is not readable JSON ({err}).") from None
        where = f"The lockfile {path}"
        if not isinstance(data, dict) or data.get("lockfile_version") != LOCKFILE_VERSION:
            raise LockfileError(f"{where} is not a version-{LOCKFILE_VERSION} modelkit-assets lockfile.")
        entries = data.get("assets")
        if not isinstance(entries, list):
            raise LockfileError(f"{where} has no list of `assets`.")
        assets = []
        for i, entry in enumerate(entries):
            try:
                locked = LockedAsset(
                    spec=str(entry["spec"]),
                    name=str(entry["name"]),
                    version=str(entry["version"]),
                    digest=str(entry["digest"]),
                    is_directory=bool(entry["is_directory"]),
                    files=int(entry["files"]),
                    size=None if entry.get("size") is None else int(entry["size"]),
                )
                AssetSpec(locked.name, locked.version)  # G5: a lockfile is input too
            except (KeyError, TypeError, ValueError) as err:
                raise LockfileError(f"{where} has an invalid entry #{i + 1} ({err}).") from None
            assets.append(locked)
        return cls(tuple(assets), str(data.get("versioning") or "major_minor"), data.get("store"))


def lock(store: Catalog, specs: Sequence[str], *, concurrency: int = 8) -> Lockfile:
    """Resolve every spec in ``store`` (an ``AssetStore``, or offline a ``CachedCatalog``)
    and record its version and manifest digest.

    Raises
    ------
    AssetNotFoundError, VersionNotFoundError, InvalidSpecError
        For the first spec that does not resolve.
    """
    parsed = [AssetSpec.parse(s) for s in specs]

    def one(spec: AssetSpec) -> LockedAsset:
        version = store.resolve(spec)
        return LockedAsset.from_meta(str(spec), store.meta(spec.name, version))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(parsed)))) as pool:
        assets = tuple(pool.map(one, parsed))
    return Lockfile(assets, store.versioning.name, store.display_url)


@dataclass(frozen=True)
class SyncedAsset:
    """Where a locked version was installed."""

    locked: LockedAsset
    path: Path
    from_cache: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.locked), "path": str(self.path), "from_cache": self.from_cache}


def sync(
    lockfile: Lockfile,
    manager: AssetsManager,
    *,
    frozen: bool = False,
    concurrency: int = 8,
    source: str = "the lockfile",
) -> list[SyncedAsset]:
    """Install every locked version into ``manager``'s assets dir, concurrently.

    Raises
    ------
    LockMismatchError
        Listing every entry that is out of date (``frozen``), missing, or whose manifest
        digest differs from the lock; nothing is fetched when ``frozen`` finds the lock
        stale.
    """
    entries = list(lockfile.assets)
    workers = max(1, min(concurrency, len(entries)))
    if frozen:
        if manager.offline:
            raise OfflineError(
                f"offline: --frozen checks {source} against the store; unset MODELKIT_ASSETS_OFFLINE "
                "or drop --frozen."
            )
        store = manager.store
        if store is None:
            raise LockMismatchError(
                f"--frozen checks {source} against the store, but no store is configured; set "
                "MODELKIT_ASSETS_STORE or drop --frozen."
            )

        def current(entry: LockedAsset) -> str | None:
            try:
                resolved = store.resolve(AssetSpec.parse(entry.spec))
            except AssetsError as err:
                return f"{entry.spec} ({err})"
            if resolved != entry.version:
                return f"{entry.spec} now resolves to {resolved}, locked {entry.version}"
            return None

        with ThreadPoolExecutor(max_workers=workers) as pool:
            stale = [d for d in pool.map(current, entries) if d]
        if stale:
            raise LockMismatchError(
                f"{source} is out of date: {'; '.join(stale)}. Run `modelkit-assets lock` again, "
                "or sync without --frozen to install the locked versions."
            )

    def install(entry: LockedAsset) -> SyncedAsset | str:
        try:
            result = manager.fetch_info(AssetSpec(entry.name, entry.version), force=False)
        except AssetsError as err:
            return f"{entry.pinned} ({err})"
        meta = result.meta or manager.cache.read_manifest(entry.name, entry.version)
        if meta is None and not manager.offline and manager.store is not None:
            try:
                meta = manager.store.meta(entry.name, entry.version)
            except AssetsError as err:
                return f"{entry.pinned} ({err})"
        if meta is None:
            why = (
                "offline mode is on: unset MODELKIT_ASSETS_OFFLINE to read it from the store"
                if manager.offline
                else "no store is configured: set MODELKIT_ASSETS_STORE to read it there"
            )
            return f"{entry.pinned} (no manifest in the cache to check its digest; {why})"
        digest = DIGEST_PREFIX + meta.digest()
        if digest != entry.digest:
            return f"{entry.pinned} has manifest digest {digest}, locked {entry.digest}"
        return SyncedAsset(entry, result.path, result.from_cache)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        outcomes = list(pool.map(install, entries))
    failures = [o for o in outcomes if isinstance(o, str)]
    if failures:
        raise LockMismatchError(
            f"{len(failures)} of {len(entries)} assets differ from {source}: {'; '.join(failures)}."
        )
    return [o for o in outcomes if isinstance(o, SyncedAsset)]
