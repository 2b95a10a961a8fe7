"""Each byte is read once: publish hashes while it uploads, fetch while it downloads.

The manifest records a sha256 per 8 MiB block of every file, computed in that same pass.
Reads are counted with the kernel's own counter (``rchar`` of ``/proc/self/io``: bytes
this process passed through ``read()``), so a second pass over a file cannot hide.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import modelkit_assets.store as store_module
from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import IntegrityError, InvalidMetaError
from modelkit_assets.integrity import BLOCK_SIZE, StreamHasher
from modelkit_assets.manifest import AssetMeta

MIB = 2**20


def _rchar() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def _blocks(data: bytes) -> list[str]:
    return [hashlib.sha256(data[i : i + BLOCK_SIZE]).hexdigest() for i in range(0, len(data), BLOCK_SIZE)]


@pytest.mark.parametrize("url", ["memory", "local"])
def test_publish_and_fetch_read_each_byte_once(url: str, tmp_path: Path) -> None:
    """A 24 MiB file: publish reads it once (it was read twice: hashed, then uploaded);
    fetch reads nothing back from the cache (it re-read the file to verify it)."""
    root = f"memory://single-{os.getpid()}-{tmp_path.name}" if url == "memory" else str(tmp_path / "store")
    store = AssetStore(root)
    data = os.urandom(24 * MIB + 17)
    source = tmp_path / "weights.bin"
    source.write_bytes(data)

    before = _rchar()
    store.new(source, "big")
    publish_read = _rchar() - before
    assert len(data) <= publish_read <= 1.1 * len(data)

    manager = AssetsManager(store, tmp_path / "cache")
    before = _rchar()
    path = manager.fetch("big:0.0")
    fetch_read = _rchar() - before
    # a local store is read once (the copy); a memory store not at all; never the cache
    allowed = len(data) if url == "local" else 0
    assert fetch_read <= allowed + 0.1 * len(data)
    assert path.read_bytes() == data


def test_manifest_records_a_sha256_per_block(store: AssetStore, tmp_path: Path) -> None:
    data = os.urandom(2 * BLOCK_SIZE + 5)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "shard.bin").write_bytes(data)
    (folder / "exact.bin").write_bytes(data[:BLOCK_SIZE])
    (folder / "empty.txt").write_bytes(b"")
    store.new(folder, "blocks/model")
    meta = store.meta("blocks/model", "0.0")
    assert meta.block_size == BLOCK_SIZE
    shard = meta.files["shard.bin"]
    assert shard.sha256 == hashlib.sha256(data).hexdigest()
    assert list(shard.blocks or ()) == _blocks(data)
    assert len(shard.blocks or ()) == 3
    assert list(meta.files["exact.bin"].blocks or ()) == [hashlib.sha256(data[:BLOCK_SIZE]).hexdigest()]
    assert meta.files["empty.txt"].blocks == ()
    raw = json.loads(store.fs.cat_file(store.layout.meta("blocks/model", "0.0")))
    assert raw["block_size"] == BLOCK_SIZE
    assert raw["files"]["shard.bin"]["blocks"] == _blocks(data)
    # what modelkit 0.1.3 reads is unchanged
    assert sorted(raw["contents"]) == ["empty.txt", "exact.bin", "shard.bin"]
    fetched = AssetsManager(store, tmp_path / "cache").fetch("blocks/model:0.0")
    assert (fetched / "shard.bin").read_bytes() == data


def test_stream_hasher_blocks_do_not_depend_on_the_chunking() -> None:
    data = os.urandom(BLOCK_SIZE * 2 + 1000)
    expected = _blocks(data)
    for step in (MIB - 1, 4096, 3 * MIB + 7, BLOCK_SIZE, len(data)):
        hasher = StreamHasher()
        for i in range(0, len(data), step):
            hasher.update(data[i : i + step])
        entry = hasher.entry()
        assert list(entry.blocks or ()) == expected
        assert entry.sha256 == hashlib.sha256(data).hexdigest()
        assert entry.size == len(data)


def _meta_with(files: dict[str, object], **top: object) -> bytes:
    return json.dumps(
        {
            "push_date": "2026-01-01T00:00:00+00:00",
            "is_directory": True,
            "contents": sorted(files),
            "files": files,
            **top,
        }
    ).encode()


@pytest.mark.parametrize(
    ("entry", "top"),
    [
        ({"size": 10, "sha256": "a" * 64, "blocks": ["b" * 64]}, {}),  # no block_size
        ({"size": 10, "sha256": "a" * 64, "blocks": ["b" * 64] * 3}, {"block_size": 8}),  # 3 != 10/8
        ({"size": 10, "sha256": "a" * 64, "blocks": ["xyz"]}, {"block_size": 16}),
        ({"size": 10, "sha256": "a" * 64, "blocks": "b" * 64}, {"block_size": 16}),
        ({"size": 10, "sha256": "a" * 64, "blocks": []}, {"block_size": 0}),
        ({"size": None, "sha256": None, "blocks": ["b" * 64]}, {"block_size": 16}),
    ],
)
def test_invalid_block_hashes_are_refused(entry: dict[str, object], top: dict[str, object]) -> None:
    with pytest.raises(InvalidMetaError, match=r"block"):
        AssetMeta.from_json(_meta_with({"f.bin": entry}, **top), "n", "0.0")


def test_metas_without_blocks_still_parse_and_round_trip() -> None:
    meta = AssetMeta.from_json(_meta_with({"f.bin": {"size": 3, "sha256": "a" * 64}}), "n", "0.0")
    assert meta.files["f.bin"].blocks is None and meta.block_size is None
    assert "block_size" not in json.loads(meta.to_json())
    assert "blocks" not in json.loads(meta.to_json())["files"]["f.bin"]


def test_update_reads_only_same_size_files_before_uploading(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """To find unchanged files, ``update`` hashes only files whose size matches the
    previous version's; every other file is read once, by its upload."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "same.bin").write_bytes(b"s" * 1000)
    (folder / "edited.bin").write_bytes(b"e" * 1000)
    (folder / "grown.bin").write_bytes(b"g" * 1000)
    store.new(folder, "upd")
    (folder / "edited.bin").write_bytes(b"E" * 1000)  # same size, other bytes
    (folder / "grown.bin").write_bytes(b"g" * 2000)
    (folder / "added.bin").write_bytes(b"a" * 10)
    hashed: list[str] = []
    real = store_module.hash_local

    def spy(path: str) -> object:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(store_module, "hash_local", spy)
    store.update(folder, "upd")
    assert sorted(hashed) == ["edited.bin", "same.bin"]
    meta = store.meta("upd", "0.1")
    for name in ("same.bin", "edited.bin", "grown.bin", "added.bin"):
        data = (folder / name).read_bytes()
        assert meta.files[name].sha256 == hashlib.sha256(data).hexdigest()
        assert list(meta.files[name].blocks or ()) == _blocks(data)


