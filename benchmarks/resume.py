"""How much a rerun moves after a publish or a fetch was killed at 80%.

Starts moto on loopback, then:

- publish: a folder of 8 x 128 MiB (1 GiB) is published by a child process that is
  SIGKILLed once 80% of its bytes are stored; the rerun's uploaded bytes are counted;
- fetch: a 1 GiB file is fetched by a child process SIGKILLed once 80% of it is received;
  the rerun's downloaded bytes are counted (from the offset it resumes at).

Usage: ``python benchmarks/resume.py [--size-mib 1024]``; prints one JSON line: the
share of the bytes each rerun moved again.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import runner  # noqa: E402 - after the path is set

MIB = 2**20

CHILD = """
import json, os, signal, sys
from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.integrity import StreamHasher

mode, url, options, target, total, limit = sys.argv[1:7]
real = StreamHasher.update
seen = [0]

def update(self, data):
    seen[0] += len(data)
    if seen[0] >= int(limit):
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, data)

StreamHasher.update = update
store = AssetStore(url, json.loads(options))
if mode == "publish":
    store.new(target, "resume/model")
else:
    AssetsManager(store, target).fetch("resume/file:0.0")
"""


def _killed(script: Path, *args: str) -> None:
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, timeout=3600)
    if done.returncode != -signal.SIGKILL:
        raise RuntimeError(f"the child was not killed: {done.stderr.decode()[-500:]}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args(argv)
    total = args.size_mib * MIB
    from modelkit_assets import AssetsManager, AssetStore, transfer
    from modelkit_assets.backends.s3 import S3Backend

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bench = runner.Bench(runner.Options(rtt_ms=0), root)
        bench.start_servers()
        try:
            url, options = f"s3://{runner.BUCKET}/resume", {"endpoint_url": bench.moto_url}
            script = root / "child.py"
            script.write_text(CHILD)
            folder = root / "model"
            folder.mkdir()
            for i in range(8):
                runner.write_random(folder / f"shard-{i}.safetensors", total // 8)
            limit = str(int(0.8 * total))
            _killed(script, "publish", url, json.dumps(options), str(folder), str(total), limit)
            sent: list[int] = []
            real_put = S3Backend.aput

            async def counting(self: S3Backend, fs: Any, local: str, *a: Any, **k: Any) -> None:
                sent.append(os.path.getsize(local))
                await real_put(self, fs, local, *a, **k)

            S3Backend.aput = counting  # type: ignore[method-assign]
            AssetStore(url, options).new(folder, "resume/model")
            S3Backend.aput = real_put  # type: ignore[method-assign]

            single = root / "one.bin"
            runner.write_random(single, total)
            AssetStore(url, options).new(single, "resume/file")
            assets = root / "assets"
            _killed(script, "fetch", url, json.dumps(options), str(assets), str(total), limit)
            resumed: list[int] = []
            real_point = transfer._resume_point

            def point(job: Any, hasher: Any) -> int:
                resumed.append(real_point(job, hasher))
                return resumed[-1]

            transfer._resume_point = point
            AssetsManager(AssetStore(url, options), assets).fetch("resume/file:0.0")
            transfer._resume_point = real_point
        finally:
            bench.stop_servers()
    result = {
        "size_bytes": total,
        "killed_at": 0.8,
        "publish_rerun_moved": round(sum(sent) / total, 3),
        "fetch_rerun_moved": round((total - resumed[0]) / total, 3),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
