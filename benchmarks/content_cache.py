"""The content-addressed cache's targets, measured on moto S3 through a byte-counting proxy.

Every byte a client downloads crosses ``proxy.LatencyProxy`` (0 ms added), which counts
what the server sent: the figures below never come from our own counters.

- delta: 8 files of ``--shard-mib`` (16) MiB published and fetched; one file changed and
  published as the next version, fetched into the cache holding the first: bytes
  downloaded and growth of the cache on disk (each inode counted once), per changed byte;
- lazy: 4 KiB read in the middle of a ``--size-mib`` (1024) MiB file through
  ``modelkit-assets://`` in a fresh cache: bytes downloaded, in 8 MiB blocks; then one byte
  of that block flipped in the store: the read must raise ``IntegrityError``;
- fleet: 8 processes fetching the same fresh ``--size-mib`` MiB version at once into one
  assets dir (released together by a start barrier): bytes downloaded per byte of the version;
- hit: a pinned cache hit, in-process, with the server and the proxy stopped: median time
  over ``--hits`` calls and ``os.stat`` calls per hit.

Usage: ``python benchmarks/content_cache.py [--size-mib 1024] [--shard-mib 16]``; prints one
JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import runner  # noqa: E402 - after the path is set
from proxy import LatencyProxy  # noqa: E402

MIB = 2**20
BLOCK = 8 * MIB

WORKER = """
import json, os, sys, time
from modelkit_assets import AssetsManager, AssetStore

url, options, assets, barrier, count = sys.argv[1:6]
open(os.path.join(barrier, str(os.getpid())), "w").close()
while len(os.listdir(barrier)) < int(count):
    time.sleep(0.005)
started = time.time()
result = AssetsManager(AssetStore(url, json.loads(options)), assets).fetch_info("fleet/model:0.0")
print(json.dumps({"started": started, "ended": time.time(), "from_cache": result.from_cache,
                  "path": str(result.path)}))
"""


def disk_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root``, each inode once (hard links share)."""
    seen: dict[tuple[int, int], int] = {}
    for folder, _dirs, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(folder, name))
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def delta(url: str, options: dict[str, Any], proxy: LatencyProxy, root: Path, shard: int) -> dict[str, Any]:
    from modelkit_assets import AssetsManager, AssetStore

    folder = root / "delta-src"
    folder.mkdir()
    for i in range(8):
        runner.write_random(folder / f"shard-{i}.bin", shard)
    store = AssetStore(url, options)
    store.new(folder, "delta/model")
    assets = root / "delta-assets"
    manager = AssetsManager(store, assets)
    manager.fetch("delta/model:0.0")
    runner.write_random(folder / "shard-3.bin", shard)
    store.update(folder, "delta/model")
    before_disk, before_down = disk_bytes(assets), proxy.bytes_down
    result = manager.fetch_info("delta/model:0.1")
    downloaded = proxy.bytes_down - before_down
    grown = disk_bytes(assets) - before_disk
    return {
        "changed_bytes": shard,
        "downloaded_bytes": downloaded,
        "downloaded_per_changed": round(downloaded / shard, 4),
        "cache_growth_bytes": grown,
        "growth_per_changed": round(grown / shard, 4),
        "reported_reused_bytes": result.reused_bytes,
    }


