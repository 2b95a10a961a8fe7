"""Integrity: the one place bytes are hashed and compared with a manifest (G4).

Transfers hash what they move here (``StreamHasher``: a publish its source, a fetch what
it writes, checked before anything is installed), and ``verify`` measures cached files and
stored objects here and reports each difference in the same words::

    StreamHasher().update(chunk) ... .entry()      ->  FileEntry(size, sha256, blocks)
    hash_local(path)                               ->  the same, of a local file
    measure_local(path) / measure_object(fs, key)  ->  (size, sha256)
    mismatches(entry, size, sha256)                ->  [("size" | "sha256", what differs)]
    check_measured(found, expected, label)         ->  raises IntegrityError on the first
"""

from __future__ import annotations

import hashlib
import os
from typing import TYPE_CHECKING, BinaryIO

from modelkit_assets.errors import IntegrityError
from modelkit_assets.manifest import FileEntry

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

#: bytes per read while hashing (a file is never read whole into memory)
HASH_CHUNK = 1024 * 1024
#: bytes covered by each per-block sha256 recorded in a manifest (``FileEntry.blocks``)
BLOCK_SIZE = 8 * 1024 * 1024


class StreamHasher:
    """The sha256 of a whole file and of each ``BLOCK_SIZE`` block, fed in order.

    Transfers feed it the bytes they move, so a file is hashed in the same pass that
    uploads or downloads it (never read a second time), and the per-block hashes make
    ranges of it verifiable on their own.
    """

    def __init__(self, *, blocks: bool = True) -> None:
        self._whole = hashlib.sha256()
        self._block = hashlib.sha256()
        self._in_block = 0
        self._blocks: list[str] = []
        #: without blocks (a download: its whole sha256 is what is checked), half the work
        self._with_blocks = blocks
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._whole.update(data)
        view = memoryview(data)
        self.size += len(view)
        while view and self._with_blocks:
            take = min(len(view), BLOCK_SIZE - self._in_block)
            self._block.update(view[:take])
            self._in_block += take
            view = view[take:]
            if self._in_block == BLOCK_SIZE:
                self._blocks.append(self._block.hexdigest())
                self._block = hashlib.sha256()
                self._in_block = 0

    def sha256_so_far(self) -> bytes:
        """The sha256 of everything fed so far (the whole file, once it is all fed)."""
        return self._whole.copy().digest()

    def last_block(self) -> bytes:
        """The sha256 of the block fed last: the one in progress, or the last completed
        (a part of exactly one block, fed whole, gets its own hash without a second pass)."""
        if self._in_block:
            return self._block.copy().digest()
        return bytes.fromhex(self._blocks[-1]) if self._blocks else hashlib.sha256().digest()

    def entry(self) -> FileEntry:
        """What was fed, as a manifest entry (size, sha256, block hashes)."""
        if not self._with_blocks:
            return FileEntry(self.size, self._whole.hexdigest())
        blocks = list(self._blocks)
        if self._in_block:
            blocks.append(self._block.hexdigest())
        return FileEntry(self.size, self._whole.hexdigest(), tuple(blocks))


def sha256_stream(handle: BinaryIO) -> tuple[int, str]:
    """(size, sha256) of what ``handle`` reads, in ``HASH_CHUNK`` reads."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return size, digest.hexdigest()


def hash_local(path: str | os.PathLike[str]) -> FileEntry:
    """The manifest entry (size, sha256, block hashes) of a local file, in one read."""
    hasher = StreamHasher()
    with _open_noatime(path) as handle:
        while chunk := handle.read(HASH_CHUNK):
            hasher.update(chunk)
    return hasher.entry()


def _open_noatime(path: str | os.PathLike[str]) -> BinaryIO:
    flags = os.O_RDONLY | getattr(os, "O_NOATIME", 0)
    try:
        fd = os.open(path, flags)
    except PermissionError:  # O_NOATIME needs to own the file
        fd = os.open(path, os.O_RDONLY)
    return os.fdopen(fd, "rb")


def measure_local(path: str | os.PathLike[str]) -> tuple[int, str]:
    """(size, sha256) of a local file, streamed, without touching its access time."""
    with _open_noatime(path) as handle:
        return sha256_stream(handle)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a local file."""
    return measure_local(path)[1]


def measure_object(fs: AbstractFileSystem, key: str, limit: int | None = None) -> tuple[int, str | None]:
    """(size, sha256) of a stored object, streamed in ``HASH_CHUNK`` reads.

    An object larger than ``limit`` (its manifest size) is not read at all, and its
    sha256 is ``None``: its size already condemns it, and it may be huge.
    """
    with fs.open(key, "rb") as handle:
        size = getattr(handle, "size", None)
        if limit is not None and isinstance(size, int) and size > limit:
            return size, None
        return sha256_stream(handle)


def mismatches(entry: FileEntry, size: int, sha256: str | None) -> list[tuple[str, str]]:
    """How a file measured at ``size`` bytes and ``sha256`` (``None``: not read) differs
    from its manifest ``entry``: ``(kind, what was found)`` pairs, empty when it matches.
    What the manifest does not record (modelkit-made entries) is not compared."""
    found = []
    if entry.size is not None and size != entry.size:
        found.append(("size", f"{size} bytes where the manifest says {entry.size}"))
    if entry.sha256 is not None and sha256 is not None and sha256 != entry.sha256:
        found.append(("sha256", f"sha256 {sha256} where the manifest says {entry.sha256}"))
    return found


def check_measured(found: FileEntry, expected: FileEntry, *, label: str) -> None:
    """Check what a transfer measured while it wrote a file against the manifest entry.

    Raises
    ------
    IntegrityError
        Naming the file, what was expected and what was found.
    """
    problems = mismatches(expected, found.size or 0, found.sha256)
    if problems:
        raise IntegrityError(
            f"{label} has {problems[0][1]}; the download was discarded and the cache left unchanged."
        )
