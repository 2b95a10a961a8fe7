"""Lazy verified reads through ``modelkit-assets://`` (lazy.py), on every backend.

A big file of a version that is not cached is read by verified 8 MiB blocks instead of
fetched whole: a small read costs at most two blocks from the store, a corrupted block is
refused, kept blocks make a later full fetch cheaper, and every case that cannot be read
by parts (small file, manifest without block hashes, offline) falls back on the full
verified fetch.

What the store sends is measured outside the library: cloud backends are read through
tests/faultproxy.py (no faults: it only counts the body bytes of every answer, by request
path); memory and local stores through a private fsspec instance whose ``cat_file`` and
``open`` count the bytes they return (and, on local disk, the files the backend opens
itself for downloads). The publishing store is another instance: it is never counted.
Reads of kept blocks in the assets dir are counted through Python's ``open`` audit event.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import stat
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import fsspec
import pytest
import servers
from conftest import CLOUD_BACKENDS, file_permissions_apply
from faultproxy import FaultProxy

from modelkit_assets import AssetsManager, AssetStore, IntegrityError, SignatureError
from modelkit_assets.backends.local import LocalBackend
from modelkit_assets.errors import VersionNotFoundError
from modelkit_assets.filesystem import AssetsFileSystem
from modelkit_assets.settings import get_settings
from modelkit_assets.signing import generate_key

BLOCK = 8 * 2**20  # AssetMeta.block_size: the manifest's blocks are of this size
#: five blocks, the last one partial; just over the default lazy-read threshold (32 MiB)
SIZE = 4 * BLOCK + 4321
NAME = "lazy/big"
BIG = "weights.bin"
SMALL = "config.json"
URL = "modelkit-assets://"


@lru_cache(maxsize=1)
def payload() -> bytes:
    """The big file's bytes (the same for every test: each has its own store and cache)."""
    return os.urandom(SIZE)


@lru_cache(maxsize=1)
def payload_sha() -> str:
    return hashlib.sha256(payload()).hexdigest()


def block(data: bytes, index: int) -> bytes:
    return data[index * BLOCK : (index + 1) * BLOCK]


# -- measuring what the store sends -----------------------------------------------------------
class _CountedFile:
    """A store file object whose reads are counted."""

    def __init__(self, handle: Any, count: Callable[[int], None]) -> None:
        self._handle = handle
        self._count = count

    def read(self, *args: Any) -> bytes:
        data: bytes = self._handle.read(*args)
        self._count(len(data))
        return data

    def readinto(self, buffer: Any) -> int:
        got: int = self._handle.readinto(buffer) or 0
        self._count(got)
        return got

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._handle, attr)

    def __enter__(self) -> _CountedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()


