"""modelkit's environment works unchanged: ``MODELKIT_STORAGE_PROVIDER`` with
``MODELKIT_STORAGE_BUCKET``/``_PREFIX`` and each SDK's own endpoint and credential
variables, end to end against the real servers (one test per provider)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import fsspec
import pytest
import servers

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.settings import get_settings

pytestmark = pytest.mark.cloud


def _round_trip(sample_file: Path, tmp_path: Path, expected_url: str) -> AssetStore:
    """Publish and fetch through the environment only; return the store it resolved to."""
    get_settings.cache_clear()
    store = AssetStore.from_env()
    assert store.url == expected_url
    assert store.new(sample_file, "models/clf") == "0.0"
    assert store.update(sample_file, "models/clf") == "0.1"
    manager = AssetsManager(assets_dir=tmp_path / "assets")
    assert manager.fetch("models/clf").read_bytes() == sample_file.read_bytes()
    return store


def _check_modelkit_layout(fs: fsspec.AbstractFileSystem, root: str) -> None:
    """Where modelkit 0.1.3 looks: ``{bucket}/{prefix}/{name}.versions`` and the data."""
    fs.invalidate_cache()
    assert json.loads(fs.cat_file(f"{root}/models/clf.versions")) == {"versions": ["0.1", "0.0"]}
    assert fs.isfile(f"{root}/models/clf/0.0") and fs.isfile(f"{root}/models/clf/0.1.meta")


def _bucket(backend: str, server: servers.Server) -> tuple[fsspec.AbstractFileSystem, str]:
    fs = fsspec.filesystem(servers.PROTOCOLS[backend], **servers.storage_options(backend, server.url))
    bucket = f"mk{uuid.uuid4().hex[:16]}"
    fs.mkdir(bucket)
    return fs, bucket


@pytest.mark.parametrize("endpoint_variable", ["S3_ENDPOINT", "AWS_ENDPOINT_URL"])
def test_provider_s3(
    s3_server: servers.Server,
    monkeypatch: pytest.MonkeyPatch,
    sample_file: Path,
    tmp_path: Path,
    endpoint_variable: str,
) -> None:
    fs, bucket = _bucket("s3", s3_server)
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "s3")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", bucket)
    monkeypatch.setenv("MODELKIT_STORAGE_PREFIX", "team/assets")
    monkeypatch.setenv(endpoint_variable, s3_server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", servers.S3_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", servers.S3_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    _round_trip(sample_file, tmp_path, f"s3://{bucket}/team/assets")
    _check_modelkit_layout(fs, f"{bucket}/team/assets")


def test_provider_gcs(
    gcs_server: servers.Server, monkeypatch: pytest.MonkeyPatch, sample_file: Path, tmp_path: Path
) -> None:
    fs, bucket = _bucket("gcs", gcs_server)
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "gcs")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", bucket)
    # modelkit's default prefix when MODELKIT_STORAGE_PREFIX is unset
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_server.url)
    _round_trip(sample_file, tmp_path, f"gs://{bucket}/modelkit-assets")
    _check_modelkit_layout(fs, f"{bucket}/modelkit-assets")


def test_provider_az(
    azure_server: servers.Server, monkeypatch: pytest.MonkeyPatch, sample_file: Path, tmp_path: Path
) -> None:
    fs, container = _bucket("azure", azure_server)
    connection_string = servers.azurite_connection_string(azure_server.url)
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "az")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", container)
    monkeypatch.setenv("MODELKIT_STORAGE_PREFIX", "p")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
    store = _round_trip(sample_file, tmp_path, f"az://{container}/p")
    # the connection string went into the storage options: never shown
    assert servers.AZURITE_KEY not in repr(store) and servers.AZURITE_KEY not in repr(get_settings())
    _check_modelkit_layout(fs, f"{container}/p")


def test_provider_local(monkeypatch: pytest.MonkeyPatch, sample_file: Path, tmp_path: Path) -> None:
    bucket = tmp_path / "bucket"
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    monkeypatch.setenv("MODELKIT_STORAGE_PREFIX", "prefix")
    _round_trip(sample_file, tmp_path, (bucket / "prefix").as_uri())
    _check_modelkit_layout(fsspec.filesystem("file"), str(bucket / "prefix"))
