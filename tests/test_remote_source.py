"""Publishing from a remote source (``new s3://other-bucket/path NAME``, gs://, az://):
the data is copied in through a temporary folder, checked like a local source, published,
and the temporary copy removed."""

from __future__ import annotations

import gc
import os
import uuid
from pathlib import Path

import fsspec
import pytest
import servers

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import InvalidSourceError
from modelkit_assets.source import scan_source

pytestmark = pytest.mark.cloud

CLOUDS = ["s3", "gcs", "azure"]


def _other_bucket(request: pytest.FixtureRequest, backend: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """A second bucket on the same server as the store: ``(filesystem, bucket)``."""
    server = request.getfixturevalue(
        {"s3": "s3_server", "gcs": "gcs_server", "azure": "azure_server"}[backend]
    )
    fs = fsspec.filesystem(servers.PROTOCOLS[backend], **servers.storage_options(backend, server.url))
    bucket = f"src{uuid.uuid4().hex[:12]}"
    fs.mkdir(bucket)
    return fs, bucket


@pytest.fixture(params=CLOUDS)
def cloud(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def cloud_store(request: pytest.FixtureRequest, cloud: str) -> AssetStore:
    url, options = request.getfixturevalue(f"{cloud}_store_factory")()
    return AssetStore(url, options)


def _temp_copies() -> set[str]:
    import tempfile

    return {p for p in os.listdir(tempfile.gettempdir()) if p.startswith("modelkit-assets-source-")}


def test_new_from_remote_folder_and_file(
    request: pytest.FixtureRequest, cloud: str, cloud_store: AssetStore, sample_dir: Path, tmp_path: Path
) -> None:
    fs, bucket = _other_bucket(request, cloud)
    fs.put(str(sample_dir) + "/", f"{bucket}/exports/tokenizer/", recursive=True)
    fs.pipe_file(f"{bucket}/exports/model.bin", b"weights" * 1000)
    # the empty file of sample_dir is not created by every fs.put: write it explicitly
    fs.pipe_file(f"{bucket}/exports/tokenizer/sub/deeper/empty.bin", b"")
    protocol = servers.PROTOCOLS[cloud]
    before = _temp_copies()

    assert cloud_store.new(f"{protocol}://{bucket}/exports/tokenizer", "nlp/tok") == "0.0"
    assert cloud_store.new(f"{protocol}://{bucket}/exports/model.bin", "clf") == "0.0"
    assert cloud_store.update(f"{protocol}://{bucket}/exports/model.bin", "clf") == "0.1"

    meta = cloud_store.meta("nlp/tok", "0.0")
    assert meta.is_directory
    assert meta.contents == ["config.json", "sub/deeper/empty.bin", "sub/merges.txt", "vocab.txt"]
    assert meta.source == f"{protocol}://{bucket}/exports/tokenizer"
    manager = AssetsManager(cloud_store, tmp_path / "assets")
    fetched = manager.fetch("nlp/tok")
    for rel in meta.contents:
        assert (fetched / rel).read_bytes() == (sample_dir / rel).read_bytes()
    assert manager.fetch("clf").read_bytes() == b"weights" * 1000
    assert not cloud_store.meta("clf", "0.1").is_directory
    gc.collect()
    assert _temp_copies() <= before  # every temporary copy was removed


def test_remote_source_is_checked_like_a_local_one(
    request: pytest.FixtureRequest, cloud: str, cloud_store: AssetStore
) -> None:
    fs, bucket = _other_bucket(request, cloud)
    protocol = servers.PROTOCOLS[cloud]
    fs.pipe({f"{bucket}/clash/A.txt": b"1", f"{bucket}/clash/a.txt": b"2"})
    fs.pipe_file(f"{bucket}/windows/sub\\model.bin", b"x")  # a key with a backslash
    before = _temp_copies()
    with pytest.raises(InvalidSourceError, match=r"collide|case"):
        cloud_store.new(f"{protocol}://{bucket}/clash", "x")
    if cloud != "azure":  # Azure Blob turns `\` into `/` in blob names: no such key exists there
        with pytest.raises(InvalidSourceError, match=r"contains `\\`"):
            cloud_store.new(f"{protocol}://{bucket}/windows", "x")
    with pytest.raises(InvalidSourceError, match="does not exist"):
        cloud_store.new(f"{protocol}://{bucket}/nothing/here", "x")
    assert list(cloud_store.list()) == []  # nothing was published
    assert _temp_copies() <= before  # nothing was downloaded, or it was removed


def test_memory_source_and_close(sample_dir: Path) -> None:
    """Any fsspec URL is a source; ``close`` removes the copy at once."""
    fs = fsspec.filesystem("memory")
    root = f"/src{uuid.uuid4().hex[:8]}"
    for path in sample_dir.rglob("*"):
        if path.is_file():
            fs.pipe_file(f"{root}/{path.relative_to(sample_dir).as_posix()}", path.read_bytes())
    source = scan_source(f"memory://{root}")
    assert source.is_directory and source.root == f"memory://{root}"
    assert sorted(f.path for f in source.files) == [
        "config.json",
        "sub/deeper/empty.bin",
        "sub/merges.txt",
        "vocab.txt",
    ]
    local = Path(source.files[0].local)
    assert local.exists()
    source.close()
    assert not local.exists()
