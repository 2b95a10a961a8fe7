"""Backend failures map to the same clear ``StoreError`` subclasses on every cloud, and
never quote a credential: missing bucket, wrong credentials, permission denied,
unreachable endpoint. Each case is produced by the real client against a real server,
except where an emulator cannot produce it (said in the test)."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
import servers

from modelkit_assets import AssetStore
from modelkit_assets.errors import (
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
)

pytestmark = pytest.mark.cloud

CLOUDS = ["s3", "gcs", "azure"]


def _raises(cls: type[StoreError], call: object, *secrets: str) -> StoreError:
    """``call()`` raises exactly ``cls`` with a one-line message free of ``secrets``."""
    with pytest.raises(cls) as info:
        call()  # type: ignore[operator]
    err = info.value
    message = str(err)
    assert "\n" not in message and "://" in message, message  # one line, names the store
    for secret in secrets:
        assert secret not in message and secret not in repr(err), message
    return err


@pytest.fixture
def no_store_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """One try per request at the store level: the SDKs' own retries already make these
    failures slow, and the mapping is what is under test."""
    from modelkit_assets.settings import get_settings

    monkeypatch.setenv("MODELKIT_ASSETS_RETRIES", "1")
    get_settings.cache_clear()


def _server(request: pytest.FixtureRequest, backend: str) -> servers.Server:
    return request.getfixturevalue({"s3": "s3_server", "gcs": "gcs_server", "azure": "azure_server"}[backend])


# -- missing bucket ---------------------------------------------------------------------------
@pytest.mark.parametrize("backend", CLOUDS)
def test_missing_bucket(request: pytest.FixtureRequest, backend: str, sample_file: Path) -> None:
    server = _server(request, backend)
    options = servers.storage_options(backend, server.url)
    url = f"{servers.PROTOCOLS[backend]}://missing{uuid.uuid4().hex[:12]}/assets"
    store = AssetStore(url, options)
    secret = json.dumps(options)
    for call in (
        lambda: store.versions("a"),
        lambda: list(store.list()),
        lambda: store.new(sample_file, "a"),
    ):
        err = _raises(StoreNotFoundError, call, secret, servers.AZURITE_KEY)
        assert "does not exist" in str(err) and url in str(err)


# -- wrong credentials and permission denied --------------------------------------------------
@pytest.fixture(scope="session")
def s3_auth(server_logs: Path) -> Iterator[dict[str, str]]:
    """A moto server that enforces IAM: a bucket, and a reader allowed to list and get only."""
    import boto3
    from conftest import _start

    server = _start(lambda: servers.start_moto(server_logs, auth=True))
    try:
        admin = {
            "endpoint_url": server.url,
            "aws_access_key_id": "AKIAADMINADMINADMIN0",
            "aws_secret_access_key": "admin-secret",
            "region_name": "us-east-1",
        }
        boto3.client("s3", **admin).create_bucket(Bucket="guarded")
        iam = boto3.client("iam", **admin)
        iam.create_user(UserName="reader")
        policy = {
            "Version": "2012-10-17",
            # wildcards: moto 5.2.6 checks the operation's name (s3:ListObjectsV2,
            # s3:HeadObject) where AWS and earlier motos check s3:ListBucket / s3:GetObject
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:Get*", "s3:List*", "s3:Head*"], "Resource": "*"}
            ],
        }
        iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        servers.enable_moto_auth(server)
        yield {"url": server.url, "key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}
    finally:
        server.stop()


def test_s3_wrong_credentials(s3_auth: dict[str, str]) -> None:
    secret = "wrong-secret-" + uuid.uuid4().hex
    store = AssetStore(
        "s3://guarded/assets",
        {"endpoint_url": s3_auth["url"], "key": "AKIAWRONGWRONG000000", "secret": secret},
    )
    err = _raises(StorePermissionError, lambda: store.versions("a"), secret, "AKIAWRONGWRONG000000")
    assert "credentials" in str(err)


def test_pandas_shows_a_refused_credential(s3_auth: dict[str, str]) -> None:
    """pandas retries a PermissionError with ``anon=True``; the protocol ignores it, so the
    user sees the store's refusal, not "Unknown option(s) anon"."""
    pandas = pytest.importorskip("pandas")
    secret = "wrong-secret-" + uuid.uuid4().hex
    options = {
        "store": "s3://guarded/assets",
        "store_options": {"endpoint_url": s3_auth["url"], "key": "AKIAWRONGWRONG000000", "secret": secret},
    }
    with pytest.raises(StorePermissionError, match="permission denied") as info:
        pandas.read_csv("modelkit-assets://data/iris:0.0/iris.csv", storage_options=options)
    assert secret not in str(info.value)


def test_s3_permission_denied(s3_auth: dict[str, str], sample_file: Path) -> None:
    options = {"endpoint_url": s3_auth["url"], "key": s3_auth["key"], "secret": s3_auth["secret"]}
    store = AssetStore("s3://guarded/assets", options)
    assert list(store.list()) == []  # reading is allowed
    _raises(StorePermissionError, lambda: store.new(sample_file, "a"), s3_auth["secret"], s3_auth["key"])


