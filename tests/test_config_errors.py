"""Errors that come from how a store is configured (option names and types, JSON, protocol,
bucket) are reported once, on one line naming the variable or option, and never retried;
every command maps a missing bucket or container to ``StoreNotFoundError``."""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
import servers
from typer.testing import CliRunner, Result

from modelkit_assets import AssetStore
from modelkit_assets.cli.app import app
from modelkit_assets.errors import ConfigurationError, StoreNotFoundError

CLOUDS = ["s3", "gcs", "azure"]


@pytest.fixture
def retries(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The retry log records of the test (retry.py logs each retry at DEBUG)."""
    caplog.set_level(logging.DEBUG, logger="modelkit_assets.retry")
    return caplog.records


def _cli(*args: str, env: dict[str, str]) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def _one_line_error(result: Result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _secrets(options: dict[str, object]) -> list[str]:
    return [str(v) for k, v in options.items() if k in ("secret", "connection_string")]


def test_unknown_storage_option_is_refused_once_naming_the_variable(
    store_url: tuple[str, dict[str, object]], tmp_path: Path, retries: list[logging.LogRecord]
) -> None:
    url, options = store_url
    env = {
        "MODELKIT_ASSETS_STORE": url,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps({**options, "endpoint_ur": "http://typo"}),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
        "MODELKIT_ASSETS_RETRIES": "5",
    }
    for args in (["list"], ["fetch", "a:0.0"], ["versions", "a"]):
        line = _one_line_error(_cli(*args, env=env))
        assert "'endpoint_ur'" in line and "MODELKIT_ASSETS_STORAGE_OPTIONS" in line, line
        assert "retry" not in line.lower() and "http://typo" not in line, line
        for secret in _secrets(options):
            assert secret not in line
    assert [r for r in retries if r.getMessage().startswith("Retrying")] == []
    assert not (tmp_path / "assets").exists()


def test_unknown_storage_option_in_the_api(store_url: tuple[str, dict[str, object]]) -> None:
    url, options = store_url
    store = AssetStore(url, {**options, "bogus": 1})
    with pytest.raises(ConfigurationError, match=r"'bogus'.*the storage options"):
        store.versions("a")


@pytest.mark.cloud
@pytest.mark.parametrize(
    ("backend", "bad"),
    [
        ("s3", {"config_kwargs": 5}),
        ("s3", {"client_kwargs": 5}),
        ("s3", {"s3_additional_kwargs": "x"}),
        ("gcs", {"session_kwargs": 5}),
        ("azure", {"connection_string": 5}),
    ],
)
def test_an_option_of_the_wrong_type_is_a_configuration_error(
    store_url: tuple[str, dict[str, object]], bad: dict[str, object], retries: list[logging.LogRecord]
) -> None:
    url, options = store_url
    store = AssetStore(url, {**options, **bad}, options_origin="MODELKIT_ASSETS_STORAGE_OPTIONS")
    with pytest.raises(ConfigurationError, match="MODELKIT_ASSETS_STORAGE_OPTIONS") as info:
        store.versions("a")
    assert "\n" not in str(info.value)
    assert [r for r in retries if r.getMessage().startswith("Retrying")] == []


def test_malformed_json_unknown_protocol_and_missing_backend(tmp_path: Path) -> None:
    base = {"MODELKIT_ASSETS_DIR": str(tmp_path / "assets")}
    malformed = {**base, "MODELKIT_ASSETS_STORE": "memory://x", "MODELKIT_ASSETS_STORAGE_OPTIONS": "{"}
    line = _one_line_error(_cli("list", env=malformed))
    assert "MODELKIT_ASSETS_STORAGE_OPTIONS" in line and "JSON" in line
    line = _one_line_error(_cli("list", env={**base, "MODELKIT_ASSETS_STORE": "nosuchproto://b/p"}))
    assert "Unknown store protocol 'nosuchproto'" in line
    # a known protocol whose backend package is not installed (dropboxdrivefs)
    line = _one_line_error(_cli("list", env={**base, "MODELKIT_ASSETS_STORE": "dropbox://b/p"}))
    assert "backend for dropbox:// stores is not installed" in line, line


# -- copy --to: options and missing bucket ------------------------------------------------------
@pytest.fixture
def published(store: AssetStore, sample_file: Path) -> AssetStore:
    store.new(sample_file, "m/clf")
    return store


@pytest.mark.parametrize("backend", ["memory", "local", pytest.param("s3", marks=pytest.mark.cloud)])
def test_copy_to_storage_options_with_an_unknown_key(
    published: AssetStore, store_url: tuple[str, dict[str, object]], tmp_path: Path
) -> None:
    url, options = store_url
    env = {"MODELKIT_ASSETS_STORE": url, "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options)}
    target = url.rsplit("/", 1)[0] + "/other" if "://" in url else url + "-other"
    line = _one_line_error(
        _cli("copy", "m/clf", "--to", target, "--to-storage-options", '{"bogus": 1}', env=env)
    )
    assert "'bogus'" in line and "--to-storage-options" in line, line


def _missing(backend: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    server = request.getfixturevalue(f"{backend}_server")
    options = servers.storage_options(backend, server.url)
    return f"{servers.PROTOCOLS[backend]}://missing{uuid.uuid4().hex[:12]}/assets", options


@pytest.mark.cloud
@pytest.mark.parametrize("backend", CLOUDS)
def test_copy_to_a_missing_bucket(
    published: AssetStore,
    store_url: tuple[str, dict[str, object]],
    backend: str,
    request: pytest.FixtureRequest,
    retries: list[logging.LogRecord],
) -> None:
    url, options = store_url
    missing, _ = _missing(backend, request)
    env = {"MODELKIT_ASSETS_STORE": url, "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options)}
    line = _one_line_error(
        _cli("copy", "m/clf", "--to", missing, "--to-storage-options", json.dumps(options), env=env)
    )
    assert "does not exist" in line and missing in line, line
    with pytest.raises(StoreNotFoundError):
        from modelkit_assets.maintenance.copy import copy

        copy(published, AssetStore(missing, options), "m/clf")
    assert [r for r in retries if r.getMessage().startswith("Retrying")] == []


@pytest.mark.cloud
@pytest.mark.parametrize("backend", CLOUDS)
@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--all", "--remote"],
        ["repair", "--all"],
        ["bundle", "m/clf:0.0", "BUNDLE"],
        ["lock", "m/clf", "-o", "LOCK"],
        ["sync", "LOCK"],
        ["copy", "m/clf", "--to", "memory://elsewhere"],
        ["fetch", "m/clf"],
        ["list"],
    ],
)
def test_every_command_says_the_bucket_does_not_exist(
    backend: str, args: list[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    missing, options = _missing(backend, request)
    lock = tmp_path / "assets.lock"
    if "sync" in args:  # a real lockfile, made on another store
        other = AssetStore(f"memory://t{uuid.uuid4().hex[:12]}")
        sample = tmp_path / "clf.bin"
        sample.write_bytes(b"weights")
        other.new(sample, "m/clf")
        made = _cli("lock", "m/clf", "-o", str(lock), env={"MODELKIT_ASSETS_STORE": other.url})
        assert made.exit_code == 0, made.output
    args = [str(lock) if a == "LOCK" else str(tmp_path / "bundle") if a == "BUNDLE" else a for a in args]
    env = {
        "MODELKIT_ASSETS_STORE": missing,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
        "MODELKIT_ASSETS_RETRIES": "1",
    }
    line = _one_line_error(_cli(*args, env=env))
    assert "does not exist" in line and missing in line, line
