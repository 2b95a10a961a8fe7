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

import json
import logging
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
import servers
from typer.testing import CliRunner, Result

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import (
    AssetNotFoundError,
    OfflineError,
    StoreUnreachableError,
    VersionNotFoundError,
)
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


# -- offline on a live cloud store: every command and entry point answers from the cache ----------
# The store is an emulator that WOULD answer: any connection attempt is a bug, not a timeout.
LIVE_CLOUDS = [pytest.param(b, marks=pytest.mark.cloud) for b in ("s3", "gcs", "azure")]
FOLDER = "nlp/tokenizer"


@dataclass
class LiveOffline:
    url: str
    options: dict[str, Any]
    assets_dir: Path
    tmp: Path


def _forget_connections() -> None:
    """Drop the cached fsspec instances (and their keep-alive connection pools) that set-up
    used, so that a later request would have to connect again, and be seen doing it."""
    for cls in _cloud_classes():
        cls.clear_instance_cache()


def _cloud_classes() -> list[Any]:
    import adlfs
    import gcsfs
    import s3fs

    return [s3fs.S3FileSystem, gcsfs.GCSFileSystem, adlfs.AzureBlobFileSystem]


@pytest.fixture(params=LIVE_CLOUDS)
def live_offline(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_dir: Path
) -> LiveOffline:
    """A live cloud store holding models/clf 0.0, 0.1, 1.0 and nlp/tokenizer 0.0, 0.1; the
    cache holds models/clf 0.0, 0.1 and nlp/tokenizer 0.0; then offline mode is switched on
    through the environment (store, options and assets dir configured as usual)."""
    url, options = request.getfixturevalue(f"{request.param}_store_factory")()
    store = AssetStore(url, options)
    source = tmp_path / "model.bin"
    for content in (b"v0.0", b"v0.1", b"v1.0"):
        source.write_bytes(content)
        if content == b"v0.0":
            store.new(source, ASSET)
        else:
            store.update(source, ASSET, bump_major=content == b"v1.0")
    store.new(sample_dir, FOLDER)
    store.update(sample_dir, FOLDER)
    manager = AssetsManager(store, tmp_path / "assets")
    for spec in (f"{ASSET}:0.0", f"{ASSET}:0.1", f"{FOLDER}:0.0"):
        manager.fetch(spec)
    _forget_connections()
    monkeypatch.setenv("MODELKIT_ASSETS_OFFLINE", "1")
    monkeypatch.setenv("MODELKIT_ASSETS_STORE", url)
    monkeypatch.setenv("MODELKIT_ASSETS_STORAGE_OPTIONS", json.dumps(options))
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "assets"))
    get_settings.cache_clear()
    return LiveOffline(url, options, tmp_path / "assets", tmp_path)


def _cli(*args: str) -> Result:
    from modelkit_assets.cli.app import app

    return CliRunner().invoke(app, list(args))


def test_guard_sees_the_live_store(live_offline: LiveOffline, connections: list[Any]) -> None:
    """Without offline mode the same set-up connects: the zero counts below mean something."""
    assert AssetStore(live_offline.url, live_offline.options, offline=False).versions(ASSET)[0] == "1.0"
    assert connections


