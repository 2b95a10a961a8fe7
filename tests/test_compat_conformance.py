"""Each divergence from modelkit 0.1.3 that its own test suite found (tests/conformance),
pinned by a focused test; store-backed cases run on every backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from modelkit_assets import AssetStore
from modelkit_assets.compat import (
    AssetDoesNotExistError,
    AssetFetchError,
    AssetsManager,
    AssetSpec,
    AssetsVersioningSystem,
    LocalAssetDoesNotExistError,
    MajorMinorAssetsVersioningSystem,
    SimpleDateAssetsVersioningSystem,
    StorageProvider,
    errors,
    manager,
    remote,
    settings,
    versioning,
)


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    path = tmp_path / "assets"
    path.mkdir()
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "folder"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a")
    (root / "sub" / "b.txt").write_bytes(b"b")
    return root


def test_modules_mirror_modelkit_assets() -> None:
    """``from modelkit.assets import errors`` (and .versioning, .settings, .remote,
    .manager) has a drop-in equivalent."""
    from modelkit_assets.compat.versioning.major_minor import MajorMinorAssetsVersioningSystem as MM
    from modelkit_assets.compat.versioning.simple_date import SimpleDateAssetsVersioningSystem as SD
    from modelkit_assets.compat.versioning.versioning import AssetsVersioningSystem as Base

    assert (MM, SD, Base) == (
        MajorMinorAssetsVersioningSystem,
        SimpleDateAssetsVersioningSystem,
        AssetsVersioningSystem,
    )
    assert errors.LocalAssetDoesNotExistError is LocalAssetDoesNotExistError
    assert settings.AssetSpec is AssetSpec and remote.StorageProvider is StorageProvider
    assert manager.AssetsManager is AssetsManager and versioning.AssetsVersioningSystem is Base
    assert remote.UnknownDriverError is errors.UnknownDriverError
    assert manager.AssetFetchError is errors.AssetFetchError


# -- settings are read at each construction --------------------------------------------
def test_force_download_set_after_a_first_manager_is_honoured(
    tmp_path: Path, assets_dir: Path, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    StorageProvider(provider="local", bucket=str(bucket)).new(str(folder), "f", "0.0")
    first = AssetsManager(
        assets_dir=str(assets_dir), storage_provider=StorageProvider(provider="local", bucket=str(bucket))
    )
    assert not first.fetch_asset("f:0.0", return_info=True)["from_cache"]
    assert first.fetch_asset("f:0.0", return_info=True)["from_cache"]
    monkeypatch.setenv("MODELKIT_STORAGE_FORCE_DOWNLOAD", "True")
    later = AssetsManager(
        assets_dir=str(assets_dir), storage_provider=StorageProvider(provider="local", bucket=str(bucket))
    )
    assert not later.fetch_asset("f:0.0", return_info=True)["from_cache"]
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    assert isinstance(AssetSpec("x").versioning, SimpleDateAssetsVersioningSystem)
    monkeypatch.setenv("MODELKIT_ASSETS_TIMEOUT_S", "7")
    assert AssetsManager(assets_dir=str(assets_dir)).timeout == 7


@pytest.mark.parametrize("value", ["0", "false", "no", ""])
def test_force_download_off_values_do_not_force(
    tmp_path: Path, assets_dir: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """Deliberate divergence: modelkit forces on any non-empty value, `0` included."""
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    monkeypatch.setenv("MODELKIT_STORAGE_FORCE_DOWNLOAD", value)
    provider = StorageProvider(provider="local", bucket=str(bucket))
    assert provider.force_download is False
    provider.new(str(folder), "f", "0.0")
    mng = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)
    mng.fetch_asset("f:0.0")
    assert mng.fetch_asset("f:0.0", return_info=True)["from_cache"]


def test_a_missing_local_bucket_is_a_file_not_found_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FileNotFoundError, match="missing"):
        StorageProvider(provider="local", bucket=str(tmp_path / "missing"))
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError):
        AssetsManager(assets_dir=str(tmp_path))


def test_gcs_without_credentials_fails_instead_of_going_anonymous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.auth.compute_engine import _metadata
    from google.auth.exceptions import DefaultCredentialsError

    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)  # never probe the metadata server
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "no-gcloud"))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    with pytest.raises(DefaultCredentialsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        StorageProvider(provider="gcs", bucket="some_bucket")
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "gcs")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", "some_bucket")
    with pytest.raises(DefaultCredentialsError):
        AssetsManager(assets_dir=str(tmp_path))


# -- pre-downloaded assets dirs (no store) ------------------------------------------------
@pytest.mark.parametrize(
    ("system", "versions", "latest", "partial"),
    [
        ("major_minor", ["0.0", "0.1", "1.0"], "1.0", ("0", "0.1")),
        (
            "simple_date",
            ["0000-00-00T00-00-00Z", "2021-11-14T18-00-00Z", "9999-99-99T99-99-99Z"],
            "9999-99-99T99-99-99Z",
            None,
        ),
    ],
)
def test_a_pre_downloaded_assets_dir_needs_no_markers(
    assets_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    system: str,
    versions: list[str],
    latest: str,
    partial: tuple[str, str] | None,
) -> None:
    """modelkit serves any version folder present (no `.SUCCESS`), latest included."""
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", system)
    for version in versions:
        (assets_dir / "cat" / "a" / version).mkdir(parents=True)
        (assets_dir / "cat" / "a" / version / "f.txt").write_text(version)
    mng = AssetsManager(assets_dir=str(assets_dir))
    assert mng.storage_provider is None
    info = mng.fetch_asset("cat/a", return_info=True)
    assert info == {"path": str(assets_dir / "cat" / "a" / latest), "version": latest, "from_cache": True}
    assert mng.fetch_asset(f"cat/a:{versions[0]}[f.txt]") == str(
        assets_dir / "cat" / "a" / versions[0] / "f.txt"
    )
    if partial is not None:
        assert mng.fetch_asset(f"cat/a:{partial[0]}", return_info=True)["version"] == partial[1]
    with pytest.raises(AssetFetchError):
        mng.fetch_asset(f"cat/a:{versions[0]}[nope.txt]")
    with pytest.raises(errors.StorageDriverError):
        mng.fetch_asset(f"cat/a:{versions[0]}", force_download=True)


def test_local_paths_as_specs(tmp_path: Path, assets_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a version, a spec that is no asset is a path: in the assets dir, relative
    to the working dir, or absolute (modelkit's documented fallback)."""
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    (work / "docs" / "README.md").write_text("hi")
    (assets_dir / "in" / "assets").mkdir(parents=True)
    monkeypatch.chdir(work)
    mng = AssetsManager(assets_dir=str(assets_dir))
    assert mng.fetch_asset("in/assets", return_info=True) == {"path": str(assets_dir / "in" / "assets")}
    assert mng.fetch_asset("docs/README.md") == str(work / "docs" / "README.md")
    assert mng.fetch_asset("docs[README.md]") == str(work / "docs" / "README.md")
    absolute = str(work / "docs" / "README.md")
    assert mng.fetch_asset(absolute) == absolute
    assert AssetsManager().fetch_asset("docs/README.md") == str(work / "docs" / "README.md")
    with pytest.raises(AssetDoesNotExistError):
        mng.fetch_asset("docs/absent.md")
    with pytest.raises(AssetDoesNotExistError):
        mng.fetch_asset(str(tmp_path / "absent.md"))
    with pytest.raises(LocalAssetDoesNotExistError):
        mng.fetch_asset("docs/README.md:0.1")


