"""The local assets dir: cache lookups, one lock per asset, atomic verified installs.

Layout (modelkit's, so one assets dir can serve both tools)::

    {dir}/
    ├── nlp/tokenizer/
    │   ├── 0.0                      a file asset
    │   ├── .0.0.SUCCESS             its marker, written after the file is in place
    │   └── 1.0/                     a directory asset
    │       ├── vocab.txt
    │       └── .SUCCESS             its marker, inside the folder before it is renamed in
    └── .cache/
        ├── nlp/tokenizer.lock       one lock per asset (flock: released when a process dies)
        ├── staging/nlp__tokenizer@1.0-{uuid}/ downloads being verified (/ in the name as __)
        ├── manifests/nlp/tokenizer/1.0.meta   copy of the version's manifest (verify, sync)
        ├── leases/nlp/tokenizer/1.0.lease     held (shared) by processes using 1.0 (prune)
        ├── signers/nlp/tokenizer/1.0/{key hex}@{inode}-{ctime_ns}
        │                             the trusted key that verified this install of 1.0
        └── .blobs/ab/ab12...          each file content once, by sha256 (blobs.py): the
                                      versions' files are read-only hard links to these

A version is visible only with its marker, and the marker appears only once every file
is verified and in place (G4). Looking up a cached version costs one or two ``stat``
calls and never takes the lock (G6), so a read-only assets dir still serves.

Each verified file is shared with the content store (``blobs.py``) before its version is
installed, and a fetch first links in every file whose content the store already holds,
from any version of any asset: only the rest is downloaded (``reuse``).

A signer record names the install it vouches for (inode and change time of the version's
file or folder, from the ``stat`` the lookup already made): a version replaced later, by
a fetch that did not check signatures or by modelkit, is not covered by an older record.
Under ``--require-signature`` a hit costs one more ``stat`` per trusted key.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from modelkit_assets.blobs import BlobStore
from modelkit_assets.errors import CacheLockTimeoutError
from modelkit_assets.layout import CACHE_DIR, SIGNATURE_SUFFIX, SIGNERS_DIR, SUCCESS_NAME, CacheLayout
from modelkit_assets.localdisk import replace_file
from modelkit_assets.versioning import VersioningSystem

if TYPE_CHECKING:
    import filelock

    from modelkit_assets.manifest import AssetMeta, FileEntry
    from modelkit_assets.signing import Signature

logger = logging.getLogger(__name__)


class AssetCache:
    """One assets dir."""

    def __init__(self, assets_dir: str | os.PathLike[str]) -> None:
        self.layout = CacheLayout(Path(assets_dir).expanduser())
        self._root = str(self.layout.assets_dir)
        self.blobs = BlobStore(self.layout.assets_dir)

    @property
    def assets_dir(self) -> Path:
        return self.layout.assets_dir

    def cached_path(self, name: str, version: str) -> Path | None:
        """The installed version's path, or ``None`` (two ``stat`` calls: the version, then
        its marker; a marker whose version was deleted by hand is not a hit)."""
        found = self.installed(name, version)
        return Path(found[0]) if found is not None else None

    def installed(self, name: str, version: str) -> tuple[str, os.stat_result] | None:
        """``cached_path`` with the version's ``stat`` (which names this install).

        Plain string paths on purpose: this is the G6 hot path and ``pathlib`` costs more
        than the ``stat`` calls themselves. Keep it in step with ``CacheLayout``.
        """
        folder = f"{self._root}/{name}"
        path = f"{folder}/{version}"
        try:
            st = os.stat(path)
        except OSError:  # never fetched, or deleted by hand with its marker left behind
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        marker = f"{path}/{SUCCESS_NAME}" if is_dir else f"{folder}/.{version}{SUCCESS_NAME}"
        return (path, st) if os.path.exists(marker) else None

    def _signer_record(self, name: str, version: str, fingerprint: str, st: os.stat_result) -> str:
        return (
            f"{self._root}/{CACHE_DIR}/{SIGNERS_DIR}/{name}/{version}/"
            f"{fingerprint.removeprefix('sha256:')}@{st.st_ino}-{st.st_ctime_ns}"
        )

    def verified_by(
        self, name: str, version: str, st: os.stat_result, fingerprints: Iterable[str]
    ) -> str | None:
        """The first of ``fingerprints`` that verified the install ``st`` describes
        (one ``stat`` per key), or ``None``."""
        for fingerprint in fingerprints:
            if os.path.exists(self._signer_record(name, version, fingerprint, st)):
                return fingerprint
        return None

    def remember_alias(self, name: str, alias: str, version: str) -> None:
        """Keep the value of ``name@alias`` just read from the store, for offline use."""
        import datetime as dt
        import json

        path = self.layout.alias_seen(name, alias)
        path.parent.mkdir(parents=True, exist_ok=True)
        seen = {"version": version, "seen": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
        replace_file(path, json.dumps(seen).encode())

    def seen_alias(self, name: str, alias: str) -> tuple[str, str] | None:
        """The last value of ``name@alias`` kept by ``remember_alias`` and when it was read."""
        import json

        try:
            data = json.loads(self.layout.alias_seen(name, alias).read_bytes())
            version, seen = data["version"], data["seen"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return (version, seen) if isinstance(version, str) and isinstance(seen, str) else None

    def record_signer(
        self, name: str, version: str, signature: Signature, st: os.stat_result | None = None
    ) -> None:
        """Record that ``signature`` (by a trusted key) vouched for the installed version,
        and keep a copy of it, so that the install can be checked again without the store
        (offline, or a bundle copied elsewhere). Call it once the version is installed and
        checked, with the asset's lock held when there is one. ``st``: the install that
        was checked (``holds``), so that one replaced meanwhile is not vouched for.

        Raises
        ------
        OSError
            If the assets dir cannot be written (a read-only bundle).
        """
        if st is None:
            found = self.installed(name, version)
            if found is None:
                return
            st = found[1]
        folder = self.layout.signers(name, version)
        folder.mkdir(parents=True, exist_ok=True)
        replace_file(
            folder / (signature.fingerprint.removeprefix("sha256:") + SIGNATURE_SUFFIX), signature.to_json()
        )
        Path(self._signer_record(name, version, signature.fingerprint, st)).touch()

    def kept_signatures(self, name: str, version: str, fingerprints: Iterable[str]) -> list[Signature]:
        """The copies ``record_signer`` kept of ``fingerprints``' signatures of a version."""
        from modelkit_assets.errors import SignatureError
        from modelkit_assets.signing import Signature

        folder = self.layout.signers(name, version)
        found = []
        for fingerprint in fingerprints:
            path = folder / (fingerprint.removeprefix("sha256:") + SIGNATURE_SUFFIX)
            try:
                found.append(Signature.from_json(path.read_bytes(), f"kept in {folder}"))
            except (OSError, SignatureError):
                continue
        return found

    def forget_signers(self, name: str, version: str) -> None:
        """Drop every signer record of a version (it is being replaced or removed)."""
        shutil.rmtree(self.layout.signers(name, version), ignore_errors=True)

    def versions(self, name: str, versioning: VersioningSystem) -> list[str]:
        """Installed versions of ``name``, latest first."""
        folder = self.layout.asset_dir(name)
        try:
            entries = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        return versioning.sort(v for v in entries if versioning.is_valid(v) and self.cached_path(name, v))

    @contextlib.contextmanager
    def lock(self, name: str, timeout_s: float) -> Iterator[None]:
        """Hold the asset's lock; a killed holder's lock is released by the kernel.

        Raises
        ------
        CacheLockTimeoutError
            After ``timeout_s`` seconds.
        """
        import filelock

        lock = self._file_lock(name, timeout_s)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise CacheLockTimeoutError(
                f"Another process has held the cache lock of {name} ({lock.lock_file}) for over "
                f"{timeout_s:g} s; wait for it, or raise MODELKIT_ASSETS_TIMEOUT_S."
            ) from None
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def lock_if_free(self, name: str) -> Iterator[bool]:
        """Hold the asset's lock if no other process holds it: ``True`` while held,
        ``False`` (not waiting) when a fetch of the asset is running.

        Raises
        ------
        OSError
            If the lock cannot be taken at all (a read-only assets dir).
        """
        import filelock

        lock = self._file_lock(name, 0)
        try:
            lock.acquire()
        except filelock.Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def _file_lock(self, name: str, timeout_s: float) -> filelock.BaseFileLock:
        import filelock

        path = self.layout.lock(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(str(path), timeout=timeout_s)

    @contextlib.contextmanager
    def staging(self, name: str, version: str) -> Iterator[Path]:
        """A staging folder inside the assets dir (same filesystem: renames are atomic):
        the newest leftover of a killed fetcher of this version, whose partial files a
        download resumes from, or a fresh one; other leftovers are removed. Call it with
        the asset's lock held.
        """
        root = self.layout.staging_root()
        root.mkdir(parents=True, exist_ok=True)
        prefix = f"{name.replace('/', '__')}@{version}-"
        leftovers = sorted(root.glob(prefix + "*"), key=_mtime, reverse=True)
        # the lock is held: every leftover's fetcher is dead. The newest one's partial
        # files are kept for the download to resume from (it verifies them block by block)
        for leftover in leftovers[1:]:
            shutil.rmtree(leftover, ignore_errors=True)
        if leftovers and leftovers[0].is_dir():
            folder = leftovers[0]
            shutil.rmtree(folder / "previous", ignore_errors=True)  # an install's trash
        else:
            folder = root / f"{prefix}{uuid.uuid4().hex}"
            folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def save_manifest(self, meta: AssetMeta) -> None:
        """Keep a copy of a version's manifest in ``.cache/manifests`` (atomic replace), so
        that ``verify`` and ``sync`` can check the cache without reaching the store. Call it
        with the asset's lock held, before ``install``.
        """
        path = self.layout.manifest(meta.name, meta.version)
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_file(path, meta.to_json())

    def read_manifest(self, name: str, version: str) -> AssetMeta | None:
        """The manifest copy kept by ``save_manifest`` (``None`` if missing or unreadable:
        versions fetched by modelkit or by older releases have none)."""
        from modelkit_assets.errors import InvalidMetaError
        from modelkit_assets.manifest import AssetMeta

        try:
            raw = self.layout.manifest(name, version).read_bytes()
            return AssetMeta.from_json(raw, name, version)
        except (OSError, InvalidMetaError):
            return None

    def staged_files(self, meta: AssetMeta, staged: Path) -> list[tuple[str | None, FileEntry, str]]:
        """Each file of ``meta`` as (path in the manifest, or ``None`` for a file asset;
        entry; where it goes under ``staged``)."""
        if not meta.is_directory:
            return [(None, meta.file_entry, str(staged))]
        return [(p, e, os.path.join(staged, *p.split("/"))) for p, e in meta.files.items()]

    def reuse(self, files: Iterable[tuple[str | None, FileEntry, str]]) -> tuple[set[str | None], int]:
        """Link into staging every file whose content the store holds: (the files placed,
        their bytes). What is left is for the download."""
        placed: set[str | None] = set()
        reused = 0
        for key, entry, local in files:
            blob = self.blobs.find(entry)
            if blob is None:
                continue
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
            self.blobs.materialize(blob, local)
            placed.add(key)
            reused += entry.size or 0
        return placed, reused

    def adopt_installed(self, name: str, wanted: Iterable[FileEntry]) -> None:
        """Add to the store the files of ``name``'s installed versions that hold a
        ``wanted`` content but are not shared yet (versions installed before the store
        existed, or by modelkit): each is re-hashed first, so a file edited since its
        install is never taken."""
        from modelkit_assets.integrity import measure_local

        needed = {e.sha256: e for e in wanted if e.sha256 is not None and e.size is not None}
        folder = self.layout.manifest(name, "x").parent
        try:
            copies = sorted(folder.glob("*.meta"))
        except OSError:
            return
        for copy in copies:
            if not needed:
                return
            meta = self.read_manifest(name, copy.name.removesuffix(".meta"))
            if meta is None or self.installed(name, meta.version) is None:
                continue
            root = self.layout.version_path(name, meta.version)
            for _key, entry, local in self.staged_files(meta, root):
                target = needed.get(entry.sha256 or "")
                if target is None or target.size != entry.size:
                    continue
                try:
                    if os.stat(local).st_nlink > 1:
                        continue  # already shared: the store would have had it
                    size, sha256 = measure_local(local)
                except OSError:
                    continue
                if size == target.size and sha256 == target.sha256:
                    with contextlib.suppress(OSError):
                        self.blobs.adopt(local, sha256)
                        del needed[sha256]

    def share(self, files: Iterable[tuple[str | None, FileEntry, str]], *, fresh: bool = False) -> None:
        """Make verified staged files read-only and share their contents with the store
        (``fresh``: they replace the store's copies; a forced download). Files of manifests
        without hashes (modelkit's) are only made read-only."""
        from modelkit_assets.blobs import make_read_only

        for _key, entry, local in files:
            if entry.sha256 is None:
                make_read_only(local)
            else:
                self.blobs.adopt(local, entry.sha256, fresh=fresh)
                self.blobs.drop_blocks(entry.sha256)  # the whole content is kept now

    def files_of(self, meta: AssetMeta) -> tuple[list[tuple[str | None, FileEntry, str]], list[str]]:
        """The installed version of ``meta``: each listed file as (path in the manifest or
        ``None`` for a file asset, entry, local path), and the files its folder holds that
        the manifest does not list."""
        root = self.layout.version_path(meta.name, meta.version)
        if not meta.is_directory:
            return [(None, meta.file_entry, str(root))], []
        jobs: list[tuple[str | None, FileEntry, str]] = [
            (p, e, str(root.joinpath(*p.split("/")))) for p, e in meta.files.items()
        ]
        unexpected = []
        for folder, _dirs, names in os.walk(root):
            for file_name in names:
                rel = os.path.relpath(os.path.join(folder, file_name), root).replace(os.sep, "/")
                if rel != SUCCESS_NAME and rel not in meta.files:
                    unexpected.append(rel)
        return jobs, unexpected

    def holds(self, meta: AssetMeta) -> os.stat_result | None:
        """The ``stat`` of the installed version (taken before hashing) if it is exactly
        ``meta``'s files, every one re-hashed, else ``None`` (for an install no signature
        vouched for yet: ``record_signer`` then names that install, not a later one)."""
        from modelkit_assets.integrity import measure_local, mismatches

        found = self.installed(meta.name, meta.version)
        if found is None:
            return None
        jobs, unexpected = self.files_of(meta)
        if unexpected:
            return None
        for _path, entry, local in jobs:
            try:
                size, sha256 = measure_local(local)
            except OSError:
                return None
            if entry.sha256 is None or mismatches(entry, size, sha256):
                return None
        return found[1]

    def install(self, name: str, version: str, staged: Path, *, is_directory: bool, trash: Path) -> Path:
        """Move a verified ``staged`` file or folder into place, marker last.

        Whatever was at the target (an unfinished or forced version) is first moved to
        ``trash`` (inside the staging folder) so the target is never half-replaced.
        """
        target = self.layout.version_path(name, version)
        target.parent.mkdir(parents=True, exist_ok=True)
        file_marker = self.layout.file_marker(name, version)
        file_marker.unlink(missing_ok=True)
        self.forget_signers(name, version)
        if target.is_dir():
            (target / SUCCESS_NAME).unlink(missing_ok=True)
        if target.exists() or target.is_symlink():
            os.replace(target, trash)
        if is_directory:
            (staged / SUCCESS_NAME).touch()
            os.replace(staged, target)
        else:
            os.replace(staged, target)
            file_marker.touch()
        return target


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