class Meter:
    """Bytes the store sent, by object path (``/``-joined, unquoted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._baseline: Counter[str] = Counter()
        self.proxy: FaultProxy | None = None
        self._requests_baseline = 0
        #: reads (a ``cat_file`` or an ``open``) by object path, for stores without a proxy
        self._reads: Counter[str] = Counter()
        self._reads_baseline: Counter[str] = Counter()
        self._seen_baseline = 0

    def add(self, path: str, size: int) -> None:
        with self._lock:
            self._counts[unquote(path)] += size

    def read(self, path: str) -> None:
        with self._lock:
            self._reads[unquote(path)] += 1

    def reads_of(self, version: str, inner: str = BIG) -> int:
        """Requests for the data of one file of one version since the last reset: GETs the
        proxy relayed (GCS's metadata requests left out), or reads of a private fs."""
        suffix = f"/{NAME}/{version}/{inner}"
        if self.proxy is not None:
            with self.proxy._lock:
                seen = self.proxy.stats.seen[self._seen_baseline :]
            paths = [
                unquote(line.split(" ", 1)[1].split("?", 1)[0]) for line in seen if line.startswith("GET ")
            ]
        else:
            with self._lock:
                reads = Counter(self._reads)
            reads.subtract(self._reads_baseline)
            paths = list((+reads).elements())
        return sum(1 for p in paths if p.endswith(suffix) and not p.startswith("/storage/"))

    def counts(self) -> Counter[str]:
        if self.proxy is not None:
            with self.proxy._lock:
                raw = Counter(self.proxy.stats.bytes_down_by_path)
            counts: Counter[str] = Counter()
            for path, size in raw.items():
                counts[unquote(path)] += size
        else:
            with self._lock:
                counts = Counter(self._counts)
        counts.subtract(self._baseline)
        return +counts

    def reset(self) -> None:
        self._baseline = Counter()
        self._baseline = self.counts()
        with self._lock:
            self._reads_baseline = Counter(self._reads)
        if self.proxy is not None:
            self._requests_baseline = self.proxy.stats.requests
            with self.proxy._lock:
                self._seen_baseline = len(self.proxy.stats.seen)

    def requests(self) -> int | None:
        """Requests the proxy saw since the last reset (``None`` without a proxy)."""
        return None if self.proxy is None else self.proxy.stats.requests - self._requests_baseline

    def of(self, version: str, inner: str = BIG) -> int:
        """Data bytes of one file of one version (GCS's metadata answers left out)."""
        suffix = f"/{NAME}/{version}/{inner}"
        return sum(
            n for p, n in self.counts().items() if p.endswith(suffix) and not p.startswith("/storage/")
        )

    def data(self) -> int:
        """Data bytes of every file of every version of ``NAME`` (no manifest, signature or
        listing; GCS's metadata answers left out)."""
        inside = re.compile(rf"/{NAME}/\d+\.\d+/")
        found = self.counts().items()
        return sum(n for p, n in found if inside.search(p) and not p.startswith("/storage/"))

    def total(self) -> int:
        """Every byte the store sent (manifests, listings, signatures too)."""
        return sum(self.counts().values())


def _meter_fs(fs: Any, meter: Meter, monkeypatch: pytest.MonkeyPatch) -> None:
    """Count what ``fs`` (a private instance) returns from ``cat_file`` and ``open``; a
    ``cat_file`` that opens the file itself is counted once."""
    depth = threading.local()
    real_cat, real_open = fs.cat_file, fs.open

    def cat_file(path: str, start: int | None = None, end: int | None = None, **kwargs: Any) -> bytes:
        depth.n = getattr(depth, "n", 0) + 1
        try:
            data: bytes = real_cat(path, start=start, end=end, **kwargs)
        finally:
            depth.n -= 1
        if not depth.n:
            meter.add(fs._strip_protocol(path), len(data))
            meter.read(fs._strip_protocol(path))
        return data

    def open_(path: str, mode: str = "rb", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(path, mode, *args, **kwargs)
        if "r" not in mode or getattr(depth, "n", 0):
            return handle
        key = fs._strip_protocol(path)
        meter.read(key)
        return _CountedFile(handle, lambda n: meter.add(key, n))

    monkeypatch.setattr(fs, "cat_file", cat_file)
    monkeypatch.setattr(fs, "open", open_)
    # the local backend downloads through plain files it opens itself
    real_open_read = LocalBackend.open_read

    def open_read(self: LocalBackend, of: Any, path: str, tuning: Any) -> tuple[Any, int | None]:
        handle, size = real_open_read(self, of, path, tuning)
        if of is not fs:
            return handle, size
        key = fs._strip_protocol(path)
        meter.read(key)
        return _CountedFile(handle, lambda n: meter.add(key, n)), size

    monkeypatch.setattr(LocalBackend, "open_read", open_read)


# -- one store per test, read through a meter ---------------------------------------------------
@dataclass
class Lab:
    backend: str
    direct: AssetStore  # publishes and corrupts; never counted
    store: AssetStore  # what the managers under test read; counted
    meter: Meter
    tmp: Path

    def source(self, data: bytes) -> Path:
        src = self.tmp / "src"
        src.mkdir(exist_ok=True)
        (src / BIG).write_bytes(data)
        (src / SMALL).write_text('{"layers": 3}')
        return src

    def publish(self, data: bytes | None = None, *, sign_key: Path | None = None) -> bytes:
        """``NAME`` version 0.0 (or the next one): ``data`` (the payload by default) as
        ``BIG``, and ``SMALL``."""
        data = payload() if data is None else data
        src = self.source(data)
        if self.direct.exists(NAME):
            self.direct.update(src, NAME, sign_key=sign_key)
        else:
            self.direct.new(src, NAME, sign_key=sign_key)
        self.meter.reset()
        return data

    def manager(self, assets: Path | None = None, **kwargs: Any) -> AssetsManager:
        return AssetsManager(self.store, assets or self.tmp / "assets", **kwargs)

    def key(self, version: str, inner: str = BIG) -> str:
        return self.direct.layout.data(NAME, version, inner)


@pytest.fixture
def lab(
    backend: str,
    store_url: tuple[str, dict[str, object]],
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Lab]:
    url, options = store_url
    direct = AssetStore(url, options)
    meter = Meter()
    if backend in CLOUD_BACKENDS:
        server = request.getfixturevalue(f"{backend}_server")
        with FaultProxy(server.url, flavour=backend) as proxy:
            meter.proxy = proxy
            store = AssetStore(url, servers.storage_options(backend, proxy.url))
            yield Lab(backend, direct, store, meter, tmp_path)
        return
    store = AssetStore(url, {**options, "skip_instance_cache": True})
    assert store.fs is not direct.fs
    _meter_fs(store.fs, meter, monkeypatch)
    yield Lab(backend, direct, store, meter, tmp_path)


# -- helpers ------------------------------------------------------------------------------------
_watched: list[tuple[str, list[int]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _watched:
        return
    path, mode = args[0], args[1]
    reading = isinstance(mode, str) and mode.startswith("r") and "+" not in mode
    if reading and isinstance(path, str | os.PathLike):
        path = os.fspath(path)
        for folder, count in _watched:
            if isinstance(path, str) and path.startswith(folder):
                count[0] += 1


sys.addaudithook(_audit)  # for the process's life: idle (one comparison) outside opens_under


@contextlib.contextmanager
def opens_under(folder: Path) -> Iterator[list[int]]:
    """Count the files opened for reading under ``folder`` meanwhile (Python's ``open``
    audit event, in every thread; a missing file counts too): ``[count]``, kept up to date."""
    watch = (str(folder) + os.sep, [0])
    _watched.append(watch)
    try:
        yield watch[1]
    finally:
        _watched.remove(watch)


def kept_blocks(assets: Path, sha: str | None = None) -> dict[int, bytes]:
    """The blocks kept for the payload, or the content ``sha``
    (``.cache/.blocks/{sha256}/{index:08d}``)."""
    folder = assets / ".cache" / ".blocks" / (sha or payload_sha())
    if not folder.exists():
        return {}
    found = {}
    for entry in sorted(folder.iterdir()):
        assert entry.name.isdigit() and len(entry.name) == 8, f"not a block: {entry}"
        found[int(entry.name)] = entry.read_bytes()
    return found


def assert_kept_blocks_are_right(assets: Path, data: bytes) -> dict[int, bytes]:
    kept = kept_blocks(assets)
    for index, content in kept.items():
        assert content == block(data, index), f"kept block {index} differs from the payload"
    return kept


def installed(manager: AssetsManager, version: str) -> bool:
    return manager.cache.installed(NAME, version) is not None


def read_at(handle: Any, offset: int, length: int) -> bytes:
    handle.seek(offset)
    data: bytes = handle.read(length)
    return data


# -- 1. a small read costs at most two blocks ------------------------------------------------------
def test_a_small_read_in_the_middle_reads_at_most_two_blocks_and_keeps_them(lab: Lab) -> None:
    data = lab.publish()
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)  # default settings: 32 MiB threshold
    middle = SIZE // 2
    with fsspec.open(f"{URL}{NAME}:0.0/{BIG}", "rb", manager=manager) as handle:
        got = read_at(handle, middle, 4096)
    assert got == data[middle : middle + 4096]

    read = lab.meter.of("0.0")
    print(f"\n[{lab.backend}] 4 KiB at byte {middle} of {SIZE}: {read} bytes read from the store")
    assert 0 < read <= 2 * BLOCK, read
    assert lab.meter.data() == read  # no other data object was touched
    assert not installed(manager, "0.0")
    assert not (assets / "lazy" / "big").exists()  # not fetched whole
    assert not (assets / ".cache" / ".blobs" / payload_sha()[:2] / payload_sha()).exists()
    kept = assert_kept_blocks_are_right(assets, data)
    assert middle // BLOCK in kept and len(kept) <= 2, sorted(kept)
    assert sum(len(b) for b in kept.values()) <= read


# -- 2. a corrupted block is refused -----------------------------------------------------------------
def test_a_corrupted_block_is_refused_and_the_intact_ones_still_read(lab: Lab) -> None:
    data = lab.publish()
    bad = bytearray(data)
    bad[3 * BLOCK - 1] ^= 0xFF  # the last byte of block 2, outside the range read below
    lab.direct.fs.pipe_file(lab.key("0.0"), bytes(bad))
    lab.meter.reset()
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)
    fs = AssetsFileSystem(manager=manager)
    with fs.open(f"{NAME}:0.0/{BIG}", "rb") as handle:
        for _ in range(2):  # and again: a refused block is never served from a buffer
            handle.seek(2 * BLOCK + 100)
            with pytest.raises(IntegrityError, match=r"lazy/big:0\.0"):
                handle.read(4096)
        assert read_at(handle, 4 * BLOCK + 10, 100) == data[4 * BLOCK + 10 : 4 * BLOCK + 110]
        assert read_at(handle, BLOCK - 50, 100) == data[BLOCK - 50 : BLOCK + 50]  # blocks 0 and 1
    with fs.open(f"{NAME}:0.0/{BIG}", "rb") as again, pytest.raises(IntegrityError):
        read_at(again, 3 * BLOCK - 10, 5)

    kept = assert_kept_blocks_are_right(assets, data)
    assert 2 not in kept and {0, 1, 4} <= set(kept), sorted(kept)
    assert not installed(manager, "0.0")
    blocks = assets / ".cache" / ".blocks" / payload_sha()
    assert sorted(p.name for p in blocks.iterdir()) == [f"{i:08d}" for i in sorted(kept)]  # no leftovers


# -- 3. a full fetch takes the kept blocks -----------------------------------------------------------
def test_a_full_fetch_reuses_the_kept_blocks_then_drops_them(lab: Lab) -> None:
    data = lab.publish()
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)
    fs = AssetsFileSystem(manager=manager)
    with fs.open(f"{NAME}:0.0/{BIG}", "rb") as handle:
        assert read_at(handle, 2 * BLOCK - 10, 20) == data[2 * BLOCK - 10 : 2 * BLOCK + 10]  # 1 and 2
        assert read_at(handle, SIZE - 5, 100) == data[-5:]  # the last, partial block
    kept = assert_kept_blocks_are_right(assets, data)
    assert set(kept) == {1, 2, 4}, sorted(kept)
    # a kept block changed on disk is not trusted: fetched again
    (assets / ".cache" / ".blocks" / payload_sha() / f"{1:08d}").write_bytes(b"\0" * BLOCK)
    good = len(kept[2]) + len(kept[4])
    lab.meter.reset()

    result = manager.fetch_info(f"{NAME}:0.0")
    assert not result.from_cache
    assert result.reused_bytes >= good, (result.reused_bytes, good)
    assert lab.meter.of("0.0") == SIZE - good
    assert lab.meter.of("0.0", SMALL) == len('{"layers": 3}')
    assert (result.path / BIG).read_bytes() == data
    assert installed(manager, "0.0")
    assert not (assets / ".cache" / ".blocks" / payload_sha()).exists()
    # and reading it now costs nothing: the cached copy is opened
    lab.meter.reset()
    assert fs.cat_file(f"{NAME}:0.0/{BIG}", start=5, end=50) == data[5:50]
    assert lab.meter.data() == 0


@pytest.mark.parametrize("run", [8, 1])
def test_a_full_fetch_takes_each_run_of_missing_blocks_in_one_request(
    lab: Lab, run: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Block 2 of 5 read lazily: the full fetch downloads blocks 0-1 and 3-4 with one ranged
    request each (not one per block), up to ``ASSEMBLY_RUN`` blocks a request."""
    from modelkit_assets import lazy

    monkeypatch.setattr(lazy, "ASSEMBLY_RUN", run)
    data = lab.publish()
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)
    with AssetsFileSystem(manager=manager).open(f"{NAME}:0.0/{BIG}", "rb") as handle:
        assert read_at(handle, 2 * BLOCK + 7, 100) == data[2 * BLOCK + 7 : 2 * BLOCK + 107]
    assert set(assert_kept_blocks_are_right(assets, data)) == {2}
    lab.meter.reset()

    result = manager.fetch_info(f"{NAME}:0.0")
    assert (result.path / BIG).read_bytes() == data
    assert lab.meter.of("0.0") == SIZE - BLOCK  # each missing block once
    assert lab.meter.reads_of("0.0") == (2 if run >= 2 else 4), lab.meter.reads_of("0.0")


# -- 4. what cannot be read by parts is fetched whole ------------------------------------------------
def _drop_blocks(meta: dict[str, Any]) -> dict[str, Any]:
    """An older manifest of ours: sizes and sha256, no block hashes."""
    meta = dict(meta)
    meta.pop("block_size", None)
    meta["files"] = {p: {"size": e["size"], "sha256": e["sha256"]} for p, e in meta["files"].items()}
    return meta


def _modelkit(meta: dict[str, Any]) -> dict[str, Any]:
    """What modelkit 0.1.3 writes: no sizes, no hashes."""
    return {"push_date": meta["push_date"], "is_directory": True, "contents": meta["contents"]}


@pytest.mark.parametrize("case", ["small_file", "below_threshold", "meta_without_blocks", "modelkit_meta"])
def test_a_file_that_cannot_be_read_by_parts_is_fetched_whole(
    lab: Lab, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = lab.publish()
    inner, expected = BIG, data
    if case == "small_file":
        inner, expected = SMALL, b'{"layers": 3}'
    elif case == "below_threshold":
        monkeypatch.setenv("MODELKIT_ASSETS_LAZY_READ_MIN_BYTES", str(SIZE + 1))
        get_settings.cache_clear()
    else:
        key = lab.direct.layout.meta(NAME, "0.0")
        meta = json.loads(lab.direct.fs.cat_file(key))
        assert meta["files"][BIG]["blocks"]  # what is taken away
        rewrite = _drop_blocks if case == "meta_without_blocks" else _modelkit
        lab.direct.fs.pipe_file(key, json.dumps(rewrite(meta)).encode())
        lab.meter.reset()
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)
    if case == "below_threshold":
        assert manager.settings.lazy_read_min_bytes == SIZE + 1
    fs = AssetsFileSystem(manager=manager)
    with fs.open(f"{NAME}:0.0/{inner}", "rb") as handle:
        assert read_at(handle, len(expected) // 2, 4096) == expected[len(expected) // 2 :][:4096]
        assert read_at(handle, 0, -1) == expected
    assert installed(manager, "0.0")
    assert (assets / "lazy" / "big" / "0.0" / BIG).read_bytes() == data
    assert lab.meter.of("0.0") == SIZE  # fetched whole, once (the meter sees whole downloads)
    assert kept_blocks(assets) == {}


def test_offline_reads_only_what_the_cache_holds(lab: Lab) -> None:
    data = lab.publish()
    assets = lab.tmp / "assets"
    offline = AssetsFileSystem(manager=lab.manager(assets, offline=True))
    with pytest.raises(VersionNotFoundError, match="offline"):
        offline.open(f"{NAME}:0.0/{BIG}", "rb")
    assert lab.meter.total() == 0 and lab.meter.requests() in (None, 0)
    assert not assets.exists() or not any(assets.rglob("*"))

    lab.manager(assets).fetch(f"{NAME}:0.0")  # online: fetched whole
    lab.meter.reset()
    with offline.open(f"{NAME}:0.0/{BIG}", "rb") as handle:
        assert read_at(handle, SIZE // 2, 4096) == data[SIZE // 2 : SIZE // 2 + 4096]
        assert read_at(handle, 0, -1) == data
    assert lab.meter.total() == 0 and lab.meter.requests() in (None, 0)
    assert kept_blocks(assets) == {}


# -- 5. signatures first ------------------------------------------------------------------------------
def test_an_unsigned_version_is_refused_before_any_block_is_read(lab: Lab) -> None:
    (lab.tmp / "keys").mkdir()
    private, public = generate_key(lab.tmp / "keys" / "publisher.pem")
    data = lab.publish()  # 0.0: unsigned
    lab.publish(sign_key=private)  # 0.1: signed
    assets = lab.tmp / "assets"
    fs = AssetsFileSystem(manager=lab.manager(assets, require_signature=True, trusted_keys=[public]))

    with pytest.raises(SignatureError, match=r"lazy/big"):
        fs.open(f"{NAME}:0.0/{BIG}", "rb")
    assert lab.meter.data() == 0
    assert not (assets / ".cache" / ".blocks").exists()
    assert not (assets / "lazy" / "big" / "0.0").exists()

    with fs.open(f"{NAME}:0.1/{BIG}", "rb") as handle:
        assert read_at(handle, SIZE // 2, 4096) == data[SIZE // 2 : SIZE // 2 + 4096]
    assert 0 < lab.meter.of("0.1") <= 2 * BLOCK
    assert lab.meter.of("0.0") == 0
    assert not installed(fs.manager, "0.1")
    assert SIZE // 2 // BLOCK in assert_kept_blocks_are_right(assets, data)


# -- 6. content the cache holds already ---------------------------------------------------------------
def test_content_in_the_content_store_is_opened_there_without_a_store_read(lab: Lab) -> None:
    data = lab.publish()  # 0.0
    lab.publish()  # 0.1: the same files
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)
    manager.fetch(f"{NAME}:0.0")
    blob = assets / ".cache" / ".blobs" / payload_sha()[:2] / payload_sha()
    assert blob.is_file()
    lab.meter.reset()

    fs = AssetsFileSystem(manager=manager)
    with fs.open(f"{NAME}:0.1/{BIG}", "rb") as handle:
        assert read_at(handle, SIZE // 2, 4096) == data[SIZE // 2 : SIZE // 2 + 4096]
        assert read_at(handle, 0, -1) == data
        assert os.path.samefile(handle.name, blob)
    assert lab.meter.data() == 0
    assert not installed(manager, "0.1")
    assert kept_blocks(assets) == {}


# -- 7. a lazy file is a file ----------------------------------------------------------------------------
def test_a_lazy_file_seeks_and_reads_like_a_normal_file(lab: Lab) -> None:
    data = lab.publish()
    assets = lab.tmp / "assets"
    manager = lab.manager(assets)
    fs = AssetsFileSystem(manager=manager)
    reference = io.BytesIO(data)
    with fs.open(f"{NAME}:0.0/{BIG}", "rb") as handle:
        assert handle.readable() and handle.seekable()
        assert handle.tell() == 0
        for name, step in [
            ("start", lambda f: f.read(10)),
            ("tell after a read", lambda f: f.tell()),
            ("across blocks 0|1", lambda f: (f.seek(BLOCK - 5), f.read(10), f.tell())),
            ("exactly one block", lambda f: (f.seek(BLOCK), f.read(BLOCK) == data[BLOCK : 2 * BLOCK])),
            ("across 1|2|3", lambda f: (f.seek(2 * BLOCK - 1), f.read(BLOCK + 2))),
            ("relative seek back", lambda f: (f.seek(3 * BLOCK + 1), f.seek(-2, io.SEEK_CUR), f.read(4))),
            ("seek to the end", lambda f: (f.seek(0, io.SEEK_END), f.tell(), f.read(), f.read(1))),
            ("from the end to EOF", lambda f: (f.seek(-100, io.SEEK_END), f.read())),
            ("the last byte", lambda f: (f.seek(SIZE - 1), f.read(5), f.tell())),
            ("past the end", lambda f: (f.seek(SIZE + 10), f.read(5), f.tell())),
            ("read1", lambda f: (f.seek(7), f.read1(3))),
            ("readinto", lambda f: (f.seek(BLOCK - 2), f.readinto(buffer := bytearray(6)), bytes(buffer))),
            ("read() from the last block", lambda f: (f.seek(4 * BLOCK), f.read(), f.tell())),
        ]:
            assert step(handle) == step(reference), name
        with pytest.raises((ValueError, OSError)):
            handle.seek(-1)
    assert handle.closed
    # fsspec's own ranged reads go through the same file
    assert fs.cat_file(f"{NAME}:0.0/{BIG}", start=BLOCK - 3, end=BLOCK + 3) == data[BLOCK - 3 : BLOCK + 3]
    assert fs.tail(f"{NAME}:0.0/{BIG}", 10) == data[-10:]
    assert fs.size(f"{NAME}:0.0/{BIG}") == SIZE
    assert not installed(manager, "0.0")
    assert set(assert_kept_blocks_are_right(assets, data)) == {0, 1, 2, 3, 4}


# -- 8. a read-only assets dir --------------------------------------------------------------------------
def test_a_read_only_assets_dir_still_serves_lazy_reads_without_keeping_blocks(lab: Lab) -> None:
    data = lab.publish()
    assets = lab.tmp / "assets"
    assets.mkdir()
    assets.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    manager = lab.manager(assets)
    fs = AssetsFileSystem(manager=manager)
    try:
        with file_permissions_apply():  # as root too, the read-only mode must bite
            with pytest.raises(PermissionError):
                (assets / "probe").write_bytes(b"")
            with fs.open(f"{NAME}:0.0/{BIG}", "rb") as handle:
                assert read_at(handle, SIZE // 2, 4096) == data[SIZE // 2 : SIZE // 2 + 4096]
                assert read_at(handle, BLOCK - 8, 16) == data[BLOCK - 8 : BLOCK + 8]
    finally:
        assets.chmod(stat.S_IRWXU)
    assert 0 < lab.meter.of("0.0") <= 3 * BLOCK  # blocks 2, 0 and 1
    assert list(assets.iterdir()) == []  # nothing kept, nothing installed
    assert not installed(manager, "0.0")


# -- 9. read() to the end reads each block once ------------------------------------------------------
SMALL_BLOCK = 64 * 1024  # a manifest may say any block size: small ones keep this test quick


@pytest.mark.parametrize("assets_dir", ["writable", "read_only"])
def test_reading_to_the_end_reads_each_block_from_the_store_once(
    lab: Lab, assets_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``read()``, ``fs.cat``: Python's raw ``readall`` asks the lazy file for 8 KiB at a
    time; each block must still be read from the store once, kept or not (a read-only
    assets dir keeps nothing). Blocks of 64 KiB here (a manifest rewritten with their
    hashes): with 8 MiB blocks every 8 KiB would cost a whole block."""
    data = os.urandom(16 * SMALL_BLOCK + 123)
    lab.publish(data)
    key = lab.direct.layout.meta(NAME, "0.0")
    meta = json.loads(lab.direct.fs.cat_file(key))
    meta["block_size"] = SMALL_BLOCK
    meta["files"][BIG]["blocks"] = [
        hashlib.sha256(data[i : i + SMALL_BLOCK]).hexdigest() for i in range(0, len(data), SMALL_BLOCK)
    ]
    lab.direct.fs.pipe_file(key, json.dumps(meta).encode())
    monkeypatch.setenv("MODELKIT_ASSETS_LAZY_READ_MIN_BYTES", str(SMALL_BLOCK))
    get_settings.cache_clear()
    assets = lab.tmp / "assets"
    assets.mkdir()
    if assets_dir == "read_only":
        assets.chmod(stat.S_IRUSR | stat.S_IXUSR)
    manager = lab.manager(assets)
    fs = AssetsFileSystem(manager=manager)
    lab.meter.reset()
    size, blocks = len(data), -(-len(data) // SMALL_BLOCK)
    try:
        with file_permissions_apply(), opens_under(assets / ".cache" / ".blocks") as kept_reads:
            with fs.open(f"{NAME}:0.0/{BIG}", "rb") as handle:
                assert handle.read() == data
                assert handle.tell() == size
            assert fs.cat(f"{NAME}:0.0/{BIG}") == data  # a second pass: kept blocks, or the store
    finally:
        assets.chmod(stat.S_IRWXU)
    assert not installed(manager, "0.0")
    read = lab.meter.of("0.0")
    print(
        f"\n[{lab.backend}, {assets_dir}] read() of {size} bytes, twice: {read} bytes from the store, "
        f"{kept_reads[0]} reads of kept blocks"
    )
    if assets_dir == "writable":
        assert read == size, f"{read} bytes from the store for {size} (each block once)"
        # each pass reads each kept block (or tries where it would be) once
        assert kept_reads[0] <= 2 * blocks, f"{kept_reads[0]} reads of kept blocks for {blocks} blocks x 2"
        kept = kept_blocks(assets, hashlib.sha256(data).hexdigest())
        assert b"".join(kept[i] for i in range(blocks)) == data and len(kept) == blocks
    else:
        assert read == 2 * size, f"{read} bytes from the store for 2 x {size} (each block once a pass)"
        assert list(assets.iterdir()) == []
