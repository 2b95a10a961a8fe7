"""``memory://``: fsspec's in-process store (tests, notebooks, throwaway pipelines)."""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, BinaryIO

from modelkit_assets.backends.base import Backend

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem


class MemoryBackend(Backend):
    protocols = ("memory",)
    checks_options = True
    is_local_storage = True

    def __init__(self) -> None:
        # memory's "xb" checks then writes: two threads could both pass the check
        self._create_lock = threading.Lock()

    def create_exclusive(self, fs: AbstractFileSystem, path: str, data: bytes) -> None:
        with self._create_lock:
            fs.pipe_file(path, data, mode="create")

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        return None

    def abort_write(self, fs: AbstractFileSystem, path: str, handle: BinaryIO) -> None:
        """Remove the object: a memory file is in the store from its opening."""
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path)
