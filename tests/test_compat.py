"""``modelkit_assets.compat``: modelkit 0.1.3's asset API, run on memory:// and local stores.

The expected values are modelkit's documented behaviour (its README and source); where
compat deliberately differs (numeric major matching, never-taken simple_date versions,
stricter names) the test says so.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
import uuid
from pathlib import Path

import fsspec
import pytest

from modelkit_assets import AssetStore, errors
from modelkit_assets.compat import (
    AssetAlreadyExistsError,
    AssetDoesNotExistError,
    AssetFetchError,
    AssetsManager,
    AssetsManagerError,
    AssetSpec,
    InvalidAssetSpecError,
    InvalidMajorVersionError,
    InvalidNameError,
    InvalidVersionError,
    LocalAssetDoesNotExistError,
    MajorMinorAssetsVersioningSystem,
    MajorVersionDoesNotExistError,
    NoConfiguredProviderError,
    ObjectDoesNotExistError,
    SimpleDateAssetsVersioningSystem,
    StorageDriverError,
    StorageProvider,
    UnknownAssetsVersioningSystemError,
    UnknownDriverError,
)
from modelkit_assets.settings import get_settings

MM = MajorMinorAssetsVersioningSystem
SD = SimpleDateAssetsVersioningSystem
DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z")


# -- versioning --------------------------------------------------------------------
def _cli_update(version_list: list[str], version: str | None = None, bump_major: bool = False) -> str:
    """What modelkit's `assets update` computes (modelkit/assets/cli.py, update_)."""
    params = MM.get_update_cli_params(version=version, version_list=version_list, bump_major=bump_major)
    return MM.increment_version(MM.sort_versions(version_list), params["params"])


def test_major_minor_follows_modelkit_update_rules() -> None:
    assert MM.get_initial_version() == "0.0"
    assert _cli_update(["0.1", "1.1"]) == "1.2"
    assert _cli_update(["0.1", "1.0"], bump_major=True) == "2.0"
    assert _cli_update(["0.1", "1.0"], version="0") == "0.2"
    assert MM.increment_version(["1.9", "1.10"], {"bump_major": False, "major": None}) == "1.11"


def test_major_minor_orders_numerically_and_resolves_majors() -> None:
    assert MM.sort_versions(["1.9", "0.3", "1.10", "10.0"]) == ["10.0", "1.10", "1.9", "0.3"]
    assert MM.latest_version(["1.0", "1.2", "2.0"]) == "2.0"
    assert MM.latest_version(["1.0", "1.2", "2.0"], major="1") == "1.2"
    # modelkit's prefix match would also return 10.3 here; compat compares numbers
    assert MM.filter_versions(["10.3", "1.2", "1.0"], "1") == ["1.2", "1.0"]
    assert MM.get_latest_partial_version("1", ["10.3", "1.2", "1.0"]) == "1.2"
    assert MM.is_version_complete("1.2") and not MM.is_version_complete("1")


def test_major_minor_errors_keep_both_names() -> None:
    with pytest.raises(MajorVersionDoesNotExistError) as info:
        MM.latest_version(["1.0"], major="5")
    assert isinstance(info.value, InvalidVersionError | errors.InvalidVersionError | ValueError)
    with pytest.raises(MajorVersionDoesNotExistError):
        MM.increment_version(["1.0"], {"bump_major": False, "major": "3"})
    with pytest.raises(InvalidMajorVersionError):
        MM.filter_versions(["1.0"], "x")
    with pytest.raises(InvalidVersionError) as bad:
        MM.check_version_valid("a.b")
    assert isinstance(bad.value, errors.InvalidVersionError)
    MM.check_version_valid("")  # modelkit accepts an empty version here
    assert not MM().is_version_valid("1.x") and MM().is_version_valid("1")


def test_major_minor_update_display_lists_majors() -> None:
    params = MM.get_update_cli_params(version="1", version_list=["1.1", "1.0", "0.0"], bump_major=False)
    assert params["params"] == {"bump_major": False, "major": "1"}
    assert "Found a total of 3 versions" in params["display"]
    assert " - major `1` = 1.1, 1.0" in params["display"]
    assert " - major `0` = 0.0" in params["display"]


