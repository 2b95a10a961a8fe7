"""``AssetsManager``: turn a spec into a local path, cache first, store second.

A pinned version already in the cache costs one or two ``stat`` calls and no network
request (G6); with ``require_signature``, one more per trusted key (the cache's record of
the key that verified that install). Otherwise the version is resolved through the store (one listing), then
downloaded under the asset's lock into a staging folder, verified file by file and
renamed into place (G4).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from modelkit_assets.cache import AssetCache
from modelkit_assets.errors import (
    AssetNotFoundError,
    CacheNotWritableError,
    ConfigurationError,
    OfflineError,
    SignatureError,
    StoreUnreachableError,
    SubPartNotFoundError,
    VersionNotFoundError,
)
from modelkit_assets.layout import SUCCESS_NAME
from modelkit_assets.localdisk import ASSETS_DIR_SETTING, local_writes
from modelkit_assets.spec import AssetSpec
from modelkit_assets.versioning import VersioningSystem, get_versioning

if TYPE_CHECKING:
    from fsspec.callbacks import Callback

    from modelkit_assets.manifest import AssetMeta, FileEntry
    from modelkit_assets.settings import Settings
    from modelkit_assets.signing import Signature, TrustedKey
    from modelkit_assets.store import AssetStore

logger = logging.getLogger(__name__)


@lru_cache(maxsize=1024)
def _parse(text: str) -> AssetSpec:
    return AssetSpec.parse(text)


@dataclass(frozen=True)
class FetchResult:
    """Where a fetched version is, and how it got there."""

    path: Path
    name: str
    version: str
    sub_part: str | None
    from_cache: bool
    meta: AssetMeta | None = None
    #: bytes of the version's files linked from the cache's content store instead of
    #: downloaded (files shared with other cached versions, of any asset)
    reused_bytes: int = 0

    @property
    def downloaded_bytes(self) -> int:
        """Bytes of the version's files that were downloaded (0 for a cache hit)."""
        if self.from_cache or self.meta is None:
            return 0
        total = sum(entry.size or 0 for entry in self.meta.files.values())
        return max(total - self.reused_bytes, 0)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "path": str(self.path),
            "name": self.name,
            "version": self.version,
            "sub_part": self.sub_part,
            "from_cache": self.from_cache,
            "reused_bytes": self.reused_bytes,
            "downloaded_bytes": self.downloaded_bytes,
        }
        if self.meta is not None:
            data["meta"] = self.meta.to_dict()
        return data


