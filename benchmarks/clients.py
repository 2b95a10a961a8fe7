"""One benchmark operation in a fresh process; prints one JSON line on stdout.

Run by ``run.py`` with the interpreter of the tool being measured (this project's venv,
or the benchmark venv holding modelkit 0.1.3), so this file imports nothing from the
project at module level. Every operation reports ``seconds`` (the operation, including
the creation of the client it needs, as a fresh process of a user pays it; imports
excluded), ``maxrss_mb`` (the process's peak resident memory, imports
included), ``cpu_s`` (user + system CPU seconds of the operation) and ``rchar`` /
``read_bytes`` (bytes passed to ``read()`` / fetched from the block device, from
``/proc/self/io``); ``exec`` runs a command (the AWS CLI, s5cmd) and reports the same
for it (a reaped child's CPU and I/O are added to its parent's counters).

Environment: ``BENCH_ENDPOINT`` (the proxy's URL), ``BENCH_BUCKET``, ``AWS_*`` test keys.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # KiB on Linux


#: CPU and I/O counters when the operation being measured started
_START: dict[str, float] = {}


def _counters() -> dict[str, float]:
    """CPU seconds (this process and its reaped children) and /proc/self/io's read counters."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    found = {"cpu_s": own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime}
    try:
        with open("/proc/self/io") as io:
            lines = io.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("rchar", "read_bytes"):
            found[key] = float(value)
    return found


def _emit(seconds: float, maxrss_mb: float | None = None, **extra: Any) -> None:
    now = _counters()
    spent = {key: round(value - _START.get(key, 0.0), 3) for key, value in now.items()}
    rss = round(_rss_mb() if maxrss_mb is None else maxrss_mb, 1)
    print(json.dumps({"seconds": seconds, "maxrss_mb": rss, **spent, **extra}), flush=True)


def _timed(action: Callable[[], Any]) -> float:
    _START.update(_counters())
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _endpoint() -> str:
    return os.environ["BENCH_ENDPOINT"]


def _bucket() -> str:
    return os.environ["BENCH_BUCKET"]


# -- this project ---------------------------------------------------------------------
def _ours_store(prefix: str) -> Any:
    from modelkit_assets import AssetStore

    return AssetStore(f"s3://{_bucket()}/{prefix}", storage_options={"endpoint_url": _endpoint()})


def ours_publish(args: argparse.Namespace) -> None:
    _emit(_timed(lambda: _ours_store(args.prefix).new(args.src, args.name)))


def ours_update(args: argparse.Namespace) -> None:
    """A second ``update`` in the same process: the library's own path (client made and
    warm, as in a service that publishes); ``g cli`` measures a cold process."""
    store = _ours_store(args.prefix)
    store.update(args.src, args.name)
    _emit(_timed(lambda: store.update(args.src, args.name)))


def _ours_manager(args: argparse.Namespace) -> Any:
    from modelkit_assets import AssetsManager

    return AssetsManager(store=_ours_store(args.prefix), assets_dir=args.dest)


def ours_fetch(args: argparse.Namespace) -> None:
    _emit(_timed(lambda: _ours_manager(args).fetch(args.spec)))


def _emit_listing(listing: Callable[[], Iterable[Any]]) -> None:
    """Time a full listing (consumed to the end) and report how many assets it gave."""
    found: list[Any] = []
    seconds = _timed(lambda: found.extend(listing()))
    _emit(seconds, assets=len(found))


def ours_list(args: argparse.Namespace) -> None:
    _emit_listing(lambda: _ours_store(args.prefix).list())


def ours_cached(args: argparse.Namespace) -> None:
    """Median of ``--repeat`` pinned fetches already in the cache (run with the server
    stopped: any request would fail)."""
    manager = _ours_manager(args)
    manager.fetch(args.spec)
    _emit(*_repeat(lambda: manager.fetch(args.spec), args.repeat))


def _repeat(action: Callable[[], Any], repeat: int) -> tuple[float, ...]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter_ns()
        action()
        times.append(time.perf_counter_ns() - start)
    return (statistics.median(times) / 1e9,)


# -- modelkit 0.1.3 -------------------------------------------------------------------
def _modelkit_provider(prefix: str) -> Any:
    from modelkit.assets.remote import StorageProvider

    return StorageProvider(
        provider="s3",
        bucket=_bucket(),
        prefix=prefix,
        s3_endpoint=_endpoint(),
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
        aws_default_region=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )


def _quiet_modelkit() -> None:
    # modelkit logs every object through structlog: keep the terminal (and timing) clean
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))


