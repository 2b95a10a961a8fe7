"""Moving bytes: concurrent, memory-bounded uploads, downloads and server-side copies,
each file hashed in the same pass that moves it.

Object stores answer each request after tens of milliseconds, so a folder of small files
is moved many files at a time (``concurrency``, 32 by default). Every byte is read once:
an upload hashes what it sends (size, sha256, and a sha256 per 8 MiB block: the manifest
entry), a download hashes what it writes and checks it against the manifest before the
caller installs anything. A budget on the bytes held in flight (``memory_budget``) keeps
the total flat whatever the mix::

    job cost (bytes held while it runs)            S3 (own coroutines)     others (file objects)
    upload, size <= part_size (one request)        2 x size                size
    upload, multipart                              2 x part_size x parts   part_size
                                                   (parts: within budget)
    download, one streamed GET                     min(size, 8 MiB)        min(size, part_size)
    download, ranged parts (opt-in)                part_size x parts       -
    local disk                                     -                       1 MiB

A job starts when a concurrency slot is free *and* its cost fits in the budget (a job
larger than the whole budget runs alone). An S3 body counts twice: measured, 100 x 8 MiB
uploads counted once peaked at 397 MB RSS, the socket transport copying what the kernel
has not taken yet.

On S3 a multipart upload keeps ``part_concurrency`` parts in flight as a sliding window
(a new part starts as soon as any finishes; s3fs waits for the slowest part of each
batch), and each part carries its sha256, which S3 records: a publish killed midway is
resumed from the objects whose recorded checksum matches (store.py). Downloads stream each
file through one GET by default (``download_part_concurrency=1``): measured against moto
at 20 ms, a 1 GiB file streamed in 8.2 s at 65 MB peak RSS, while s3fs's default ranged
download (50 MiB x 10) took 34.9 s and 1.1 GB, and 8 MiB x 8 ranges took 267 s (moto,
like some S3-compatible servers, reads the whole object for each range). A download
killed midway resumes from the blocks of its partial file that match the manifest.
Progress is reported through fsspec ``Callback`` objects (one branch per file), so the
library stays free of any UI.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from modelkit_assets.backends import backend_for
from modelkit_assets.errors import IntegrityError, first_error
from modelkit_assets.integrity import HASH_CHUNK, StreamHasher, check_measured
from modelkit_assets.manifest import FileEntry
from modelkit_assets.retry import RetryPolicy
from modelkit_assets.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_DOWNLOAD_PART_CONCURRENCY,
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_PART_CONCURRENCY,
    DEFAULT_PART_SIZE,
)

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from fsspec.callbacks import Callback

    from modelkit_assets.backends.base import Backend

T = TypeVar("T")


@dataclass(frozen=True)
class Tuning:
    """How hard to push a store, and how much memory a transfer may hold.

    Parameters
    ----------
    concurrency
        Files moved at once (and the size of the HTTP connection pool).
    part_size
        Bytes per part of a multipart upload or ranged download (S3 needs >= 5 MiB).
    part_concurrency
        Parts of one file in flight at once.
    memory_budget
        Bytes all running jobs may hold at once (see the module docstring).
    download_part_concurrency
        Ranged GETs of one file in flight at once; 1 streams the file in one request.
    """

    concurrency: int = DEFAULT_CONCURRENCY
    part_size: int = DEFAULT_PART_SIZE
    part_concurrency: int = DEFAULT_PART_CONCURRENCY
    memory_budget: int = DEFAULT_MEMORY_BUDGET
    download_part_concurrency: int = DEFAULT_DOWNLOAD_PART_CONCURRENCY

    def __post_init__(self) -> None:
        values = (self.concurrency, self.part_size, self.part_concurrency, self.memory_budget)
        if min(*values, self.download_part_concurrency) < 1:
            raise ValueError("transfer tuning values must be positive")


@dataclass(frozen=True)
class Job:
    """One file to move: ``src`` to ``dst``, ``size`` bytes when known; a download
    with an ``expected`` entry stops as soon as it goes beyond its size, and ``label``
    names the file in its errors."""

    src: str
    dst: str
    size: int | None = None
    label: str = ""
    #: a download's manifest entry, checked against what the transfer measured
    expected: FileEntry | None = None
    #: an upload into a version taken over from a dead writer: continue its upload
    resume: bool = False
    #: bytes per block of ``expected.blocks``: a partial ``dst`` left by a killed fetch
    #: is kept up to its last block that matches, and the download resumes from there
    block_size: int | None = None


def _limited(callback: Callback, job: Job) -> Callback:
    """``callback``, stopping a download that exceeds its manifest size.

    Every backend reports the object's length (``set_size``) before its first byte and
    each chunk written after it, so an object far larger than its manifest costs a
    request and at most one chunk, never its whole size on the network and the disk.
    """
    limit = job.expected.size if job.expected is not None else None
    if limit is None:
        return callback
    limited: Callback = _limited_class()(callback, limit, job.label or job.src)
    return limited


@functools.cache
def _limited_class() -> type:
    """The callback class of ``_limited``, built once (fsspec is imported on first use)."""
    from fsspec.callbacks import Callback

    class Limited(Callback):  # type: ignore[misc]  # fsspec is untyped
        def __init__(self, inner: Callback, limit: int, label: str) -> None:
            super().__init__()
            self.inner, self.limit, self.label = inner, limit, label

        def check(self, count: int | None) -> None:
            if count is not None and count > self.limit:
                raise IntegrityError(
                    f"{self.label} is larger than the {self.limit} bytes its manifest says; "
                    "the download was stopped and discarded and the cache left unchanged."
                )

        def set_size(self, size: int) -> None:
            self.check(size)
            self.inner.set_size(size)

        def absolute_update(self, value: int) -> None:
            self.check(value)
            self.value = value
            self.inner.absolute_update(value)

        def relative_update(self, inc: int = 1) -> None:
            self.check(self.value + inc)
            self.value += inc
            self.inner.relative_update(inc)

    return Limited


def _is_async(fs: AbstractFileSystem) -> bool:
    return bool(getattr(fs, "async_impl", False))


def job_cost(fs: AbstractFileSystem, direction: str, size: int | None, tuning: Tuning) -> int:
    """Bytes one job holds in memory while it runs (the module docstring's table)."""
    return backend_for(fs).job_cost(direction, size, tuning)


async def _run_bounded(
    jobs: Sequence[Job],
    costs: Sequence[int],
    run: Callable[[Job, Callback], Awaitable[T]],
    callback: Callback,
    tuning: Tuning,
) -> list[T]:
    """Run ``run(job, child_callback)`` for every job, at most ``tuning.concurrency`` at a
    time and never more than ``tuning.memory_budget`` bytes of cost at once; return the
    results in the jobs' order.

    A ``TaskGroup`` cancels the other jobs as soon as one fails, so no orphan transfer
    keeps writing after the caller has seen the error.
    """
    slots = asyncio.Semaphore(tuning.concurrency)
    budget = asyncio.Condition()
    in_use = 0

    async def one(job: Job, cost: int) -> T:
        nonlocal in_use
        cost = min(cost, tuning.memory_budget)
        async with slots:
            async with budget:
                await budget.wait_for(lambda: in_use + cost <= tuning.memory_budget)
                in_use += cost
            try:
                with callback.branched(job.src, job.dst) as child:
                    result = await run(job, child)
            finally:
                async with budget:
                    in_use -= cost
                    budget.notify_all()
        callback.relative_update(1)
        return result

    with first_error():
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(job, cost)) for job, cost in zip(jobs, costs, strict=True)]
    return [task.result() for task in tasks]


