"""modelkit's ``tests/assets/conftest.py`` for the conformance run (copied in by run.py).

The same fixtures as modelkit's (``local_assetsmanager``, ``s3_assetsmanager``,
``gcs_assetsmanager``, ``az_assetsmanager``), built the way modelkit's conftest builds them
(``StorageProvider(provider=..., bucket=..., ...)``), on the servers our own suite uses
(moto, fake-gcs-server, Azurite from tests/servers.py) instead of docker containers; a
fresh bucket per test. Tests listed in excluded.toml are skipped with their reason.
"""

from __future__ import annotations

import os
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
sys.path.insert(0, os.environ["MODELKIT_CONFORMANCE_OURS"])

import google.api_core.exceptions  # noqa: F401  (test_retry.py gets it through modelkit's drivers)
import servers  # our tests/servers.py

from modelkit_assets.compat.manager import AssetsManager
from modelkit_assets.compat.remote import StorageProvider

EXCLUDED = tomllib.loads(Path(os.environ["MODELKIT_CONFORMANCE_EXCLUDED"]).read_text())
_COUNTS: dict[str, int] = {}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the excluded tests with their reason; an exclusion matching no test is an
    error (the list stays true when modelkit's tests change)."""
    files: dict[str, str] = EXCLUDED.get("files", {})
    tests: dict[str, str] = EXCLUDED.get("tests", {})
    used: set[str] = set()
    for item in items:
        module, _, name = item.nodeid.removeprefix("tests/assets/").partition("::")
        for key, table in ((module, files), (f"{module}::{name.split('[')[0]}", tests)):
            if key in table:
                used.add(key)
                item.add_marker(pytest.mark.skip(reason=f"excluded: {table[key]}"))
    stale = (set(files) | set(tests)) - used
    if stale:
        raise pytest.UsageError(f"excluded.toml lists tests that do not exist: {', '.join(sorted(stale))}")
    _COUNTS["total"] = len(items)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    stats = terminalreporter.stats
    passed = len(stats.get("passed", []))
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = stats.get("skipped", [])
    excluded = sum(1 for r in skipped if "excluded: " in str(r.longrepr))
    terminalreporter.write_line(
        f"conformance: {passed} passed, {failed} failed, {excluded} excluded, "
        f"{len(skipped) - excluded} skipped otherwise, of {_COUNTS.get('total', 0)} tests"
    )


def _start(starter):  # type: ignore[no-untyped-def]
    try:
        return starter()
    except servers.ServerUnavailableError as err:
        pytest.fail(f"{err}: the conformance run needs every server")


@pytest.fixture(scope="session")
def _logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def _moto(_logs: Path) -> Iterator[servers.Server]:
    server = _start(lambda: servers.start_moto(_logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _fake_gcs(_logs: Path) -> Iterator[servers.Server]:
    server = _start(lambda: servers.start_fake_gcs(_logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def _azurite(_logs: Path) -> Iterator[servers.Server]:
    server = _start(lambda: servers.start_azurite(_logs))
    yield server
    server.stop()


def _bucket() -> str:
    return f"test-assets-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def local_assetsmanager(base_dir: str, working_dir: str) -> AssetsManager:
    bucket_path = os.path.join(base_dir, "local_driver", "bucket")
    os.makedirs(bucket_path)
    return AssetsManager(
        assets_dir=working_dir, storage_provider=StorageProvider(provider="local", bucket=bucket_path)
    )


@pytest.fixture
def s3_assetsmanager(_moto: servers.Server, working_dir: str) -> AssetsManager:
    import s3fs

    bucket = _bucket()
    s3fs.S3FileSystem(**servers.storage_options("s3", _moto.url)).mkdir(bucket)
    return AssetsManager(
        assets_dir=working_dir,
        storage_provider=StorageProvider(
            prefix=f"test-assets-{uuid.uuid1().hex}",
            provider="s3",
            aws_default_region="us-east-1",
            bucket=bucket,
            aws_access_key_id=servers.S3_KEY,
            aws_secret_access_key=servers.S3_SECRET,
            aws_session_token=None,
            s3_endpoint=_moto.url,
        ),
    )


@pytest.fixture
def gcs_assetsmanager(_fake_gcs: servers.Server, working_dir: str) -> AssetsManager:
    import gcsfs

    bucket = _bucket()
    # modelkit passes a google.cloud.storage client here; compat takes an fsspec one
    client = gcsfs.GCSFileSystem(**servers.storage_options("gcs", _fake_gcs.url))
    client.mkdir(bucket)
    return AssetsManager(
        assets_dir=working_dir,
        storage_provider=StorageProvider(prefix="test-prefix", provider="gcs", bucket=bucket, client=client),
    )


@pytest.fixture
def az_assetsmanager(_azurite: servers.Server, working_dir: str) -> AssetsManager:
    import adlfs

    bucket = _bucket()
    connection_string = servers.azurite_connection_string(_azurite.url)
    adlfs.AzureBlobFileSystem(connection_string=connection_string).mkdir(bucket)
    return AssetsManager(
        assets_dir=working_dir,
        storage_provider=StorageProvider(
            prefix=f"test-assets-{uuid.uuid1().hex}",
            provider="az",
            bucket=bucket,
            connection_string=connection_string,
        ),
    )


def pytest_collection_finish(session: pytest.Session) -> None:
    """From now on a placeholder import (tests/_excluded.py) raises when used."""
    import tests._excluded

    tests._excluded.COLLECTING = False
