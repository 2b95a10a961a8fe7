"""The local file or folder being published: walked and checked before upload.

Nothing is uploaded from a source that fails a check, so a bad source never leaves
anything in the store (G3, G5). Files are hashed while they are uploaded (transfer.py),
in the same read, not here.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import weakref
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit_assets.errors import AssetsError, InvalidMetaError, InvalidSourceError, InvalidSubPartError
from modelkit_assets.manifest import check_paths
from modelkit_assets.spec import check_relative_path


@dataclass(frozen=True)
class SourceFile:
    """One file to upload: ``path`` inside the version, ``local`` on disk."""

    path: str
    local: str
    size: int
    #: modification time when scanned: a later change means the upload may mix versions
    mtime_ns: int = 0


@dataclass(frozen=True)
class Source:
    """A checked source: a single file or a folder of files."""

    root: str
    is_directory: bool
    files: tuple[SourceFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def changed(self) -> list[str]:
        """Files whose size or modification time moved since they were scanned.

        Checked after the upload and before the commit, so a file edited during a publish
        never gets a manifest that does not match its uploaded bytes (one ``stat`` each).
        """
        moved = []
        for f in self.files:
            try:
                st = os.stat(f.local)
            except OSError:
                moved.append(f.path)
                continue
            if st.st_size != f.size or st.st_mtime_ns != f.mtime_ns:
                moved.append(f.path)
        return moved

    def close(self) -> None:
        """Remove the temporary copy of a remote source now (it is otherwise removed when
        the source is garbage-collected); a no-op for a local source."""
        cleanup = self.__dict__.get("_cleanup")
        if cleanup is not None:
            cleanup()


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


def is_remote(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an fsspec URL of another filesystem than the local disk."""
    text = os.fspath(path)
    return "://" in text and not text.lower().startswith(("file://", "local://"))


def scan_source(
    path: str | os.PathLike[str],
    *,
    workers: int = 8,
    storage_options: Mapping[str, Any] | None = None,
) -> Source:
    """Check a local file or folder, or copy in a remote one (an fsspec URL, read with
    ``storage_options``) and check it the same way.

    Raises
    ------
    InvalidSourceError
        If the path does not exist, a folder is empty, or holds symlinks, special
        files, unreadable files, unsafe names or names that collide by case.
    StoreError
        If a remote source cannot be read (permission, unreachable endpoint).
    """
    if is_remote(path):
        return _copy_remote(os.fspath(path), storage_options or {}, workers=workers)
    text = os.fspath(path)
    if text.lower().startswith("file://"):
        import fsspec.core

        path = fsspec.core.strip_protocol(text)
    return _scan_local(path, workers=workers)


def _copy_remote(url: str, storage_options: Mapping[str, Any], *, workers: int) -> Source:
    """Download a remote file or folder into a private temporary folder, streamed file by
    file to disk (never whole in memory), then check it like a local source.

    Every remote name is checked before anything is written, so a key such as
    ``a/../../x`` can never place a file outside the temporary folder (G5). The folder
    is removed when the returned ``Source`` is garbage-collected or closed.
    """
    from modelkit_assets.backends import basename, open_filesystem, redact_url, store_errors
    from modelkit_assets.localdisk import local_writes
    from modelkit_assets.transfer import download

    display = redact_url(url)
    with _hide_url_secrets(url, display), store_errors(display, "read the source"):
        fs, root = open_filesystem(url, storage_options)
        root = root.rstrip("/")
        try:
            fs.invalidate_cache(root)
            info = fs.info(root)
        except FileNotFoundError:
            raise InvalidSourceError(
                f"{display} does not exist; give the URL of a file or folder to publish."
            ) from None
        if info["type"] == "directory":
            prefix = root + "/"
            names = sorted(
                name
                for name, entry in fs.find(root, detail=True).items()
                if entry["type"] == "file" and not name.endswith("/") and name.startswith(prefix)
            )
            relative = [name[len(prefix) :] for name in names]
            if not relative:
                raise InvalidSourceError(f"{display} holds no file: there is nothing to publish.")
        else:
            names = [root]
            # a signed URL's query (``?sig=...``) is a credential, never part of the name
            relative = [basename(redact_url(root))]
        try:
            for rel in relative:
                check_relative_path(rel, what="file name")
            check_paths(relative, where=f"The folder {display}")
        except (InvalidSubPartError, InvalidMetaError) as err:
            raise InvalidSourceError(f"{err} Rename it before publishing.") from err
        is_directory = info["type"] == "directory"
        # a full or read-only TMPDIR is said as such, never blamed on the source's store
        tmp = tempfile.gettempdir()
        failed = f"The remote source {display} cannot be copied into the temporary folder"
        with local_writes(tmp, "TMPDIR", failed), store_errors(display, "read the source", local=tmp):
            workdir = tempfile.mkdtemp(prefix="modelkit-assets-source-")
            target = os.path.join(workdir, "tree") if is_directory else os.path.join(workdir, relative[0])
            pairs = [
                (name, os.path.join(target, *rel.split("/")) if is_directory else target)
                for name, rel in zip(names, relative, strict=True)
            ]
            try:
                download(fs, pairs, concurrency=workers)
            except BaseException:
                shutil.rmtree(workdir, ignore_errors=True)
                raise
    try:
        local = _scan_local(target, workers=workers)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    source = Source(root=display, is_directory=is_directory, files=local.files)
    # the temporary copy lives exactly as long as the Source that points into it
    object.__setattr__(source, "_cleanup", weakref.finalize(source, shutil.rmtree, workdir, True))
    return source


@contextlib.contextmanager
def _hide_url_secrets(url: str, display: str) -> Iterator[None]:
    """Drop the backend's own exception from an error when the source URL holds
    credentials (a user, a password, a signed query): backends quote the full URL in
    their messages, and a traceback shows the chained cause (G7)."""
    try:
        yield
    except Exception as err:
        if url == display:
            raise
        if not isinstance(err, AssetsError):
            from modelkit_assets.backends import translate_error

            raise translate_error(err, display, "read the source") from None
        err.__cause__ = None
        err.__suppress_context__ = True
        raise


def _scan_local(path: str | os.PathLike[str], *, workers: int = 8) -> Source:
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
        try:  # opened once now, so an unreadable file stops the publish before any upload
            fd = os.open(full, os.O_RDONLY)
        except PermissionError as err:
            raise InvalidSourceError(f"Cannot read {full}: permission denied; fix its permissions.") from err
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return SourceFile(rel, str(full), st.st_size, st.st_mtime_ns)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        files = tuple(pool.map(describe, listing))
    return Source(root=str(root), is_directory=is_directory, files=files)