class _Stopped(BaseException):
    """Raised inside a threaded transfer when another file of the batch failed (a
    BaseException: never taken for a transient error and retried)."""


def _transfer(
    fs: AbstractFileSystem,
    direction: str,
    jobs: Sequence[Job],
    callback: Callback | None,
    tuning: Tuning,
    retry: RetryPolicy | None = None,
) -> list[FileEntry]:
    """Move every job's file (``direction``: ``put`` or ``get``), hashing each in the
    same pass; return what was measured, in the jobs' order.

    Backends with their own streamed coroutines (S3) run them on the filesystem's event
    loop; every other filesystem moves each file through its file objects in a worker
    thread, under the same concurrency and memory bounds.
    """
    from fsspec.asyn import get_loop, sync
    from fsspec.callbacks import DEFAULT_CALLBACK

    callback = callback or DEFAULT_CALLBACK
    callback.set_size(len(jobs))
    backend = backend_for(fs)
    # each file is retried on its own: a reset connection never restarts the whole folder
    policy = retry or RetryPolicy.never()
    costs = [backend.job_cost(direction, job.size, tuning) for job in jobs]
    if _is_async(fs) and backend.streams_async:

        async def run_async(job: Job, child: Callback) -> FileEntry:
            async def attempt() -> FileEntry:
                child.absolute_update(0)  # a retried file starts its progress again
                hasher = StreamHasher(blocks=direction == "put")
                limited = _limited(child, job)
                if direction == "put":
                    await backend.aput(fs, job.src, job.dst, tuning, limited, hasher, resume=job.resume)
                else:
                    start = await asyncio.to_thread(_resume_point, job, hasher)
                    if not _complete(job, start):
                        await backend.aget(fs, job.src, job.dst, tuning, limited, hasher, start=start)
                return _measured(job, hasher)

            result: FileEntry = await policy.acall(attempt, what=f"{direction} {job.src}", transfer=True)
            return result

        return list(sync(fs.loop, _run_bounded, jobs, costs, run_async, callback, tuning))

    stop = threading.Event()

    def move(job: Job, child: Callback) -> FileEntry:
        def attempt() -> FileEntry:
            child.absolute_update(0)
            hasher = StreamHasher(blocks=direction == "put")
            if direction == "put":
                _put_through_files(fs, backend, job, tuning, _limited(child, job), hasher, stop)
            else:
                start = _resume_point(job, hasher)
                if not _complete(job, start):
                    _get_through_files(fs, backend, job, tuning, _limited(child, job), hasher, stop, start)
            return _measured(job, hasher)

        try:
            result: FileEntry = policy.call(attempt, what=f"{direction} {job.src}", transfer=True)
        except BaseException:
            stop.set()
            raise
        return result

    workers = min(tuning.concurrency, len(jobs))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="modelkit-assets") as pool:

        async def run_thread(job: Job, child: Callback) -> FileEntry:
            try:
                return await asyncio.get_running_loop().run_in_executor(pool, move, job, child)
            except _Stopped:
                # stopped because another file failed: that failure is the one to report
                raise asyncio.CancelledError from None

        try:
            return list(sync(get_loop(), _run_bounded, jobs, costs, run_thread, callback, tuning))
        finally:
            stop.set()  # files still running in threads stop at their next chunk


