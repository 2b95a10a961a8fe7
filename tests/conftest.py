"""Shared fixtures: a clean environment for every test, and one fresh store per test on
every backend of ``BACKENDS`` (the store contract suite is parametrized by ``store``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # before any gcsfs import

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.settings import get_settings

#: every backend the store contract suite runs on
BACKENDS = ["memory", "local"]


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No MODELKIT_* variable leaks in, and the user dirs point into a temp folder."""
    for key in list(os.environ):
        if key.startswith(("MODELKIT_", "AWS_", "AZURE_STORAGE_")) or key in (
            "S3_ENDPOINT",
            "STORAGE_EMULATOR_HOST",
            "FSSPEC_S3_ENDPOINT_URL",
        ):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _memory_url() -> str:
    return f"memory://t{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """(URL, storage options) of a fresh, empty store root on ``backend``."""
    if backend == "memory":
        return _memory_url(), {}
    if backend == "local":
        return (tmp_path / "store").as_uri(), {}
    factory = request.getfixturevalue(f"{backend}_store_factory")
    url, options = factory()
    return url, options


@pytest.fixture
def store(store_url: tuple[str, dict[str, object]]) -> AssetStore:
    url, options = store_url
    return AssetStore(url, options)


@pytest.fixture
def manager(store: AssetStore, tmp_path: Path) -> AssetsManager:
    return AssetsManager(store, tmp_path / "assets")


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    return path


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "tokenizer"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "vocab.txt").write_text("a\nb\nc\n")
    (root / "config.json").write_text('{"lower": true}')
    (root / "sub" / "merges.txt").write_bytes(os.urandom(10000))
    (root / "sub" / "deeper" / "empty.bin").write_bytes(b"")
    return root