def test_simple_date_never_returns_a_taken_version() -> None:
    first = SD.get_initial_version()
    assert DATE_RE.fullmatch(first)
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H-%M-%SZ")
    following = SD.increment_version([future], {})
    assert following > future and DATE_RE.fullmatch(following)
    assert SD.sort_versions(["2024-01-02T00-00-00Z", "2025-01-01T00-00-00Z"])[0] == "2025-01-01T00-00-00Z"
    assert SD.get_update_cli_params(version_list=[future])["params"] == {}
    with pytest.raises(InvalidVersionError):
        SD.check_version_valid("1.0")


# -- specs -------------------------------------------------------------------------
def test_spec_from_string_has_modelkit_attributes() -> None:
    spec = AssetSpec.from_string("nlp/tok:1.2[vocab/a.txt]")
    assert (spec.name, spec.version, spec.sub_part) == ("nlp/tok", "1.2", "vocab/a.txt")
    assert isinstance(spec.versioning, MajorMinorAssetsVersioningSystem)
    assert spec.is_version_complete()
    assert spec == AssetSpec("nlp/tok", version="1.2", sub_part="vocab/a.txt")
    bare = AssetSpec.from_string("nlp/tok")
    assert bare.version is None and bare.sub_part is None and not bare.is_version_complete()
    partial = AssetSpec.from_string("nlp/tok:1")
    partial.set_latest_version(["2.0", "1.3", "1.2"])
    assert partial.version == "1.3"
    bare.set_latest_version(["2.0", "1.3"])
    assert bare.version == "2.0"
    assert AssetSpec.from_string("a[/x/y]").sub_part == "x/y"  # modelkit drops the leading `/`
    with pytest.raises(InvalidAssetSpecError):
        AssetSpec.from_string("a[/x/y/]")  # modelkit's grammar: a sub-part ends with a letter or digit
    assert str(AssetSpec.from_string("a:1.0[b]")) == "a:1.0[b]"


@pytest.mark.parametrize("text", ["a/../b", "a//b", "a/./b", "a/.claims/x"])
def test_spec_rejects_unsafe_names(text: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        AssetSpec.from_string(text)
    assert isinstance(info.value, errors.InvalidNameError | AssetsManagerError)


@pytest.mark.parametrize("text", [".hidden", "", "_", "a_", "_a", "a-", "a:1.0:2"])
def test_spec_refuses_what_modelkit_refuses(text: str) -> None:
    with pytest.raises(InvalidAssetSpecError):
        AssetSpec.from_string(text)


@pytest.mark.parametrize("name", ["_", "a_", "_a", "a/b-", "a."])
def test_names_modelkit_refuses_are_never_published(name: str, sources: dict[str, Path]) -> None:
    """Before, `a_` was published, and modelkit 0.1.3 could never fetch it."""
    with pytest.raises(InvalidNameError):
        AssetSpec.check_name_valid(name)
    provider = StorageProvider.from_store(AssetStore(f"memory://compat{uuid.uuid4().hex[:10]}"))
    with pytest.raises(InvalidNameError):
        provider.new(str(sources["one"]), name, "0.0")
    assert list(provider.iterate_assets()) == []
    with pytest.raises(errors.InvalidNameError):
        AssetStore(f"memory://compat{uuid.uuid4().hex[:10]}").new(sources["one"], name)


@pytest.mark.parametrize("text", ["/etc/passwd", "/a/b.txt", "C:\\A\\file.ext", "a\\b"])
def test_local_path_specs_parse_but_never_name_an_asset(text: str, sources: dict[str, Path]) -> None:
    """modelkit's grammar takes local paths as specs (fetch_asset serves them as they
    are); they never reach a store."""
    spec = AssetSpec.from_string(text)
    assert (spec.name, spec.version, spec.sub_part) == (text, None, None)
    provider = StorageProvider.from_store(AssetStore(f"memory://compat{uuid.uuid4().hex[:10]}"))
    with pytest.raises(InvalidNameError):
        provider.new(str(sources["one"]), text, "0.0")


@pytest.mark.parametrize("text", ["a[../x]", "a[x/../../y]", "a:", "a:1.0[b\x00]"])
def test_spec_rejects_bad_sub_parts_and_versions(text: str) -> None:
    with pytest.raises(InvalidAssetSpecError):
        AssetSpec.from_string(text)


def test_spec_versioning_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidVersionError):
        AssetSpec.from_string("a:1.0", versioning="simple_date")
    with pytest.raises(UnknownAssetsVersioningSystemError):
        AssetSpec("a", versioning="nope")
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    get_settings.cache_clear()
    spec = AssetSpec.from_string("a:2024-01-01T00-00-00Z")
    assert isinstance(spec.versioning, SimpleDateAssetsVersioningSystem)


