"""A cache damaged by hand (a fetched file deleted, its ``.SUCCESS`` marker left behind)
is detected where it is looked at and fetched again, on every backend; a sub-part the
version never had is still refused, without downloading anything.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import SubPartNotFoundError


def test_a_deleted_file_version_is_fetched_again(
    store: AssetStore, manager: AssetsManager, sample_file: Path
) -> None:
    store.new(sample_file, "m")
    path = manager.fetch("m:0.0")
    path.unlink()  # the marker .0.0.SUCCESS stays
    assert (path.parent / ".0.0.SUCCESS").exists()

    assert manager.cache.cached_path("m", "0.0") is None
    again = manager.fetch_info("m:0.0")
    assert not again.from_cache
    assert again.path.read_bytes() == sample_file.read_bytes()
    path.unlink()
    assert manager.fetch("m:0.0").read_bytes() == sample_file.read_bytes()
    assert manager.fetch_info("m:0.0").from_cache


@pytest.mark.parametrize("sub_part", ["vocab.txt", "sub/merges.txt", "sub"])
def test_a_deleted_file_of_a_folder_version_is_fetched_again(
    store: AssetStore, manager: AssetsManager, sample_dir: Path, sub_part: str
) -> None:
    store.new(sample_dir, "tok")
    version_dir = manager.fetch("tok:0.0")
    target = version_dir / sub_part
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
    assert (version_dir / ".SUCCESS").exists()

    path = manager.fetch(f"tok:0.0[{sub_part}]")
    assert path == version_dir / sub_part
    assert path.exists()
    merges = (version_dir / "sub" / "merges.txt").read_bytes()
    assert merges == (sample_dir / "sub" / "merges.txt").read_bytes()
    info = manager.fetch_info(f"tok:0.0[{sub_part}]")
    assert info.from_cache  # repaired once, then a plain hit


def test_a_deleted_file_is_fetched_again_through_the_latest_version(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    store.new(sample_dir, "tok")
    version_dir = manager.fetch("tok:0.0")
    (version_dir / "vocab.txt").unlink()
    info = manager.fetch_info("tok[vocab.txt]")
    assert not info.from_cache
    assert info.path.read_text() == "a\nb\nc\n"


@pytest.mark.parametrize("missing", ["nope.txt", "sub/nope", ".SUCCESS", "vocab.txt/x"])
def test_a_sub_part_the_version_never_had_is_refused_without_downloading(
    store: AssetStore, manager: AssetsManager, sample_dir: Path, missing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.new(sample_dir, "tok")
    version_dir = manager.fetch("tok:0.0")
    (version_dir / "vocab.txt").unlink()  # damaged too: still not a reason to download

    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("downloaded for a sub-part the version does not have")

    monkeypatch.setattr(store, "download_version", no_download)
    with pytest.raises(SubPartNotFoundError, match="has no"):
        manager.fetch(f"tok:0.0[{missing}]")
    shutil.rmtree(manager.assets_dir)  # not in the cache at all: the store's manifest says no
    with pytest.raises(SubPartNotFoundError, match="has no"):
        manager.fetch(f"tok:0.0[{missing}]")


def test_a_version_fetched_by_modelkit_without_a_manifest_copy_is_checked_against_the_store(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    store.new(sample_dir, "tok")
    version_dir = manager.fetch("tok:0.0")
    shutil.rmtree(manager.assets_dir / ".cache" / "manifests")  # as modelkit leaves it
    (version_dir / "sub" / "merges.txt").unlink()
    assert (
        manager.fetch("tok:0.0[sub/merges.txt]").read_bytes()
        == (sample_dir / "sub" / "merges.txt").read_bytes()
    )
    with pytest.raises(SubPartNotFoundError):
        manager.fetch("tok:0.0[nope.txt]")
