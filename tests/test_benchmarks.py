"""Smoke tests of the benchmark tools (the benchmark itself runs with ``nox -s bench``)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


class _EchoServer:
    """A TCP echo server on loopback, in a thread (the proxy's upstream)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        import threading

        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import threading

        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def close(self) -> None:
        # shutdown wakes the thread blocked in accept(); close alone does not on Linux
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def _round_trips(port: int, payload: bytes, count: int) -> tuple[float, bytes]:
    """Time ``count`` request/response exchanges on one connection (after connecting)."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"x")
        conn.recv(1)  # the connection's own round trip is not measured
        start = time.perf_counter()
        received = b""
        for _ in range(count):
            conn.sendall(payload)
            got = b""
            while len(got) < len(payload):
                got += conn.recv(65536)
            received = got
        return (time.perf_counter() - start) / count, received


def test_latency_proxy_adds_the_round_trip_and_keeps_the_bytes() -> None:
    proxy_module = _load("proxy")
    echo = _EchoServer()
    proxy = proxy_module.LatencyProxy(("127.0.0.1", echo.port), rtt_ms=40).start()
    try:
        payload = bytes(range(256)) * 1000  # several chunks, in order
        per_trip, received = _round_trips(proxy.port, payload, 5)
        assert received == payload
        assert 0.039 <= per_trip < 0.4
        direct, _ = _round_trips(echo.port, b"ping", 5)
        assert direct < 0.02
        assert proxy.connections == 1
    finally:
        proxy.stop()
        echo.close()


def test_latency_proxy_with_zero_rtt_is_transparent() -> None:
    proxy_module = _load("proxy")
    echo = _EchoServer()
    proxy = proxy_module.LatencyProxy(("127.0.0.1", echo.port), rtt_ms=0).start()
    try:
        per_trip, received = _round_trips(proxy.port, b"hello", 20)
        assert received == b"hello"
        assert per_trip < 0.02
    finally:
        proxy.stop()
        echo.close()


@pytest.mark.slow
def test_run_quick_produces_a_table_and_json(tmp_path: Path) -> None:
    """``run.py --quick`` against moto, for this project and raw s3fs only (no venv)."""
    run = _load("run")
    report = run.main(
        ["--quick", "--rtt-ms", "0", "--clients", "ours,s3fs", "--workloads", "a,d,e", "--out", str(tmp_path)]
    )
    failures = [r for r in report["records"] if "error" in r]
    assert not failures
    rows = {(r["workload"], r["op"], r["client"]) for r in report["summary"]["rows"]}
    assert {
        ("a", "publish", "ours"),
        ("a", "fetch", "s3fs"),
        ("d", "list", "ours"),
        ("e", "in-proc", "ours"),
    } <= rows
    assert list(tmp_path.glob("bench-*.md")) and list(tmp_path.glob("bench-*.json"))
    cached = next(r for r in report["summary"]["rows"] if (r["workload"], r["op"]) == ("e", "in-proc"))
    assert cached["median_s"] < 0.01  # served from the cache with the server stopped


# -- report.py: recorded measurements -> medians, ratios, tables ----------------------------
def _record(
    workload: str, op: str, client: str, run: int, seconds: float, rss: float = 50.0
) -> dict[str, object]:
    return {
        "workload": workload,
        "op": op,
        "client": client,
        "run": run,
        "seconds": seconds,
        "maxrss_mb": rss,
    }


def _failed(workload: str, op: str, client: str, run: int) -> dict[str, object]:
    return {"workload": workload, "op": op, "client": client, "run": run, "error": "boom | exit 1"}


def _full_report(records: list[dict[str, object]], notes: list[str] | None = None) -> dict[str, object]:
    report = _load("report")
    return {
        "started": "2026-12-01T10-00-00Z",
        "rtt_ms": 20.0,
        "runs": 3,
        "runs_large": 1,
        "quick": True,
        "machine": {
            "nproc": 2,
            "cpu": "Test CPU",
            "memory_gib": 8.0,
            "system": "Linux 6",
            "python": "3.11.7",
            "versions": {"modelkit-assets": "0.1.0"},
        },
        "notes": notes or [],
        "records": records,
        "summary": report.summarize(records, {"a": 4_000_000}),
    }


RECORDS = [
    # ours: 2.0, 4.0, 3.0 -> median 3.0 (not the mean 3.0 of an even count: see the fetch)
    _record("a", "publish", "ours", 0, 2.0, rss=60),
    _record("a", "publish", "ours", 1, 4.0, rss=80),
    _record("a", "publish", "ours", 2, 3.0, rss=70),
    # modelkit: 30, 31, 100 -> median 31 (the mean would be 53.7)
    _record("a", "publish", "modelkit", 0, 30.0),
    _record("a", "publish", "modelkit", 1, 100.0),
    _record("a", "publish", "modelkit", 2, 31.0),
    # s3fs: slower than ours by 1.5x
    _record("a", "publish", "s3fs", 0, 4.5),
    # fetch: ours has two good runs (1.0, 2.0 -> 1.5) and one failure that must not count
    _record("a", "fetch", "ours", 0, 1.0),
    _record("a", "fetch", "ours", 1, 2.0),
    _failed("a", "fetch", "ours", 2),
    # aws failed every fetch: no row, no ratio, no speed-up target
    _failed("a", "fetch", "aws", 0),
    _record("a", "fetch", "modelkit", 0, 3.0),
]


def test_report_medians_ignore_failures_and_outliers() -> None:
    summary = _load("report").summarize(RECORDS, {"a": 4_000_000})
    rows = {(r["workload"], r["op"], r["client"]): r for r in summary["rows"]}
    assert rows["a", "publish", "ours"]["median_s"] == 3.0
    assert rows["a", "publish", "modelkit"]["median_s"] == 31.0
    assert rows["a", "fetch", "ours"]["median_s"] == 1.5
    assert rows["a", "fetch", "ours"]["runs"] == 2  # the failed run is not a run
    assert rows["a", "publish", "ours"]["peak_rss_mb"] == 80  # the worst run's peak
    assert rows["a", "publish", "ours"]["mb_per_s"] == pytest.approx(4_000_000 / 3.0 / 1e6)
    assert ("a", "fetch", "aws") not in rows
    assert list(rows) == sorted(rows)  # stable order: workload, op, client


def test_report_ratios_are_theirs_over_ours() -> None:
    summary = _load("report").summarize(RECORDS, {})
    ratios = {(r["workload"], r["op"], r["versus"]): r for r in summary["ratios"]}
    assert ratios["a", "publish", "modelkit"]["speedup"] == pytest.approx(31.0 / 3.0)
    assert ratios["a", "publish", "s3fs"]["speedup"] == pytest.approx(1.5)
    assert ratios["a", "fetch", "modelkit"]["speedup"] == pytest.approx(2.0)
    assert ratios["a", "publish", "s3fs"]["ours_s"] == 3.0
    assert ratios["a", "publish", "s3fs"]["their_s"] == 4.5
    # the anchor is never compared with itself, and a client that never succeeded is absent
    assert set(ratios) == {("a", "publish", "modelkit"), ("a", "publish", "s3fs"), ("a", "fetch", "modelkit")}


def test_report_without_the_anchor_has_no_ratio() -> None:
    records = [_record("d", "list", "modelkit", 0, 5.0), _failed("d", "list", "ours", 0)]
    summary = _load("report").summarize(records, {})
    assert [r["client"] for r in summary["rows"]] == ["modelkit"]
    assert summary["ratios"] == []
    target = next(t for t in summary["targets"] if t["target"].startswith("(d)"))
    assert target["measured"] is None and target["met"] is None


def test_report_targets_are_met_or_not_from_the_ratios() -> None:
    targets = {t["target"]: t for t in _load("report").summarize(RECORDS, {})["targets"]}
    publish = targets["(a) publish: speed-up over modelkit 0.1.3"]
    assert publish["measured"] == pytest.approx(31.0 / 3.0) and publish["met"] is False  # < 12x
    fetch = targets["(a) fetch: speed-up over modelkit 0.1.3"]
    assert fetch["measured"] == pytest.approx(2.0) and fetch["met"] is False
    assert targets["(b) fetch: speed-up over aws"]["met"] is None  # aws never measured
    assert targets["(a) publish: speed-up over raw s3fs"]["met"] is True  # 4.5 / 3 >= 1.3


def test_report_big_file_targets_ask_more_of_s3fs_than_of_the_clis() -> None:
    records = [
        _record("b", "publish", "ours", 0, 10.0),
        _record("b", "publish", "s3fs", 0, 12.0),  # 1.2x: enough against a CLI, not s3fs
        _record("b", "publish", "aws", 0, 12.0),
    ]
    targets = {t["target"]: t for t in _load("report").summarize(records, {})["targets"]}
    assert targets["(b) publish: speed-up over s3fs"]["met"] is False
    assert targets["(b) publish: speed-up over aws"]["met"] is True


def test_report_cpu_and_bytes_read_per_byte_moved() -> None:
    records = [
        {**_record("b", "fetch", "ours", 0, 2.0), "cpu_s": 1.5, "rchar": 1.0e9, "read_bytes": 0},
        {**_record("b", "fetch", "ours", 1, 2.0), "cpu_s": 2.5, "rchar": 3.0e9, "read_bytes": 0},
    ]
    summary = _load("report").summarize(records, {"b": 2_000_000_000})
    (row,) = summary["rows"]
    assert row["cpu_s_per_gb"] == pytest.approx(1.0)  # median 2.0 s over 2 GB
    assert row["read_per_byte"] == pytest.approx(1.0)  # median 2e9 read over 2e9 moved
    target = next(t for t in summary["targets"] if "bytes read per byte moved" in t["target"])
    assert target["met"] is True


def test_report_cached_fetch_targets_use_the_right_units() -> None:
    records = [_record("e", "in-proc", "ours", 0, 40e-6), _record("e", "cli", "ours", 0, 0.5)]
    targets = {t["target"]: t for t in _load("report").summarize(records, {})["targets"]}
    in_process = targets["(e) cached pinned fetch in-process (us)"]
    assert in_process["measured"] == pytest.approx(40.0) and in_process["met"] is True
    cli = targets["(e) cached pinned fetch, CLI (s)"]
    assert cli["measured"] == 0.5 and cli["met"] is False


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(8.7e-6, "8.7 us"), (0.0009999, "999.9 us"), (0.001, "1.0 ms"), (0.106, "106.0 ms"), (5.664, "5.66 s")],
)
def test_report_formats_seconds_with_a_unit(seconds: float, text: str) -> None:
    assert _load("report").fmt_seconds(seconds) == text


def test_report_markdown_tables() -> None:
    report = _load("report")
    text = report.markdown(_full_report(RECORDS, notes=["awscli is unavailable"]))
    lines = text.splitlines()
    assert lines[0] == "Run 2026-12-01T10-00-00Z · RTT 20 ms · runs 3 (1 GiB case: 1) · quick sizes"
    assert lines[1].startswith("Machine: 2 CPUs (Test CPU), 8.0 GiB RAM, Linux 6, Python 3.11.7; ")
    assert "| a | publish | ours | 3 | 3.00 s | 1.3 | 80 |  |  |" in lines
    assert "| a | fetch | ours | 2 | 1.50 s | 2.7 | 50 |  |  |" in lines
    assert "| a | publish | 3.00 s | modelkit | 31.00 s | 10.33x |" in lines
    assert "| a | publish | 3.00 s | s3fs | 4.50 s | 1.50x |" in lines
    assert not any("| aws |" in line for line in lines)  # no cell for a client without a result
    assert "| (b) fetch: speed-up over aws | > 1x | n/a | not measured |" in lines
    assert "| (a) fetch: speed-up over modelkit 0.1.3 | >= 12x | 2.00 | **no** |" in lines
    assert "| (a) publish: speed-up over modelkit 0.1.3 | >= 12x | 10.33 | **no** |" in lines
    assert "| (a) publish: speed-up over raw s3fs | >= 1.3x | 1.50 | yes |" in lines
    assert "- awscli is unavailable" in lines
    assert "- FAILED a fetch aws run 0: boom | exit 1" in lines
    assert "- FAILED a fetch ours run 2: boom | exit 1" in lines
    assert text.endswith("\n")


def test_report_markdown_with_a_zero_anchor_time_says_n_a() -> None:
    records = [_record("d", "list", "ours", 0, 0.0), _record("d", "list", "modelkit", 0, 2.0)]
    lines = _load("report").markdown(_full_report(records)).splitlines()
    assert "| d | list | 0.0 us | modelkit | 2.00 s | n/a |" in lines


def test_latency_proxy_counts_the_bytes_each_way() -> None:
    proxy_module = _load("proxy")
    echo = _EchoServer()
    proxy = proxy_module.LatencyProxy(("127.0.0.1", echo.port), rtt_ms=0).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
            conn.sendall(b"x" * 100_000)
            got = 0
            while got < 100_000:
                got += len(conn.recv(65536))
        deadline = time.monotonic() + 5
        while proxy.bytes_down < 100_000 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proxy.bytes_up == 100_000
        assert proxy.bytes_down == 100_000
    finally:
        proxy.stop()
        echo.close()


@pytest.mark.cloud
def test_content_cache_benchmark_meets_its_targets_on_small_sizes() -> None:
    """The targets of the content-addressed cache, at 64 MiB (the benchmark runs 1 GiB):
    bytes counted by the proxy in front of moto, never by our own counters."""
    # in its own process, as it is run: the proxy's thread and the fleet's workers leave
    # nothing behind in this one
    script = BENCHMARKS / "content_cache.py"
    run = subprocess.run(
        [sys.executable, str(script), "--size-mib", "64", "--shard-mib", "2", "--hits", "500"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(result)
    assert result["delta"]["downloaded_per_changed"] <= 1.1
    assert result["delta"]["growth_per_changed"] <= 1.1
    assert result["lazy"]["correct"] and result["lazy"]["downloaded_blocks"] <= 2.05
    assert result["lazy"]["flipped_byte_refused"]
    fleet = result["fleet"]
    assert fleet["downloaded_per_version_byte"] <= 1.05 and fleet["downloads"] == 1
    assert fleet["all_started_before_first_end"] and fleet["same_path"]
    assert result["hit"]["stat_calls"] <= 2
