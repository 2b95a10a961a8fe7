"""A fleet warming one model: the 4 worker processes of a ``dask.distributed`` LocalCluster,
sharing one assets dir (as the pods of a machine share a volume), fetch the same fresh
version at the same moment, and only one of them downloads it; the others wait on the
asset's cache lock and are served its result.

The overlap is proven, not hoped for: each worker opens its store, then waits at a file
barrier until all 4 are there, and reports when its fetch started and ended; the test
checks that the starts lie within ``START_WINDOW_S`` and that the downloader was still at
work when the last worker started. A 48 MiB file keeps the downloader busy, and its
progress callback holds it ``HOLD_S`` more (longer than the start window), so a loaded
machine that spreads the starts cannot make the race vanish.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from distributed import Client, LocalCluster
from fsspec.callbacks import Callback
from helpers_worker import START_WINDOW_S, digests

from modelkit_assets import AssetsManager, AssetStore

pytestmark = pytest.mark.slow

WORKERS = 4
BARRIER_TIMEOUT_S = 60.0
#: how long the downloader pauses at its first progress report, holding the asset's lock
HOLD_S = 2 * START_WINDOW_S
EXAMPLE = Path(__file__).parent.parent / "examples" / "fleet.py"


class Hold(Callback):  # type: ignore[misc]
    """Pauses ``HOLD_S`` at the first progress report: only a downloader reports progress
    (a worker served from the cache never does), and it holds the asset's lock meanwhile."""

    def __init__(self) -> None:
        super().__init__()
        self.held = False

    def call(self, *args: Any, **kwargs: Any) -> None:
        if not self.held:
            self.held = True
            time.sleep(HOLD_S)


def fetch_together(url: str, assets_dir: str, spec: str, ready_dir: str) -> dict[str, Any]:
    """On a worker: get ready, wait until every worker is, then fetch ``spec`` and report."""
    manager = AssetsManager(url, assets_dir, timeout=120)
    store = manager.store
    assert store is not None
    store.fs  # noqa: B018 - opens the filesystem before the barrier, so that only the fetch races
    Path(ready_dir, str(os.getpid())).touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(os.listdir(ready_dir)) < WORKERS:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(os.listdir(ready_dir))} of {WORKERS} workers reached the barrier")
        time.sleep(0.002)
    started = time.time()
    result = manager.fetch_info(spec, callback=Hold())
    finished = time.time()
    return {
        "pid": os.getpid(),
        "path": str(result.path),
        "from_cache": result.from_cache,
        # what this worker sees the moment its fetch returns
        "digests": digests(result.path),
        "started": started,
        "finished": finished,
    }


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "model"
    root.mkdir(parents=True)
    (root / "config.json").write_text('{"layers": 2}')
    (root / "vocab.txt").write_text("\n".join(f"token{i}" for i in range(1000)))
    (root / "weights.bin").write_bytes(os.urandom(48 * 2**20))
    return root


def test_a_fleet_on_one_machine_downloads_a_version_once(model: Path, tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    version = AssetStore(url).new(model, "fleet/model")
    assets, ready = tmp_path / "assets", tmp_path / "ready"
    ready.mkdir()
    with (
        LocalCluster(
            n_workers=WORKERS,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            local_directory=str(tmp_path / "dask"),
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(WORKERS, timeout=60)
        spec = f"fleet/model:{version}"
        futures = [
            client.submit(fetch_together, url, str(assets), spec, str(ready), workers=[w], pure=False)
            for w in client.scheduler_info()["workers"]
        ]
        outcomes: list[dict[str, Any]] = client.gather(futures)

    assert len({o["pid"] for o in outcomes}) == WORKERS  # one process each
    assert {o["path"] for o in outcomes} == {str(assets / "fleet" / "model" / version)}
    expected = digests(model)
    assert all(o["digests"] == expected for o in outcomes)
    downloaders = [o for o in outcomes if not o["from_cache"]]
    assert len(downloaders) == 1, outcomes

    starts = [o["started"] for o in outcomes]
    spread = max(starts) - min(starts)
    assert spread < START_WINDOW_S, f"the workers did not start together ({spread:.3f} s apart)"
    # the downloader was still at work when the last worker started: the others were not
    # served by a finished install, they waited for it
    downloader = downloaders[0]
    assert downloader["finished"] > max(starts), outcomes
    # and each of the others returned only once the downloader's hold was over: it waited
    # for the install instead of reading a version still being written
    assert all(o["finished"] > downloader["started"] + HOLD_S for o in outcomes), outcomes


def test_the_fleet_example_downloads_once(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "MODELKIT_ASSETS_STORE": (tmp_path / "store").as_uri(),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLE)], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    lines = result.stdout.splitlines()
    assert lines[-1] == "1 of 4 workers downloaded examples/fleet-model:0.0", result.stdout
    outcomes = sorted(line for line in lines if line.startswith("worker "))
    assert [line.split(": ")[1] for line in outcomes].count("downloaded") == 1, result.stdout
    assert len(outcomes) == 4 and all(
        line.endswith(("downloaded", "served from the cache")) for line in outcomes
    )
    installed = tmp_path / "assets" / "examples" / "fleet-model" / "0.0"
    assert sorted(p.name for p in installed.iterdir() if p.name != ".SUCCESS") == [
        "config.json",
        "vocab.txt",
        "weights.bin",
    ]