def _azure_container(server: servers.Server) -> str:
    container = f"c{uuid.uuid4().hex[:12]}"
    fsspec.filesystem("az", **servers.storage_options("azure", server.url)).mkdir(container)
    return container


def test_azure_wrong_credentials(azure_server: servers.Server) -> None:
    container = _azure_container(azure_server)
    wrong_key = "A" * 20 + servers.AZURITE_KEY[20:]
    options = {"connection_string": servers.azurite_connection_string(azure_server.url, key=wrong_key)}
    store = AssetStore(f"az://{container}/assets", options)
    err = _raises(StorePermissionError, lambda: store.versions("a"), wrong_key, servers.AZURITE_KEY)
    assert "credentials" in str(err)


def test_azure_permission_denied(azure_server: servers.Server, sample_file: Path) -> None:
    """A container SAS that may read and list but not write."""
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    container = _azure_container(azure_server)
    sas = generate_container_sas(
        account_name=servers.AZURITE_ACCOUNT,
        container_name=container,
        account_key=servers.AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
    )
    options = {
        "connection_string": (
            f"BlobEndpoint={azure_server.url}/{servers.AZURITE_ACCOUNT};SharedAccessSignature={sas}"
        )
    }
    store = AssetStore(f"az://{container}/assets", options)
    assert list(store.list()) == []
    signature = sas.split("sig=")[1].split("&")[0]
    _raises(StorePermissionError, lambda: store.new(sample_file, "a"), signature, sas)


@pytest.mark.usefixtures("no_store_retries")
def test_gcs_wrong_credentials(gcs_server: servers.Server, tmp_path: Path) -> None:
    """A service-account key the token endpoint refuses (fake-gcs-server checks no token,
    so the refusal comes from the OAuth exchange google-auth makes before any request)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    key_file = tmp_path / "service-account.json"
    key_file.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "test",
                "private_key_id": "0" * 40,
                "private_key": pem,
                "client_email": "robot@test.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": f"{gcs_server.url}/oauth2/token",
            }
        )
    )
    store = AssetStore("gs://any-bucket/assets", {"endpoint_url": gcs_server.url, "token": str(key_file)})
    err = _raises(StorePermissionError, lambda: store.versions("a"), pem.splitlines()[1])
    assert "credentials" in str(err)


class _Forbidden(http.server.BaseHTTPRequestHandler):
    """Answers every request as GCS answers a principal without rights (fake-gcs-server
    has no IAM, so permission denied cannot come from it)."""

    def _deny(self) -> None:
        body = json.dumps(
            {
                "error": {
                    "code": 403,
                    "message": "robot does not have storage.objects.list access to the bucket.",
                    "errors": [{"reason": "forbidden", "domain": "global"}],
                }
            }
        ).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = _deny

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_gcs_permission_denied() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Forbidden)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        store = AssetStore("gs://bucket/assets", {"endpoint_url": url, "token": "anon"})
        _raises(StorePermissionError, lambda: store.versions("a"))
        _raises(StorePermissionError, lambda: list(store.list()))
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# -- unreachable endpoint ---------------------------------------------------------------------
CLI = Path(sys.executable).with_name("modelkit-assets")
#: what a command may take to give up on a dead endpoint, on every cloud (was > 2 min on GCS)
UNREACHABLE_BOUND_S = 30.0


def _run_cli(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [str(CLI), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize("backend", CLOUDS)
def test_unreachable_endpoint_fails_within_the_bound_with_one_line(backend: str, tmp_path: Path) -> None:
    """The installed command, default settings, the real client of each cloud: the product's
    retry policy bounds the whole (the backends' own retries are turned down to one extra
    try), and stderr holds our one line only (gcsfs logs a traceback per failed request)."""
    options = servers.storage_options(backend, f"http://127.0.0.1:{servers.closed_port()}")
    env = {
        **os.environ,
        "MODELKIT_ASSETS_STORE": f"{servers.PROTOCOLS[backend]}://bucket/assets",
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }
    done, elapsed = _run_cli(["versions", "a"], env)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"Error: The store {env['MODELKIT_ASSETS_STORE']} could not be reached to list a; check the "
        "endpoint and the network, then retry."
    ], done.stderr
    assert elapsed < UNREACHABLE_BOUND_S, elapsed
    for secret in (servers.S3_SECRET, servers.AZURITE_KEY):
        assert secret not in done.stderr

    # the retrying is the product's: -vv shows each of its retries, as many as it is allowed
    done, elapsed = _run_cli(["-vv", "versions", "a"], {**env, "MODELKIT_ASSETS_RETRIES": "3"})
    assert done.returncode == 1
    retries = [line for line in done.stderr.splitlines() if line.startswith("DEBUG: Retrying list a after")]
    assert [line.split("(attempt ")[1].split(" failed")[0] for line in retries] == ["1 of 3", "2 of 3"]
    assert elapsed < UNREACHABLE_BOUND_S, elapsed
