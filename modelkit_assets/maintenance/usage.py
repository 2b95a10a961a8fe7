"""Whether another process is using a cached version, so that ``prune`` never removes it.

Three signals, cheapest first, none of them on the G6 hot path:

1. the asset's cache lock (taken without waiting): a fetch of that asset is in progress;
2. a *lease*: a shared ``flock`` on ``.cache/leases/{name}/{version}.lease`` that a
   long-running process takes with :func:`hold` (or ``AssetsManager``-level code) for as
   long as it uses the version. Shared locks do not block each other, prune's exclusive
   probe fails while any is held, and the kernel drops them when a process dies;
3. on Linux, any process (other than this one) with a file of the version open or
   memory-mapped, read from ``/proc/*/fd`` and ``/proc/*/maps``: this catches users that
   never heard of leases (a model loaded with ``mmap``, a tokenizer keeping its file open).

A process that read a file into memory and closed it holds none of these: deleting the
version does not disturb it, and its next fetch downloads the version again.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from modelkit_assets.cache import AssetCache


@contextlib.contextmanager
def hold(cache: AssetCache, name: str, version: str) -> Iterator[None]:
    """Declare that this process uses ``name:version`` until the block exits: ``prune``
    skips it. Costs an ``open`` and a ``flock``; needs a writable assets dir (on a
    read-only one, nothing can prune anyway, and this does nothing).
    """
    path = cache.layout.lease(name, version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield
        return
    try:
        if sys.platform != "win32":
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def leased(cache: AssetCache, name: str, version: str) -> bool:
    """Whether some process holds a lease on the version (an exclusive probe fails)."""
    if sys.platform == "win32":
        return False
    import fcntl

    path = cache.layout.lease(name, version)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def open_by_others(paths: list[Path]) -> set[Path]:
    """The ``paths`` (versions: files or folders) that another process has a file of open
    or mapped. Empty where ``/proc`` is not available."""
    proc = Path("/proc")
    if not paths or not (proc / "self" / "fd").is_dir():
        return set()
    roots = {os.path.realpath(p): p for p in paths}  # /proc shows resolved paths

    def owner(target: str) -> Path | None:
        for root, path in roots.items():
            if target == root or target.startswith(root + "/"):
                return path
        return None

    me = str(os.getpid())
    busy: set[Path] = set()
    for pid in os.listdir(proc):
        if not pid.isdigit() or pid == me:
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(proc / pid / "fd"):
                with contextlib.suppress(OSError):
                    hit = owner(os.readlink(proc / pid / "fd" / fd))
                    if hit is not None:
                        busy.add(hit)
        with (
            contextlib.suppress(OSError),
            open(proc / pid / "maps", encoding="utf-8", errors="replace") as maps,
        ):
            for line in maps:
                fields = line.split(maxsplit=5)
                if len(fields) == 6:
                    hit = owner(fields[5].rstrip("\n").removesuffix(" (deleted)"))
                    if hit is not None:
                        busy.add(hit)
    return busy
