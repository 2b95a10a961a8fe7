"""G3 and G4 under SIGKILL, on every backend several processes can share (local disk,
S3, GCS, Azure; memory:// lives in one process).

- A publisher is killed at 20 points spread over its whole run (claim, data upload,
  commit, index update; before or after each store operation): afterwards no partial
  version resolves, lists or fetches, the same command run again succeeds, and the
  index it left stale is repaired.
- A fetcher is killed at 20 points while 3 other processes fetch the same version: none
  of them ever returns a path to partial data, and the next fetch completes.

The processes are forked from tests/kill_worker.py, which imports everything once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_worker import digests

from modelkit_assets import AssetsManager, AssetStore

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
POINTS = 20
Store = tuple[str, dict[str, object]]


class Forker:
    """Drives one tests/kill_worker.py process."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "kill_worker.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE,
            env={**os.environ, "PYTHONPATH": str(HERE)},
        )

    def run(self, *jobs: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"run": list(jobs)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the fork server died ({self.proc.poll()})"
        outcomes: list[dict[str, Any]] = json.loads(line)
        for outcome in outcomes:
            assert "crash" not in outcome, outcome
        return outcomes

    def close(self) -> None:
        """End the server (its stdin closed) and close both pipes."""
        try:
            self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()


@pytest.fixture(scope="module")
def forker() -> Iterator[Forker]:
    server = Forker()
    yield server
    server.close()


@pytest.fixture
def backend(shared_backend: str) -> str:
    """Overrides conftest's: memory:// cannot be shared between processes."""
    return shared_backend


def spread(ticks: int, points: int = POINTS) -> list[tuple[int, bool]]:
    """``points`` kill points spread evenly over ``ticks`` operations, before and after each."""
    slots = [(k, after) for k in range(1, ticks + 1) for after in (False, True)]
    if len(slots) <= points:
        return slots
    step = (len(slots) - 1) / (points - 1)
    return [slots[round(i * step)] for i in range(points)]


def folder(root: Path, tag: str, files: int = 6) -> Path:
    for i in range(files):
        (root / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 2}" / f"f{i}.bin").write_bytes(os.urandom(1500 + 500 * i) + tag.encode())
    return root


def check_store(store: AssetStore, name: str, sources: dict[str, dict[str, str]], assets: Path) -> list[str]:
    """Every version that lists also resolves, has a valid meta and fetches verified bytes
    that are one of the published sources."""
    versions = store.versions(name)
    assert dict(store.list())[name] == versions
    assert store.resolve(name) == versions[0]
    manager = AssetsManager(store, assets)
    known = list(sources.values())
    for version in versions:
        store.meta(name, version)
        assert digests(manager.fetch(f"{name}:{version}")) in known, version
    return versions


def test_a_killed_publisher_leaves_nothing_partial_and_the_rerun_succeeds(
    store_url: Store, forker: Forker, tmp_path: Path
) -> None:
    url, options = store_url
    store = AssetStore(url, options)
    base = folder(tmp_path / "base", "base")
    store.new(base, "crash/model")
    sources = {"base": digests(base)}
    source = folder(tmp_path / "next", "next")
    sources["next"] = digests(source)
    job = {"url": url, "options": options, "action": "update", "name": "crash/model", "path": str(source)}

    forker.run(job)  # 0.1: the probe below then copies unchanged files as every rerun will
    (probe,) = forker.run(job)
    assert probe["signal"] is None and probe["version"] == "0.2", probe
    points = spread(probe["ticks"])
    # the commit is the last exclusive create: dying right after it leaves a stale index
    commit = max(i for i, op in enumerate(probe["ops"], 1) if op == "create_exclusive")
    if (commit, True) not in points:
        points[-2] = (commit, True)
    assert len(points) == POINTS

    stale_index_seen = 0
    for at, after in points:
        before = store.versions("crash/model")
        (killed,) = forker.run({**job, "kill_at": at, "after": after})
        assert killed["signal"] == signal.SIGKILL, (at, after, killed)
        versions = check_store(store, "crash/model", sources, tmp_path / "assets")
        # a kill commits at most the one version it was publishing
        assert set(before) <= set(versions) and len(versions) - len(before) <= 1, (at, after)
        if store.read_index("crash/model") != versions:
            stale_index_seen += 1
        (rerun,) = forker.run(job)
        assert "version" in rerun, (at, after, rerun)
        versions = check_store(store, "crash/model", sources, tmp_path / "assets")
        assert versions[0] == rerun["version"]
        assert store.read_index("crash/model") == versions  # a stale index is repaired
    assert stale_index_seen >= 1  # some kill fell between the commit and the index update


def test_a_killed_fetcher_never_exposes_partial_data(
    store_url: Store, forker: Forker, tmp_path: Path
) -> None:
    url, options = store_url
    store = AssetStore(url, options)
    source = folder(tmp_path / "src", "fetch", files=8)
    store.new(source, "crash/fetched")
    expected = digests(source)
    job = {"url": url, "options": options, "action": "fetch", "spec": "crash/fetched:0.0"}

    (probe,) = forker.run({**job, "assets_dir": str(tmp_path / "probe")})
    assert probe["digests"] == expected
    points = spread(probe["ticks"])
    # every file transfer is a kill point: 8 files give far more operations than points
    assert len(points) == POINTS, probe["ops"]
    killed = 0
    for i, (at, after) in enumerate(points):
        assets = str(tmp_path / f"assets{i}")
        # the others start once the victim holds the cache lock (or is dead): they wait on it
        go = str(tmp_path / f"go{i}")
        victim, *others = forker.run(
            {**job, "assets_dir": assets, "kill_at": at, "after": after, "go": go},
            *[{**job, "assets_dir": assets, "after_go": go} for _ in range(3)],
        )
        if victim["signal"] == signal.SIGKILL:
            killed += 1
        else:  # another fetcher installed the version before the victim reached its point
            assert victim["digests"] == expected, victim
        for other in others:
            assert other["signal"] is None and other.get("digests") == expected, (at, after, other)
        (after_all,) = forker.run({**job, "assets_dir": assets})
        assert after_all["digests"] == expected
        staging = Path(assets) / ".cache" / "staging"
        assert not staging.exists() or all(
            not (p / "0.0").is_dir() or p.name.startswith("crash__fetched@0.0-") for p in staging.iterdir()
        )
    assert killed >= POINTS - 2, killed  # a point past the victim's last operation is rare
