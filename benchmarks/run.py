"""Benchmark modelkit-assets against modelkit 0.1.3, raw s3fs and the AWS CLI.

Everything talks to a moto S3 server on loopback through ``proxy.py``, which adds a
round trip (20 ms by default, ``--rtt-ms 0`` for raw loopback) so that the request count,
which dominates real buckets, shows. Each operation runs in a fresh process
(``clients.py``) that reports its time and its peak RSS.

Workloads::

    a   1,000 files x 16 KiB      publish, cold fetch
    b   one 1 GiB file            publish, cold fetch (peak RSS matters here)
    c   100 files x 8 MiB         publish, cold fetch
    d   list a store of 500 assets
    e   fetch of a cached pinned asset: in-process median (server stopped) and CLI

Clients: ``ours`` (this project), ``modelkit`` (0.1.3, installed with boto3 and awscli in
``benchmarks/results/venv``), ``s3fs`` (batch put/get of explicit path lists, defaults),
``aws`` (``aws s3 cp --recursive``). Results: ``benchmarks/results/bench-*.{json,md}``.

Usage::

    nox -s bench                                  # or: python benchmarks/run.py
    python benchmarks/run.py --quick              # small sizes, one run: a smoke test
    python benchmarks/run.py --workloads a,d --clients ours,s3fs --rtt-ms 0
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLIENTS = HERE / "clients.py"
BUCKET = "bench"
KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ALL_CLIENTS = ("ours", "modelkit", "s3fs", "aws")
ALL_WORKLOADS = ("a", "b", "c", "d", "e")
MIB = 2**20


@dataclass(frozen=True)
class Sizes:
    small_files: int = 1000
    small_size: int = 16 * 1024
    big_size: int = 1024 * MIB
    medium_files: int = 100
    medium_size: int = 8 * MIB
    list_assets: int = 500
    cached_repeat: int = 2000


QUICK = Sizes(
    small_files=100,
    small_size=16 * 1024,
    big_size=64 * MIB,
    medium_files=8,
    medium_size=8 * MIB,
    list_assets=40,
    cached_repeat=200,
)


@dataclass
class Bench:
    args: argparse.Namespace
    sizes: Sizes
    root: Path
    python: str = sys.executable
    bench_python: str | None = None
    aws: str | None = None
    endpoint: str = ""
    moto_url: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # -- environment ---------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELKIT_", "AWS_", "S3_"))}
        env.update(KEYS)
        env.update(BENCH_ENDPOINT=self.endpoint, BENCH_BUCKET=BUCKET, **extra)
        return env

    def run_op(
        self,
        workload: str,
        op: str,
        client: str,
        run: int,
        argv: list[str],
        python: str | None = None,
        **extra_env: str,
    ) -> dict[str, Any] | None:
        """Run one operation in a fresh process and record its time and peak RSS."""
        command = [python or self.python, str(CLIENTS), *argv]
        done = subprocess.run(command, capture_output=True, env=self.env(**extra_env), timeout=3600)
        record: dict[str, Any] = {"workload": workload, "op": op, "client": client, "run": run}
        if done.returncode:
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
            record["error"] = " | ".join(tail)
            print(f"  {workload} {op:<8} {client:<9} run {run}: FAILED {record['error']}", flush=True)
        else:
            record.update(json.loads(done.stdout.decode().strip().splitlines()[-1]))
            print(
                f"  {workload} {op:<8} {client:<9} run {run}: {record['seconds']:.4f} s, "
                f"{record['maxrss_mb']:.0f} MB",
                flush=True,
            )
        self.records.append(record)
        return record if "error" not in record else None

    # -- servers -------------------------------------------------------------------
    def start_servers(self) -> None:
        port = _free_port()
        log = open(self.root / "moto.log", "wb")  # noqa: SIM115 - lives as long as the server
        moto = subprocess.Popen(
            [self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        self.processes.append(moto)
        self.moto_url = f"http://127.0.0.1:{port}"
        _wait_http(f"{self.moto_url}/moto-api/", moto)
        proxy = subprocess.Popen(
            [
                self.python,
                str(HERE / "proxy.py"),
                "--target",
                f"127.0.0.1:{port}",
                "--rtt-ms",
                str(self.args.rtt_ms),
            ],
            stdout=subprocess.PIPE,
            env=self.env(),
        )
        self.processes.append(proxy)
        assert proxy.stdout is not None
        proxy_port = int(proxy.stdout.readline().decode().strip())
        self.endpoint = f"http://127.0.0.1:{proxy_port}"
        self.reset_store()

    def reset_store(self) -> None:
        """Empty moto (its memory holds every object) and recreate the bucket."""
        request = urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=60).read()
        fs = self.s3fs(direct=True)
        fs.mkdir(BUCKET)

    def s3fs(self, direct: bool = False) -> Any:
        import s3fs

        os.environ.update(KEYS)
        return s3fs.S3FileSystem(
            endpoint_url=self.moto_url if direct else self.endpoint,
            skip_instance_cache=True,
            use_listings_cache=False,
        )

    def stop_servers(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()

    # -- the tools under comparison ------------------------------------------------
    def setup_venv(self, clients: list[str]) -> None:
        if not {"modelkit", "aws"} & set(clients):
            return
        venv = Path(self.args.venv)
        python = venv / "bin" / "python"
        if not python.exists() or not (venv / "bin" / "aws").exists():
            print(
                f"Installing modelkit 0.1.3, boto3, awscli, fastapi into {venv}",
                flush=True,
            )
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            done = subprocess.run(
                [str(python), "-m", "pip", "install", "-q", "modelkit==0.1.3", "boto3", "awscli", "fastapi"],
                capture_output=True,
            )
            if done.returncode:
                self.notes.append("pip install modelkit==0.1.3 boto3 awscli failed: modelkit and aws skipped")
                return
        self.bench_python = str(python)
        self.aws = str(venv / "bin" / "aws") if (venv / "bin" / "aws").exists() else None
        if self.aws is None:
            self.notes.append("awscli is unavailable: the aws column is skipped")

    def clients(self) -> list[str]:
        wanted = [c for c in self.args.clients.split(",") if c]
        available = []
        for client in wanted:
            if client == "modelkit" and self.bench_python is None:
                continue
            if client == "aws" and self.aws is None:
                continue
            available.append(client)
        return available

    def aws_cp(self, workload: str, op: str, run: int, src: str, dst: str, recursive: bool) -> None:
        assert self.aws is not None
        command = [self.aws, "s3", "cp", src, dst, "--endpoint-url", self.endpoint, "--only-show-errors"]
        if recursive:
            command.append("--recursive")
        self.run_op(workload, op, "aws", run, ["exec", "--", *command])

    # -- workloads -----------------------------------------------------------------
    def transfer_workload(self, workload: str, source: Path, runs: int) -> None:
        """Publish then cold-fetch ``source`` with every client, ``runs`` times."""
        clients = self.clients()
        is_dir = source.is_dir()
        for run in range(runs):
            name = f"{workload}-{run}"
            for client in clients:
                dest = self.root / "fetched" / f"{client}-{name}"
                shutil.rmtree(dest, ignore_errors=True)
                if client == "ours":
                    if self.run_op(
                        workload,
                        "publish",
                        client,
                        run,
                        ["ours-publish", "--src", str(source), "--prefix", "ours", "--name", name],
                    ):
                        self.run_op(
                            workload,
                            "fetch",
                            client,
                            run,
                            ["ours-fetch", "--dest", str(dest), "--prefix", "ours", "--spec", f"{name}:0.0"],
                        )
                elif client == "modelkit":
                    assert self.bench_python is not None
                    if self.run_op(
                        workload,
                        "publish",
                        client,
                        run,
                        ["modelkit-publish", "--src", str(source), "--prefix", "modelkit", "--name", name],
                        python=self.bench_python,
                    ):
                        self.run_op(
                            workload,
                            "fetch",
                            client,
                            run,
                            [
                                "modelkit-fetch",
                                "--dest",
                                str(dest),
                                "--prefix",
                                "modelkit",
                                "--spec",
                                f"{name}:0.0",
                            ],
                            python=self.bench_python,
                        )
                elif client == "s3fs":
                    if self.run_op(
                        workload,
                        "publish",
                        client,
                        run,
                        ["s3fs-put", "--src", str(source), "--prefix", f"s3fs/{name}"],
                    ):
                        self.run_op(
                            workload,
                            "fetch",
                            client,
                            run,
                            ["s3fs-get", "--dest", str(dest), "--prefix", f"s3fs/{name}"],
                        )
                elif client == "aws":
                    remote = f"s3://{BUCKET}/aws/{name}/"
                    target = remote if is_dir else remote + source.name
                    self.aws_cp(workload, "publish", run, str(source), target, recursive=is_dir)
                    dest.mkdir(parents=True, exist_ok=True)
                    self.aws_cp(workload, "fetch", run, remote, str(dest) + "/", recursive=True)
                shutil.rmtree(dest, ignore_errors=True)
            if workload == "b":
                self.reset_store()  # moto keeps every GiB in memory
        self.reset_store()

    def list_workload(self, runs: int) -> None:
        """``list`` of a store holding ``list_assets`` assets (each with a version, its
        ``.meta`` and modelkit's ``.versions``), readable by both tools."""
        fs = self.s3fs(direct=True)
        meta = {
            "push_date": "2024-01-01T00:00:00+00:00",
            "is_directory": False,
            "files": {
                "data.bin": {
                    "size": 4,
                    "sha256": "88d4266fd4e6338d13b845fcf289579d209c897823b9217da3e161936f031589",
                }
            },
            "size": 4,
        }
        objects = {}
        for i in range(self.sizes.list_assets):
            name = f"listing/asset-{i:04d}"
            objects[f"{BUCKET}/{name}/0.0"] = b"abcd"
            objects[f"{BUCKET}/{name}/0.0.meta"] = json.dumps(meta).encode()
            objects[f"{BUCKET}/{name}.versions"] = b'{"versions": ["0.0"]}'
        fs.pipe(objects)
        clients = [c for c in self.clients() if c in ("ours", "modelkit")]
        for run in range(runs):
            for client in clients:
                python = self.bench_python if client == "modelkit" else None
                record = self.run_op(
                    "d", "list", client, run, [f"{client}-list", "--prefix", "listing"], python=python
                )
                if record and record.get("assets") != self.sizes.list_assets:
                    record["error"] = f"listed {record.get('assets')} assets, not {self.sizes.list_assets}"
        self.reset_store()

    def cached_workload(self, runs: int) -> None:
        """A pinned version already in the cache: in-process median and CLI wall time.

        Ours is measured with the server and the proxy stopped, so any request would fail.
        """
        source = self.root / "data" / "e.bin"
        source.write_bytes(os.urandom(4096))
        clients = [c for c in self.clients() if c in ("ours", "modelkit")]
        cache = {c: self.root / "cache-e" / c for c in clients}
        for folder in cache.values():
            shutil.rmtree(folder, ignore_errors=True)
        repeat = str(self.sizes.cached_repeat)
        if "modelkit" in clients:
            assert self.bench_python is not None
            self.run_op(
                "e",
                "publish",
                "modelkit",
                0,
                ["modelkit-publish", "--src", str(source), "--prefix", "modelkit", "--name", "e"],
                python=self.bench_python,
            )
            self.run_op(
                "e",
                "in-proc",
                "modelkit",
                0,
                [
                    "modelkit-cached",
                    "--dest",
                    str(cache["modelkit"]),
                    "--prefix",
                    "modelkit",
                    "--spec",
                    "e:0.0",
                    "--repeat",
                    repeat,
                ],
                python=self.bench_python,
            )
            modelkit_cli = str(Path(self.bench_python).parent / "modelkit")
            env = {
                "MODELKIT_ASSETS_DIR": str(cache["modelkit"]),
                "MODELKIT_STORAGE_PROVIDER": "s3",
                "MODELKIT_STORAGE_BUCKET": BUCKET,
                "MODELKIT_STORAGE_PREFIX": "modelkit",
                "S3_ENDPOINT": self.endpoint,
            }
            for run in range(runs):
                self.run_op(
                    "e",
                    "cli",
                    "modelkit",
                    run,
                    ["exec", "--", modelkit_cli, "assets", "fetch", "e:0.0"],
                    **env,
                )
        if "ours" in clients:
            self.run_op(
                "e",
                "publish",
                "ours",
                0,
                ["ours-publish", "--src", str(source), "--prefix", "ours", "--name", "e"],
            )
            self.run_op(
                "e",
                "fetch",
                "ours",
                0,
                ["ours-fetch", "--dest", str(cache["ours"]), "--prefix", "ours", "--spec", "e:0.0"],
            )
            self.stop_servers()
            self.notes.append(
                "(e) ours: measured with the S3 server and the proxy stopped (zero requests possible)"
            )
            self.run_op(
                "e",
                "in-proc",
                "ours",
                0,
                [
                    "ours-cached",
                    "--dest",
                    str(cache["ours"]),
                    "--prefix",
                    "ours",
                    "--spec",
                    "e:0.0",
                    "--repeat",
                    repeat,
                ],
            )
            cli = str(Path(self.python).parent / "modelkit-assets")
            env = {
                "MODELKIT_ASSETS_DIR": str(cache["ours"]),
                "MODELKIT_ASSETS_STORE": f"s3://{BUCKET}/ours",
                "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps({"endpoint_url": self.endpoint}),
            }
            for run in range(runs):
                self.run_op("e", "cli", "ours", run, ["exec", "--", cli, "fetch", "e:0.0"], **env)


# -- data and helpers -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:g} s")


def make_data(root: Path, sizes: Sizes) -> dict[str, Path]:
    """Random (incompressible) files, made once and reused while the sizes match."""
    data = root / "data"
    specs = {
        "a": (sizes.small_files, sizes.small_size),
        "b": (1, sizes.big_size),
        "c": (sizes.medium_files, sizes.medium_size),
    }
    paths = {}
    for workload, (count, size) in specs.items():
        folder = data / f"{workload}-{count}x{size}"
        paths[workload] = folder / "big.bin" if workload == "b" else folder
        if (folder / ".complete").exists():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for i in range(count):
            path = (
                paths[workload] if workload == "b" else folder / f"part-{i // 100:02d}" / f"file-{i:05d}.bin"
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as handle:
                left = size
                while left:
                    chunk = os.urandom(min(left, 16 * MIB))
                    handle.write(chunk)
                    left -= len(chunk)
        (folder / ".complete").touch()
    return paths


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": memory,
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "versions": {p: version(p) for p in ("modelkit-assets", "s3fs", "fsspec", "moto")},
    }


# -- summary -------------------------------------------------------------------------
def summarize(records: list[dict[str, Any]], sizes: Sizes) -> dict[str, Any]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        if "error" in record:
            continue
        groups.setdefault((record["workload"], record["op"], record["client"]), []).append(record)
    volume = {
        "a": sizes.small_files * sizes.small_size,
        "b": sizes.big_size,
        "c": sizes.medium_files * sizes.medium_size,
    }
    rows = []
    for (workload, op, client), found in sorted(groups.items()):
        seconds = statistics.median(r["seconds"] for r in found)
        row = {
            "workload": workload,
            "op": op,
            "client": client,
            "runs": len(found),
            "median_s": seconds,
            "peak_rss_mb": max(r["maxrss_mb"] for r in found),
        }
        if workload in volume and op in ("publish", "fetch") and seconds > 0:
            row["mb_per_s"] = volume[workload] / seconds / 1e6
        rows.append(row)
    median = {(r["workload"], r["op"], r["client"]): r["median_s"] for r in rows}
    ratios = []
    for (workload, op, client), seconds in sorted(median.items()):
        if client == "ours" or (workload, op, "ours") not in median:
            continue
        ours = median[(workload, op, "ours")]
        ratios.append(
            {
                "workload": workload,
                "op": op,
                "versus": client,
                "their_s": seconds,
                "ours_s": ours,
                "speedup": seconds / ours if ours else None,
            }
        )
    return {"rows": rows, "ratios": ratios, "targets": targets(median, rows)}


def targets(median: dict[tuple[str, str, str], float], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and whether it is met."""
    found = []

    def check(label: str, value: float | None, goal: str, ok: bool | None) -> None:
        found.append({"target": label, "measured": value, "goal": goal, "met": ok})

    def ratio(workload: str, op: str, other: str) -> float | None:
        ours, theirs = median.get((workload, op, "ours")), median.get((workload, op, other))
        return theirs / ours if ours and theirs else None

    for op in ("publish", "fetch"):
        r = ratio("a", op, "modelkit")
        check(f"(a) {op}: speed-up over modelkit 0.1.3", r, ">= 8x", None if r is None else r >= 8)
        r = ratio("a", op, "aws")
        check(f"(a) {op}: speed-up over aws s3 cp", r, "> 1x", None if r is None else r > 1)
        r = ratio("a", op, "s3fs")
        check(
            f"(a) {op}: time vs raw s3fs (s3fs/ours)",
            r,
            ">= 1/1.2 = 0.83",
            None if r is None else r >= 1 / 1.2,
        )
        r = ratio("b", op, "s3fs")
        check(f"(b) {op}: throughput vs raw s3fs", r, ">= 0.9x", None if r is None else r >= 0.9)
        rss = next(
            (x["peak_rss_mb"] for x in rows if (x["workload"], x["op"], x["client"]) == ("b", op, "ours")),
            None,
        )
        check(f"(b) {op}: peak RSS of ours (MB)", rss, "<= 256", None if rss is None else rss <= 256)
    r = ratio("d", "list", "modelkit")
    check("(d) list: speed-up over modelkit 0.1.3", r, ">= 10x", None if r is None else r >= 10)
    e = median.get(("e", "in-proc", "ours"))
    check(
        "(e) cached pinned fetch in-process (us)",
        None if e is None else e * 1e6,
        "<= 50",
        None if e is None else e <= 50e-6,
    )
    e = median.get(("e", "cli", "ours"))
    check("(e) cached pinned fetch, CLI (s)", e, "<= 0.3", None if e is None else e <= 0.3)
    return found


def _fmt_seconds(value: float) -> str:
    if value < 1e-3:
        return f"{value * 1e6:.1f} us"
    if value < 1:
        return f"{value * 1e3:.1f} ms"
    return f"{value:.2f} s"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Run {report['started']} · RTT {report['rtt_ms']:g} ms · runs {report['runs']} "
        f"(1 GiB case: {report['runs_large']}) · {'quick sizes' if report['quick'] else 'full sizes'}",
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, {m['system']}, "
        f"Python {m['python']}; " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
        "| workload | operation | client | runs | median | MB/s | peak RSS (MB) |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for row in report["summary"]["rows"]:
        rate = f"{row['mb_per_s']:.1f}" if "mb_per_s" in row else ""
        lines.append(
            f"| {row['workload']} | {row['op']} | {row['client']} | {row['runs']} | "
            f"{_fmt_seconds(row['median_s'])} | {rate} | {row['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "| workload | operation | ours | versus | theirs | theirs / ours |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in report["summary"]["ratios"]:
        lines.append(
            f"| {r['workload']} | {r['op']} | {_fmt_seconds(r['ours_s'])} | {r['versus']} | "
            f"{_fmt_seconds(r['their_s'])} | {r['speedup']:.2f}x |"
        )
    lines += ["", "| target | goal | measured | met |", "|---|---|---:|---|"]
    for t in report["summary"]["targets"]:
        value = "n/a" if t["measured"] is None else f"{t['measured']:.2f}"
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['goal']} | {value} | {met} |")
    failures = [r for r in report["records"] if "error" in r]
    if report["notes"] or failures:
        lines.append("")
    lines += [f"- {note}" for note in report["notes"]]
    lines += [
        f"- FAILED {r['workload']} {r['op']} {r['client']} run {r['run']}: {r['error']}" for r in failures
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def servers(bench: Bench) -> Iterator[None]:
    bench.start_servers()
    try:
        yield
    finally:
        bench.stop_servers()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rtt-ms", type=float, default=20.0, help="round trip added by the proxy (0: loopback)"
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (medians)")
    parser.add_argument("--runs-large", type=int, default=3, help="runs of the 1 GiB case")
    parser.add_argument("--quick", action="store_true", help="small sizes and one run: a smoke test")
    parser.add_argument("--clients", default=",".join(ALL_CLIENTS))
    parser.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument(
        "--venv",
        default=str(HERE / "results" / "venv"),
        help="virtualenv for modelkit 0.1.3 and awscli (created when missing)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = min(args.runs, 1) if "--runs" not in (argv or sys.argv) else args.runs
        args.runs_large = 1
    sizes = QUICK if args.quick else Sizes()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, sizes, root)
    workloads = [w for w in args.workloads.split(",") if w]
    bench.setup_venv([c for c in args.clients.split(",") if c])
    data = make_data(root, sizes) if {"a", "b", "c"} & set(workloads) else {}
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    print(
        f"Clients: {', '.join(bench.clients())}; workloads: {', '.join(workloads)}; RTT {args.rtt_ms:g} ms",
        flush=True,
    )
    with servers(bench):
        for workload in ("a", "b", "c"):
            if workload in workloads:
                bench.transfer_workload(
                    workload, data[workload], args.runs_large if workload == "b" else args.runs
                )
        if "d" in workloads:
            bench.list_workload(args.runs)
        if "e" in workloads:
            bench.cached_workload(args.runs)
    report = {
        "started": started,
        "rtt_ms": args.rtt_ms,
        "runs": args.runs,
        "runs_large": args.runs_large,
        "quick": args.quick,
        "machine": machine(),
        "sizes": sizes.__dict__,
        "notes": bench.notes,
        "records": bench.records,
        "summary": summarize(bench.records, sizes),
    }
    (root / f"bench-{started}.json").write_text(json.dumps(report, indent=1))
    text = markdown(report)
    (root / f"bench-{started}.md").write_text(text)
    print(text)
    return report


if __name__ == "__main__":
    main()
