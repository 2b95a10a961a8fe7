"""Shared fixtures: a clean environment for every test, and one fresh store per test on
every backend of ``BACKENDS`` (the store contract suite is parametrized by ``store``).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")  # before any gcsfs import

import servers

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.settings import get_settings

#: every backend the store contract suite runs on
BACKENDS = ["memory", "local", "s3", "gcs", "azure"]
#: backends served by an emulated cloud server (marked ``cloud``)
CLOUD_BACKENDS = ("s3", "gcs", "azure")
#: read at import: the autouse fixture below clears MODELKIT_* for each test
REQUIRE_SERVERS = os.environ.get("MODELKIT_ASSETS_REQUIRE_SERVERS", "").strip() in ("1", "true", "yes")
#: in CI (or with MODELKIT_ASSETS_REQUIRE_SERVERS=1) a skip fails the run unless listed here
#: with its reason: a case that cannot run is not generated, so this list stays empty
EXPECTED_SKIPS: dict[str, str] = {}
STRICT_SKIPS = REQUIRE_SERVERS or os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail") and report.nodeid not in EXPECTED_SKIPS:
        _unexpected_skips.append(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if STRICT_SKIPS and _unexpected_skips:
        terminalreporter.section("unexpected skips", red=True)
        for nodeid in _unexpected_skips:
            terminalreporter.line(f"SKIPPED (not in conftest.EXPECTED_SKIPS): {nodeid}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run on any skip it did not expect (CI, MODELKIT_ASSETS_REQUIRE_SERVERS=1):
    a skipped test proves nothing, and a silent skip hides a guarantee left untested."""
    if STRICT_SKIPS and _unexpected_skips and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def clean_environ(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """No MODELKIT_* variable leaks in, and the user dirs point into a temp folder."""
    for key in list(os.environ):
        if key.startswith(("MODELKIT_", "AWS_", "AZURE_STORAGE_")) or key in (
            "S3_ENDPOINT",
            "STORAGE_EMULATOR_HOST",
            "FSSPEC_S3_ENDPOINT_URL",
        ):
            monkeypatch.delenv(key, raising=False)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _memory_url() -> str:
    return f"memory://t{uuid.uuid4().hex[:12]}"


def _backend_params(backends: list[str]) -> list[object]:
    return [pytest.param(b, marks=pytest.mark.cloud) if b in CLOUD_BACKENDS else b for b in backends]


@pytest.fixture(params=_backend_params(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


#: the backends that several processes can share (a memory:// store lives in one process)
SHARED_BACKENDS = [b for b in BACKENDS if b != "memory"]


@pytest.fixture(params=_backend_params(SHARED_BACKENDS))
def shared_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- cloud servers (tests/servers.py): one per session, a fresh bucket per test ---------------
def _start(starter: Callable[[], servers.Server]) -> servers.Server:
    """Start a server, or fail (CI: MODELKIT_ASSETS_REQUIRE_SERVERS=1) or skip saying why."""
    try:
        return starter()
    except servers.ServerUnavailableError as err:
        if REQUIRE_SERVERS:
            pytest.fail(f"{err} (MODELKIT_ASSETS_REQUIRE_SERVERS=1: a missing server is a failure)")
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def s3_server(server_logs: Path) -> Iterator[servers.Server]:
    server = _start(lambda: servers.start_moto(server_logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server(server_logs: Path) -> Iterator[servers.Server]:
    server = _start(lambda: servers.start_fake_gcs(server_logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azure_server(server_logs: Path) -> Iterator[servers.Server]:
    server = _start(lambda: servers.start_azurite(server_logs))
    yield server
    server.stop()


StoreFactory = Callable[[], tuple[str, dict[str, object]]]


def _bucket_factory(backend: str, server: servers.Server) -> StoreFactory:
    import fsspec

    options = servers.storage_options(backend, server.url)

    def make() -> tuple[str, dict[str, object]]:
        bucket = f"t{uuid.uuid4().hex[:16]}"
        fsspec.filesystem(servers.PROTOCOLS[backend], **options).mkdir(bucket)
        return f"{servers.PROTOCOLS[backend]}://{bucket}/assets", dict(options)

    return make


@pytest.fixture
def s3_store_factory(s3_server: servers.Server) -> StoreFactory:
    """Makes a fresh bucket on the moto server; returns (URL, storage options)."""
    return _bucket_factory("s3", s3_server)


@pytest.fixture
def gcs_store_factory(gcs_server: servers.Server) -> StoreFactory:
    """Makes a fresh bucket on fake-gcs-server; returns (URL, storage options)."""
    return _bucket_factory("gcs", gcs_server)


@pytest.fixture
def azure_store_factory(azure_server: servers.Server) -> StoreFactory:
    """Makes a fresh container on Azurite; returns (URL, storage options)."""
    return _bucket_factory("azure", azure_server)


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    """(URL, storage options) of a fresh, empty store root on ``backend``."""
    return make_store_url(backend, tmp_path, request)


@pytest.fixture
def shared_store(
    shared_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, dict[str, object]]:
    """(URL, storage options) of a fresh, empty store root that other processes can reach:
    only these cases are generated (no memory:// case that would skip)."""
    return make_store_url(shared_backend, tmp_path, request)


def make_store_url(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> tuple[str, dict[str, object]]:
    if backend == "memory":
        return _memory_url(), {}
    if backend == "local":
        return (tmp_path / "store").as_uri(), {}
    factory = request.getfixturevalue(f"{backend}_store_factory")
    url, options = factory()
    return url, options


@pytest.fixture
def store(store_url: tuple[str, dict[str, object]]) -> AssetStore:
    url, options = store_url
    return AssetStore(url, options)


@pytest.fixture
def manager(store: AssetStore, tmp_path: Path) -> AssetsManager:
    return AssetsManager(store, tmp_path / "assets")


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "model.bin"
    path.parent.mkdir(parents=True)
    path.write_bytes(os.urandom(4096))
    return path


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "tokenizer"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "vocab.txt").write_text("a\nb\nc\n")
    (root / "config.json").write_text('{"lower": true}')
    (root / "sub" / "merges.txt").write_bytes(os.urandom(10000))
    (root / "sub" / "deeper" / "empty.bin").write_bytes(b"")
    return root


@contextlib.contextmanager
def file_permissions_apply() -> Iterator[None]:
    """Make file permissions bite for this thread (and the threads it starts), even as root.

    Root reads any file through the capabilities ``CAP_DAC_OVERRIDE`` and
    ``CAP_DAC_READ_SEARCH``; dropping them from the effective set (they stay permitted,
    so they are restored afterwards) makes root an ordinary owner, so a test of an
    unreadable file runs instead of skipping. A no-op for other users.
    """
    if os.geteuid() != 0:
        yield
        return
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [(field, ctypes.c_uint32) for field in ("effective", "permitted", "inheritable")]

    libc = ctypes.CDLL(None, use_errno=True)
    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    saved = data[0].effective
    dac = (1 << 1) | (1 << 2)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
    data[0].effective = saved & ~dac
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    try:
        yield
    finally:
        data[0].effective = saved
        libc.capset(ctypes.byref(header), data)