def test_a_corrupted_object_is_refused_in_the_same_pass(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Altered stored bytes of the right size: refused from the hash taken while they
    were written, nothing installed, and the cache file never read back."""
    data = os.urandom(3 * MIB)
    source = tmp_path / "w.bin"
    source.write_bytes(data)
    store.new(source, "bad")
    key = store.layout.data("bad", "0.0")
    store.fs.pipe_file(key, bytes([data[0] ^ 1]) + data[1:])
    import modelkit_assets.integrity as integrity

    def no_second_pass(*args: object, **kwargs: object) -> None:
        raise AssertionError("a downloaded file was read back to be verified")

    for reader in ("sha256_file", "measure_local", "hash_local"):
        monkeypatch.setattr(integrity, reader, no_second_pass)
    manager = AssetsManager(store, tmp_path / "cache")
    with pytest.raises(IntegrityError, match=r"bad:0\.0 has sha256"):
        manager.fetch("bad:0.0")
    assert not (tmp_path / "cache" / "bad" / "0.0").exists()


def test_concurrent_files_each_get_their_own_hashes(tmp_path: Path) -> None:
    """16 files uploaded at once (one hasher each) get their own exact hashes."""
    store = AssetStore(f"memory://threads-{os.getpid()}-{tmp_path.name}")
    folder = tmp_path / "many"
    folder.mkdir()
    contents = {f"f{i}.bin": os.urandom(MIB + i) for i in range(16)}
    for name, data in contents.items():
        (folder / name).write_bytes(data)
    store.new(folder, "many")
    meta = store.meta("many", "0.0")
    for name, data in contents.items():
        assert meta.files[name].sha256 == hashlib.sha256(data).hexdigest()
        assert list(meta.files[name].blocks or ()) == _blocks(data)
