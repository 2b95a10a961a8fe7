"""G4 on every backend: bytes that do not match the manifest never enter the cache. A
flipped byte, a truncated, grown or missing object raises ``IntegrityError`` naming the
file, and the assets dir is left exactly as it was (no version path, no marker, no
staging leftovers)."""

from __future__ import annotations

import os
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
    "grown": (grow, "larger than the .* bytes its manifest says"),
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


#: far larger than its 4-byte manifest entry, and than any chunk a backend reads at once
OVERSIZED = 64 * 2**20
#: what a bounded download may have written before it stops: the largest chunk a backend
#: writes before reporting it (s3fs 64 KiB, gcsfs 128 KiB, local 1 MiB)
ONE_CHUNK = 2**20


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_an_object_larger_than_its_manifest_stops_at_once(
    store: AssetStore, manager: AssetsManager, tmp_path: Path, kind: str
) -> None:
    """4 bytes in the manifest over a 64 MiB object: the download stops at the first
    chunk (never 64 MiB on the network or the disk), names the file, installs nothing."""
    source = tmp_path / "small"
    source.mkdir()
    (source / "a.txt").write_bytes(b"abcd")
    if kind == "folder":
        (source / "b.txt").write_bytes(b"ok")
    store.new(source if kind == "folder" else source / "a.txt", "big")
    key = store.layout.data("big", "0.0", "a.txt") if kind == "folder" else store.layout.data("big", "0.0")
    label = "big:0.0[a.txt]" if kind == "folder" else "big:0.0"
    put_object(store, key, os.urandom(OVERSIZED))
    store.fs.invalidate_cache()

    # what the download writes before it stops (into a folder of the test's own: the
    # manager removes its staging)
    destination = tmp_path / "dest"
    if kind == "folder":
        destination.mkdir()
    with pytest.raises(IntegrityError):
        store.download_version(store.meta("big", "0.0"), str(destination))
    written = destination / "a.txt" if kind == "folder" else destination
    assert (written.stat().st_size if written.is_file() else 0) <= 4 + ONE_CHUNK

    with pytest.raises(IntegrityError, match="larger than the 4 bytes its manifest says") as info:
        manager.fetch("big:0.0")
    assert label in str(info.value)
    assert_not_installed(manager, "big", "0.0")

    # the modelkit-assets:// protocol reads through the same verified fetch
    from modelkit_assets.filesystem import AssetsFileSystem

    with pytest.raises(IntegrityError, match="larger than"):
        AssetsFileSystem(manager=manager).cat_file("big:0.0/a.txt" if kind == "folder" else "big:0.0")
    assert_not_installed(manager, "big", "0.0")


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