def test_spec_local_versions(tmp_path: Path) -> None:
    for entry in ("0.1", "1.0", "junk", ".0.1.SUCCESS"):
        (tmp_path / entry).mkdir()
    assert AssetSpec("a").get_local_versions(tmp_path) == ["1.0", "0.1"]
    assert AssetSpec("a").get_local_versions(tmp_path / "missing") == []


# -- storage provider --------------------------------------------------------------
@pytest.fixture(params=["memory", "local"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> StorageProvider:
    if request.param == "memory":
        return StorageProvider.from_store(AssetStore(f"memory://compat{uuid.uuid4().hex[:10]}"))
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    return StorageProvider(provider="local", bucket=str(bucket), prefix="assets")


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, Path]:
    one = tmp_path / "src" / "model.bin"
    one.parent.mkdir()
    one.write_bytes(b"weights-1")
    two = tmp_path / "src" / "model2.bin"
    two.write_bytes(b"weights-2")
    folder = tmp_path / "src" / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_bytes(b"a")
    (folder / "sub" / "b.txt").write_bytes(b"b")
    return {"one": one, "two": two, "folder": folder}


def test_provider_publishes_exactly_the_given_versions(
    provider: StorageProvider, sources: dict[str, Path]
) -> None:
    assert provider.new(str(sources["one"]), "x/model", "0.0") == "0.0"
    provider.update(str(sources["two"]), "x/model", "0.1")
    provider.update(str(sources["two"]), "x/model", "1.0")
    provider.new(str(sources["folder"]), "x/folder", MM.get_initial_version())
    assert provider.get_versions_info("x/model") == ["1.0", "0.1", "0.0"]
    assert list(provider.iterate_assets()) == [("x/folder", ["0.0"]), ("x/model", ["1.0", "0.1", "0.0"])]
    meta = provider.get_asset_meta("x/folder", "0.0")
    assert meta["is_directory"] is True and meta["contents"] == ["a.txt", "sub/b.txt"]
    assert isinstance(meta["push_date"], dt.datetime) and meta["push_date"].tzinfo is not None
    assert meta["files"]["sub/b.txt"]["size"] == 1
    assert provider.get_asset_meta("x/model", "0.0")["is_directory"] is False
    index = provider.store.fs.cat_file(provider.store.layout.versions_index("x/model"))
    assert json.loads(index) == {"versions": ["1.0", "0.1", "0.0"]}


def test_provider_never_overwrites(provider: StorageProvider, sources: dict[str, Path]) -> None:
    provider.new(str(sources["one"]), "m", "0.0")
    with pytest.raises(AssetAlreadyExistsError) as exists:
        provider.new(str(sources["two"]), "m", "0.0")
    assert isinstance(exists.value, errors.AssetExistsError | FileExistsError)
    with pytest.raises(AssetAlreadyExistsError):
        provider.update(str(sources["two"]), "m", "0.0")
    with pytest.raises(AssetAlreadyExistsError):
        provider.push(str(sources["two"]), "m", "0.0")
    data = provider.store.fs.cat_file(provider.store.layout.data("m", "0.0"))
    assert data == b"weights-1"
    assert provider.get_versions_info("m") == ["0.0"]


def test_provider_refusals(provider: StorageProvider, sources: dict[str, Path]) -> None:
    with pytest.raises(AssetDoesNotExistError):
        provider.update(str(sources["one"]), "never", "0.1")
    with pytest.raises(ObjectDoesNotExistError) as missing:
        provider.get_versions_info("never")
    assert isinstance(missing.value, FileNotFoundError)
    provider.new(str(sources["one"]), "m", "0.0")
    with pytest.raises(ObjectDoesNotExistError):
        provider.get_asset_meta("m", "9.9")
    with pytest.raises(InvalidVersionError):
        provider.update(str(sources["one"]), "m", "1")  # a partial version cannot be published
    with pytest.raises(InvalidNameError):
        provider.new(str(sources["one"]), "../escape", "0.0")


def test_provider_dry_run_writes_nothing(provider: StorageProvider, sources: dict[str, Path]) -> None:
    provider.new(str(sources["one"]), "m", "0.0", dry_run=True)
    assert list(provider.iterate_assets()) == []
    provider.new(str(sources["one"]), "m", "0.0")
    provider.update(str(sources["two"]), "m", "0.1", dry_run=True)
    assert provider.get_versions_info("m") == ["0.0"]


def test_provider_download_is_verified(
    provider: StorageProvider, sources: dict[str, Path], tmp_path: Path
) -> None:
    provider.new(str(sources["folder"]), "x/folder", "0.0")
    info = provider.download("x/folder", "0.0", str(tmp_path / "dl"))
    assert info["path"] == str(tmp_path / "dl" / "x" / "folder" / "0.0")
    assert (Path(info["path"]) / "sub" / "b.txt").read_bytes() == b"b"
    provider.store.fs.pipe_file(provider.store.layout.data("x/folder", "0.0", "a.txt"), b"Z")
    with pytest.raises(errors.IntegrityError, match=r"a\.txt"):
        provider.download("x/folder", "0.0", str(tmp_path / "dl2"))


def test_concurrent_pinned_publishes_one_winner(tmp_path: Path, sources: dict[str, Path]) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    provider = StorageProvider(provider="local", bucket=str(bucket))
    provider.new(str(sources["one"]), "m", "0.0")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def publish(i: int) -> None:
        barrier.wait()
        try:
            provider.update(str(sources["two"]), "m", "0.1")
            outcomes.append("ok")
        except AssetAlreadyExistsError:
            outcomes.append("exists")

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["exists"] * 7 + ["ok"]
    assert provider.get_versions_info("m") == ["0.1", "0.0"]


def test_provider_from_modelkit_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sources: dict[str, Path]
) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    monkeypatch.setenv("MODELKIT_STORAGE_PROVIDER", "local")
    monkeypatch.setenv("MODELKIT_STORAGE_BUCKET", str(bucket))
    monkeypatch.setenv("MODELKIT_STORAGE_PREFIX", "pfx")
    get_settings.cache_clear()
    provider = StorageProvider()
    provider.new(str(sources["one"]), "a/b", "0.0")
    # modelkit's layout, relative to the bucket
    assert (bucket / "pfx" / "a" / "b.versions").is_file()
    assert (bucket / "pfx" / "a" / "b" / "0.0").read_bytes() == b"weights-1"
    assert (bucket / "pfx" / "a" / "b" / "0.0.meta").is_file()
    assert provider.get_object_name("a/b", "0.0") == "pfx/a/b/0.0"
    assert provider.get_meta_object_name("a/b", "0.0") == "pfx/a/b/0.0.meta"
    assert provider.get_versions_object_name("a/b") == "pfx/a/b.versions"
    assert provider.driver.bucket == str(bucket)


