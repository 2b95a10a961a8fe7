"""Backend guarantees the store builds on, checked against each real server: exclusive
create (G1) and listings that are never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelkit_assets import AssetStore
from modelkit_assets.backends import create_exclusive, list_dir
from modelkit_assets.errors import VersionExistsError

WRITERS = 16


def _race(count: int, action: object) -> list[BaseException | None]:
    """Run ``action(i)`` in ``count`` threads released together; return each outcome."""
    barrier = threading.Barrier(count)

    def one(i: int) -> BaseException | None:
        barrier.wait()
        try:
            action(i)  # type: ignore[operator]
        except Exception as err:
            return err
        return None

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("round_", range(3))
def test_create_exclusive_has_one_winner(store: AssetStore, round_: int) -> None:
    """16 simultaneous exclusive creates of one key: one wins, the others see it exists,
    and the object holds the winner's bytes."""
    key = store.layout.meta("race", f"{round_}.0")
    bodies = [f"writer {i} ".encode() * 50 for i in range(WRITERS)]
    outcomes = _race(WRITERS, lambda i: create_exclusive(store.fs, key, bodies[i]))
    winners = [i for i, err in enumerate(outcomes) if err is None]
    assert len(winners) == 1, outcomes
    assert all(isinstance(err, FileExistsError) for err in outcomes if err is not None), outcomes
    store.fs.invalidate_cache()
    assert store.fs.cat_file(key) == bodies[winners[0]]


def test_concurrent_commits_of_one_version(store: AssetStore, sample_file: Path) -> None:
    """16 writers commit the same version with their own manifests: exactly one is
    committed, the others get VersionExistsError, the committed meta is the winner's."""
    store.new(sample_file, "a")
    base = store.meta("a", "0.0")
    metas = [type(base)(**{**base.__dict__, "version": "0.1", "publish_id": f"w{i}"}) for i in range(WRITERS)]
    outcomes = _race(WRITERS, lambda i: store._commit(metas[i]))
    winners = [i for i, err in enumerate(outcomes) if err is None]
    assert len(winners) == 1, outcomes
    assert all(isinstance(err, VersionExistsError) for err in outcomes if err is not None), outcomes
    assert store.meta("a", "0.1").publish_id == f"w{winners[0]}"
    assert store.versions("a") == ["0.1", "0.0"]


def test_listing_is_never_stale(store: AssetStore) -> None:
    """An object written behind a filesystem's back (another client) shows up in the next
    listing, even after the folder was listed (and possibly cached) before."""
    folder = store.layout.asset_dir("cache-probe")
    create_exclusive(store.fs, f"{folder}/one.meta", b"1")
    assert [e["name"].rsplit("/", 1)[-1] for e in list_dir(store.fs, folder)] == ["one.meta"]
    fresh = {**store.fs.storage_options, "skip_instance_cache": True}
    other = store.fs if store.url.startswith("memory") else type(store.fs)(**fresh)
    create_exclusive(other, f"{folder}/two.meta", b"2")
    names = sorted(e["name"].rsplit("/", 1)[-1] for e in list_dir(store.fs, folder))
    assert names == ["one.meta", "two.meta"]


@pytest.mark.cloud
@pytest.mark.slow
@pytest.mark.parametrize("cloud", ["s3", "gcs", "azure"])
def test_list_of_500_assets_reads_concurrently(
    request: pytest.FixtureRequest, cloud: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``list`` makes one listing per asset folder, many in flight at once (counted at
    the filesystem, no timing involved)."""
    url, options = request.getfixturevalue(f"{cloud}_store_factory")()
    store = AssetStore(url, options, concurrency=16)
    names = [f"team{i % 5}/asset{i:03d}" for i in range(500)]
    store.fs.pipe({store.layout.meta(name, "0.0"): b"{}" for name in names})
    calls: list[str] = []
    in_flight = 0
    peak = 0
    lock = threading.Lock()
    real_ls = store.fs.ls

    def counting_ls(path: str, *args: object, **kwargs: object) -> object:
        nonlocal in_flight, peak
        with lock:
            calls.append(path)
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return real_ls(path, *args, **kwargs)
        finally:
            with lock:
                in_flight -= 1

    monkeypatch.setattr(store.fs, "ls", counting_ls)
    listed = dict(store.list())
    assert sorted(listed) == sorted(names)
    assert all(versions == ["0.0"] for versions in listed.values())
    assert len(calls) == 1 + 5 + 500  # the root, each team folder, each asset: never more
    assert peak > 4, f"at most {peak} listings in flight: list is not concurrent"


GCS_DEFAULT_CLASS = """
import json, os, sys, time
import gcsfs
from modelkit_assets import AssetStore, AssetsManager
url, options, source, assets = json.loads(sys.argv[1])
registered = gcsfs.GCSFileSystem.__name__  # what gcsfs registers for gs:// by default
started = time.monotonic()
store = AssetStore(url, options)
store.new(source, "g/model")
path = AssetsManager(store, assets).fetch("g/model:0.0")
print(json.dumps({"registered": registered, "used": type(store.fs).__name__,
                  "seconds": time.monotonic() - started, "data": open(path).read()}))
"""


@pytest.mark.cloud
def test_gcs_without_gcsfs_experimental_variable_uses_the_plain_class(
    gcs_store_factory: object, tmp_path: Path
) -> None:
    """With GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT unset (gcsfs then registers its experimental
    class, whose first request is a gRPC bucket-type lookup), gs:// stores open gcsfs's plain
    class, and nothing writes the variable."""
    url, options = gcs_store_factory()  # type: ignore[operator]
    source = tmp_path / "weights.txt"
    source.write_text("w")
    env = {k: v for k, v in os.environ.items() if k != "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"}
    job = json.dumps([url, options, str(source), str(tmp_path / "assets")])
    argv = [sys.executable, "-c", GCS_DEFAULT_CLASS, job]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["registered"] == "ExtendedGcsFileSystem"
    assert report["used"] == "GCSFileSystem" and report["data"] == "w"
    assert report["seconds"] < 30