def _measured(job: Job, hasher: StreamHasher) -> FileEntry:
    """What a transfer measured (a download: size and sha256, which is all its check
    needs); a download is checked against its manifest entry here, before its caller can
    install anything (G4)."""
    found = hasher.entry()
    if job.expected is not None:
        check_measured(found, job.expected, label=job.label or job.src)
    return found


def _resume_point(job: Job, hasher: StreamHasher) -> int:
    """Bytes at the start of a download's ``dst`` (left by a killed fetch) that match the
    manifest's block hashes, fed to ``hasher``; the file is cut after them, so the
    download resumes there. 0 (and ``dst`` untouched) without block hashes or a file."""
    entry, block_size = job.expected, job.block_size
    if entry is None or not entry.blocks or entry.size is None or not block_size:
        return 0
    try:
        handle = open(job.dst, "r+b")  # noqa: SIM115 - closed below, after the truncate
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return 0
    verified = 0
    with handle:
        for expected in entry.blocks:
            data = handle.read(block_size)
            if len(data) != min(block_size, entry.size - verified):
                break
            if hashlib.sha256(data).hexdigest() != expected:
                break
            hasher.update(data)
            verified += len(data)
        handle.truncate(verified)
    return verified


def _complete(job: Job, start: int) -> bool:
    """Whether a resumed download already holds its whole file (verified block by block)."""
    entry = job.expected
    return entry is not None and entry.size is not None and start > 0 and start == entry.size


