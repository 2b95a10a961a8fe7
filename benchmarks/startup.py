"""Start-up time of the CLI: ``--help`` and a fetch of a cached pinned asset.

Each command runs in a fresh subprocess (after one warm-up run) and its wall time is
measured; the table gives the median of ``--runs`` runs (at least 10), with
``python -c pass`` as the floor every Python command pays. When modelkit 0.1.3 is
installed in a separate venv (``--modelkit-venv``, default ``/tmp/mk013-venv``, e.g.
``python -m venv /tmp/mk013-venv && /tmp/mk013-venv/bin/pip install 'modelkit[cli]==0.1.3'``),
its ``modelkit assets fetch`` of the same cached asset is timed too (modelkit's local
assets dir layout is ours); otherwise that row is skipped.

Usage::

    python benchmarks/startup.py [--runs 15] [--modelkit-venv /tmp/mk013-venv]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("modelkit-assets")
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelkit_assets"]


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")}
    env.update(extra)
    return env


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(
    argv: Sequence[str], env: dict[str, str], runs: int, expect: str | None
) -> tuple[list[float], list[float]]:
    """Wall and CPU (user + system) times of ``runs`` runs of ``argv``, after a warm-up
    run that is checked. CPU time is less disturbed by a busy machine than wall time.

    Raises
    ------
    RuntimeError
        If the command fails or does not print ``expect``: a broken command is not timed.
    """
    warm = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if warm.returncode != 0 or (expect is not None and expect not in warm.stdout):
        raise RuntimeError(f"{' '.join(argv)} failed (exit {warm.returncode}): {warm.stderr.strip()[-500:]}")
    times, cpu = [], []
    for _ in range(runs):
        cpu_start = _children_cpu()
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - cpu_start)
    return times, cpu


def prepare(workdir: Path) -> tuple[str, Path]:
    """Publish ``x:0.0`` to a local store and fetch it into an assets dir."""
    from modelkit_assets import AssetsManager, AssetStore

    source = workdir / "model.bin"
    source.write_bytes(os.urandom(64 * 1024))
    store_url = (workdir / "bucket" / "store").as_uri()
    AssetStore(store_url).new(source, "x")
    path = AssetsManager(store_url, workdir / "assets").fetch("x:0.0")
    return store_url, path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="runs per command (>= 10)")
    parser.add_argument("--modelkit-venv", default=os.environ.get("MODELKIT_013_VENV", "/tmp/mk013-venv"))
    args = parser.parse_args(argv)
    runs = max(10, args.runs)
    workdir = Path(tempfile.mkdtemp(prefix="mka-startup-"))
    try:
        store_url, cached = prepare(workdir)
        ours = _clean_env(
            {"MODELKIT_ASSETS_STORE": store_url, "MODELKIT_ASSETS_DIR": str(workdir / "assets")}
        )
        rows: list[tuple[str, tuple[list[float], list[float]]]] = [
            ("`python -c pass` (baseline)", time_command([sys.executable, "-c", "pass"], ours, runs, None)),
            ("`modelkit-assets --help`", time_command([*_cli(), "--help"], ours, runs, "Usage")),
            (
                "`modelkit-assets fetch x:0.0` (cached)",
                time_command([*_cli(), "fetch", "x:0.0"], ours, runs, str(cached)),
            ),
        ]
        modelkit = Path(args.modelkit_venv) / "bin" / "modelkit"
        if modelkit.exists():
            theirs = _clean_env(
                {
                    "MODELKIT_ASSETS_DIR": str(workdir / "assets"),
                    "MODELKIT_STORAGE_PROVIDER": "local",
                    "MODELKIT_STORAGE_BUCKET": str(workdir / "bucket"),
                    "MODELKIT_STORAGE_PREFIX": "store",
                }
            )
            rows.append(
                (
                    "`modelkit assets fetch x:0.0` (modelkit 0.1.3, cached)",
                    time_command([str(modelkit), "assets", "fetch", "x:0.0"], theirs, runs, str(cached)),
                )
            )
        else:
            print(f"(modelkit 0.1.3 not found at {modelkit}: its row is skipped)\n", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    baseline = statistics.median(rows[0][1][0])
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Start-up, median of {runs} runs of a subprocess, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, load average {load:.1f}:\n"
    )
    print("| command | wall median | wall min | wall max | above `python -c pass` | CPU median |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, (times, cpu) in rows:
        median = statistics.median(times)
        print(
            f"| {label} | {median * 1000:.0f} ms | {min(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms "
            f"| {(median - baseline) * 1000:+.0f} ms | {statistics.median(cpu) * 1000:.0f} ms |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