def test_offline_read_commands_answer_from_the_cache(
    live_offline: LiveOffline, connections: list[Any]
) -> None:
    listing = _cli("list")
    assert listing.exit_code == 0, listing.stderr
    assert ASSET in listing.stdout and FOLDER in listing.stdout
    assert "0.1" in listing.stdout and "1.0" not in listing.stdout
    assert "offline" in listing.stderr and "cached versions only" in listing.stderr
    data = json.loads(_cli("list", "--json").stdout)
    assert [(a["name"], a["versions"]) for a in data["assets"]] == [
        (ASSET, ["0.1", "0.0"]),
        (FOLDER, ["0.0"]),
    ]
    assert json.loads(_cli("list", "nlp", "--json").stdout)["assets"] == [
        {"name": FOLDER, "versions": ["0.0"], "count": 1}
    ]

    versions = json.loads(_cli("versions", ASSET, "--json").stdout)
    assert [v["version"] for v in versions["versions"]] == ["0.1", "0.0"]
    assert "offline" in _cli("versions", ASSET).stderr

    info = json.loads(_cli("info", ASSET, "--json").stdout)  # latest cached, not the store's 1.0
    assert (info["version"], info["digest"]) == (
        "0.1",
        AssetsManager().cache.read_manifest(ASSET, "0.1").digest(),
    )  # type: ignore[union-attr]
    info = json.loads(_cli("info", f"{FOLDER}[vocab.txt]", "--json").stdout)
    assert info["version"] == "0.0" and "vocab.txt" in json.dumps(info)
    tree = _cli("info", f"{FOLDER}:0.0")
    assert tree.exit_code == 0 and "vocab.txt" in tree.stdout

    fetched = _cli("fetch", ASSET)
    assert fetched.exit_code == 0 and Path(fetched.stdout.strip()).read_bytes() == b"v0.1"
    fetched = _cli("fetch", f"{FOLDER}:0[vocab.txt]", "--json")
    assert json.loads(fetched.stdout)["from_cache"] is True

    for args in (["verify", "--all"], ["verify", f"{ASSET}:0"]):
        checked = _cli(*args)
        assert checked.exit_code == 0, checked.stderr
        assert checked.stdout.rstrip().endswith("OK.")
    cached = json.loads(_cli("cache", "list", "--json").stdout)
    assert len(cached["versions"]) == 3
    pruned = _cli("cache", "prune", "--keep-newest", "1", "--dry-run")
    assert pruned.exit_code == 0 and f"{ASSET}:0.0" in pruned.stdout

    lockfile = live_offline.tmp / "assets.lock"
    locked = _cli("lock", ASSET, f"{FOLDER}:0", "-o", str(lockfile))
    assert locked.exit_code == 0, locked.stderr
    assert [(a["name"], a["version"]) for a in json.loads(lockfile.read_text())["assets"]] == [
        (ASSET, "0.1"),
        (FOLDER, "0.0"),
    ]
    synced = _cli("sync", str(lockfile))
    assert synced.exit_code == 0, synced.stderr
    assert "2 asset(s) match" in synced.stdout and "0 fetched" in synced.stdout
    assert connections == []


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["new", "{src}", "other"], "new"),
        (["update", "{src}", ASSET, "--yes"], "update"),
        (["copy", ASSET, "--to", "memory://elsewhere"], "copy"),
        (["repair", "--all"], "repair"),
        (["bundle", ASSET, "{tmp}/bundle"], "bundle"),
    ],
)
def test_offline_refuses_commands_that_need_the_store(
    live_offline: LiveOffline, connections: list[Any], args: list[str], command: str
) -> None:
    src = live_offline.tmp / "model.bin"
    result = _cli(*[a.format(src=src, tmp=live_offline.tmp) for a in args])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"Error: offline: `modelkit-assets {command}` needs the store; "
        "unset MODELKIT_ASSETS_OFFLINE to run it."
    ]
    assert not (live_offline.tmp / "bundle").exists()
    assert connections == []


def test_offline_messages_name_what_is_missing(live_offline: LiveOffline, connections: list[Any]) -> None:
    """An uncached version: the store IS configured, the version is not cached, offline is on."""
    locked, newer = live_offline.tmp / "ok.lock", live_offline.tmp / "newer.lock"
    assert _cli("lock", ASSET, "-o", str(locked)).exit_code == 0
    newer.write_text(locked.read_text().replace('"0.1"', '"1.0"'))
    for args in (
        ["fetch", f"{ASSET}:1.0"],
        ["fetch", f"{ASSET}:1"],
        ["info", f"{ASSET}:1.0"],
        ["info", f"{FOLDER}:0.1"],
        ["versions", "models/other"],
        ["lock", f"{ASSET}:1", "-o", str(live_offline.tmp / "x.lock")],
        ["verify", "--remote", "--all"],
        ["sync", "--frozen", str(locked)],
        ["sync", str(newer)],
    ):
        result = _cli(*args)
        assert result.exit_code == 1, args
        (line,) = result.stderr.strip().splitlines()[-1:]
        assert "offline" in line and "unset MODELKIT_ASSETS_OFFLINE" in line, (args, line)
        assert "set MODELKIT_ASSETS_STORE" not in line, (args, line)
    assert connections == []