def modelkit_publish(args: argparse.Namespace) -> None:
    _quiet_modelkit()
    _emit(_timed(lambda: _modelkit_provider(args.prefix).new(args.src, args.name, "0.0")))


def modelkit_update(args: argparse.Namespace) -> None:
    """What ``modelkit assets update PATH NAME`` does once confirmed: list the versions,
    compute the next one, push it (the second one in the process is measured)."""
    _quiet_modelkit()
    from modelkit.assets.settings import AssetSpec

    provider = _modelkit_provider(args.prefix)

    def update() -> None:
        spec = AssetSpec.from_string(args.name)
        versions = provider.get_versions_info(spec.name)
        params = spec.versioning.get_update_cli_params(
            version=spec.version, version_list=versions, bump_major=False
        )
        new = spec.versioning.increment_version(spec.sort_versions(versions), params["params"])
        provider.update(args.src, name=spec.name, version=new)

    update()  # warm, like ours_update: the second update is measured
    _emit(_timed(update))


def _modelkit_manager(args: argparse.Namespace) -> Any:
    from modelkit.assets.manager import AssetsManager

    os.makedirs(args.dest, exist_ok=True)
    return AssetsManager(assets_dir=args.dest, storage_provider=_modelkit_provider(args.prefix))


def modelkit_fetch(args: argparse.Namespace) -> None:
    _quiet_modelkit()
    _emit(_timed(lambda: _modelkit_manager(args).fetch_asset(args.spec)))


def modelkit_list(args: argparse.Namespace) -> None:
    _quiet_modelkit()
    _emit_listing(lambda: _modelkit_provider(args.prefix).iterate_assets())


def modelkit_cached(args: argparse.Namespace) -> None:
    _quiet_modelkit()
    manager = _modelkit_manager(args)
    manager.fetch_asset(args.spec)
    _emit(*_repeat(lambda: manager.fetch_asset(args.spec), args.repeat))


# -- raw s3fs -------------------------------------------------------------------------
def _s3fs() -> Any:
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=_endpoint())


def _local_files(root: str) -> list[str]:
    if os.path.isfile(root):
        return [root]
    found = []
    for folder, _, names in os.walk(root):
        found.extend(os.path.join(folder, n) for n in names)
    return sorted(found)


def s3fs_put(args: argparse.Namespace) -> None:
    """Batch ``put`` of explicit path lists, s3fs defaults otherwise."""
    local = _local_files(args.src)
    base = args.src if os.path.isdir(args.src) else os.path.dirname(args.src)
    remote = [f"{_bucket()}/{args.prefix}/{os.path.relpath(p, base)}" for p in local]
    _emit(_timed(lambda: _s3fs().put(local, remote)))


def s3fs_get(args: argparse.Namespace) -> None:
    root = f"{_bucket()}/{args.prefix}"

    def run() -> None:
        fs = _s3fs()
        remote = sorted(fs.find(root))  # one paginated listing, as a user would
        local = [os.path.join(args.dest, os.path.relpath(p, root)) for p in remote]
        for folder in {os.path.dirname(p) for p in local}:
            os.makedirs(folder, exist_ok=True)
        fs.get(remote, local)

    _emit(_timed(run))


# -- any command (the AWS CLI, s5cmd) --------------------------------------------------------
def exec_command(args: argparse.Namespace) -> None:
    _START.update(_counters())
    start = time.perf_counter()
    done = subprocess.run(args.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.stderr.write(done.stderr.decode(errors="replace")[-2000:])
        raise SystemExit(done.returncode)
    _emit(seconds, maxrss_mb=_rss_mb(resource.RUSAGE_CHILDREN))


OPERATIONS: dict[str, Callable[[argparse.Namespace], None]] = {
    "ours-publish": ours_publish,
    "ours-update": ours_update,
    "ours-fetch": ours_fetch,
    "ours-list": ours_list,
    "ours-cached": ours_cached,
    "modelkit-publish": modelkit_publish,
    "modelkit-update": modelkit_update,
    "modelkit-fetch": modelkit_fetch,
    "modelkit-list": modelkit_list,
    "modelkit-cached": modelkit_cached,
    "s3fs-put": s3fs_put,
    "s3fs-get": s3fs_get,
    "exec": exec_command,
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("operation", choices=sorted(OPERATIONS))
    parser.add_argument("--src")
    parser.add_argument("--dest")
    parser.add_argument("--prefix", default="")
    parser.add_argument("--name")
    parser.add_argument("--spec")
    parser.add_argument("--repeat", type=int, default=2000)
    parser.add_argument("command", nargs="*")
    args = parser.parse_args()
    OPERATIONS[args.operation](args)


if __name__ == "__main__":
    main()
