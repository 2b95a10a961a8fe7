"""Offline mode and unreachable stores.

- ``MODELKIT_ASSETS_OFFLINE=1`` resolves partial specs from the cache alone and never
  opens a connection, even to a store that holds newer versions;
- when the store does not answer, a partial spec falls back to the newest cached version
  with a warning, and a pinned cached version always works (without a connection);
- an ``s3://`` store whose endpoint is a closed loopback port maps to
  ``StoreUnreachableError``.

"Never touches the network" is checked by recording every ``socket.connect`` attempt.
"""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest
import servers

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import AssetNotFoundError, StoreUnreachableError, VersionNotFoundError
from modelkit_assets.settings import get_settings

ASSET = "models/clf"


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every address a socket of this process tries to connect to during the test."""
    attempts: list[Any] = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def connect(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        attempts.append(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return attempts


@pytest.fixture
def unreachable_url() -> tuple[str, dict[str, Any]]:
    """An S3 store on a loopback port nothing listens on (one attempt, no retries)."""
    options = {
        "endpoint_url": f"http://127.0.0.1:{servers.closed_port()}",
        "key": "offline-test-key",
        "secret": "offline-test-secret",
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 2},
    }
    return "s3://bucket/assets", options


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    """A cache holding models/clf 0.0 and 0.1 of a store whose latest is 1.0."""
    store = AssetStore(tmp_path / "store")
    for content in (b"v0.0", b"v0.1", b"v1.0"):
        source = tmp_path / "model.bin"
        source.write_bytes(content)
        if content == b"v0.0":
            store.new(source, ASSET)
        else:
            store.update(source, ASSET, bump_major=content == b"v1.0")
    assert store.versions(ASSET) == ["1.0", "0.1", "0.0"]
    manager = AssetsManager(store, tmp_path / "assets")
    manager.fetch(f"{ASSET}:0.0")
    manager.fetch(f"{ASSET}:0.1")
    return tmp_path / "assets"


def test_offline_resolves_from_the_cache_even_when_the_store_has_newer(
    assets_dir: Path, tmp_path: Path, connections: list[Any]
) -> None:
    manager = AssetsManager(AssetStore(tmp_path / "store"), assets_dir, offline=True)
    assert manager.resolve(ASSET) == "0.1"  # the store's latest is 1.0
    assert manager.fetch(ASSET).read_bytes() == b"v0.1"
    assert manager.fetch(f"{ASSET}:0").read_bytes() == b"v0.1"
    assert manager.fetch(f"{ASSET}:0.0").read_bytes() == b"v0.0"
    info = manager.fetch_info(f"{ASSET}:0")
    assert (info.version, info.from_cache) == ("0.1", True)
    with pytest.raises(VersionNotFoundError, match=r"models/clf:1\.0 is not in the assets dir.*offline"):
        manager.fetch(f"{ASSET}:1.0")
    with pytest.raises(AssetNotFoundError, match="offline"):
        manager.fetch(f"{ASSET}:1")
    with pytest.raises(AssetNotFoundError):
        manager.fetch("models/other")
    assert connections == []


def test_offline_from_the_environment_never_connects(
    assets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    unreachable_url: tuple[str, dict[str, Any]],
    connections: list[Any],
) -> None:
    import json

    url, options = unreachable_url
    monkeypatch.setenv("MODELKIT_ASSETS_OFFLINE", "1")
    monkeypatch.setenv("MODELKIT_ASSETS_STORE", url)
    monkeypatch.setenv("MODELKIT_ASSETS_STORAGE_OPTIONS", json.dumps(options))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets_dir))
    get_settings.cache_clear()
    assert get_settings().offline
    manager = AssetsManager()
    started = time.monotonic()
    assert manager.fetch(ASSET).read_bytes() == b"v0.1"
    assert manager.fetch(f"{ASSET}:0.0").read_bytes() == b"v0.0"
    # the protocol follows the same settings
    with fsspec.open(f"modelkit-assets://{ASSET}:0") as handle:
        assert handle.read() == b"v0.1"
    fs = fsspec.filesystem("modelkit-assets")
    assert fs.ls("models", detail=False) == [ASSET]
    assert fs.info(ASSET)["version"] == "0.1"
    assert fs.find("") == [ASSET]
    assert time.monotonic() - started < 2
    assert connections == []


def test_unreachable_store_is_a_store_unreachable_error(
    unreachable_url: tuple[str, dict[str, Any]], connections: list[Any]
) -> None:
    url, options = unreachable_url
    store = AssetStore(url, options)
    with pytest.raises(StoreUnreachableError, match=r"s3://bucket/assets could not be reached") as info:
        store.versions(ASSET)
    assert isinstance(info.value, ConnectionError)
    assert "offline-test-secret" not in str(info.value) and "offline-test-key" not in str(info.value)
    assert connections  # the guard sees connection attempts: its silence elsewhere means something


def test_unreachable_store_falls_back_to_the_newest_cached_version(
    assets_dir: Path,
    unreachable_url: tuple[str, dict[str, Any]],
    connections: list[Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, options = unreachable_url
    manager = AssetsManager(url, assets_dir, storage_options=options)
    with caplog.at_level(logging.WARNING, logger="modelkit_assets"):
        assert manager.fetch(ASSET).read_bytes() == b"v0.1"
    (record,) = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "s3://bucket/assets" in record.getMessage() and "models/clf:0.1" in record.getMessage()
    assert "offline-test-secret" not in caplog.text
    assert manager.fetch(f"{ASSET}:0").read_bytes() == b"v0.1"
    assert connections  # partial specs did try the store first
    # nothing cached to fall back on: the store error stands
    with pytest.raises(StoreUnreachableError):
        manager.fetch(f"{ASSET}:1")
    with pytest.raises(StoreUnreachableError):
        manager.fetch(f"{ASSET}:1.0")


def test_pinned_cached_version_needs_no_store(
    assets_dir: Path, unreachable_url: tuple[str, dict[str, Any]], connections: list[Any]
) -> None:
    url, options = unreachable_url
    manager = AssetsManager(url, assets_dir, storage_options=options)
    assert manager.fetch(f"{ASSET}:0.0").read_bytes() == b"v0.0"
    assert manager.fetch_info(f"{ASSET}:0.1").from_cache
    fs = fsspec.filesystem("modelkit-assets", manager=manager)
    assert fs.cat(f"{ASSET}:0.0") == b"v0.0"
    assert fs.info(f"{ASSET}:0.1")["size"] == 4
    assert connections == []


def test_protocol_lists_the_cache_when_the_store_is_unreachable(
    assets_dir: Path, unreachable_url: tuple[str, dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    url, options = unreachable_url
    fs = fsspec.filesystem("modelkit-assets", store=url, store_options=options, assets_dir=str(assets_dir))
    with caplog.at_level(logging.WARNING, logger="modelkit_assets"):
        assert fs.ls("", detail=False) == ["models"]
        assert fs.cat(f"modelkit-assets://{ASSET}:0") == b"v0.1"
    assert "unreachable" in caplog.text
