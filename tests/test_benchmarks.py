"""Smoke tests of the benchmark tools (the benchmark itself runs with ``nox -s bench``)."""

from __future__ import annotations

import contextlib
import importlib.util
import socket
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