class AssetsManager:
    """Fetch assets into a local assets dir.

    Parameters
    ----------
    store
        An ``AssetStore``, a store URL or local path (with ``storage_options``), or
        ``None`` for the configured store. When no
        store is configured (``MODELKIT_ASSETS_STORE=none``, or the embedded store was
        never created) the assets dir is served alone, as modelkit does.
    assets_dir
        The local cache; defaults to ``MODELKIT_ASSETS_DIR`` or the user cache dir.
    require_signature
        Refuse any version that no trusted key signed (``MODELKIT_ASSETS_REQUIRE_SIGNATURE``);
        a cached version is served only if a trusted key verified that install.
    trusted_keys
        PEM files of the publishers' public keys (``MODELKIT_ASSETS_TRUSTED_KEYS``).
    """

    def __init__(
        self,
        store: AssetStore | str | os.PathLike[str] | None = None,
        assets_dir: str | os.PathLike[str] | None = None,
        *,
        storage_options: dict[str, Any] | None = None,
        timeout: float | None = None,
        versioning: str | VersioningSystem | None = None,
        offline: bool | None = None,
        settings: Settings | None = None,
        require_signature: bool | None = None,
        trusted_keys: Sequence[str | os.PathLike[str] | TrustedKey] | None = None,
    ) -> None:
        if settings is None:
            from modelkit_assets.settings import get_settings

            settings = get_settings()
        self.settings = settings
        self.cache = AssetCache(assets_dir if assets_dir is not None else settings.assets_dir)
        self.timeout = float(timeout if timeout is not None else settings.timeout_s)
        self.offline = settings.offline if offline is None else offline
        self.require_signature = (
            settings.require_signature if require_signature is None else require_signature
        )
        #: the publishers' keys this manager trusts (read when signatures are required)
        self.trusted_keys: tuple[TrustedKey, ...] = ()
        if self.require_signature:
            from modelkit_assets.signing import load_trusted_keys

            paths = settings.trusted_keys if trusted_keys is None else trusted_keys
            if not paths:
                raise ConfigurationError(
                    "Signatures are required (MODELKIT_ASSETS_REQUIRE_SIGNATURE or --require-signature) "
                    "but no key is trusted: set MODELKIT_ASSETS_TRUSTED_KEYS to the publishers' PEM "
                    "public keys."
                )
            self.trusted_keys = load_trusted_keys(paths)
        self._fingerprints = tuple(k.fingerprint for k in self.trusted_keys)
        if isinstance(store, str | os.PathLike):
            from modelkit_assets.store import AssetStore

            store = AssetStore(
                os.fspath(store),
                storage_options,
                versioning=versioning,
                settings=settings,
                offline=self.offline,
            )
        elif store is not None and storage_options:
            raise ConfigurationError(
                "storage_options go with a store URL; an AssetStore already has its own, pass them "
                "to AssetStore(url, storage_options) instead."
            )
        self._store = store
        self._store_from_settings = store is None
        self.versioning = (
            store.versioning if store is not None else get_versioning(versioning or settings.versioning)
        )

    @property
    def assets_dir(self) -> Path:
        return self.cache.assets_dir

    @property
    def store(self) -> AssetStore | None:
        """The store, created on first use (never for cache hits)."""
        if self._store is None and self._store_from_settings:
            # the flag drops only once the store exists: a thread arriving meanwhile must not
            # read "no store" (at worst two threads each build one; either is fine)
            self._store = self._configured_store()
            self._store_from_settings = False
        return self._store

    def _configured_store(self) -> AssetStore | None:
        url = self.settings.store_url
        if url is None:
            return None
        if self.settings.embedded:
            from modelkit_assets.settings import embedded_store_dir

            if not embedded_store_dir().is_dir():
                return None
        from modelkit_assets.store import AssetStore

        return AssetStore(
            url,
            self.settings.storage_options,
            versioning=self.versioning,
            settings=self.settings,
            offline=self.offline,
            options_origin="MODELKIT_ASSETS_STORAGE_OPTIONS",
        )

    def fetch(
        self, spec: str | AssetSpec, *, force: bool | None = None, callback: Callback | None = None
    ) -> Path:
        """Return the local path of ``spec`` (``name[:version][[sub/part]]``).

        Raises
        ------
        AssetNotFoundError, VersionNotFoundError, SubPartNotFoundError
            When the asset, version or sub-part does not exist.
        IntegrityError
            When downloaded bytes do not match the manifest (the cache is unchanged).
        CacheLockTimeoutError, StoreError
        """
        if force is None:  # as fetch_info does: MODELKIT_STORAGE_FORCE_DOWNLOAD
            force = self.settings.force_download
        if not force:
            parsed = _parse(spec) if isinstance(spec, str) else spec
            version = parsed.version
            if version is not None and self.versioning.is_valid(version):
                path = self._hit(parsed, version)
                if path is not None:
                    return path
        return self.fetch_info(spec, force=force, callback=callback).path

    def fetch_info(
        self, spec: str | AssetSpec, *, force: bool | None = None, callback: Callback | None = None
    ) -> FetchResult:
        """Like ``fetch``, with the resolved version, whether it came from the cache and
        (after a download) its metadata."""
        parsed = _parse(spec) if isinstance(spec, str) else spec
        if force is None:
            force = self.settings.force_download
        if parsed.version is not None:
            self.versioning.check(parsed.version)
        version = self._resolve(parsed)
        if not force:
            path = self._lookup(parsed, version)
            if path is not None:
                return FetchResult(path, parsed.name, version, parsed.sub_part, True)
        store = None if self.offline else self.store
        if store is None and force and self.offline:
            raise OfflineError(
                f"offline: forcing the download of {parsed.name}:{version} needs the store; unset "
                "MODELKIT_ASSETS_OFFLINE, or drop --force (MODELKIT_STORAGE_FORCE_DOWNLOAD)."
            )
        unverified = self.require_signature and self._unverified(parsed.name, version)
        if not force and unverified:
            # an install whose record names another inode (a copied bundle): its kept
            # signature and its files are checked here, with no store and no write needed
            path = self._verify_kept(parsed.name, version)
            if path is not None:
                return FetchResult(
                    self._sub_part(path, parsed, version), parsed.name, version, parsed.sub_part, True
                )
        if store is None and unverified:
            raise SignatureError(
                f"{parsed.name}:{version} is in the assets dir {self.assets_dir}, but no trusted key "
                "verified it there, and its signature can be checked only in the store; "
                + (
                    "unset MODELKIT_ASSETS_OFFLINE."
                    if self.offline
                    else "set MODELKIT_ASSETS_STORE, or fetch it with signatures required once."
                )
            )
        if store is None:
            raise VersionNotFoundError(
                f"{parsed.name}:{version} is not in the assets dir {self.assets_dir}; "
                + (
                    "offline mode is on: unset MODELKIT_ASSETS_OFFLINE to download it from the store."
                    if self.offline
                    else "no store is configured: set MODELKIT_ASSETS_STORE to download it."
                )
            )
        path, from_cache, meta, reused = self._download(
            store, parsed.name, version, parsed.sub_part, force=bool(force), callback=callback
        )
        inner = self._sub_part(path, parsed, version)
        return FetchResult(inner, parsed.name, version, parsed.sub_part, from_cache, meta, reused)

    def resolve(self, spec: str | AssetSpec) -> str:
        """The complete version ``spec`` points to, without fetching anything.

        A complete version is returned as it is (no I/O). A partial or missing one is
        resolved through the store (one listing), or from the cache alone when offline
        mode is on or the store is unreachable (then with a warning).

        Raises
        ------
        InvalidVersionError
            When the version is not valid for the versioning system.
        AssetNotFoundError, VersionNotFoundError, StoreError
        """
        parsed = _parse(spec) if isinstance(spec, str) else spec
        if parsed.version is not None:
            self.versioning.check(parsed.version)
        return self._resolve(parsed)

    def _resolve(self, spec: AssetSpec) -> str:
        if spec.alias is not None:
            return self._resolve_alias(spec)
        if spec.version is not None and self.versioning.is_complete(spec.version):
            return spec.version
        store = None if self.offline else self.store
        if store is not None:
            try:
                return store.resolve(spec)
            except StoreUnreachableError:
                cached = self.versioning.latest(self.cache.versions(spec.name, self.versioning), spec.version)
                if cached is None:
                    raise
                logger.warning(
                    "The store %s is unreachable: using %s:%s from the cache.",
                    store.display_url,
                    spec.name,
                    cached,
                )
                return cached
        cached = self.versioning.latest(self.cache.versions(spec.name, self.versioning), spec.version)
        if cached is None:
            raise AssetNotFoundError(
                f"No version of {spec} is in the assets dir {self.assets_dir}; "
                + (
                    "offline mode is on: unset MODELKIT_ASSETS_OFFLINE to resolve it in the store."
                    if self.offline
                    else "no store is configured: set MODELKIT_ASSETS_STORE to resolve it there."
                )
            )
        return cached

    def _resolve_alias(self, spec: AssetSpec) -> str:
        """``name@alias`` through the store (the value seen is kept in the assets dir); from
        that kept value, with a warning, when offline or when the store is unreachable."""
        assert spec.alias is not None
        store = None if self.offline else self.store
        why = "offline mode is on" if self.offline else "no store is configured"
        if store is not None:
            try:
                version = store.resolve_alias(spec.name, spec.alias)
            except StoreUnreachableError:
                why = f"the store {store.display_url} is unreachable"
            else:
                with contextlib.suppress(OSError):  # a read-only assets dir: nothing kept
                    self.cache.remember_alias(spec.name, spec.alias, version)
                return version
        seen = self.cache.seen_alias(spec.name, spec.alias)
        if seen is None:
            raise OfflineError(
                f"{spec.name}@{spec.alias} cannot be resolved: {why}, and it was never resolved into the "
                f"assets dir {self.assets_dir}; fetch it once with the store reachable."
            )
        version, when = seen
        self.versioning.check(version)  # a value read from disk is checked like any other
        logger.warning(
            "%s: using %s@%s = %s as last seen from the store (%s); it may have moved since.",
            why.capitalize(),
            spec.name,
            spec.alias,
            version,
            when,
        )
        return version

    def _download(
        self,
        store: AssetStore,
        name: str,
        version: str,
        sub_part: str | None,
        *,
        force: bool,
        callback: Callback | None,
    ) -> tuple[Path, bool, AssetMeta | None, int]:
        # read and validate the manifest before touching the assets dir: a bad or unsafe
        # one is refused with nothing written, not even the lock (G5)
        meta = store.meta(name, version)
        if sub_part is not None and not _lists(meta, sub_part):
            raise _no_sub_part(name, version, sub_part)  # nothing to download for it
        # and its signature: a version no trusted key vouches for is refused here
        signer = store.signatures.verify(meta, self.trusted_keys)[1] if self.require_signature else None
        failed = f"{name}:{version} is not in the assets dir {self.assets_dir} and cannot be installed there"
        setting = ASSETS_DIR_SETTING
        with local_writes(self.assets_dir, setting, failed, not_writable=CacheNotWritableError):
            return self._install(store, meta, sub_part, force=force, callback=callback, signer=signer)

    def _install(
        self,
        store: AssetStore,
        meta: AssetMeta,
        sub_part: str | None,
        *,
        force: bool,
        callback: Callback | None,
        signer: Signature | None = None,
    ) -> tuple[Path, bool, AssetMeta | None, int]:
        name, version = meta.name, meta.version
        with self.cache.lock(name, self.timeout):
            found = None if force else self.cache.installed(name, version)
            # a concurrent process got it first (and it is whole where we look)
            if found is not None and (sub_part is None or _inner(Path(found[0]), sub_part).exists()):
                path = Path(found[0])
                if signer is None or self.cache.verified_by(name, version, found[1], self._fingerprints):
                    return path, True, None, 0
                # installed without a signature check (by an earlier fetch or by modelkit):
                # served only if its files are exactly the signed ones, else replaced
                held = self.cache.holds(meta)
                if held is not None:
                    self.cache.save_manifest(meta)
                    self.cache.record_signer(name, version, signer, held)
                    return path, True, None, 0
                logger.warning(
                    "%s:%s in the assets dir %s differs from its signed manifest: fetching it again.",
                    name,
                    version,
                    self.assets_dir,
                )
            if not meta.verifiable:
                logger.warning(
                    "%s:%s was published without hashes (by modelkit?): only the file list "
                    "and the sizes it has are checked.",
                    name,
                    version,
                )
            with self.cache.staging(name, version) as stage:
                staged = stage / version
                if meta.is_directory:
                    staged.mkdir(exist_ok=True)  # a resumed staging folder has it
                reused = self._fill(store, meta, staged, callback, force=force)
                self.cache.save_manifest(meta)
                path = self.cache.install(
                    name, version, staged, is_directory=meta.is_directory, trash=stage / "previous"
                )
                if signer is not None:
                    self.cache.record_signer(name, version, signer)
            logger.info("Fetched %s:%s from %s (%d bytes reused)", name, version, store.display_url, reused)
            return path, False, meta, reused

    def _fill(
        self, store: AssetStore, meta: AssetMeta, staged: Path, callback: Callback | None, *, force: bool
    ) -> int:
        """Put every file of ``meta`` in ``staged``, verified and shared with the cache's
        content store: contents the store holds are linked in, the rest downloaded (each
        under its content's lock, so processes fetching the same content download it
        once). Returns the bytes reused. ``force`` downloads every file, and the new
        copies replace the store's (a forced fetch never trusts what the cache holds)."""
        files = self.cache.staged_files(meta, staged)
        if force:
            # nothing a killed fetch left is kept (its files may be read-only links already)
            if staged.is_dir():
                shutil.rmtree(staged)
                staged.mkdir()
            elif staged.exists():
                staged.unlink()
            store.download_version(meta, str(staged), callback=callback)
            self.cache.share(files, fresh=True)
            return 0
        placed, reused = self.cache.reuse(files)
        missing = [f for f in files if f[0] not in placed]
        if missing and meta.verifiable:
            self.cache.adopt_installed(meta.name, [entry for _key, entry, _local in missing])
            more, more_bytes = self.cache.reuse(missing)
            placed, reused = placed | more, reused + more_bytes
            missing = [f for f in missing if f[0] not in more]
        wanted = [entry.sha256 for _key, entry, _local in missing if entry.sha256 is not None]
        with self.cache.blobs.locked(wanted, self.timeout):
            # another process may have added some of them while we waited
            more, more_bytes = self.cache.reuse(missing)
            placed, reused = placed | more, reused + more_bytes
            if callback is not None:  # (also starts the display before any assembling)
                callback.call("reused", bytes=reused, files=len(placed))
            # files read in part before (lazy.py): their kept blocks are used, the rest fetched
            assembled, kept_bytes = self._assemble(store, meta, [f for f in missing if f[0] not in placed])
            if assembled and callback is not None:
                size = sum(entry.size or 0 for key, entry, _local in missing if key in assembled)
                callback.call("reused", bytes=kept_bytes, files=0)
                callback.call("assembled", bytes=size - kept_bytes, files=len(assembled))
            placed, reused = placed | assembled, reused + kept_bytes
            if len(placed) < len(files):
                store.download_version(meta, str(staged), callback=callback, skip=placed)
            self.cache.share(files)
        return reused

    def _assemble(
        self, store: AssetStore, meta: AssetMeta, files: list[tuple[str | None, FileEntry, str]]
    ) -> tuple[set[str | None], int]:
        """Build each file of ``files`` that has blocks kept by lazy reads from them and
        ranged downloads of the others (each block verified, then the whole file)."""
        from modelkit_assets.lazy import BlockReader

        placed: set[str | None] = set()
        reused = 0
        for key, entry, local in files:
            if entry.blocks is None or entry.sha256 is None or not meta.block_size:
                continue
            if not self.cache.blobs.has_blocks(entry.sha256):
                continue
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            reader = BlockReader(store, meta, key, entry, self.cache.blobs)
            reused += reader.assemble(local)
            placed.add(key)
        return placed, reused

    def open_part(self, name: str, version: str, inner: str) -> BinaryIO | None:
        """A big file of a version that is not cached, opened for reading by verified parts
        (lazy.py), or ``None`` when it is to be fetched whole: cached already, offline, a
        small file, or a manifest without block hashes. A file whose content the cache's
        store holds is opened there.

        Raises
        ------
        SignatureError
            With ``require_signature``, if no trusted key signed the version.
        StoreError
        """
        if self.offline or self.cache.installed(name, version) is not None:
            return None
        store = self.store
        if store is None:
            return None
        meta = store.meta(name, version)
        if meta.is_directory:
            entry = meta.files.get(inner) if inner else None
        else:
            entry = meta.file_entry if not inner else None
        if (
            entry is None
            or entry.blocks is None
            or entry.size is None
            or not meta.block_size
            or entry.size < self.settings.lazy_read_min_bytes
        ):
            return None
        if self.require_signature:
            store.signatures.verify(meta, self.trusted_keys)
        blob = self.cache.blobs.find(entry)
        if blob is not None:
            return open(blob, "rb")
        from modelkit_assets.lazy import BlockReader, open_lazy

        reader = BlockReader(store, meta, inner or None, entry, self.cache.blobs)
        return open_lazy(reader, f"{name}:{version}" + (f"[{inner}]" if inner else ""))

    def _sub_part(self, path: Path, spec: AssetSpec, version: str) -> Path:
        if spec.sub_part is None:
            return path
        inner = _inner(path, spec.sub_part)
        # the cache's marker lives inside a folder version but is not one of its files
        if spec.sub_part == SUCCESS_NAME or not inner.exists():
            raise _no_sub_part(spec.name, version, spec.sub_part)
        return inner

    def _hit(self, spec: AssetSpec, version: str) -> Path | None:
        """The cached path of ``spec`` at ``version`` if it is there, whole where asked
        (``stat`` calls only: G6)."""
        found = self.cache.installed(spec.name, version)
        if found is None:
            return None
        if self.require_signature and not self.cache.verified_by(
            spec.name, version, found[1], self._fingerprints
        ):
            return None  # not verified by a trusted key: the store decides
        path = Path(found[0])
        if spec.sub_part is None:
            return path
        inner = _inner(path, spec.sub_part)
        return inner if spec.sub_part != SUCCESS_NAME and inner.exists() else None

    def _lookup(self, spec: AssetSpec, version: str) -> Path | None:
        """The cached path of ``spec`` at ``version``, or ``None`` when it must be
        downloaded: not in the cache, or damaged (a file of the version deleted by hand,
        its marker left behind).

        A hit costs the two ``stat`` calls of ``cached_path``, plus one for a sub-part
        (G6). Only when the sub-part is missing is the manifest copy read, to tell a
        damaged cache (fetch again) from a sub-part the version never had.

        Raises
        ------
        SubPartNotFoundError
            If the version's manifest does not list the sub-part.
        """
        hit = self._hit(spec, version)
        if hit is not None or spec.sub_part is None or self.cache.cached_path(spec.name, version) is None:
            return hit
        if self.require_signature and self._unverified(spec.name, version):
            return None
        meta = self.cache.read_manifest(spec.name, version)
        if spec.sub_part == SUCCESS_NAME or (meta is not None and not _lists(meta, spec.sub_part)):
            raise _no_sub_part(spec.name, version, spec.sub_part)
        # listed (or fetched by modelkit, without a manifest copy: the store's decides)
        logger.warning(
            "%s:%s in the assets dir %s lacks %r: fetching it again.",
            spec.name,
            version,
            self.assets_dir,
            spec.sub_part,
        )
        return None

    def _verify_kept(self, name: str, version: str) -> Path | None:
        """Without the store: an installed version whose record no longer names its install
        (a bundle copied elsewhere) is served if the signature copy kept in the cache, by a
        trusted key, matches the manifest copy and every file re-hashes to it; the record
        is then written again where the assets dir is writable."""
        from modelkit_assets.signing import check

        meta = self.cache.read_manifest(name, version)
        kept = self.cache.kept_signatures(name, version, self._fingerprints)
        if meta is None or not kept:
            return None
        try:
            _, signature = check(meta, kept, self.trusted_keys, f"{name}:{version}")
        except SignatureError:
            return None
        held = self.cache.holds(meta)
        if held is None:
            return None
        with contextlib.suppress(OSError):  # a read-only bundle: checked again by the next process
            self.cache.record_signer(name, version, signature, held)
        now = self.cache.installed(name, version)
        same = now is not None and (now[1].st_ino, now[1].st_ctime_ns) == (held.st_ino, held.st_ctime_ns)
        return Path(now[0]) if now is not None and same else None

    def _unverified(self, name: str, version: str) -> bool:
        """Whether the version is installed but no trusted key verified that install."""
        found = self.cache.installed(name, version)
        return found is not None and not self.cache.verified_by(name, version, found[1], self._fingerprints)

    def __repr__(self) -> str:
        return f"AssetsManager(assets_dir={str(self.assets_dir)!r}, store={self._store!r})"


def _inner(path: Path, sub_part: str) -> Path:
    return path.joinpath(*sub_part.split("/"))


def _lists(meta: AssetMeta, sub_part: str) -> bool:
    """Whether the version has ``sub_part``: one of its files, or a folder of them."""
    if not meta.is_directory or sub_part == SUCCESS_NAME:
        return False
    folder = sub_part + "/"
    return sub_part in meta.files or any(path.startswith(folder) for path in meta.files)


def _no_sub_part(name: str, version: str, sub_part: str) -> SubPartNotFoundError:
    return SubPartNotFoundError(
        f"{name}:{version} has no {sub_part!r}; see its files with `modelkit-assets info {name}:{version}`."
    )
