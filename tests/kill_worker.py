"""A fork server for the kill matrices (tests/test_kill_matrix.py).

Importing the library and the cloud SDKs takes about a second per process; 20 kill points
on four backends would spend minutes on imports alone. This process imports everything
once, then forks one child per publisher or fetcher. Nothing network-related (no fsspec
event loop, no filesystem instance) exists before a fork, so children start clean.

Commands arrive as JSON lines on stdin; each answer is one JSON line on stdout::

    {"run": [job, ...]}   fork one child per job (all at once), wait, answer their outcomes

A job is ``{"action": "update"|"new"|"fetch", ...,"kill_at": k, "after": bool}``. With
``kill_at``, the child counts the store and cache operations it makes (exclusive creates,
index writes, listings, reads, each file transfer, the cache's manifest copy and install)
and sends itself SIGKILL just before (or just after) the k-th. Without it, the child
answers how many operations it made (``ticks``), which spreads the kill points.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")

import adlfs  # noqa: F401 - imported before forking, on purpose
import gcsfs  # noqa: F401
import s3fs  # noqa: F401
from helpers_worker import digests

import modelkit_assets.remote as remote_module
from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.backends import backend_for
from modelkit_assets.cache import AssetCache
from modelkit_assets.errors import AssetsError

_FS_METHODS = ("put_file", "get_file", "cp_file", "cat_file", "pipe_file", "rm", "rm_file", "ls", "info")


class Ticker:
    """Counts operations; kills this process at the chosen one."""

    def __init__(self, kill_at: int | None, after: bool) -> None:
        self.count = 0
        self.ops: list[str] = []
        self.kill_at, self.after = kill_at, after
        self.lock = threading.Lock()

    def tick(self, name: str) -> bool:
        """Count one operation; die now if it is the one (before it); ``True`` to die after it."""
        with self.lock:
            self.count += 1
            self.ops.append(name)
            hit = self.count == self.kill_at
        if hit and not self.after:
            os.kill(os.getpid(), signal.SIGKILL)
        return hit

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        if getattr(func, "_ticked", False):
            return func
        if _is_coroutine(func):

            @functools.wraps(func)
            async def awrapper(*args: Any, **kwargs: Any) -> Any:
                hit = self.tick(func.__name__)
                try:
                    return await func(*args, **kwargs)
                finally:  # after the operation, whether it succeeded or raised
                    if hit:
                        os.kill(os.getpid(), signal.SIGKILL)

            awrapper._ticked = True  # type: ignore[attr-defined]
            return awrapper

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            hit = self.tick(func.__name__)
            try:
                return func(*args, **kwargs)
            finally:
                if hit:
                    os.kill(os.getpid(), signal.SIGKILL)

        wrapper._ticked = True  # type: ignore[attr-defined]
        return wrapper


def _is_coroutine(func: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def _instrument(ticker: Ticker, store: AssetStore) -> None:
    # every store request of the protocol goes through remote.py (claims, commit, index)
    for name in ("create_exclusive", "write_replace", "list_dir"):
        setattr(remote_module, name, ticker.wrap(getattr(remote_module, name)))
    # files are moved by the store's backend (one point per file it opens or streams), not
    # by fsspec's put_file/get_file
    backend = type(backend_for(store.fs))
    for name in ("open_read", "open_write", "write_small", "aget", "aput"):
        setattr(backend, name, ticker.wrap(getattr(backend, name)))
    for name in ("install", "save_manifest"):
        setattr(AssetCache, name, ticker.wrap(getattr(AssetCache, name)))
    cls = type(store.fs)
    is_async = bool(getattr(store.fs, "async_impl", False))
    for name in _FS_METHODS:
        if not is_async and name in ("ls", "info"):
            continue  # local listings stat every entry: counts that grow with the store
        attr = f"_{name}" if is_async else name
        if attr in cls.__dict__ or hasattr(cls, attr):
            setattr(cls, attr, ticker.wrap(getattr(cls, attr)))


def _announce_lock(go: str) -> None:
    """Write ``go`` once this process holds an asset's cache lock."""
    original = AssetCache.lock

    @contextlib.contextmanager
    def lock(self: AssetCache, name: str, timeout_s: float) -> Iterator[None]:
        with original(self, name, timeout_s):
            Path(go).write_text("locked")
            yield

    AssetCache.lock = lock  # type: ignore[method-assign]


def _child(job: dict[str, Any], out: str) -> None:
    store = AssetStore(job["url"], job.get("options") or {})
    ticker = Ticker(job.get("kill_at"), bool(job.get("after")))
    _instrument(ticker, store)
    if job.get("go"):
        _announce_lock(job["go"])
    action = job["action"]
    result: dict[str, Any]
    try:
        if action == "new":
            result = {"version": store.new(job["path"], job["name"])}
        elif action == "update":
            result = {"version": store.update(job["path"], job["name"])}
        elif action == "fetch":
            manager = AssetsManager(store, job["assets_dir"], timeout=60)
            fetched = manager.fetch_info(job["spec"])
            result = {"path": str(fetched.path), "version": fetched.version, "digests": digests(fetched.path)}
        else:
            raise ValueError(action)
    except AssetsError as err:
        result = {"error": type(err).__name__, "message": str(err)}
    result["ticks"] = ticker.count
    result["ops"] = ticker.ops
    Path(out).write_text(json.dumps(result))


def _run(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    children: list[tuple[int, str]] = []
    folder = tempfile.mkdtemp(prefix="kill-worker-")
    reaped: dict[int, int] = {}
    for i, job in enumerate(jobs):
        out = os.path.join(folder, f"{i}.json")
        if job.get("after_go"):
            _wait_go(job["after_go"], children[0][0], reaped)
        pid = os.fork()
        if pid == 0:  # the child: never returns into the command loop
            code = 0
            try:
                _child(job, out)
            except BaseException as err:
                Path(out).write_text(json.dumps({"crash": f"{type(err).__name__}: {err}"}))
                code = 1
            finally:
                sys.stdout.flush()
                os._exit(code)
        children.append((pid, out))
    outcomes = []
    for pid, out in children:
        status = reaped[pid] if pid in reaped else os.waitpid(pid, 0)[1]
        outcome: dict[str, Any] = {"signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None}
        if os.path.exists(out):
            outcome.update(json.loads(Path(out).read_text()))
        outcomes.append(outcome)
    return outcomes


def _wait_go(go: str, victim: int, reaped: dict[int, int]) -> None:
    """Until ``go`` exists or the ``victim`` process has exited (then reaped into ``reaped``)."""
    deadline = time.monotonic() + 60
    while not os.path.exists(go) and victim not in reaped and time.monotonic() < deadline:
        pid, status = os.waitpid(victim, os.WNOHANG)
        if pid:
            reaped[pid] = status
        time.sleep(0.002)


def main() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        print(json.dumps(_run(command["run"])), flush=True)


if __name__ == "__main__":
    main()
