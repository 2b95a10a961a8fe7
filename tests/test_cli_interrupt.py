"""Ctrl-C in the middle of a cloud transfer: the installed command, a real S3, GCS or Azure
client, and a SIGINT while data is in flight. The user sees the one-line note and exit 130,
nothing else: the backend's sessions and event loop are closed on the way out (an aiohttp
session left open prints "Unclosed connection" / "Task was destroyed" lines at exit)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from conftest import CLOUD_BACKENDS
from faultproxy import FaultProxy

from modelkit_assets import AssetStore

CLI = Path(sys.executable).with_name("modelkit-assets")
FILES = 12


@pytest.fixture(params=[pytest.param(b, marks=pytest.mark.cloud) for b in CLOUD_BACKENDS])
def slow_cloud(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, dict[str, object], FaultProxy]]:
    """(backend, store URL, options through a proxy that holds every data download 1 s, proxy)."""
    backend = str(request.param)
    server = request.getfixturevalue(f"{backend}_server")
    url, _ = request.getfixturevalue(f"{backend}_store_factory")()
    with FaultProxy(server.url, flavour=backend, seed=1, delay_s=1.0) as proxy:
        yield backend, url, servers.storage_options(backend, proxy.url), proxy


def test_ctrl_c_mid_download_prints_the_note_only_and_exits_130(
    slow_cloud: tuple[str, str, dict[str, object], FaultProxy], tmp_path: Path
) -> None:
    _, url, options, proxy = slow_cloud
    source = tmp_path / "src"
    source.mkdir()
    for i in range(FILES):
        (source / f"shard-{i}.bin").write_bytes(os.urandom(20_000))
    AssetStore(url, options).new(source, "team/model")

    def data_get(method: str, path: str) -> bool:
        return method == "GET" and "team/model/0.0/" in urllib.parse.unquote(path).split("?", 1)[0]

    proxy.configure(rate=1.0, kinds=("delay",), only=data_get)
    assets = tmp_path / "assets"
    env = {
        **os.environ,
        "MODELKIT_ASSETS_STORE": url,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options),
        "MODELKIT_ASSETS_DIR": str(assets),
    }
    child = subprocess.Popen(
        [str(CLI), "fetch", "team/model:0.0"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not proxy.stats.faults["delay"]:  # a download is held in the proxy: mid-transfer
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the download never started"
            time.sleep(0.02)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 130, err
    assert err.splitlines()[-1:] == [
        "Interrupted: team/model:0.0 was not installed (the cache is unchanged); rerun the command."
    ], err
    assert [line for line in err.splitlines() if not line.startswith("Downloading ")] == err.splitlines()[-1:]
    assert out == ""
    assert not (assets / "team" / "model" / "0.0").exists()
