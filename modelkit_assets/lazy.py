"""Reading parts of a big file without downloading it, each part verified first.

A manifest with block hashes (``FileEntry.blocks``: the sha256 of every ``block_size``
block, measured when the file was published) makes each block checkable on its own. A
lazy read fetches only the blocks a read touches, with one ranged request each, checks
each against its hash before any byte of it is returned (a corrupted block raises
``IntegrityError``, never wrong bytes), and keeps it in the assets dir
(``.cache/.blocks/{sha256}/{index}``, blobs.py), where a later full fetch of the file
takes it instead of downloading it again.

Manifests without block hashes (older, or modelkit-made) have nothing to check a part
against: their files are fetched whole and verified (``AssetsFileSystem`` falls back).
"""

from __future__ import annotations

import hashlib
import io
import os
from typing import TYPE_CHECKING

from modelkit_assets.errors import IntegrityError

if TYPE_CHECKING:
    from modelkit_assets.blobs import BlobStore
    from modelkit_assets.manifest import AssetMeta, FileEntry
    from modelkit_assets.store import AssetStore


#: the most blocks a full fetch assembling a file takes in one ranged request (8 x 8 MiB:
#: few requests for a big file, and a bounded body in memory)
ASSEMBLY_RUN = 8


class BlockReader:
    """The verified blocks of one file of a version: kept ones from the assets dir, the
    others from the store."""

    def __init__(
        self, store: AssetStore, meta: AssetMeta, path: str | None, entry: FileEntry, blobs: BlobStore
    ) -> None:
        if entry.blocks is None or entry.size is None or entry.sha256 is None or not meta.block_size:
            raise ValueError("a lazy read needs a manifest entry with block hashes")
        self.store = store
        self.entry = entry
        self.sha256 = entry.sha256
        self.blocks = entry.blocks
        self.size = entry.size
        self.block_size = meta.block_size
        self.blobs = blobs
        self.key = store.layout.data(meta.name, meta.version, path)
        self.label = f"{meta.name}:{meta.version}" + (f"[{path}]" if path else "")
        #: bytes taken from the store by this reader (the rest came from kept blocks)
        self.downloaded = 0
        #: the last block verified: reads smaller than a block (a buffered reader's, a
        #: sequential scan's) take it from memory instead of reading and hashing it again
        self._last: tuple[int, bytes] | None = None

    def _span(self, index: int) -> tuple[int, int]:
        start = index * self.block_size
        return start, min(start + self.block_size, self.size)

    def block(self, index: int) -> bytes:
        """Block ``index``, verified against its hash.

        Raises
        ------
        IntegrityError
            If the store's bytes for it do not match the manifest (nothing is kept).
        """
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        data = self._verified_block(index)
        self._last = (index, data)
        return data

    def _verified_block(self, index: int) -> bytes:
        expected = self.blocks[index]
        kept = self.blobs.kept_block(self.sha256, index, expected)
        if kept is not None:
            return kept
        data = bytes(self._download(index, index + 1)[0])
        self.blobs.keep_block(self.sha256, index, data)
        return data

    def _download(self, first: int, stop: int) -> list[memoryview]:
        """Blocks ``first`` to ``stop - 1`` in one ranged request, each checked against its
        hash (the first one that does not match raises ``IntegrityError``)."""
        start, end = self._span(first)[0], self._span(stop - 1)[1]
        fs = self.store.fs
        data = self.store.remote.request(
            f"read {self.label}", lambda: bytes(fs.cat_file(self.key, start=start, end=end))
        )
        self.downloaded += len(data)
        view = memoryview(data)
        blocks = []
        for index in range(first, stop):
            block_start, block_end = self._span(index)
            block = view[block_start - start : block_end - start]
            if (
                len(block) != block_end - block_start
                or hashlib.sha256(block).hexdigest() != self.blocks[index]
            ):
                raise IntegrityError(
                    f"Block {index} of {self.label} (bytes {block_start}-{block_end - 1}) in "
                    f"{self.store.display_url} does not match the hash its manifest lists: the store's "
                    "copy is corrupted; nothing was returned. Republish the asset."
                )
            blocks.append(block)
        return blocks

    def read(self, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the file, every block they touch verified."""
        end = min(end, self.size)
        if start >= end:
            return b""
        first, last = start // self.block_size, (end - 1) // self.block_size
        data = b"".join(self.block(i) for i in range(first, last + 1))
        offset = first * self.block_size
        return data[start - offset : end - offset]

    def assemble(self, destination: str) -> int:
        """Write the whole file to ``destination`` from its blocks and check its sha256:
        the bytes taken from kept blocks (the rest is downloaded).

        Raises
        ------
        IntegrityError
            If a block or the whole file does not match the manifest.
        """
        whole = hashlib.sha256()
        before = self.downloaded
        count = len(self.blocks)
        with open(destination, "wb") as target:
            index = 0
            while index < count:
                kept = self.blobs.kept_block(self.sha256, index, self.blocks[index])
                if kept is not None:
                    blocks: list[bytes] | list[memoryview] = [kept]
                else:  # the missing blocks that follow, in one request (up to ASSEMBLY_RUN)
                    stop = index + 1
                    while (
                        stop < count
                        and stop - index < ASSEMBLY_RUN
                        and not self.blobs.has_block(self.sha256, stop)
                    ):
                        stop += 1
                    blocks = self._download(index, stop)
                for data in blocks:
                    whole.update(data)
                    target.write(data)
                index += len(blocks)
        if whole.hexdigest() != self.sha256:
            os.unlink(destination)
            raise IntegrityError(
                f"{self.label} assembled from its verified blocks does not match its manifest's "
                "sha256; nothing was installed. Republish the asset."
            )
        return self.size - (self.downloaded - before)


class _LazyRaw(io.RawIOBase):
    """A seekable raw file over a ``BlockReader``: each read stops at the end of the block
    it starts in, so a small read touches one block (two when it crosses a boundary)."""

    def __init__(self, reader: BlockReader, name: str) -> None:
        super().__init__()
        self.reader = reader
        self.name = name
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self.reader.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readall(self) -> bytes:
        """The rest of the file, one block per step (not the default's 8 KiB ones)."""
        data = self.reader.read(self._pos, self.reader.size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        size = self.reader.size
        if self._pos >= size or not len(view):
            return 0
        block_end = (self._pos // self.reader.block_size + 1) * self.reader.block_size
        end = min(self._pos + len(view), block_end, size)
        data = self.reader.read(self._pos, end)
        view[: len(data)] = data
        self._pos += len(data)
        return len(data)


def open_lazy(reader: BlockReader, name: str) -> io.BufferedReader:
    """A read-only binary file over ``reader`` (buffered one block at a time)."""
    return io.BufferedReader(_LazyRaw(reader, name), buffer_size=reader.block_size)
