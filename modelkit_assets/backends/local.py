"""Local disk (``file://`` and plain paths): the store is a folder, possibly shared
between the users of a machine."""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import TYPE_CHECKING, BinaryIO

from modelkit_assets.backends.base import STREAM_BUFFER, Backend
from modelkit_assets.localdisk import replace_file

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from modelkit_assets.transfer import Tuning


class LocalBackend(Backend):
    protocols = ("file", "local")
    checks_options = True
    is_local_storage = True

    @staticmethod
    def local_path(fs: AbstractFileSystem, path: str) -> str:
        import fsspec.core

        return str(fsspec.core.strip_protocol(path))

    def create_exclusive(self, fs: AbstractFileSystem, path: str, data: bytes) -> None:
        """``os.link`` of a complete temporary file: fsspec's local ``mode="create"``
        overwrites. Not mkstemp: its 0600 would make the object unreadable to the other
        users of a shared store; 0666 gets the umask and default ACLs, as a plain write."""
        local = self.local_path(fs, path)
        folder = os.path.dirname(local)
        os.makedirs(folder, exist_ok=True)
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, local)
        finally:
            os.unlink(tmp)

    def write_replace(self, fs: AbstractFileSystem, path: str, data: bytes) -> None:
        """An atomic rename of a complete temporary file."""
        local = self.local_path(fs, path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        replace_file(local, data)

    def ensure_folder(self, fs: AbstractFileSystem, path: str) -> None:
        os.makedirs(self.local_path(fs, path), exist_ok=True)

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        return None

    def open_read(self, fs: AbstractFileSystem, path: str, tuning: Tuning) -> tuple[BinaryIO, int | None]:
        """The file itself (fsspec's local files add nothing here)."""
        handle = open(self.local_path(fs, path), "rb")  # noqa: SIM115 - the caller closes it
        return handle, os.fstat(handle.fileno()).st_size

    def open_write(self, fs: AbstractFileSystem, path: str, tuning: Tuning) -> BinaryIO:
        return open(self.local_path(fs, path), "wb")

    def abort_write(self, fs: AbstractFileSystem, path: str, handle: BinaryIO) -> None:
        """Close and remove the partial file."""
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.local_path(fs, path))

    def job_cost(self, direction: str, size: int | None, tuning: Tuning) -> int:
        """A local copy holds one chunk at a time."""
        return STREAM_BUFFER if size is None else min(size, STREAM_BUFFER)