def test_provider_configuration_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NoConfiguredProviderError):
        StorageProvider()
    with pytest.raises(UnknownDriverError):
        StorageProvider(provider="ftp", bucket="b")
    with pytest.raises(errors.ConfigurationError, match="bucket"):
        StorageProvider(provider="local")
    with pytest.raises(errors.StoreNotFoundError):
        StorageProvider(provider="local", bucket=str(tmp_path / "missing"))
    with pytest.raises(TypeError, match="fsspec filesystem"):
        StorageProvider(provider="local", bucket=str(tmp_path), client=object())
    monkeypatch.setenv("MODELKIT_ASSETS_STORE", f"memory://env{uuid.uuid4().hex[:8]}")
    get_settings.cache_clear()
    assert StorageProvider().store.url.startswith("memory://env")


def test_provider_accepts_an_fsspec_client(tmp_path: Path, sources: dict[str, Path]) -> None:
    bucket = tmp_path / "bucket"
    bucket.mkdir()
    provider = StorageProvider(provider="local", bucket=str(bucket), client=fsspec.filesystem("file"))
    provider.new(str(sources["one"]), "m", "0.0")
    assert (bucket / "modelkit-assets" / "m" / "0.0").is_file()


def test_provider_keeps_credentials_out_of_reprs() -> None:
    secret = "SECRETKEY" + uuid.uuid4().hex
    provider = StorageProvider(
        provider="s3", bucket="bkt", aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key=secret
    )
    shown = " ".join(
        [repr(provider), repr(provider.driver), repr(provider.store), str(vars(provider.driver))]
    )
    assert secret not in shown and "AKIAEXAMPLE" not in shown
    assert provider.store.url == "s3://bkt/modelkit-assets"


