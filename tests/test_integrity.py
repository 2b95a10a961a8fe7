"""G4 on every backend: bytes that do not match the manifest never enter the cache. A
flipped byte, a truncated, grown or missing object raises ``IntegrityError`` naming the
file, and the assets dir is left exactly as it was (no version path, no marker, no
staging leftovers)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_snapshot import put_object, tree

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import IntegrityError


def flip_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


def truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def grow(data: bytes) -> bytes:
    return data + b"\x00"


CORRUPTIONS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "flipped byte": (flip_byte, "sha256"),
    "truncated": (truncate, "bytes where the manifest says"),
    "grown": (grow, "bytes where the manifest says"),
}


def corrupt(store: AssetStore, key: str, how: Callable[[bytes], bytes]) -> None:
    put_object(store, key, how(store.fs.cat_file(key)))
    store.fs.invalidate_cache()


def assert_not_installed(manager: AssetsManager, name: str, version: str) -> None:
    asset_dir = manager.assets_dir.joinpath(*name.split("/"))
    assert not (asset_dir / version).exists()
    assert not (asset_dir / f".{version}.SUCCESS").exists()
    staging = manager.assets_dir / ".cache" / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    assert manager.cache.cached_path(name, version) is None


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_file_in_a_folder_asset(
    store: AssetStore, manager: AssetsManager, sample_dir: Path, case: str
) -> None:
    how, message = CORRUPTIONS[case]
    store.new(sample_dir, "nlp/tok")
    corrupt(store, store.layout.data("nlp/tok", "0.0", "sub/merges.txt"), how)
    with pytest.raises(IntegrityError, match=message) as info:
        manager.fetch("nlp/tok:0.0")
    assert "nlp/tok:0.0[sub/merges.txt]" in str(info.value)
    assert "cache left unchanged" in str(info.value)
    assert_not_installed(manager, "nlp/tok", "0.0")


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_file_asset(store: AssetStore, manager: AssetsManager, sample_file: Path, case: str) -> None:
    how, message = CORRUPTIONS[case]
    store.new(sample_file, "clf")
    corrupt(store, store.layout.data("clf", "0.0"), how)
    with pytest.raises(IntegrityError, match=message) as info:
        manager.fetch("clf")
    assert "clf:0.0" in str(info.value)
    assert_not_installed(manager, "clf", "0.0")


def test_missing_object(store: AssetStore, manager: AssetsManager, sample_dir: Path) -> None:
    store.new(sample_dir, "nlp/tok")
    store.fs.rm(store.layout.data("nlp/tok", "0.0", "vocab.txt"))
    store.fs.invalidate_cache()
    with pytest.raises(IntegrityError, match=r"nlp/tok:0\.0") as info:
        manager.fetch("nlp/tok:0.0")
    assert "missing" in str(info.value)
    assert_not_installed(manager, "nlp/tok", "0.0")


def test_a_corrupt_forced_refetch_keeps_the_good_copy(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    store.new(sample_dir, "nlp/tok")
    path = manager.fetch("nlp/tok:0.0")
    before = tree(manager.assets_dir)
    corrupt(store, store.layout.data("nlp/tok", "0.0", "vocab.txt"), flip_byte)
    with pytest.raises(IntegrityError, match=r"nlp/tok:0\.0\[vocab\.txt\]"):
        manager.fetch("nlp/tok:0.0", force=True)
    assert tree(manager.assets_dir) == before
    assert manager.fetch("nlp/tok:0.0") == path
    assert (path / "vocab.txt").read_bytes() == (sample_dir / "vocab.txt").read_bytes()


def test_the_cache_is_byte_for_byte_unchanged_by_a_failed_fetch(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    """Other cached assets, markers and manifests are untouched too."""
    store.new(sample_file, "other")
    manager.fetch("other")
    store.new(sample_dir, "nlp/tok")
    corrupt(store, store.layout.data("nlp/tok", "0.0", "config.json"), truncate)
    before = tree(manager.assets_dir)
    with pytest.raises(IntegrityError):
        manager.fetch("nlp/tok")
    after = tree(manager.assets_dir)
    # the fetch may leave its (empty) lock and staging folders, nothing else
    added = {k: v for k, v in after.items() if k not in before}
    assert all(v == "/" or k.endswith(".lock") for k, v in added.items()), added
    assert {k: v for k, v in after.items() if k in before} == before


def test_after_a_republish_the_fetch_succeeds(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    """The error is not sticky: repairing the store (a new version) fetches cleanly."""
    store.new(sample_dir, "nlp/tok")
    corrupt(store, store.layout.data("nlp/tok", "0.0", "vocab.txt"), flip_byte)
    with pytest.raises(IntegrityError):
        manager.fetch("nlp/tok")
    (sample_dir / "vocab.txt").write_text("fixed\n")
    assert store.update(sample_dir, "nlp/tok") == "0.1"
    path = manager.fetch("nlp/tok")
    assert (path / "vocab.txt").read_text() == "fixed\n"
    assert (path / "sub" / "merges.txt").read_bytes() == (sample_dir / "sub" / "merges.txt").read_bytes()