def _put_through_files(
    fs: AbstractFileSystem,
    backend: Backend,
    job: Job,
    tuning: Tuning,
    callback: Callback,
    hasher: StreamHasher,
    stop: threading.Event,
) -> None:
    """Upload one local file through the store's writable file object, hashing it.

    A file of at most ``part_size`` bytes is read whole and sent in one request (no
    upload session to lose); a larger one is written in parts through ``open_write``.
    """
    with open(job.src, "rb") as source:
        size = os.fstat(source.fileno()).st_size
        callback.set_size(size)
        if size <= tuning.part_size:
            data = source.read(tuning.part_size + 1)
            hasher.update(data)
            backend.write_small(fs, job.dst, data)
            callback.relative_update(len(data))
            return
        target = backend.open_write(fs, job.dst, tuning)
        try:
            while chunk := source.read(HASH_CHUNK):
                if stop.is_set():
                    raise _Stopped(job.src)
                hasher.update(chunk)
                target.write(chunk)
                callback.relative_update(len(chunk))
            target.close()
        except BaseException as err:
            backend.abort_write(fs, job.dst, target)
            if isinstance(err, FileNotFoundError) and not backend.is_local_storage:
                # an object being created cannot be missing: the store lost the upload
                # session (a resumable upload expired or was reset); retry the file
                raise ConnectionResetError(f"the upload of {job.dst} was interrupted by the store") from err
            raise


def _get_through_files(
    fs: AbstractFileSystem,
    backend: Backend,
    job: Job,
    tuning: Tuning,
    callback: Callback,
    hasher: StreamHasher,
    stop: threading.Event,
    start: int = 0,
) -> None:
    """Download one object through the store's readable file object into ``job.dst``
    (from byte ``start`` on: what precedes is verified and kept), hashing it as it is
    written."""
    source, size = backend.open_read(fs, job.src, tuning)
    with source, open(job.dst, "r+b" if start else "wb") as target:
        if size is not None:
            callback.set_size(size)  # stops an object larger than its manifest at once
        if start:
            source.seek(start)
            target.seek(start)
            callback.relative_update(start)
        while chunk := source.read(HASH_CHUNK):
            if stop.is_set():
                raise _Stopped(job.src)
            callback.relative_update(len(chunk))
            hasher.update(chunk)
            target.write(chunk)


def _ensure_folders(fs: AbstractFileSystem, keys: Sequence[str]) -> None:
    """Create the folders of ``keys`` where the backend has real folders (local disk)."""
    backend = backend_for(fs)
    for folder in {key.rsplit("/", 1)[0] for key in keys}:
        backend.ensure_folder(fs, folder)


def upload(
    fs: AbstractFileSystem,
    pairs: Sequence[tuple[str, str]],
    *,
    callback: Callback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    tuning: Tuning | None = None,
    retry: RetryPolicy | None = None,
    resume: bool = False,
) -> list[FileEntry]:
    """Upload ``(local, remote)`` pairs concurrently, with bounded memory, hashing each
    file as it is read (size, sha256, block hashes: returned in the pairs' order); each
    file is retried under ``retry`` (none by default). With ``resume``, uploads a dead
    writer left unfinished are continued where the backend can prove their parts."""
    if not pairs:
        return []
    tuning = tuning or Tuning(concurrency=concurrency)
    _ensure_folders(fs, [remote for _, remote in pairs])
    jobs = [Job(local, remote, os.path.getsize(local), resume=resume) for local, remote in pairs]
    return _transfer(fs, "put", jobs, callback, tuning, retry)


