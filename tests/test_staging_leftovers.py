"""What killed fetches leave in ``.cache/staging``: counted by ``cache list``, reclaimed by
``cache prune``, and never taken from a fetch that is still running.

The fetcher is a real separate process (tests/helpers_worker.py) frozen mid-download by its
progress callback, so it holds the asset's cache lock with part of the version staged, then
SIGKILLed, on every backend several processes can share (local disk, S3, GCS, Azure).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from helpers_holder import HOLD_FILELOCK, holding
from helpers_worker import digests, kill_when, start
from typer.testing import CliRunner, Result

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.cache import AssetCache
from modelkit_assets.cli.app import app
from modelkit_assets.maintenance.inventory import scan_leftovers
from modelkit_assets.maintenance.prune import PrunePolicy, prune, reclaim_leftovers
from modelkit_assets.versioning import MajorMinor

Store = tuple[str, dict[str, object]]
NAME = "crash/fetched"
FILES, SIZE = 12, 100_000


@pytest.fixture(
    params=[
        "local",
        pytest.param("s3", marks=pytest.mark.cloud),
        pytest.param("gcs", marks=pytest.mark.cloud),
        pytest.param("azure", marks=pytest.mark.cloud),
    ]
)
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides conftest's: memory:// cannot be shared between processes."""
    return str(request.param)


def _staged_bytes(assets: Path) -> int:
    """Bytes under .cache/staging, measured independently of the library."""
    staging = assets / ".cache" / "staging"
    return sum(
        os.lstat(os.path.join(folder, f)).st_size for folder, _, files in os.walk(staging) for f in files
    )


def _settled_bytes(assets: Path, timeout_s: float = 60.0) -> int:
    """The staged bytes once they stop growing: a frozen fetcher's other download threads
    finish their files (and then block too) after the first one froze."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while (now := _staged_bytes(assets)) != last:
        assert time.monotonic() < deadline, "the staging area never stopped growing"
        last = now
        time.sleep(0.3)
    return now


def _cli(assets: Path, *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env={"MODELKIT_ASSETS_DIR": str(assets)})


def _wait(path: Path, proc: subprocess.Popen[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the fetcher never froze"
        time.sleep(0.01)


def test_a_killed_fetch_is_counted_and_reclaimed_a_running_one_is_kept(
    store_url: Store, tmp_path: Path
) -> None:
    url, options = store_url
    store = AssetStore(url, options)
    source = tmp_path / "src"
    for i in range(FILES):
        (source / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (source / f"d{i % 3}" / f"f{i}.bin").write_bytes(os.urandom(SIZE))
    store.new(source, NAME)
    assets = tmp_path / "assets"
    ready = tmp_path / "ready"
    proc = start(
        {
            "url": url,
            "options": options,
            "action": "fetch",
            "spec": f"{NAME}:0.0",
            "assets_dir": str(assets),
            "block_after": 3,
            "ready": str(ready),
        }
    )
    try:
        _wait(ready, proc)
        staged = _settled_bytes(assets)
        # running (frozen with the lock held): counted, but prune keeps it
        (live,) = scan_leftovers(assets)
        assert (live.kind, live.key, live.version) == ("staging", "crash__fetched", "0.0")
        assert live.size == staged >= 3 * SIZE
        result = prune(assets, PrunePolicy(keep_newest=0), MajorMinor())
        assert result.leftovers_removed == []
        assert [(x.path, why) for x, why in result.leftovers_kept] == [
            (live.path, f"a fetch of {NAME} is running (cache lock held)")
        ]
        assert live.path.is_dir() and _staged_bytes(assets) >= 3 * SIZE
    finally:
        kill_when(proc, ready, lambda: True)  # SIGKILL: the fetch dies mid-download

    staged = _staged_bytes(assets)
    assert staged >= 3 * SIZE
    listing = json.loads(_cli(assets, "cache", "list", "--json").stdout)
    assert listing["count"] == 0 and listing["total_size"] == 0
    assert [x["kind"] for x in listing["leftovers"]] == ["staging"]
    assert listing["leftover_size"] == staged
    assert json.loads(_cli(assets, "cache", "list", NAME, "--json").stdout)["leftover_size"] == staged
    assert json.loads(_cli(assets, "cache", "list", "other", "--json").stdout)["leftovers"] == []
    text = _cli(assets, "cache", "list")
    assert "1 unfinished download(s) or removal(s) in .cache/staging" in text.stdout
    assert "cache prune" in text.stdout

    dry = _cli(assets, "cache", "prune", "--keep-newest", "1", "--dry-run")
    assert dry.exit_code == 0 and f"Would remove leftover {NAME}:0.0 (a download)" in dry.stdout
    assert _staged_bytes(assets) == staged
    pruned = _cli(assets, "cache", "prune", "--keep-newest", "1")
    assert pruned.exit_code == 0, pruned.stderr
    assert f"Removed leftover {NAME}:0.0 (a download)" in pruned.stdout
    assert "and 1 leftover(s) of unfinished fetches" in pruned.stdout
    assert _staged_bytes(assets) == 0 and scan_leftovers(assets) == []
    assert json.loads(_cli(assets, "cache", "list", "--json").stdout)["leftover_size"] == 0

    fetched = AssetsManager(store, assets).fetch(f"{NAME}:0.0")  # and the next fetch completes
    assert digests(fetched) == digests(source)


def test_leftover_owners_are_found_by_their_cache_lock(tmp_path: Path) -> None:
    """``a/b`` and ``a__b`` share a staging prefix: a folder is kept while either lock is
    held; a version a killed prune moved aside, or a folder of an asset without a lock
    file (so without a running fetch), is reclaimed."""
    assets = tmp_path / "assets"
    cache = AssetCache(assets)
    for name in ("a/b", "a__b"):
        with cache.lock(name, 1):  # creates both lock files
            pass
    staging = cache.layout.staging_root()
    shared = staging / f"a__b@1.0-{uuid.uuid4().hex}"
    orphan = staging / f"gone@0.0-{uuid.uuid4().hex}"
    trash = staging / f"pruned-{uuid.uuid4().hex}"
    for folder in (shared, orphan, trash):
        (folder / "sub").mkdir(parents=True)
        (folder / "sub" / "part").write_bytes(b"x" * 1000)
    (staging / "not-a-leftover").mkdir()
    with holding(HOLD_FILELOCK, str(cache.layout.lock("a/b"))):
        assert {x.path for x in scan_leftovers(assets)} == {shared, orphan, trash}
        assert sum(x.size for x in scan_leftovers(assets)) == 3000
        removed, kept = reclaim_leftovers(assets)
        assert {x.path for x in removed} == {orphan, trash}
        assert [(x.path, why) for x, why in kept] == [(shared, "a fetch of a/b is running (cache lock held)")]
        assert shared.is_dir() and not orphan.exists() and not trash.exists()
    removed, kept = reclaim_leftovers(assets)
    assert [x.path for x in removed] == [shared] and kept == []
    assert sorted(p.name for p in staging.iterdir()) == ["not-a-leftover"]
