"""The cache under hostile local conditions: an assets dir mounted read-only still serves
the versions it holds, and a cache lock never blocks forever (a killed holder's lock is
released by the kernel; a live holder makes others fail after MODELKIT_ASSETS_TIMEOUT_S).

Tests run as root, and root writes through any chmod. So the read-only case uses a real
read-only bind mount inside a private mount namespace (``unshare -m``, gone with the
process); where mounting is not allowed it falls back to proving that serving the cache
writes nothing at all (the whole assets dir is snapshotted before and after).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers_holder import holding
from helpers_snapshot import tree
from helpers_worker import digests

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import CacheLockTimeoutError
from modelkit_assets.settings import get_settings

SERVE = textwrap.dedent(
    """
    import json, sys
    from modelkit_assets import AssetsManager, AssetStore
    from modelkit_assets.errors import AssetsError
    store, assets, specs = sys.argv[1], sys.argv[2], sys.argv[3:]
    manager = AssetsManager(AssetStore(store), assets)
    out = {}
    for spec in specs:
        try:
            out[spec] = str(manager.fetch(spec))
        except (AssetsError, OSError) as err:
            out[spec] = f"{type(err).__name__}: {err}"
    print(json.dumps(out))
    """
)


def _can_mount_read_only() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp"],
        capture_output=True,
    )
    return probe.returncode == 0


def _serve(store: str, assets: Path, specs: list[str], *, read_only: bool) -> dict[str, str]:
    argv = [sys.executable, "-c", SERVE, store, str(assets), *specs]
    if read_only:
        mount = f"mount --bind {assets} {assets} && mount -o remount,ro,bind {assets}"
        argv = ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_read_only_assets_dir_serves_what_it_holds(tmp_path: Path, sample_dir: Path) -> None:
    sample_file = tmp_path / "weights.bin"
    sample_file.write_bytes(os.urandom(5000))
    store = AssetStore((tmp_path / "store").as_uri())
    store.new(sample_dir, "ro/folder")
    store.new(sample_file, "ro/file")
    store.update(sample_file, "ro/file")  # 0.1: never fetched below
    assets = tmp_path / "assets"
    manager = AssetsManager(store, assets)
    folder, single = manager.fetch("ro/folder:0.0"), manager.fetch("ro/file:0.0")
    before = tree(assets)

    read_only = _can_mount_read_only()
    specs = ["ro/folder:0.0", "ro/folder", "ro/folder:0[vocab.txt]", "ro/file:0.0", "ro/file:0.1"]
    served = _serve(store.url, assets, specs, read_only=read_only)
    assert served["ro/folder:0.0"] == served["ro/folder"] == str(folder)
    assert served["ro/folder:0[vocab.txt]"] == str(folder / "vocab.txt")
    assert served["ro/file:0.0"] == str(single)
    assert digests(folder) == digests(sample_dir) and digests(single) == digests(sample_file)
    assert tree(assets) == before  # nothing written: no lock file, no staging, no manifest
    if read_only:
        # a version the cache lacks cannot be installed there: a clear error, not a crash
        refused = served["ro/file:0.1"]
        assert refused.startswith("CacheNotWritableError: ro/file:0.1 is not in the assets dir"), refused
        assert "read-only" in refused.lower() and "MODELKIT_ASSETS_DIR" in refused, refused


HOLD = textwrap.dedent(
    """
    import sys, time
    from modelkit_assets.cache import AssetCache
    with AssetCache(sys.argv[1]).lock("held/asset", 5):
        print("locked", flush=True)
        time.sleep(600)
    """
)


def test_a_live_lock_holder_makes_others_fail_after_the_configured_timeout(
    tmp_path: Path, sample_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AssetStore((tmp_path / "store").as_uri())
    store.new(sample_file, "held/asset")
    assets = tmp_path / "assets"
    monkeypatch.setenv("MODELKIT_ASSETS_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    with holding(HOLD, str(assets), ready="locked"):
        started = time.monotonic()
        with pytest.raises(CacheLockTimeoutError, match="MODELKIT_ASSETS_TIMEOUT_S") as info:
            AssetsManager(store, assets).fetch("held/asset:0.0")
        assert 0.5 <= time.monotonic() - started < 5
        assert "held/asset" in str(info.value)


def test_a_killed_lock_holder_never_blocks_the_next_fetch(tmp_path: Path, sample_file: Path) -> None:
    store = AssetStore((tmp_path / "store").as_uri())
    store.new(sample_file, "held/asset")
    assets = tmp_path / "assets"
    with holding(HOLD, str(assets), ready="locked") as holder:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    assert (assets / ".cache" / "held" / "asset.lock").exists()  # the file stays; the lock does not
    started = time.monotonic()
    path = AssetsManager(store, assets, timeout=30).fetch("held/asset:0.0")
    assert time.monotonic() - started < 5
    assert path.read_bytes() == sample_file.read_bytes()