def lazy(
    url: str, options: dict[str, Any], proxy: LatencyProxy, root: Path, size: int, moto_url: str
) -> dict[str, Any]:
    import fsspec

    from modelkit_assets import AssetsManager, AssetStore, IntegrityError

    source = root / "lazy.bin"
    runner.write_random(source, size)
    store = AssetStore(url, options)
    store.new(source, "lazy/big")
    middle = (size // 2) - 2048
    with open(source, "rb") as handle:
        handle.seek(middle)
        expected = handle.read(4096)
    fs = fsspec.filesystem("modelkit-assets", manager=AssetsManager(store, root / "lazy-assets"))
    before = proxy.bytes_down
    with fs.open("lazy/big:0.0", "rb") as handle:
        handle.seek(middle)
        data = handle.read(4096)
    downloaded = proxy.bytes_down - before
    # one byte of that block flipped in the store (written directly to moto)
    direct = runner.Bench(runner.Options(rtt_ms=0), root)
    direct.moto_url = moto_url
    s3 = direct.s3fs(direct=True)
    key = f"{runner.BUCKET}/content/lazy/big/0.0"
    raw = bytearray(s3.cat_file(key))
    raw[middle] ^= 0xFF
    s3.pipe_file(key, bytes(raw))
    del raw
    fresh = fsspec.filesystem("modelkit-assets", manager=AssetsManager(store, root / "lazy-assets-2"))
    refused = None
    with fresh.open("lazy/big:0.0", "rb") as handle:
        handle.seek(middle)
        try:
            handle.read(4096)
        except IntegrityError as err:
            refused = str(err)
    return {
        "file_bytes": size,
        "read_bytes": 4096,
        "correct": data == expected,
        "downloaded_bytes": downloaded,
        "downloaded_blocks": round(downloaded / BLOCK, 3),
        "flipped_byte_refused": refused is not None,
        "error": refused,
    }


def fleet(url: str, options: dict[str, Any], proxy: LatencyProxy, root: Path, size: int) -> dict[str, Any]:
    from modelkit_assets import AssetStore

    source = root / "fleet.bin"
    runner.write_random(source, size)
    folder = root / "fleet-src"
    folder.mkdir()
    os.replace(source, folder / "model.bin")
    AssetStore(url, options).new(folder, "fleet/model")
    barrier = root / "barrier"
    barrier.mkdir()
    script = root / "worker.py"
    script.write_text(WORKER)
    before = proxy.bytes_down
    count = 8
    args = [url, json.dumps(options), str(root / "fleet-assets"), str(barrier), str(count)]
    workers = [
        subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE) for _ in range(count)
    ]
    results = []
    for worker in workers:
        out, _ = worker.communicate(timeout=3600)
        if worker.returncode:
            raise RuntimeError(f"a fleet worker failed ({worker.returncode})")
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    downloaded = proxy.bytes_down - before
    last_start = max(r["started"] for r in results)
    return {
        "processes": count,
        "version_bytes": size,
        "downloaded_bytes": downloaded,
        "downloaded_per_version_byte": round(downloaded / size, 4),
        "downloads": sum(not r["from_cache"] for r in results),
        "all_started_before_first_end": last_start < min(r["ended"] for r in results),
        "same_path": len({r["path"] for r in results}) == 1,
    }


def hit(url: str, options: dict[str, Any], root: Path, bench: runner.Bench, repeat: int) -> dict[str, Any]:
    from modelkit_assets import AssetsManager, AssetStore

    source = root / "hit.bin"
    source.write_bytes(os.urandom(4096))
    store = AssetStore(url, options)
    store.new(source, "hit/small")
    manager = AssetsManager(store, root / "hit-assets")
    manager.fetch("hit/small:0.0")
    bench.stop_servers()  # any request would now fail
    manager = AssetsManager(AssetStore(url, options), root / "hit-assets")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        manager.fetch("hit/small:0.0")
        times.append(time.perf_counter() - start)
    calls = [0]
    real_stat = os.stat

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real_stat(*args, **kwargs)

    os.stat = counting  # type: ignore[assignment]
    try:
        manager.fetch("hit/small:0.0")
    finally:
        os.stat = real_stat
    return {"calls": repeat, "median_us": round(statistics.median(times) * 1e6, 2), "stat_calls": calls[0]}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--shard-mib", type=int, default=16)
    parser.add_argument("--hits", type=int, default=20000)
    args = parser.parse_args(argv)
    os.environ.update(runner.KEYS)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = runner.Bench(runner.Options(rtt_ms=0), root)
        bench.start_servers()
        host, port = bench.moto_url.removeprefix("http://").split(":")
        proxy = LatencyProxy((host, int(port)), rtt_ms=0).start()
        try:
            url, options = f"s3://{runner.BUCKET}/content", {"endpoint_url": proxy.url}
            result = {
                "delta": delta(url, options, proxy, root, args.shard_mib * MIB),
                "lazy": lazy(url, options, proxy, root, args.size_mib * MIB, bench.moto_url),
            }
            bench.reset_store()
            result["fleet"] = fleet(url, options, proxy, root, args.size_mib * MIB)
            bench.reset_store()
            result["hit"] = hit(url, options, root, bench, args.hits)
        finally:
            proxy.stop()
            bench.stop_servers()
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