def download(
    fs: AbstractFileSystem,
    pairs: Sequence[tuple[str, str]],
    *,
    callback: Callback | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    entries: Sequence[FileEntry | None] | None = None,
    labels: Sequence[str] | None = None,
    block_size: int | None = None,
    tuning: Tuning | None = None,
    retry: RetryPolicy | None = None,
) -> list[FileEntry]:
    """Download ``(remote, local)`` pairs concurrently into existing or new folders,
    hashing each file as it is written; return what was measured.

    With ``entries`` (the manifest's, named by ``labels`` in errors) each file is checked
    in the same pass: one larger than its size stops at once, and a wrong size or sha256
    raises before the caller installs anything. Sizes let small files run many at a
    time while large ones share the memory budget. With ``block_size`` (the manifest's),
    a partial local file left by a killed download is kept up to its last block that
    matches the entry's block hashes, and only the rest is downloaded.

    Raises
    ------
    IntegrityError
        If a file does not match its entry.
    """
    if not pairs:
        return []
    tuning = tuning or Tuning(concurrency=concurrency)
    for folder in {os.path.dirname(lp) for _, lp in pairs}:
        os.makedirs(folder, exist_ok=True)
    expected = list(entries) if entries is not None else [None] * len(pairs)
    names = list(labels) if labels is not None else [remote for remote, _ in pairs]
    jobs = [
        Job(src, dst, entry.size if entry else None, label, entry, block_size=block_size)
        for (src, dst), entry, label in zip(pairs, expected, names, strict=True)
    ]
    return _transfer(fs, "get", jobs, callback, tuning, retry)


def copy_objects(
    fs: AbstractFileSystem,
    pairs: Sequence[tuple[str, str]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry: RetryPolicy | None = None,
) -> None:
    """Copy ``(remote, remote)`` pairs inside the store, server-side where the backend
    can (S3 ``CopyObject``, GCS rewrite, Azure copy): no byte goes through this machine.

    Raises
    ------
    NotImplementedError
        If the backend cannot copy (the caller uploads instead).
    """
    if not pairs:
        return
    _ensure_folders(fs, [remote for _, remote in pairs])
    jobs = [Job(src, dst) for src, dst in pairs]
    tuning = Tuning(concurrency=concurrency)
    policy = retry or RetryPolicy.never()
    if _is_async(fs):
        from fsspec.asyn import sync
        from fsspec.callbacks import DEFAULT_CALLBACK

        async def run(job: Job, child: Callback) -> None:
            await policy.acall(lambda: fs._cp_file(job.src, job.dst), what=f"copy {job.src}")

        sync(fs.loop, _run_bounded, jobs, [0] * len(jobs), run, DEFAULT_CALLBACK, tuning)
        return

    def one(job: Job) -> None:
        policy.call(lambda: fs.cp_file(job.src, job.dst), what=f"copy {job.src}")

    if len(jobs) == 1 or concurrency <= 1:
        for job in jobs:
            one(job)
        return
    with ThreadPoolExecutor(max_workers=min(concurrency, len(jobs))) as pool:
        for _ in pool.map(one, jobs):
            pass


def unchanged_files(files: Mapping[str, FileEntry], previous: Mapping[str, FileEntry] | None) -> set[str]:
    """Paths whose size and sha256 are identical in ``previous`` (pure).

    Only entries with a hash count: a modelkit-made manifest has none, so nothing in it
    can be proven unchanged.
    """
    if not previous:
        return set()
    same = set()
    for path, entry in files.items():
        old = previous.get(path)
        if (
            old is not None
            and entry.sha256 is not None
            and (old.size, old.sha256) == (entry.size, entry.sha256)
        ):
            same.add(path)
    return same
