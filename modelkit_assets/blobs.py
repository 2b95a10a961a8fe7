"""The assets dir's content store: each file's bytes kept once, under their sha256.

Layout (inside ``{dir}/.cache``, where no asset name can reach: names never start with a
dot)::

    .blobs/{sha[:2]}/{sha}              one verified file content, read-only; every installed
                                        version's copy of it is a hard link to this inode
    .blob-locks/{sha[:2]}/{sha}.lock    held (flock) while a fetch downloads that content
    .blocks/{sha}/{index:08d}           verified blocks of a file read lazily (lazy.py),
                                        reused by a later full fetch of that content

Why hard links: the version folders keep modelkit 0.1.3's layout exactly (plain files at
``{dir}/{name}/{version}/...``), so modelkit still reads and shares the assets dir, while a
file shared by many versions takes its bytes on disk once. A blob's link count tells who
uses it: 1 means only the store holds it, and ``cache prune`` may remove it. Files are made
read-only so that an in-place edit cannot silently change every version sharing them
(``verify`` still finds one changed by a determined writer, or by root).

Where hard links are impossible (another device, a filesystem without them) the content is
copied instead: the cache works as before, only without the sharing.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelkit_assets.errors import CacheLockTimeoutError
from modelkit_assets.layout import CACHE_DIR

if TYPE_CHECKING:
    from modelkit_assets.manifest import FileEntry

BLOBS_DIR = ".blobs"
BLOB_LOCKS_DIR = ".blob-locks"
BLOCKS_DIR = ".blocks"
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
#: errors of ``os.link`` that mean "this filesystem cannot link these": copy instead
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


def make_read_only(path: str | os.PathLike[str]) -> None:
    """Drop the write bits of a file (its readers keep theirs)."""
    mode = os.stat(path).st_mode
    if mode & _WRITE_BITS:
        os.chmod(path, stat.S_IMODE(mode) & ~_WRITE_BITS)


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True)
class Blob:
    """One content of the store, as ``cache list``/``prune`` see it."""

    sha256: str
    path: Path
    size: int
    links: int  # hard links besides the store's own: installed copies using it
    device: int
    inode: int


class BlobStore:
    """The content store of one assets dir."""

    def __init__(self, assets_dir: str | os.PathLike[str]) -> None:
        cache = Path(assets_dir) / CACHE_DIR
        self.root = cache / BLOBS_DIR
        self.locks_root = cache / BLOB_LOCKS_DIR
        self.blocks_root = cache / BLOCKS_DIR

    # -- paths ----------------------------------------------------------------------
    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def blocks_dir(self, sha256: str) -> Path:
        return self.blocks_root / sha256

    def block_path(self, sha256: str, index: int) -> Path:
        return self.blocks_dir(sha256) / f"{index:08d}"

    # -- lookups ----------------------------------------------------------------------
    def find(self, entry: FileEntry) -> Path | None:
        """The blob holding ``entry``'s content, if the store has it (one ``stat``). Its
        name is its sha256, checked when it was added; its size is checked here."""
        if entry.sha256 is None or entry.size is None:
            return None
        path = self.path(entry.sha256)
        try:
            st = os.stat(path)
        except OSError:
            return None
        return path if stat.S_ISREG(st.st_mode) and st.st_size == entry.size else None

    # -- adding and materializing -------------------------------------------------------
    def adopt(self, local: str | os.PathLike[str], sha256: str, *, fresh: bool = False) -> None:
        """Make a verified file (of size and sha256 checked by the caller) read-only and
        share its content with the store: it becomes the blob, or, when the store already
        has that content, a link to it (the duplicate's bytes are freed). With ``fresh``
        (a forced download) the new file replaces the store's blob instead."""
        make_read_only(local)
        blob = self.path(sha256)
        blob.parent.mkdir(parents=True, exist_ok=True)
        if fresh:
            with contextlib.suppress(FileNotFoundError):
                if os.path.samefile(local, blob):
                    return
            self.materialize(local, blob)
            return
        try:
            os.link(local, blob)
            return
        except FileExistsError:
            pass
        except OSError as err:
            if err.errno not in _NO_LINK:
                raise
            self.materialize(local, blob)  # no links here: the store keeps its own copy
            return
        if os.path.samefile(local, blob):
            return
        if os.stat(blob).st_size != os.stat(local).st_size:  # a damaged blob: the new one wins
            self.materialize(local, blob)
            return
        self.materialize(blob, local)

    def materialize(self, blob: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
        """Put ``blob``'s content at ``target`` (replacing what is there, atomically): a hard
        link, or a read-only copy where links are impossible."""
        target = os.fspath(target)
        tmp = f"{target}.{uuid.uuid4().hex}.link"
        try:
            try:
                os.link(blob, tmp)
            except OSError as err:
                if err.errno not in _NO_LINK:
                    raise
                shutil.copyfile(blob, tmp)
                make_read_only(tmp)
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- one download per content across processes ------------------------------------
    @contextlib.contextmanager
    def locked(self, sha256s: Iterable[str], timeout_s: float) -> Iterator[None]:
        """Hold the download locks of ``sha256s`` (taken in sorted order, so two fetches
        needing overlapping contents cannot deadlock; released by the kernel when a holder
        dies). A fetch holds the lock of each content it will download: another process
        needing the same content waits, then finds it in the store.

        Raises
        ------
        CacheLockTimeoutError
            After ``timeout_s`` seconds waiting for one lock.
        """
        import filelock

        with contextlib.ExitStack() as held:
            for sha256 in sorted(set(sha256s)):
                path = self.locks_root / sha256[:2] / f"{sha256}.lock"
                path.parent.mkdir(parents=True, exist_ok=True)
                lock = filelock.FileLock(str(path), timeout=timeout_s)
                try:
                    lock.acquire()
                except filelock.Timeout:
                    raise CacheLockTimeoutError(
                        f"Another process has been downloading the content {sha256[:12]}... "
                        f"({path}) for over {timeout_s:g} s; wait for it, or raise "
                        "MODELKIT_ASSETS_TIMEOUT_S."
                    ) from None
                held.callback(lock.release)
            yield

    # -- blocks kept by lazy reads ------------------------------------------------------
    def kept_block(self, sha256: str, index: int, expected: str) -> bytes | None:
        """A block a lazy read kept, re-hashed against ``expected`` (``None`` when it is
        missing or no longer matches: the caller downloads it again)."""
        try:
            data = self.block_path(sha256, index).read_bytes()
        except OSError:
            return None
        return data if hashlib.sha256(data).hexdigest() == expected else None

    def keep_block(self, sha256: str, index: int, data: bytes) -> None:
        """Keep a verified block (atomic: a reader never sees half of one). A read-only
        assets dir keeps nothing."""
        path = self.block_path(sha256, index)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def has_block(self, sha256: str, index: int) -> bool:
        return self.block_path(sha256, index).is_file()

    def has_blocks(self, sha256: str) -> bool:
        return self.blocks_dir(sha256).is_dir()

    def drop_blocks(self, sha256: str) -> None:
        shutil.rmtree(self.blocks_dir(sha256), ignore_errors=True)

    # -- accounting ---------------------------------------------------------------------
    def blobs(self) -> list[Blob]:
        """Every blob of the store (temporary files of a killed copy are not blobs)."""
        found = []
        try:
            shards = list(os.scandir(self.root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                for entry in os.scandir(shard.path):
                    if not is_sha256(entry.name):
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        st = entry.stat(follow_symlinks=False)
                        if stat.S_ISREG(st.st_mode):
                            links = st.st_nlink - 1
                            found.append(
                                Blob(entry.name, Path(entry.path), st.st_size, links, st.st_dev, st.st_ino)
                            )
        return found

    def block_sets(self) -> list[tuple[str, Path, int, int]]:
        """(sha256, folder, bytes, blocks) of every content with blocks kept by lazy reads."""
        found = []
        try:
            entries = list(os.scandir(self.blocks_root))
        except (FileNotFoundError, NotADirectoryError):
            return []
        for entry in entries:
            if not entry.is_dir(follow_symlinks=False):
                continue
            size = count = 0
            with contextlib.suppress(OSError):
                for block in os.scandir(entry.path):
                    with contextlib.suppress(FileNotFoundError):
                        size += block.stat(follow_symlinks=False).st_size
                        count += 1
            found.append((entry.name, Path(entry.path), size, count))
        return found

    def remove_unused(
        self, *, dry_run: bool = False, leaving: Mapping[tuple[int, int], int] | None = None
    ) -> tuple[list[Blob], int]:
        """Remove every blob no installed file links to, and the kept blocks of contents
        the store holds whole: (blobs removed, bytes of blocks removed). A blob is removed
        under its download lock, taken without waiting, so one being installed is kept.
        ``leaving``: links a dry run's plan would remove, by (device, inode): a blob whose
        every link is among them counts as unused."""
        import filelock

        removed = []
        for blob in self.blobs():
            if blob.links > (leaving or {}).get((blob.device, blob.inode), 0):
                continue
            if dry_run:
                removed.append(blob)
                continue
            lock_path = self.locks_root / blob.sha256[:2] / f"{blob.sha256}.lock"
            try:
                lock_path.parent.mkdir(parents=True, exist_ok=True)
                lock = filelock.FileLock(str(lock_path), timeout=0)
                lock.acquire()
            except (filelock.Timeout, OSError):
                continue  # a fetch is adding or using it right now
            try:
                if os.stat(blob.path).st_nlink > 1:  # linked meanwhile
                    continue
                os.unlink(blob.path)
                removed.append(blob)
            except FileNotFoundError:
                continue
            finally:
                lock.release()  # its empty lock file stays: unlinking it could split a waiter
        blocks = 0
        for sha256, folder, size, _count in self.block_sets():
            if self.path(sha256).exists():
                blocks += size
                if not dry_run:
                    shutil.rmtree(folder, ignore_errors=True)
        return removed, blocks
