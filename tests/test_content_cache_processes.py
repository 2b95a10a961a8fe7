"""The content store's one-download-per-content promise, between real processes, on moto
S3 behind ``tests/faultproxy.py`` (which counts the body bytes the store sends: the
figures never come from our own counters).

- 8 processes fetching one fresh version at once into one assets dir: the store sends
  the version's bytes once (at most 5% more), every process gets the same verified copy;
- two different assets holding one identical big file, fetched at once by two processes:
  that content crosses the network once (its download is held back by the proxy, so the
  second process surely waits on the content's lock), and both versions' copies of it are
  one inode;
- a fetcher SIGKILLed mid-download while it holds its asset's lock and the content locks
  (the lock is shown held first: another fetch of that content times out on it): the
  kernel releases them, another asset sharing the content and the same asset are then
  fetched without waiting, verified, and nothing half-written is ever visible.

Workers are ``tests/helpers_worker.py`` processes (start barrier, overlap checked by
``run_all``); every wait is a hang guard, never a timing assertion.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import servers
from faultproxy import FaultProxy
from helpers_worker import digests, kill_when, result, run_all, start

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.blobs import BlobStore, is_sha256
from modelkit_assets.cache import AssetCache
from modelkit_assets.errors import CacheLockTimeoutError
from modelkit_assets.maintenance.verify import verify

pytestmark = [pytest.mark.slow, pytest.mark.cloud]

MIB = 2**20
#: the most the store may send per byte needed (manifests and listings included)
SLACK = 1.05
#: a hang guard for a fetch that should not wait on anything: never a timing assertion
HANG_GUARD_S = 60.0


@dataclass
class Proxied:
    """A fresh S3 bucket on moto, reached directly (publishing, checks) or through a
    byte-counting proxy (the fetches under test)."""

    url: str
    direct: dict[str, object]
    options: dict[str, object]
    proxy: FaultProxy

    def job(self, **fields: Any) -> dict[str, Any]:
        return {"url": self.url, "options": self.options, **fields}

    def key(self, name: str, version: str, path: str) -> str:
        """The request path of a data object (path-style: /bucket/root/name/version/path)."""
        return "/" + self.url.split("://", 1)[1] + f"/{name}/{version}/{path}"


@pytest.fixture
def s3(s3_server: Any, s3_store_factory: Any) -> Iterator[Proxied]:
    url, direct = s3_store_factory()
    with FaultProxy(s3_server.url, flavour="s3", delay_s=1.0) as proxy:
        yield Proxied(url, direct, servers.storage_options("s3", proxy.url), proxy)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def only_gets_of(*keys: str) -> Any:
    """A fault rule: GETs of these objects only (the data, not manifests or listings)."""
    return lambda method, path: method == "GET" and path.split("?", 1)[0] in keys


def visible_files(assets: Path) -> list[Path]:
    """Every regular file of the assets dir outside the staging area (where a download is
    built before it is renamed in): what a reader could ever open."""
    found = []
    for folder, dirs, names in os.walk(assets):
        if Path(folder) == assets / ".cache":
            dirs[:] = [d for d in dirs if d != "staging"]
        found.extend(Path(folder) / name for name in names)
    return found


def check_blobs(assets: Path) -> list[tuple[str, int]]:
    """Every blob's bytes hash to its name, and nothing else (a temporary copy, a link
    being made) is left among them: (sha256, link count) of each."""
    store = BlobStore(assets)
    stray = [p for p in visible_files(assets) if p.name.endswith((".tmp", ".link"))]
    assert stray == [], f"temporary files left visible: {stray}"
    found = []
    for blob in store.blobs():
        assert hashlib.sha256(blob.path.read_bytes()).hexdigest() == blob.sha256, blob
        found.append((blob.sha256, blob.links))
    if store.root.is_dir():
        for shard in store.root.iterdir():
            assert all(is_sha256(p.name) for p in shard.iterdir()), list(shard.iterdir())
    return found


def test_8_processes_fetching_one_fresh_version_download_it_once(s3: Proxied, tmp_path: Path) -> None:
    source = tmp_path / "src"
    for i in range(4):
        write(source / f"shard-{i}.bin", os.urandom(16 * MIB))
    write(source / "config.json", b'{"layers": 4}')
    AssetStore(s3.url, s3.direct).new(source, "fleet/model")
    size = sum(p.stat().st_size for p in source.iterdir())
    assets = tmp_path / "assets"

    results = run_all(
        [s3.job(action="fetch", spec="fleet/model:0.0", assets_dir=str(assets)) for _ in range(8)],
        tmp_path / "go",
    )

    sent = s3.proxy.stats.bytes_down
    by_key = {k: v for k, v in s3.proxy.stats.bytes_down_by_path.items() if "/fleet/model/0.0/" in k}
    assert size <= sent <= SLACK * size, f"{sent} bytes sent for a {size}-byte version: {by_key}"
    assert sum(not r["from_cache"] for r in results) == 1, results
    version = assets / "fleet" / "model" / "0.0"
    assert {r["path"] for r in results} == {str(version)}
    expected = digests(source)
    assert all(r["digests"] == expected for r in results), results
    assert digests(version) == expected
    # one copy on disk: each file is its blob (one more link), read-only
    for name in expected:
        st = (version / name).stat()
        assert st.st_nlink == 2 and not st.st_mode & 0o222, (name, st)
    assert sorted(links for _sha, links in check_blobs(assets)) == [1] * len(expected)
    assert not any((assets / ".cache" / "staging").iterdir())


def shared_pair(s3: Proxied, root: Path) -> tuple[Path, Path, bytes, tuple[str, str]]:
    """Two assets, ``pair/left`` and ``pair/right`` 0.0, published from sources holding the
    same big ``shared.bin`` and their own small files: (sources, shared bytes, their keys)."""
    shared = os.urandom(40 * MIB)
    left, right = root / "left", root / "right"
    store = AssetStore(s3.url, s3.direct)
    for folder, tag in ((left, b"left"), (right, b"right")):
        write(folder / "shared.bin", shared)
        write(folder / "own.bin", os.urandom(300_000) + tag)
        write(folder / "name.txt", tag)
        store.new(folder, f"pair/{folder.name}")
    keys = (s3.key("pair/left", "0.0", "shared.bin"), s3.key("pair/right", "0.0", "shared.bin"))
    return left, right, shared, keys


def test_two_assets_sharing_a_file_fetched_at_once_download_it_once(s3: Proxied, tmp_path: Path) -> None:
    left, right, shared, shared_keys = shared_pair(s3, tmp_path / "src")
    # the shared content's download is held back a second: whichever process takes its
    # lock first still holds it when the other one asks (they start within half a second)
    s3.proxy.configure(rate=1.0, kinds=["delay"], only=only_gets_of(*shared_keys))
    assets = tmp_path / "assets"

    results = run_all(
        [s3.job(action="fetch", spec=f"pair/{n}:0.0", assets_dir=str(assets)) for n in ("left", "right")],
        tmp_path / "go",
    )

    stats = s3.proxy.stats
    needed = sum(p.stat().st_size for src in (left, right) for p in src.iterdir()) - len(shared)
    shared_sent, size = sum(stats.bytes_down_by_path[k] for k in shared_keys), len(shared)
    assert size <= shared_sent <= SLACK * size, dict(stats.bytes_down_by_path)
    assert needed <= stats.bytes_down <= SLACK * needed, (stats.bytes_down, needed)
    assert stats.faults["delay"] >= 1  # the hold-back did happen
    assert [r["from_cache"] for r in results] == [False, False], results
    assert results[0]["digests"] == digests(left) and results[1]["digests"] == digests(right)
    copies = [os.stat(assets / "pair" / n / "0.0" / "shared.bin") for n in ("left", "right")]
    blob = os.stat(BlobStore(assets).path(hashlib.sha256(shared).hexdigest()))
    assert {(st.st_dev, st.st_ino) for st in (*copies, blob)} == {(blob.st_dev, blob.st_ino)}
    assert blob.st_nlink == 3
    check_blobs(assets)
    assert not any((assets / ".cache" / "staging").iterdir())


def test_a_fetcher_killed_holding_the_locks_blocks_no_one(s3: Proxied, tmp_path: Path) -> None:
    left, right, shared, shared_keys = shared_pair(s3, tmp_path / "src")
    store = AssetStore(s3.url, s3.direct)
    # the big file's answer is held back (past the end of the test: it never arrives): the
    # victim completes a small file first and freezes there (its progress callback), with
    # shared.bin in flight
    s3.proxy.delay_s = 10 * HANG_GUARD_S
    s3.proxy.configure(rate=1.0, kinds=["delay"], only=only_gets_of(shared_keys[0]))
    assets = tmp_path / "assets"
    ready = tmp_path / "frozen"
    victim = start(
        s3.job(action="fetch", spec="pair/left:0.0", assets_dir=str(assets), block_after=1, ready=str(ready))
    )
    staging = assets / ".cache" / "staging"

    def frozen_with_the_lock_held() -> bool:
        # the victim holds the asset's lock and the content locks now: a fetch of another
        # asset needing the same content waits for it (here: gives up after a second)
        impatient = AssetsManager(store, assets, timeout=1)
        with pytest.raises(CacheLockTimeoutError, match="content"):
            impatient.fetch("pair/right:0.0")
        assert AssetCache(assets).installed("pair/right", "0.0") is None
        return True

    kill_when(victim, ready, frozen_with_the_lock_held)
    s3.proxy.configure(rate=0.0)

    # killed mid-download: its partial download is in staging only; nothing visible
    (leftover,) = staging.iterdir()
    partial = leftover / "0.0" / "shared.bin"
    assert not partial.exists() or partial.stat().st_size < len(shared), partial.stat()
    assert AssetCache(assets).installed("pair/left", "0.0") is None
    assert not (assets / "pair").exists()
    assert check_blobs(assets) == []
    assert [p for p in visible_files(assets) if not p.name.endswith(".lock")] == []

    # the kernel released its locks: the other asset and the same asset are fetched now
    sent_before = sum(s3.proxy.stats.bytes_down_by_path[k] for k in shared_keys)
    procs = [
        start(s3.job(action="fetch", spec=f"pair/{n}:0.0", assets_dir=str(assets))) for n in ("right", "left")
    ]
    try:
        outcomes = [result(proc, HANG_GUARD_S) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:  # the other one, when one failed
                proc.kill()
                proc.communicate()

    assert [o.get("error") for o in outcomes] == [None, None], outcomes
    assert outcomes[0]["digests"] == digests(right) and outcomes[1]["digests"] == digests(left)
    # and between them the shared content was downloaded once (the victim got none of it)
    sent, size = sum(s3.proxy.stats.bytes_down_by_path[k] for k in shared_keys), len(shared)
    assert sent_before == 0 and size <= sent <= SLACK * size, (sent_before, sent)
    cache = AssetCache(assets)
    report = verify(cache, [("pair/left", "0.0"), ("pair/right", "0.0")], store=store)
    assert report.ok, [str(p) for p in report.problems]
    copies = {os.stat(assets / "pair" / n / "0.0" / "shared.bin").st_ino for n in ("left", "right")}
    assert len(copies) == 1
    check_blobs(assets)
    assert not any(staging.iterdir())
