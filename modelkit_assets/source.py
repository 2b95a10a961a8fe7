"""The local file or folder being published: walked, checked and hashed before upload.

Nothing is uploaded from a source that fails a check, so a bad source never leaves
anything in the store (G3, G5).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelkit_assets.errors import InvalidMetaError, InvalidSourceError, InvalidSubPartError
from modelkit_assets.manifest import HASH_CHUNK, FileEntry, check_paths
from modelkit_assets.spec import check_relative_path


@dataclass(frozen=True)
class SourceFile:
    """One file to upload: ``path`` inside the version, ``local`` on disk."""

    path: str
    local: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Source:
    """A checked source: a single file or a folder of files."""

    root: str
    is_directory: bool
    files: tuple[SourceFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def entries(self) -> dict[str, FileEntry]:
        return {f.path: FileEntry(size=f.size, sha256=f.sha256) for f in self.files}


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Stream a file through sha256 (never read whole into memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Yield (relative path, absolute path) of every file, refusing anything odd."""
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except PermissionError as err:
            raise InvalidSourceError(
                f"Cannot read folder {folder}: permission denied; fix its permissions."
            ) from err
        for entry in entries:
            full = Path(entry.path)
            rel = full.relative_to(root).as_posix()
            if entry.is_symlink():
                raise InvalidSourceError(
                    f"{full} is a symbolic link; assets hold plain files only: replace it by "
                    "the file it points to, or remove it."
                )
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                stack.append(full)
            elif stat.S_ISREG(mode):
                yield rel, full
            else:
                raise InvalidSourceError(
                    f"{full} is not a regular file (device, socket or pipe); remove it from the folder."
                )


def scan_source(path: str | os.PathLike[str], *, workers: int = 8) -> Source:
    """Check and hash a local file or folder.

    Raises
    ------
    InvalidSourceError
        If the path does not exist, a folder is empty, or holds symlinks, special
        files, unreadable files, unsafe names or names that collide by case.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise InvalidSourceError(f"{root} does not exist; give the path of a file or folder to publish.")
    root = root.resolve()
    if root.is_file():
        listing = [(root.name, root)]
        is_directory = False
    elif root.is_dir():
        listing = list(_walk(root))
        is_directory = True
        if not listing:
            raise InvalidSourceError(f"{root} holds no file: there is nothing to publish.")
    else:
        raise InvalidSourceError(f"{root} is not a regular file or folder.")
    try:
        for rel, _ in listing:
            check_relative_path(rel, what="file name")
        check_paths([rel for rel, _ in listing], where=f"The folder {root}")
    except (InvalidSubPartError, InvalidMetaError) as err:
        raise InvalidSourceError(f"{err} Rename it before publishing.") from err

    def describe(item: tuple[str, Path]) -> SourceFile:
        rel, full = item
        try:
            size = full.stat().st_size
            return SourceFile(path=rel, local=str(full), size=size, sha256=sha256_file(full))
        except PermissionError as err:
            raise InvalidSourceError(f"Cannot read {full}: permission denied; fix its permissions.") from err

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        files = tuple(pool.map(describe, listing))
    return Source(root=str(root), is_directory=is_directory, files=files)