# -- assets manager ----------------------------------------------------------------
@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    path = tmp_path / "assets"
    path.mkdir()
    return path


def test_fetch_asset_returns_paths_and_modelkit_info(
    provider: StorageProvider, sources: dict[str, Path], assets_dir: Path
) -> None:
    provider.new(str(sources["one"]), "x/model", "0.0")
    provider.update(str(sources["two"]), "x/model", "0.1")
    provider.update(str(sources["one"]), "x/model", "1.0")
    provider.new(str(sources["folder"]), "x/folder", "0.0")
    manager = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)

    path = manager.fetch_asset("x/model")
    assert isinstance(path, str) and path == str(assets_dir / "x" / "model" / "1.0")
    info = manager.fetch_asset("x/model:0", return_info=True)
    assert set(info) == {"path", "version", "from_cache", "meta"}
    assert info["version"] == "0.1" and info["from_cache"] is False
    assert Path(info["path"]).read_bytes() == b"weights-2"
    assert info["meta"]["is_directory"] is False
    again = manager.fetch_asset("x/model:0.1", return_info=True)
    assert again == {"path": info["path"], "version": "0.1", "from_cache": True}
    assert (assets_dir / "x" / "model" / ".0.1.SUCCESS").is_file()

    sub = manager.fetch_asset("x/folder:0.0[sub/b.txt]")
    assert sub == str(assets_dir / "x" / "folder" / "0.0" / "sub" / "b.txt")
    assert (assets_dir / "x" / "folder" / "0.0" / ".SUCCESS").is_file()
    spec = AssetSpec.from_string("x/model:0")
    manager.fetch_asset(spec)
    assert spec.version == "0.1"  # pinned in place, as modelkit does


def test_fetch_asset_force_download(
    provider: StorageProvider, sources: dict[str, Path], assets_dir: Path
) -> None:
    provider.new(str(sources["one"]), "m", "0.0")
    manager = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)
    assert manager.fetch_asset("m:0.0", return_info=True)["from_cache"] is False
    assert manager.fetch_asset("m:0.0", return_info=True)["from_cache"] is True
    assert manager.fetch_asset("m:0.0", return_info=True, force_download=True)["from_cache"] is False
    forced = StorageProvider.from_store(provider.store, force_download=True)
    always = AssetsManager(assets_dir=str(assets_dir), storage_provider=forced)
    assert always.fetch_asset("m:0.0", return_info=True)["from_cache"] is False


