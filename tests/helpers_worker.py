"""A worker process for the concurrency and crash tests, and the helpers that drive it.

Run as ``python tests/helpers_worker.py '<json job>'``: it publishes or fetches through the
public API exactly as a separate user's process would, and prints one JSON line with the
outcome. A start barrier makes every process of a test start its work at the same moment
(imports take about a second each and would otherwise spread the starts): each worker
imports, opens its store, says it is ready (a file in ``ready_dir``), and waits for ``go``;
``run_all`` writes ``go`` only once every worker is ready, then checks from the start times
the workers report that they really started together and overlapped.
A worker given ``block_after`` freezes inside its progress callback once that many files
are transferred: the test then sees data in flight and kills it with SIGKILL at a known
point of the protocol.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

WORKER = Path(__file__).resolve()
START_TIMEOUT_S = 60.0
#: the widest spread of the released workers' start times: a worker wakes within
#: milliseconds of ``go``; one that ran after another would start seconds later
START_WINDOW_S = 0.5
JOB_VARIABLE = "MODELKIT_ASSETS_TEST_JOB"


def _wait_for(path: str, timeout_s: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.005)


def digests(path: str | os.PathLike[str]) -> dict[str, str]:
    """sha256 of every file under ``path`` (or of ``path`` itself), markers excluded."""
    import hashlib

    root = Path(path)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {
        ("" if p == root else p.relative_to(root).as_posix()): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in files
        if p.name != ".SUCCESS"
    }


def _blocking_callback(after: int, ready: str) -> Any:
    """An fsspec callback that freezes the process once ``after`` files are done."""
    from fsspec.callbacks import Callback

    class Freeze(Callback):  # type: ignore[misc]
        def call(self, *args: Any, **kwargs: Any) -> None:
            if self.value >= after:
                Path(ready).write_text(str(os.getpid()))
                while True:  # until SIGKILL
                    time.sleep(60)

    return Freeze()


def _run(job: dict[str, Any]) -> dict[str, Any]:
    from modelkit_assets import AssetStore

    store = AssetStore(job["url"], job.get("options") or {}, versioning=job.get("versioning"))
    store.fs  # noqa: B018 - opens the filesystem (imports the backend) before the start
    callback = None
    if job.get("block_after") is not None:
        callback = _blocking_callback(int(job["block_after"]), job["ready"])
    if job.get("go"):
        Path(job["ready_dir"], str(os.getpid())).write_text("ready")
        _wait_for(job["go"])
    started = time.time()
    outcome = _act(job, store, callback)
    if job.get("go"):
        outcome["started"], outcome["finished"] = started, time.time()
    return outcome


def _act(job: dict[str, Any], store: Any, callback: Any) -> dict[str, Any]:
    from modelkit_assets import AssetsManager
    from modelkit_assets.errors import AssetsError

    action = job["action"]
    try:
        if action == "new":
            return {"version": store.new(job["path"], job["name"], callback=callback)}
        if action == "update":
            versions = [
                store.update(job["path"], job["name"], callback=callback) for _ in range(job.get("count", 1))
            ]
            return {"versions": versions}
        if action == "fetch":
            manager = AssetsManager(store, job["assets_dir"], timeout=120)
            result = manager.fetch_info(job["spec"], force=job.get("force"), callback=callback)
            # hash what this process sees the moment fetch returns: a partial file shows here
            return {
                "path": str(result.path),
                "version": result.version,
                "from_cache": result.from_cache,
                "digests": digests(result.path),
            }
    except AssetsError as err:
        return {"error": type(err).__name__, "message": str(err)}
    raise ValueError(f"unknown action {action!r}")


def start(job: Mapping[str, Any]) -> subprocess.Popen[str]:
    """Start one worker on ``job``; the job (with the store's options, which may hold
    credentials) travels in the environment, never in argv that any user can read."""
    return subprocess.Popen(
        [sys.executable, str(WORKER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, JOB_VARIABLE: json.dumps(job)},
    )


def result(proc: subprocess.Popen[str], timeout_s: float = 180.0) -> dict[str, Any]:
    """The JSON outcome of a finished worker (fails the test with its stderr otherwise)."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"worker {proc.pid} did not finish in {timeout_s} s") from None
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{err}"
    return dict(json.loads(out.strip().splitlines()[-1]))


def run_all(jobs: Iterable[Mapping[str, Any]], go: Path) -> list[dict[str, Any]]:
    """Start every job, release them together through ``go`` once all are ready, collect
    their outcomes, and fail unless they all started within ``START_WINDOW_S`` and each was
    still at work when the last one started (proof that the race really happened)."""
    ready = go.parent / f"{go.name}.ready"
    ready.mkdir()
    procs = [start({**job, "go": str(go), "ready_dir": str(ready)}) for job in jobs]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(list(ready.iterdir())) < len(procs):
            for proc in procs:
                if proc.poll() is not None:
                    raise AssertionError(f"worker exited before the start: {proc.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError("the workers never all became ready")
            time.sleep(0.01)
        go.write_text("go")
        outcomes = [result(p) for p in procs]
        starts = [outcome.pop("started") for outcome in outcomes]
        ends = [outcome.pop("finished") for outcome in outcomes]
        spread = max(starts) - min(starts)
        assert spread < START_WINDOW_S, f"the workers did not start together ({spread:.2f} s apart)"
        # every worker was still at work when the last one started: they overlapped
        assert max(starts) < min(ends), f"a worker finished before the last one started: {starts}, {ends}"
        return outcomes
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def kill_when(
    proc: subprocess.Popen[str], ready: Path, condition: Callable[[], bool], timeout_s: float = 60.0
) -> None:
    """SIGKILL ``proc`` once it froze at its ``ready`` point and ``condition()`` holds."""
    deadline = time.monotonic() + timeout_s
    try:
        while not (ready.exists() and condition()):
            if proc.poll() is not None:
                raise AssertionError(f"worker exited early ({proc.returncode}): {proc.communicate()}")
            if time.monotonic() > deadline:
                raise AssertionError("worker never reached its freeze point")
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)  # a no-op if it already exited
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL


if __name__ == "__main__":
    print(json.dumps(_run(json.loads(os.environ.pop(JOB_VARIABLE)))))