# -- a damaged cache, on every backend ------------------------------------------------------
def test_a_file_version_deleted_with_its_marker_left_is_fetched_again(
    store: AssetStore, assets_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "one.bin"
    source.write_bytes(b"weights")
    provider = StorageProvider.from_store(store)
    provider.new(str(source), "m", "0.0")
    mng = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)
    path = mng.fetch_asset("m:0.0")
    os.remove(path)
    assert os.path.exists(manager._success_file_path(path))
    info = mng.fetch_asset("m:0.0", return_info=True)
    assert info["from_cache"] is False and "meta" in info
    assert Path(info["path"]).read_bytes() == b"weights"
    info = mng._fetch_asset_version(AssetSpec("m", version="0.0"), _force_download=False)
    assert info == {"from_cache": True, "version": "0.0", "path": path}


def test_a_file_of_a_folder_version_deleted_by_hand_is_fetched_again(
    store: AssetStore, assets_dir: Path, folder: Path
) -> None:
    provider = StorageProvider.from_store(store)
    provider.new(str(folder), "d", "0.0")
    mng = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)
    version_dir = Path(mng.fetch_asset("d:0.0"))
    (version_dir / "sub" / "b.txt").unlink()
    path = mng.fetch_asset("d:0.0[sub/b.txt]")
    assert Path(path).read_bytes() == b"b"
    with pytest.raises(AssetFetchError, match="has no"):
        mng.fetch_asset("d:0.0[sub/c.txt]")


# -- versioning and specs as modelkit ----------------------------------------------------
def test_base_versioning_system_defaults() -> None:
    assert AssetsVersioningSystem.is_version_complete("any_version")
    assert AssetsVersioningSystem.get_latest_partial_version("any_version", ["any", "version"]) == "any"


def test_set_latest_version_as_modelkit() -> None:
    spec = AssetSpec(name="a", version="1.1")
    spec.set_latest_version(["3", "2.1", "2.0", "1.3"])
    assert spec.version == "1.3"  # a complete version too: the latest of its major
    spec = AssetSpec(name="a", version="1")
    spec.set_latest_version(["10.3", "1.2"])
    assert spec.version == "1.2"  # kept divergence: modelkit's prefix match picks 10.3
    spec = AssetSpec(name="a", version="2021-11-14T18-00-00Z", versioning="simple_date")
    spec.set_latest_version(["2021-11-15T17-31-06Z", "2021-11-14T18-00-00Z"])
    assert spec.version == "2021-11-15T17-31-06Z"


@pytest.mark.parametrize(
    ("version", "valid"),
    [("0000-00-00T00-00-00Z", True), ("9999-99-99T99-99-99Z", True), ("2021-11-15T17-30-56", False)],
)
def test_simple_date_checks_the_form_as_modelkit(version: str, valid: bool) -> None:
    assert SimpleDateAssetsVersioningSystem().is_version_valid(version) is valid


@pytest.mark.parametrize(
    ("version", "valid"), [("_", True), (".1", True), ("a.a", True), ("12/1", False), ("1 2", False)]
)
def test_generic_version_check_as_modelkit(version: str, valid: bool) -> None:
    if valid:
        AssetSpec.check_version_valid(version)
    else:
        with pytest.raises(errors.InvalidVersionError):
            AssetSpec.check_version_valid(version)


def test_names_that_start_or_end_badly_cannot_reach_any_store(store: AssetStore, tmp_path: Path) -> None:
    source = tmp_path / "one.bin"
    source.write_bytes(b"x")
    provider = StorageProvider.from_store(store)
    for name in ("_", "a_", "-a"):
        with pytest.raises(errors.InvalidNameError):
            provider.new(str(source), name, "0.0")
    assert list(provider.iterate_assets()) == []
