"""The store contract: what every backend must do (runs on each of conftest.BACKENDS)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import (
    AssetExistsError,
    AssetNotFoundError,
    VersionExistsError,
    VersionNotFoundError,
)
from modelkit_assets.integrity import sha256_file


def test_new_file_asset_then_fetch(store: AssetStore, manager: AssetsManager, sample_file: Path) -> None:
    assert store.new(sample_file, "models/clf") == "0.0"
    assert store.versions("models/clf") == ["0.0"]
    path = manager.fetch("models/clf:0.0")
    assert path.read_bytes() == sample_file.read_bytes()
    assert path == manager.assets_dir / "models" / "clf" / "0.0"
    assert (manager.assets_dir / "models" / "clf" / ".0.0.SUCCESS").exists()


def test_directory_asset_round_trip(store: AssetStore, manager: AssetsManager, sample_dir: Path) -> None:
    store.new(sample_dir, "nlp/tokenizer")
    meta = store.meta("nlp/tokenizer", "0.0")
    assert meta.is_directory
    assert meta.contents == ["config.json", "sub/deeper/empty.bin", "sub/merges.txt", "vocab.txt"]
    assert meta.files["sub/merges.txt"].sha256 == sha256_file(sample_dir / "sub" / "merges.txt")
    assert meta.size == sum(f.stat().st_size for f in sample_dir.rglob("*") if f.is_file())
    path = manager.fetch("nlp/tokenizer")
    for rel in meta.contents:
        assert (path / rel).read_bytes() == (sample_dir / rel).read_bytes()
    assert (path / ".SUCCESS").exists()
    assert manager.fetch("nlp/tokenizer:0[sub/merges.txt]") == path / "sub" / "merges.txt"


def test_versioning_sequence(store: AssetStore, sample_file: Path) -> None:
    assert store.new(sample_file, "a") == "0.0"
    assert store.update(sample_file, "a") == "0.1"
    assert store.update(sample_file, "a", bump_major=True) == "1.0"
    assert store.update(sample_file, "a") == "1.1"
    assert store.update(sample_file, "a:0") == "0.2"
    assert store.versions("a") == ["1.1", "1.0", "0.2", "0.1", "0.0"]
    assert store.resolve("a:0") == "0.2"
    assert store.resolve("a") == "1.1"
    assert store.read_index("a") == ["1.1", "1.0", "0.2", "0.1", "0.0"]


def test_new_on_existing_asset_fails(store: AssetStore, sample_file: Path) -> None:
    store.new(sample_file, "a")
    with pytest.raises(AssetExistsError, match="update"):
        store.new(sample_file, "a")


def test_update_of_missing_asset_fails(store: AssetStore, sample_file: Path) -> None:
    with pytest.raises(AssetNotFoundError, match="new"):
        store.update(sample_file, "missing")


def test_dry_run_writes_nothing(store: AssetStore, sample_file: Path) -> None:
    assert store.new(sample_file, "a", dry_run=True) == "0.0"
    assert list(store.list()) == []
    store.new(sample_file, "a")
    assert store.update(sample_file, "a", dry_run=True) == "0.1"
    assert store.versions("a") == ["0.0"]


def test_list_nested_names(store: AssetStore, sample_file: Path, sample_dir: Path) -> None:
    store.new(sample_file, "a")
    store.new(sample_dir, "nlp/tokenizer")
    store.update(sample_dir, "nlp/tokenizer")
    store.new(sample_file, "nlp/tokenizer/extra")
    assert list(store.list()) == [
        ("a", ["0.0"]),
        ("nlp/tokenizer", ["0.1", "0.0"]),
        ("nlp/tokenizer/extra", ["0.0"]),
    ]
    assert [n for n, _ in store.list("nlp")] == ["nlp/tokenizer", "nlp/tokenizer/extra"]


def test_missing_version_and_asset(store: AssetStore, manager: AssetsManager, sample_file: Path) -> None:
    store.new(sample_file, "a")
    with pytest.raises(VersionNotFoundError):
        manager.fetch("a:3.0")
    with pytest.raises(VersionNotFoundError):
        manager.fetch("a:3")
    with pytest.raises(AssetNotFoundError):
        manager.fetch("nope")


def test_commit_is_exclusive(store: AssetStore, sample_file: Path) -> None:
    """G1: a second commit of the same version is refused and changes nothing."""
    store.new(sample_file, "a")
    meta = store.meta("a", "0.0")
    before = store.fs.cat_file(store.layout.meta("a", "0.0"))
    forged = type(meta)(**{**meta.__dict__, "publish_id": "someone-else"})
    with pytest.raises(VersionExistsError):
        store._commit(forged)
    assert store.fs.cat_file(store.layout.meta("a", "0.0")) == before


def test_lost_commit_answer_counts_as_success(store: AssetStore, sample_file: Path) -> None:
    store.new(sample_file, "a")
    store._commit(store.meta("a", "0.0"))  # same publish id: our own retried create
    assert store.versions("a") == ["0.0"]


def test_stale_index_is_rebuilt(store: AssetStore, sample_file: Path) -> None:
    store.new(sample_file, "a")
    store.update(sample_file, "a")
    store.fs.pipe_file(store.layout.versions_index("a"), json.dumps({"versions": ["0.0"]}).encode())
    assert store.versions("a") == ["0.1", "0.0"]  # truth is the committed metas
    assert dict(store.list())["a"] == ["0.1", "0.0"]
    store.update(sample_file, "a")
    assert store.read_index("a") == ["0.2", "0.1", "0.0"]
    store.fs.rm(store.layout.versions_index("a"))
    assert store.refresh_index("a") == ["0.2", "0.1", "0.0"]
    assert store.read_index("a") == ["0.2", "0.1", "0.0"]


def test_fetch_force_redownloads(store: AssetStore, manager: AssetsManager, sample_file: Path) -> None:
    store.new(sample_file, "a")
    path = manager.fetch("a:0.0")
    path.write_bytes(b"tampered")
    assert manager.fetch("a:0.0").read_bytes() == b"tampered"  # cache hit: no check
    assert manager.fetch("a:0.0", force=True).read_bytes() == sample_file.read_bytes()
    info = manager.fetch_info("a:0.0")
    assert info.from_cache and info.version == "0.0"


def test_force_download_setting_applies_to_fetch(
    store: AssetStore, sample_file: Path, tmp_path: Path
) -> None:
    from modelkit_assets.settings import Settings

    store.new(sample_file, "a")
    settings = Settings.from_env({"MODELKIT_STORAGE_FORCE_DOWNLOAD": "1"})
    manager = AssetsManager(store, tmp_path / "forced", settings=settings)
    manager.fetch("a:0.0").write_bytes(b"tampered")
    # MODELKIT_STORAGE_FORCE_DOWNLOAD: fetch downloads again, as fetch_info does
    assert manager.fetch("a:0.0").read_bytes() == sample_file.read_bytes()
    assert manager.fetch_info("a:0.0").from_cache is False


def test_simple_date_versioning(store_url: tuple[str, dict[str, object]], sample_file: Path) -> None:
    url, options = store_url
    store = AssetStore(url, options, versioning="simple_date")
    first = store.new(sample_file, "d")
    second = store.update(sample_file, "d")
    third = store.update(sample_file, "d")
    assert len({first, second, third}) == 3
    assert store.versions("d") == sorted([first, second, third], reverse=True)