def test_fetch_asset_errors(provider: StorageProvider, sources: dict[str, Path], assets_dir: Path) -> None:
    provider.new(str(sources["folder"]), "f", "0.0")
    manager = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)
    with pytest.raises(ObjectDoesNotExistError):
        manager.fetch_asset("nothing")
    with pytest.raises(ObjectDoesNotExistError):
        manager.fetch_asset("f:3.0")
    with pytest.raises(ObjectDoesNotExistError):
        manager.fetch_asset("f:3")
    with pytest.raises(AssetFetchError) as missing:
        manager.fetch_asset("f:0.0[nope.txt]")
    assert isinstance(missing.value, FileNotFoundError)
    provider.new(str(sources["folder"]), "g", "0.0")
    provider.store.fs.pipe_file(provider.store.layout.data("g", "0.0", "a.txt"), b"Z")
    with pytest.raises(errors.IntegrityError, match=r"a\.txt"):
        manager.fetch_asset("g:0.0")
    assert not (assets_dir / "g" / "0.0").exists()


def test_manager_without_provider_serves_the_assets_dir(
    tmp_path: Path, assets_dir: Path, sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AssetStore(f"memory://compat{uuid.uuid4().hex[:10]}")
    store.new(sources["one"], "m")
    AssetsManager(assets_dir=str(assets_dir), storage_provider=StorageProvider.from_store(store)).fetch_asset(
        "m:0.0"
    )
    plain = assets_dir / "plain" / "dir"
    plain.mkdir(parents=True)
    (plain / "f.txt").write_text("x")
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(assets_dir))
    get_settings.cache_clear()
    manager = AssetsManager()
    assert manager.storage_provider is None and manager.assets_dir == str(assets_dir)
    assert manager.fetch_asset("m", return_info=True) == {
        "path": str(assets_dir / "m" / "0.0"),
        "version": "0.0",
        "from_cache": True,
    }
    assert manager.fetch_asset("plain/dir") == str(plain)
    assert manager.fetch_asset("plain/dir[f.txt]") == str(plain / "f.txt")
    with pytest.raises(LocalAssetDoesNotExistError):
        manager.fetch_asset("m:0.1")
    with pytest.raises(LocalAssetDoesNotExistError):
        manager.fetch_asset("m:1")
    with pytest.raises(AssetDoesNotExistError):
        manager.fetch_asset("absent")
    with pytest.raises(StorageDriverError, match="no storage provider"):
        manager.fetch_asset("m:0.0", force_download=True)


def test_manager_defaults_and_refusals(
    tmp_path: Path, assets_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(assets_dir)
    manager = AssetsManager()
    assert manager.assets_dir == os.getcwd() and manager.timeout == int(get_settings().timeout_s)
    assert AssetsManager(timeout=3).timeout == 3
    with pytest.raises(FileNotFoundError):
        AssetsManager(assets_dir=str(tmp_path / "missing"))
    bucket = tmp_path / "bucket"
    (bucket / "modelkit-assets").mkdir(parents=True)
    provider = StorageProvider(provider="local", bucket=str(bucket))
    with pytest.raises(StorageDriverError, match="store's own folder"):
        AssetsManager(assets_dir=str(bucket / "modelkit-assets"), storage_provider=provider)


def test_simple_date_through_compat(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sources: dict[str, Path], assets_dir: Path
) -> None:
    monkeypatch.setenv("MODELKIT_ASSETS_VERSIONING_SYSTEM", "simple_date")
    get_settings.cache_clear()
    provider = StorageProvider.from_store(AssetStore(f"memory://compat{uuid.uuid4().hex[:10]}"))
    first = SD.get_initial_version()
    provider.new(str(sources["one"]), "d", first)
    second = SD.increment_version(provider.get_versions_info("d"), {})
    provider.update(str(sources["two"]), "d", second)
    assert provider.get_versions_info("d") == [second, first]
    manager = AssetsManager(assets_dir=str(assets_dir), storage_provider=provider)
    assert Path(manager.fetch_asset("d")).read_bytes() == b"weights-2"
    assert Path(manager.fetch_asset(f"d:{first}")).read_bytes() == b"weights-1"
