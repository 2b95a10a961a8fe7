"""The ``modelkit-assets://`` fsspec protocol: path rule, every read operation, reads only
through the verified cache, writes refused, configuration from options or environment."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import fsspec
import pytest

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import (
    AssetNotFoundError,
    ConfigurationError,
    IntegrityError,
    InvalidNameError,
    InvalidSpecError,
    InvalidSubPartError,
    ReadOnlyFilesystemError,
    SubPartNotFoundError,
    VersionNotFoundError,
)
from modelkit_assets.filesystem import AssetPath, AssetsFileSystem, parse_path
from modelkit_assets.settings import get_settings

URL = "modelkit-assets://"
IRIS = Path(__file__).parent.parent / "examples" / "data" / "iris"


# -- the path rule (pure) -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", AssetPath("")),
        ("/", AssetPath("")),
        ("nlp/tokenizer:1.2/vocab.txt", AssetPath("nlp/tokenizer", "1.2", "vocab.txt")),
        ("/nlp/tokenizer:1.2/sub/a.txt/", AssetPath("nlp/tokenizer", "1.2", "sub/a.txt")),
        ("data/iris:1", AssetPath("data/iris", "1", "")),
        ("a:0.0", AssetPath("a", "0.0", "")),
        ("data/iris", AssetPath("data/iris", None, "")),
        ("data/iris/iris.csv", AssetPath("data/iris/iris.csv", None, "")),
        # only the first segment with ":" ends the name
        ("a:1/b:2/c", AssetPath("a", "1", "b:2/c")),
        ("t:2024-01-02T03-04-05Z/x", AssetPath("t", "2024-01-02T03-04-05Z", "x")),
    ],
)
def test_parse_path(path: str, expected: AssetPath) -> None:
    assert parse_path(path) == expected


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("a:1/../../etc/passwd", InvalidSubPartError),
        ("a:1/./x", InvalidSubPartError),
        ("../a:1", InvalidNameError),
        ("a:", InvalidSpecError),
        ("a:1:2", InvalidSpecError),
        ("a b/c", InvalidNameError),
        ("a:1/x\\y", InvalidSubPartError),
    ],
)
def test_parse_path_rejects_unsafe_paths(path: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_path(path)


# -- registration ---------------------------------------------------------------------------
def test_protocol_is_registered_by_entry_point() -> None:
    (spec,) = [e for e in entry_points(group="fsspec.specs") if e.name == "modelkit-assets"]
    assert spec.load() is AssetsFileSystem
    assert fsspec.get_filesystem_class("modelkit-assets") is AssetsFileSystem


def test_fresh_interpreter_reads_through_the_protocol_without_importing_the_package(
    tmp_path: Path, sample_file: Path
) -> None:
    store = AssetStore(tmp_path / "store")
    store.new(sample_file, "models/clf")
    env = {
        **os.environ,
        "MODELKIT_ASSETS_STORE": store.url,
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }
    code = "import fsspec, sys; sys.stdout.write(fsspec.open('modelkit-assets://models/clf:0').open().read().hex())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert bytes.fromhex(out.stdout) == sample_file.read_bytes()


# -- reading --------------------------------------------------------------------------------
@pytest.fixture
def published(store: AssetStore, sample_dir: Path, tmp_path: Path) -> AssetStore:
    """nlp/tokenizer 0.0, 0.1 (vocab changed), 1.0; models/clf 0.0 (a file); data/iris 0.0."""
    sample_file = tmp_path / "model.bin"
    sample_file.write_bytes(os.urandom(4096))
    store.new(sample_dir, "nlp/tokenizer")
    (sample_dir / "vocab.txt").write_text("a\nb\nc\nd\n")
    store.update(sample_dir, "nlp/tokenizer")
    (sample_dir / "vocab.txt").write_text("v1\n")
    store.update(sample_dir, "nlp/tokenizer", bump_major=True)
    store.new(sample_file, "models/clf")
    store.new(IRIS, "data/iris")
    return store


@pytest.fixture
def options(
    published: AssetStore, store_url: tuple[str, dict[str, object]], tmp_path: Path
) -> dict[str, Any]:
    url, store_options = store_url
    return {"store": url, "store_options": store_options, "assets_dir": str(tmp_path / "assets")}


@pytest.fixture
def fs(options: dict[str, Any]) -> AssetsFileSystem:
    filesystem = fsspec.filesystem("modelkit-assets", **options)
    assert isinstance(filesystem, AssetsFileSystem)
    return filesystem


@pytest.mark.parametrize("backend", ["memory", "local", pytest.param("s3", marks=pytest.mark.cloud)])
def test_open_resolves_pinned_partial_and_latest(options: dict[str, Any]) -> None:
    def read(path: str) -> bytes:
        with fsspec.open(URL + path, "rb", **options) as handle:
            data: bytes = handle.read()
        return data

    assert read("nlp/tokenizer:0.0/vocab.txt") == b"a\nb\nc\n"
    assert read("nlp/tokenizer:0/vocab.txt") == b"a\nb\nc\nd\n"
    assert read("nlp/tokenizer:1/vocab.txt") == b"v1\n"
    assert read("nlp/tokenizer:1.0/sub/deeper/empty.bin") == b""
    with fsspec.open(URL + "nlp/tokenizer:0.1/config.json", "rt", **options) as text:
        assert text.read() == '{"lower": true}'


@pytest.mark.parametrize("backend", ["local", pytest.param("s3", marks=pytest.mark.cloud)])
def test_pandas_reads_a_partial_version(options: dict[str, Any]) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.read_csv(URL + "data/iris:0/iris.csv", storage_options=options)
    assert list(frame.columns) == ["sepal_length", "sepal_width", "petal_length", "petal_width", "species"]
    assert frame.to_csv(index=False) == (IRIS / "iris.csv").read_text()


@pytest.mark.parametrize("backend", ["local"])
def test_ls_info_find_glob_walk(fs: AssetsFileSystem) -> None:
    assert fs.ls("", detail=False) == ["data", "models", "nlp"]
    assert fs.ls(URL + "nlp", detail=False) == ["nlp/tokenizer"]
    assert fs.info("nlp/tokenizer") == {
        "name": "nlp/tokenizer",
        "type": "directory",
        "size": 0,
        "asset": "nlp/tokenizer",
        "version": "1.0",
    }
    assert fs.info("models/clf")["type"] == "file"
    assert fs.info("models/clf")["size"] == 4096
    assert fs.ls("models", detail=True)[0]["type"] == "file"
    # a version-less folder lists pinned entries; a versioned one keeps its spelling
    assert fs.ls("nlp/tokenizer", detail=False) == [
        "nlp/tokenizer:1.0/config.json",
        "nlp/tokenizer:1.0/sub",
        "nlp/tokenizer:1.0/vocab.txt",
    ]
    assert fs.ls("nlp/tokenizer:0/sub", detail=False) == [
        "nlp/tokenizer:0/sub/deeper",
        "nlp/tokenizer:0/sub/merges.txt",
    ]
    info = fs.info("nlp/tokenizer:0/sub/merges.txt")
    assert (info["type"], info["size"], info["version"]) == ("file", 10000, "0.1")
    assert fs.info("nlp/tokenizer:0/sub")["type"] == "directory"
    assert fs.isdir("nlp") and fs.isdir("nlp/tokenizer:0.0") and fs.isfile("nlp/tokenizer:0.0/vocab.txt")
    assert fs.find("nlp/tokenizer:0.0") == [
        "nlp/tokenizer:0.0/config.json",
        "nlp/tokenizer:0.0/sub/deeper/empty.bin",
        "nlp/tokenizer:0.0/sub/merges.txt",
        "nlp/tokenizer:0.0/vocab.txt",
    ]
    assert fs.find("") == [
        "data/iris:0.0/README.txt",
        "data/iris:0.0/iris.csv",
        "models/clf",
        "nlp/tokenizer:1.0/config.json",
        "nlp/tokenizer:1.0/sub/deeper/empty.bin",
        "nlp/tokenizer:1.0/sub/merges.txt",
        "nlp/tokenizer:1.0/vocab.txt",
    ]
    assert fs.glob(URL + "nlp/tokenizer:0/*.txt") == ["nlp/tokenizer:0/vocab.txt"]
    assert fs.glob("nlp/tokenizer:0/**/*.bin") == ["nlp/tokenizer:0/sub/deeper/empty.bin"]
    assert fs.du("nlp/tokenizer:0.0") == 6 + 15 + 10000
    walked = [(root, sorted(dirs), sorted(files)) for root, dirs, files in fs.walk("nlp/tokenizer:0.0")]
    assert walked[0] == ("nlp/tokenizer:0.0", ["sub"], ["config.json", "vocab.txt"])
    # the cache marker is never part of a version
    assert all(".SUCCESS" not in p for p in fs.find("nlp/tokenizer:0.0"))


@pytest.mark.parametrize("backend", ["local"])
def test_exists_and_missing_paths(fs: AssetsFileSystem) -> None:
    assert fs.exists("nlp/tokenizer:0/vocab.txt")
    assert fs.exists("nlp") and fs.exists("") and fs.exists("models/clf:0.0")
    for missing in ("nlp/nope", "nlp/tokenizer:7", "nlp/tokenizer:0/nope.txt", "nope", "a b", "a:1/../x"):
        assert not fs.exists(missing), missing
    with pytest.raises(VersionNotFoundError, match="nlp/tokenizer"):
        fs.info("nlp/tokenizer:7")
    with pytest.raises(SubPartNotFoundError, match=r"nlp/tokenizer:0\.1 has no 'nope\.txt'"):
        fs.open("nlp/tokenizer:0/nope.txt")
    with pytest.raises(FileNotFoundError):
        fs.ls("nope/deeper")
    with pytest.raises(AssetNotFoundError):
        fs.cat("nope:1")
    with pytest.raises(IsADirectoryError):
        fs.open("nlp/tokenizer:0/sub")
    with pytest.raises(SubPartNotFoundError):
        fs.cat("nlp/tokenizer:0/.SUCCESS")  # the cache's marker, not a file of the asset


@pytest.mark.parametrize("backend", ["local"])
def test_cat_open_files_get_head(fs: AssetsFileSystem, options: dict[str, Any], tmp_path: Path) -> None:
    assert fs.cat("nlp/tokenizer:0.0/vocab.txt") == b"a\nb\nc\n"
    assert fs.cat_file("nlp/tokenizer:0.0/vocab.txt", start=2, end=4) == b"b\n"
    assert fs.head("nlp/tokenizer:1/vocab.txt", 2) == b"v1"
    assert fs.cat("nlp/tokenizer:0.0/*.json") == {"nlp/tokenizer:0.0/config.json": b'{"lower": true}'}
    files = fsspec.open_files(URL + "nlp/tokenizer:0/*.txt", "rt", **options)
    assert [f.full_name for f in files] == [URL + "nlp/tokenizer:0/vocab.txt"]
    with files[0] as handle:
        assert handle.read() == "a\nb\nc\nd\n"
    fs.get("nlp/tokenizer:1.0/sub", str(tmp_path / "copy"), recursive=True)
    assert (tmp_path / "copy" / "merges.txt").stat().st_size == 10000
    local = fs.local_path("nlp/tokenizer:0/vocab.txt")
    assert local == Path(options["assets_dir"]) / "nlp" / "tokenizer" / "0.1" / "vocab.txt"


@pytest.mark.parametrize("backend", ["local"])
def test_listing_downloads_nothing_and_reads_go_through_the_cache(
    fs: AssetsFileSystem, options: dict[str, Any]
) -> None:
    assets = Path(options["assets_dir"])
    fs.ls("nlp/tokenizer:0")
    fs.info("nlp/tokenizer:0/vocab.txt")
    fs.find("")
    assert not (assets / "nlp").exists()
    assert fs.cat("nlp/tokenizer:0/vocab.txt") == b"a\nb\nc\nd\n"
    assert (assets / "nlp" / "tokenizer" / "0.1" / ".SUCCESS").exists()
    assert (assets / "nlp" / "tokenizer" / "0.1" / "sub" / "merges.txt").exists()  # the whole version


@pytest.mark.parametrize("backend", ["local"])
def test_corrupt_object_is_never_read(
    fs: AssetsFileSystem, published: AssetStore, options: dict[str, Any]
) -> None:
    stored = Path(published.fs._strip_protocol(published.layout.data("nlp/tokenizer", "0.0", "vocab.txt")))
    stored.write_bytes(b"X\nY\nZ\n")  # same size, other bytes
    assert fs.info("nlp/tokenizer:0.0/vocab.txt")["size"] == 6  # metadata is fine
    with pytest.raises(IntegrityError, match=r"vocab\.txt"):
        fs.cat("nlp/tokenizer:0.0/vocab.txt")
    assert not (Path(options["assets_dir"]) / "nlp" / "tokenizer" / "0.0").exists()


@pytest.mark.parametrize("backend", ["local"])
def test_writes_are_refused(fs: AssetsFileSystem, published: AssetStore, tmp_path: Path) -> None:
    source = tmp_path / "new.txt"
    source.write_text("x")
    attempts = {
        "pipe": lambda: fs.pipe("nlp/tokenizer:0.0/vocab.txt", b"x"),
        "open wb": lambda: fs.open("nlp/tokenizer:9.0/new.txt", "wb"),
        "open ab": lambda: fs.open("nlp/tokenizer:0.0/vocab.txt", "ab"),
        "write_text": lambda: fs.write_text("x:0.0", "x"),
        "put": lambda: fs.put(str(source), "x:0.0"),
        "rm": lambda: fs.rm("nlp/tokenizer:0.0", recursive=True),
        "rm_file": lambda: fs.rm_file("models/clf"),
        "mkdir": lambda: fs.mkdir("new"),
        "makedirs": lambda: fs.makedirs("new/deeper"),
        "touch": lambda: fs.touch("nlp/tokenizer:0.0/new"),
        "copy": lambda: fs.copy("models/clf", "models/other:0.0"),
        "mv": lambda: fs.mv("models/clf", "models/other"),
        "rmdir": lambda: fs.rmdir("nlp"),
        "fsspec.open": lambda: fsspec.open(URL + "a:0.0", "w", manager=fs.manager).open(),
    }
    for what, attempt in attempts.items():
        with pytest.raises(ReadOnlyFilesystemError, match=r"read-only.*update") as info:
            attempt()
        assert isinstance(info.value, PermissionError), what
    assert published.versions("nlp/tokenizer") == ["1.0", "0.1", "0.0"]
    assert fs.cat("nlp/tokenizer:0.0/vocab.txt") == b"a\nb\nc\n"
    assert fs.cat("models/clf") != b"x"


@pytest.mark.parametrize("backend", ["local", "memory"])
def test_pandas_writing_through_the_protocol_says_read_only(
    options: dict[str, Any], published: AssetStore
) -> None:
    """pandas retries a PermissionError with ``anon=True``: the retry must fail the same way,
    not with "Unknown option(s) anon"."""
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"a": [1, 2]})
    with pytest.raises(ReadOnlyFilesystemError, match=r"read-only.*update"):
        frame.to_csv(URL + "data/iris:0/new.csv", storage_options=options)
    assert published.versions("data/iris") == ["0.0"]


def test_anon_is_accepted_and_ignored(tmp_path: Path) -> None:
    """Never passed on to the store: it would turn a refused credential into anonymous access."""
    fs = fsspec.filesystem("modelkit-assets", store=str(tmp_path / "s"), anon=True, store_options={})
    assert isinstance(fs, AssetsFileSystem)
    store = fs.manager.store
    assert store is not None and "anon" not in store.storage_options


# -- configuration --------------------------------------------------------------------------
def test_store_and_assets_dir_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sample_file: Path
) -> None:
    store = AssetStore(tmp_path / "store")
    store.new(sample_file, "models/clf")
    monkeypatch.setenv("MODELKIT_ASSETS_STORE", store.url)
    monkeypatch.setenv("MODELKIT_ASSETS_DIR", str(tmp_path / "env-assets"))
    get_settings.cache_clear()
    with fsspec.open(URL + "models/clf:0.0") as handle:
        assert handle.read() == sample_file.read_bytes()
    assert (tmp_path / "env-assets" / "models" / "clf" / "0.0").is_file()
    # an explicit option overrides the environment
    fs = fsspec.filesystem("modelkit-assets", assets_dir=str(tmp_path / "other"))
    fs.cat("models/clf")
    assert (tmp_path / "other" / "models" / "clf" / "0.0").is_file()


@pytest.mark.cloud
@pytest.mark.parametrize("backend", ["s3"])
def test_store_options_reach_the_store_and_stay_secret(
    published: AssetStore, options: dict[str, Any], store_url: tuple[str, dict[str, object]]
) -> None:
    fs = fsspec.filesystem("modelkit-assets", **options)
    assert fs.cat("models/clf:0")
    secret = str(store_url[1]["secret"])
    assert secret not in repr(fs)
    with pytest.raises(AssetNotFoundError) as info:
        fs.info("missing/asset")
    assert secret not in str(info.value)


def test_unknown_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"endpoint_url.*store_options"):
        fsspec.filesystem("modelkit-assets", store=str(tmp_path), endpoint_url="http://x")
    manager = AssetsManager(str(tmp_path / "s"), tmp_path / "a")
    with pytest.raises(ConfigurationError, match="either a manager"):
        AssetsFileSystem(manager=manager, assets_dir=str(tmp_path))


def test_manager_and_store_take_urls_paths_and_options(tmp_path: Path, sample_file: Path) -> None:
    store = AssetStore(str(tmp_path / "store"), {"auto_mkdir": True})
    store.new(sample_file, "m")
    for given in (store.url, tmp_path / "store", str(tmp_path / "store")):
        manager = AssetsManager(given, tmp_path / f"assets-{type(given).__name__}", storage_options={})
        assert manager.store is not None and manager.store.url == store.url
        assert manager.fetch("m:0").read_bytes() == sample_file.read_bytes()
    with pytest.raises(ConfigurationError, match="storage_options"):
        AssetsManager(store, tmp_path / "a", storage_options={"anon": True})
    memory = AssetsManager(
        "memory://mk-options", tmp_path / "mem", storage_options={"skip_instance_cache": True}
    )
    assert memory.store is not None and memory.store.url == "memory://mk-options"


def test_other_read_operations(tmp_path: Path) -> None:
    import gzip

    source = tmp_path / "tables"
    source.mkdir()
    (source / "t.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    (source / "notes.txt").write_text("line one\nline two\n")
    AssetStore(tmp_path / "store").new(source, "data/tables")
    fs = fsspec.filesystem("modelkit-assets", store=str(tmp_path / "store"), assets_dir=str(tmp_path / "a"))
    assert fs.read_text("data/tables:0/notes.txt") == "line one\nline two\n"
    assert fs.read_bytes("data/tables:0/notes.txt", start=5, end=8) == b"one"
    assert fs.tail("data/tables:0/notes.txt", 4) == b"two\n"
    assert fs.size("data/tables:0/notes.txt") == 18
    assert fs.cat_ranges(["data/tables:0/notes.txt"] * 2, [0, 9], [4, 13]) == [b"line", b"line"]
    with fsspec.open(
        URL + "data/tables:0/t.csv.gz",
        "rt",
        compression="infer",
        store=str(tmp_path / "store"),
        assets_dir=str(tmp_path / "a"),
    ) as handle:
        assert handle.read() == "a,b\n1,2\n"