def test_offline_library_entry_points_never_connect(
    live_offline: LiveOffline, connections: list[Any]
) -> None:
    from modelkit_assets import compat
    from modelkit_assets.maintenance.lockfile import lock, sync
    from modelkit_assets.maintenance.verify import select_targets, verify
    from modelkit_assets.offline import CachedCatalog

    manager = AssetsManager()
    assert manager.resolve(ASSET) == "0.1"
    assert manager.fetch(f"{ASSET}:0").read_bytes() == b"v0.1"
    assert manager.fetch_info(f"{FOLDER}[vocab.txt]").path.read_text() == "a\nb\nc\n"
    with pytest.raises(VersionNotFoundError, match=r"not in the assets dir .*unset MODELKIT_ASSETS_OFFLINE"):
        manager.fetch(f"{FOLDER}:0.1")

    # the store itself refuses, before any connection, for reads and writes alike
    store = AssetStore()
    for call in (
        lambda: store.versions(ASSET),
        lambda: list(store.list()),
        lambda: store.meta(ASSET, "0.1"),
        lambda: store.new(live_offline.tmp / "model.bin", "other"),
        lambda: store.update(live_offline.tmp / "model.bin", ASSET),
    ):
        with pytest.raises(OfflineError, match=r"^offline: the store .* unset it to reach the store\.$"):
            call()
    assert "secret" not in repr(store) and str(live_offline.options) not in repr(store)

    catalog = CachedCatalog(manager)
    lockfile = lock(catalog, [ASSET, FOLDER])
    assert [a.version for a in lockfile.assets] == ["0.1", "0.0"]
    assert all(s.from_cache for s in sync(lockfile, manager))
    cached, stored = select_targets([ASSET], cache=manager.cache, versioning=manager.versioning)
    assert verify(manager.cache, cached).ok and cached == [(ASSET, "0.1"), (ASSET, "0.0")] and stored == []

    fs = fsspec.filesystem("modelkit-assets")
    assert fs.ls("", detail=False) == ["models", "nlp"]
    assert sorted(fs.ls(f"{FOLDER}:0", detail=False)) == [
        f"{FOLDER}:0/config.json",
        f"{FOLDER}:0/sub",
        f"{FOLDER}:0/vocab.txt",
    ]
    assert fs.info(f"{FOLDER}:0/vocab.txt")["version"] == "0.0"
    assert f"{FOLDER}:0.0/sub/merges.txt" in fs.find(f"{FOLDER}:0.0")
    assert fs.cat(f"{ASSET}:0.0") == b"v0.0" and not fs.exists(f"{ASSET}:1.0")
    with pytest.raises(FileNotFoundError, match="unset MODELKIT_ASSETS_OFFLINE"):
        fs.info(f"{FOLDER}:0.1")

    with pytest.raises(OfflineError, match=r"forcing the download of models/clf:0\.1 needs the store"):
        manager.fetch(f"{ASSET}:0.1", force=True)
    forced = _cli("fetch", f"{ASSET}:0.1", "--force")
    assert forced.exit_code == 1 and "unset MODELKIT_ASSETS_OFFLINE" in forced.stderr

    legacy = compat.AssetsManager(assets_dir=str(live_offline.assets_dir))
    assert Path(legacy.fetch_asset(f"{ASSET}:0")).read_bytes() == b"v0.1"
    assert connections == []


def test_offline_local_store_is_not_read_but_its_folder_is_known(
    assets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk store is refused offline like any other (offline means the cache alone), yet
    its root is known without opening it: compat checks the assets dir is not that folder."""
    from modelkit_assets import compat

    monkeypatch.setenv("MODELKIT_ASSETS_OFFLINE", "1")
    monkeypatch.setenv("MODELKIT_ASSETS_STORE", (tmp_path / "store").as_uri())
    get_settings.cache_clear()
    store = AssetStore()
    assert store.offline and store.layout.root == str(tmp_path / "store")
    with pytest.raises(OfflineError):
        store.versions(ASSET)  # the store holds 1.0, which offline must not see
    legacy = compat.AssetsManager(assets_dir=str(assets_dir))
    assert Path(legacy.fetch_asset(ASSET)).read_bytes() == b"v0.1"
    assert AssetStore(offline=False).versions(ASSET)[0] == "1.0"


def test_offline_versions_cached_without_a_manifest(
    assets_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version cached by modelkit has no manifest copy: offline ``info`` says so,
    ``versions`` shows the others with a note, ``list`` still lists it."""
    from modelkit_assets.cache import AssetCache
    from modelkit_assets.maintenance.lockfile import lock

    lock(AssetStore(tmp_path / "store"), [f"{ASSET}:0.0"]).write(tmp_path / "assets.lock")
    AssetCache(assets_dir).layout.manifest(ASSET, "0.0").unlink()
    monkeypatch.setenv("MODELKIT_ASSETS_OFFLINE", "1")
    monkeypatch.setenv("MODELKIT_ASSETS_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets_dir))
    info = _cli("info", f"{ASSET}:0.0")
    assert info.exit_code == 1
    assert info.stderr.strip().splitlines()[-1] == (
        f"Error: {ASSET}:0.0 is in the assets dir {assets_dir} without its manifest (fetched by "
        "modelkit or an older release); offline mode is on: unset MODELKIT_ASSETS_OFFLINE to ask the store."
    )
    versions = _cli("versions", ASSET, "--json")
    assert versions.exit_code == 0
    assert [v["version"] for v in json.loads(versions.stdout)["versions"]] == ["0.1"]
    assert f"offline: {ASSET}:0.0 is cached without its manifest: not shown." in versions.stderr
    synced = _cli("sync", str(tmp_path / "assets.lock"))
    assert synced.exit_code == 1
    assert (
        f"{ASSET}:0.0 (no manifest in the cache to check its digest; offline mode is on: unset "
        "MODELKIT_ASSETS_OFFLINE to read it from the store)" in synced.stderr
    )
    listed = json.loads(_cli("list", "--json").stdout)["assets"]
    assert listed == [{"name": ASSET, "versions": ["0.1", "0.0"], "count": 2}]
