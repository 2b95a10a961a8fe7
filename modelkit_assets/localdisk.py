"""Failures of the local disk, told apart from failures of the store.

A full disk, a read-only mount or a path that is a file is not the store's fault and never
goes away on a second try. Such an ``OSError`` is raised as a ``LocalDiskError`` that says
what happened, in which folder, and which setting points there::

    OSError(ENOSPC) while writing /data/assets/.cache/staging/...
      -> LocalDiskError: m/clf:1.0 is not in the assets dir /data/assets and cannot be
         installed there: no space left on the device (MODELKIT_ASSETS_DIR points
         there); free some space or set MODELKIT_ASSETS_DIR to a folder with room.

``backends.store_errors`` lets these errors through untranslated and ``retry.is_transient``
never retries them; the callers that write locally (fetch, remote source copies) turn them
into ``LocalDiskError`` with ``local_disk_error``, the one place that builds them.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from modelkit_assets.errors import AssetsError, LocalDiskError

#: errnos a remote object store never produces: always the local disk's
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_NOT_WRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_NOT_A_FOLDER = frozenset({errno.ENOTDIR, errno.EEXIST})
_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for the file system",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
ASSETS_DIR_SETTING = "MODELKIT_ASSETS_DIR"


def is_disk_error(err: BaseException) -> bool:
    """Whether ``err`` can only come from a local disk (pure)."""
    return isinstance(err, OSError) and not isinstance(err, AssetsError) and err.errno in DISK_ERRNOS


def is_under(err: BaseException, folder: str | os.PathLike[str]) -> bool:
    """Whether ``err`` names a path inside ``folder`` (then it is the local side's)."""
    for name in (getattr(err, "filename", None), getattr(err, "filename2", None)):
        if isinstance(name, str | os.PathLike):
            path, root = os.path.abspath(os.fspath(name)), os.path.abspath(os.fspath(folder))
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                return True
    return False


def _file_in_the_way(folder: Path) -> Path | None:
    """The path in ``folder`` or among its parents that exists but is not a folder."""
    for path in (folder, *folder.parents):
        if path.is_dir():
            return None
        if path.exists() or path.is_symlink():
            return path
    return None


def local_disk_error(
    err: OSError,
    folder: str | os.PathLike[str],
    setting: str,
    failed: str,
    *,
    not_writable: type[LocalDiskError] = LocalDiskError,
) -> LocalDiskError | None:
    """The ``LocalDiskError`` for ``err``, raised while writing in ``folder`` (which
    ``setting`` points at), or ``None`` when ``err`` is not a disk condition we describe.

    ``failed`` starts the sentence: what could not be done (e.g. ``m:1.0 is not in the
    assets dir /x and cannot be installed there``). A read-only or refused folder raises
    ``not_writable`` (``CacheNotWritableError`` for the assets dir).
    """
    if isinstance(err, AssetsError) or err.errno is None:
        return None
    folder = Path(folder)
    code = err.errno
    if code in _FULL or code in _NOT_WRITABLE:
        reason = _REASONS[code]
        advice = f"set {setting} to a writable folder"
        if code in _FULL:
            advice = f"free some space or set {setting} to a folder with room"
    elif code in _NOT_A_FOLDER:
        filename = getattr(err, "filename", None)
        blocker = _file_in_the_way(folder) or (
            _file_in_the_way(Path(os.fspath(filename)).parent) if filename is not None else None
        )
        if blocker is None:
            return None
        reason = f"{blocker} is a file, not a folder"
        advice = f"remove it or set {setting} to a folder"
    else:
        return None
    cls = not_writable if code in _NOT_WRITABLE else LocalDiskError
    where = setting if str(folder) in failed else f"{setting} points at {folder}"
    error = cls(f"{failed}: {reason} ({where}); {advice}.")
    error.errno = code
    return error


@contextlib.contextmanager
def local_writes(
    folder: str | os.PathLike[str],
    setting: str,
    failed: str,
    *,
    not_writable: type[LocalDiskError] = LocalDiskError,
) -> Iterator[None]:
    """Raise the disk failures of the block as ``LocalDiskError`` (see ``local_disk_error``).

    Use it only around blocks whose other failures are already ``AssetsError`` (store
    requests go through ``store_errors``): any remaining ``OSError`` is local.
    """
    try:
        yield
    except OSError as err:
        error = local_disk_error(err, folder, setting, failed, not_writable=not_writable)
        if error is None:
            raise
        raise error from err


def replace_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` at the local ``path`` atomically: readers see the old file or the new,
    a crash leaves no half file. A uniquely named temporary file beside it (two writers
    never share one), created like any plain write (the umask applies), then renamed."""
    import uuid

    target = Path(path)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
