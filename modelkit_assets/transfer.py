"""Moving bytes: concurrent uploads and downloads, and verification of what arrived.

Progress is reported through fsspec ``Callback`` objects (one branch per file), so the
library stays free of any UI; the CLI turns them into rich progress bars.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from modelkit_assets.backend import is_local
from modelkit_assets.errors import IntegrityError
from modelkit_assets.manifest import FileEntry
from modelkit_assets.source import sha256_file

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from fsspec.callbacks import Callback

DEFAULT_CONCURRENCY = 32


def _is_async(fs: AbstractFileSystem) -> bool:
    return bool(getattr(fs, "async_impl", False))


def _run_each(
    fs: AbstractFileSystem,
    method: str,
    pairs: Sequence[tuple[str, str]],
    callback: Callback | None,
    concurrency: int,
    **kwargs: Any,
) -> None:
    """Call ``fs.<method>(src, dst)`` for every pair, ``concurrency`` at a time."""
    from fsspec.callbacks import DEFAULT_CALLBACK

    callback = callback or DEFAULT_CALLBACK
    callback.set_size(len(pairs))

    def one(pair: tuple[str, str]) -> None:
        src, dst = pair
        with callback.branched(src, dst) as child:
            getattr(fs, method)(src, dst, callback=child, **kwargs)
        callback.relative_update(1)

    if len(pairs) == 1 or concurrency <= 1:
        for pair in pairs:
            one(pair)
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(pairs))) as pool:
        for _ in pool.map(one, pairs):
            pass


def upload(
    fs: AbstractFileSystem,
    pairs: Sequence[tuple[str, str]],
    *,
    callback: Callback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> None:
    """Upload ``(local, remote)`` pairs concurrently."""
    if not pairs:
        return
    if is_local(fs):
        for folder in {os.path.dirname(fs._strip_protocol(r)) for _, r in pairs}:
            os.makedirs(folder, exist_ok=True)
    if _is_async(fs) and len(pairs) > 1:
        from fsspec.callbacks import DEFAULT_CALLBACK

        # fsspec's async put/get call methods on the callback: None is not accepted
        fs.put(
            [lp for lp, _ in pairs],
            [rp for _, rp in pairs],
            callback=callback or DEFAULT_CALLBACK,
            batch_size=concurrency,
        )
        return
    _run_each(fs, "put_file", pairs, callback, concurrency)


def download(
    fs: AbstractFileSystem,
    pairs: Sequence[tuple[str, str]],
    *,
    callback: Callback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> None:
    """Download ``(remote, local)`` pairs concurrently into existing or new folders."""
    if not pairs:
        return
    for folder in {os.path.dirname(lp) for _, lp in pairs}:
        os.makedirs(folder, exist_ok=True)
    if _is_async(fs) and len(pairs) > 1:
        from fsspec.callbacks import DEFAULT_CALLBACK

        fs.get(
            [rp for rp, _ in pairs],
            [lp for _, lp in pairs],
            callback=callback or DEFAULT_CALLBACK,
            batch_size=concurrency,
        )
        return
    _run_each(fs, "get_file", pairs, callback, concurrency)


def verify_file(local: str, entry: FileEntry, *, label: str) -> None:
    """Check a downloaded file against its manifest entry.

    Raises
    ------
    IntegrityError
        Naming the file, what was expected and what was found.
    """
    if not os.path.isfile(local):
        raise IntegrityError(f"{label} is missing from the store's copy; the download was discarded.")
    if entry.size is not None:
        size = os.path.getsize(local)
        if size != entry.size:
            raise IntegrityError(
                f"{label} has {size} bytes where the manifest says {entry.size}; the download "
                "was discarded and the cache left unchanged."
            )
    if entry.sha256 is not None:
        digest = sha256_file(local)
        if digest != entry.sha256:
            raise IntegrityError(
                f"{label} has sha256 {digest} where the manifest says {entry.sha256}; the "
                "download was discarded and the cache left unchanged."
            )


def verify_files(items: Sequence[tuple[str, FileEntry, str]], *, concurrency: int = 8) -> None:
    """Verify ``(local, entry, label)`` items concurrently (hashing releases the GIL)."""
    if len(items) <= 1:
        for local, entry, label in items:
            verify_file(local, entry, label=label)
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for _ in pool.map(lambda item: verify_file(item[0], item[1], label=item[2]), items):
            pass
