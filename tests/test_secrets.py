"""G7: recognisable fake credentials, given every way a user can give them (storage
options, MODELKIT_ASSETS_STORAGE_OPTIONS, AWS_* variables, a store URL with a user and
password), never appear in output, logs (DEBUG included), exception messages or reprs,
through successful commands and every error path, in the library and in the CLI.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import servers

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import AssetsError
from modelkit_assets.settings import Settings

pytestmark = pytest.mark.cloud

KEY = "AKIAFAKEKEY7Q3X9Z2WV"
SECRET = "fake-S3cr3t-d0-n0t-pr1nt-9f8e7d"
PASSWORD = "p4ssw0rd-FAKE-2b3c"
TOKEN = "fake-session-t0ken-5a6b7c"
SECRETS = (KEY, SECRET, PASSWORD, TOKEN)


def assert_clean(*texts: object) -> None:
    for text in texts:
        rendered = str(text)
        for secret in SECRETS:
            assert secret not in rendered, f"{secret!r} leaked into: {rendered[:300]}"


@pytest.fixture
def creds_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    yield


def _options(endpoint: str) -> dict[str, object]:
    return {"endpoint_url": endpoint, "key": KEY, "secret": SECRET, "token": TOKEN}


def test_library_success_and_error_paths_never_show_credentials(
    s3_server: servers.Server,
    s3_store_factory: object,
    creds_env: None,
    tmp_path: Path,
    sample_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    url, _ = s3_store_factory()  # type: ignore[operator]
    store = AssetStore(url, _options(s3_server.url))
    manager = AssetsManager(store, tmp_path / "assets")
    seen: list[object] = [repr(store), repr(manager), store.display_url]

    # success
    seen += [store.new(sample_dir, "secret/model"), store.update(sample_dir, "secret/model")]
    seen += [list(store.list()), store.versions("secret/model"), store.meta("secret/model", "0.1")]
    result = manager.fetch_info("secret/model:0.0")
    seen += [result, result.to_dict(), repr(result)]

    # errors: missing asset and version, a bad meta, a corrupt object, a dead endpoint
    failures: list[BaseException] = []

    def fails(action: object) -> None:
        with pytest.raises(AssetsError) as info:
            action()  # type: ignore[operator]
        failures.append(info.value)

    fails(lambda: manager.fetch("secret/missing"))
    fails(lambda: manager.fetch("secret/model:9.9"))
    store.fs.pipe_file(store.layout.meta("secret/bad", "0.0"), b"{not json")
    fails(lambda: manager.fetch("secret/bad:0.0"))
    store.fs.pipe_file(store.layout.data("secret/model", "0.1", "vocab.txt"), b"tampered")
    # into a fresh assets dir: the one above holds that content already (from 0.0) and
    # would link it in instead of downloading the corrupt object
    fails(lambda: AssetsManager(store, tmp_path / "fresh-assets").fetch("secret/model:0.1"))
    from modelkit_assets.retry import RetryPolicy

    dead_endpoint = f"http://127.0.0.1:{servers.closed_port()}"
    password_url = f"s3://{KEY}:{PASSWORD}@bucket/prefix"
    for dead in (
        AssetStore(url, _options(dead_endpoint), retry=RetryPolicy(attempts=2, base_delay_s=0.01)),
        AssetStore(password_url, _options(dead_endpoint), retry=RetryPolicy(attempts=2, base_delay_s=0.01)),
    ):
        seen += [repr(dead), dead.display_url]
        fails(lambda dead=dead: dead.versions("secret/model"))  # type: ignore[misc]
        fails(lambda dead=dead: dead.new(sample_dir, "secret/other"))  # type: ignore[misc]
        fails(lambda dead=dead: AssetsManager(dead, tmp_path / "a2").fetch("x:0.0"))  # type: ignore[misc]
    assert len(failures) == 10
    for error in failures:
        seen += [str(error), repr(error), error.args]
        cause: BaseException | None = error
        while cause is not None:  # the chain a debugger or a traceback would show
            seen.append(str(cause))
            cause = cause.__cause__
    settings = Settings.from_env(
        {"MODELKIT_ASSETS_STORE": password_url, "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(_options("x"))}
    )
    seen += [repr(settings), str(settings)]
    # ours at every level; any library's from INFO up (botocore logs its signed canonical
    # request, session token included, at DEBUG: that is botocore's to hide, not ours)
    records = [r for r in caplog.records if r.name.startswith("modelkit_assets") or r.levelno >= logging.INFO]
    seen += [record.getMessage() for record in records]
    assert_clean(*seen)
    ours = [r for r in records if r.name.startswith("modelkit_assets") and r.levelno == logging.DEBUG]
    assert ours  # DEBUG was really captured (the retries)


def _cli(args: list[str], env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelkit_assets", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_success_and_error_paths_never_show_credentials(
    s3_server: servers.Server, s3_store_factory: object, tmp_path: Path, sample_dir: Path
) -> None:
    url, _ = s3_store_factory()  # type: ignore[operator]
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MODELKIT_", "AWS_")) and k not in ("S3_ENDPOINT", "FSSPEC_S3_ENDPOINT_URL")
    }
    env = {
        **base,
        "MODELKIT_ASSETS_STORE": url,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(_options(s3_server.url)),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
        "MODELKIT_ASSETS_RETRIES": "2",
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_SESSION_TOKEN": TOKEN,
    }
    dead = {
        **env,
        "MODELKIT_ASSETS_STORE": f"s3://{KEY}:{PASSWORD}@bucket/prefix",
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(_options(f"http://127.0.0.1:{servers.closed_port()}")),
    }
    runs = [
        (env, ["new", str(sample_dir), "cli/model", "--yes"], 0),
        (env, ["update", str(sample_dir), "cli/model"], 0),  # answered on stdin below
        (env, ["list"], 0),
        (env, ["list", "--json"], 0),
        (env, ["fetch", "cli/model:0.1", "--json"], 0),
        (env, ["fetch", "cli/missing"], 1),
        (env, ["new", str(tmp_path / "nope"), "cli/x", "--yes"], 1),
        (env, ["fetch", "../escape"], 1),
        (dead, ["list"], 1),
        (dead, ["fetch", "cli/model:0.0"], 1),
        (dead, ["new", str(sample_dir), "cli/y", "--yes"], 1),
        ({**dead, "MODELKIT_ASSETS_DEBUG": "1"}, ["fetch", "cli/uncached"], 1),  # with a traceback
        ({**env, "MODELKIT_ASSETS_STORAGE_OPTIONS": "{not json " + SECRET}, ["list"], 1),
    ]
    for run_env, args, code in runs:
        done = _cli(args, run_env, stdin="y\n")
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert_clean(done.stdout, done.stderr)


# -- signed source URLs (a query token or user:password in the URL of a remote source) -----
SIG = "fake-s1gnature-Q7r8s9t0"
SIGNED_SECRETS = (*SECRETS, SIG)


def assert_no_signature(*texts: object) -> None:
    for text in texts:
        rendered = str(text)
        for secret in SIGNED_SECRETS:
            assert secret not in rendered, f"{secret!r} leaked into: {rendered[:300]}"


class _QuietHandler(SimpleHTTPRequestHandler):
    """Serves a folder; ``/forbidden/...`` answers 403 (an expired signature), and a GET
    of ``/expired/...`` too (the signature expired between the HEAD and the GET)."""

    def log_message(self, format: str, *args: object) -> None:  # the test's own server
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        if self.path.startswith("/forbidden"):
            self.send_error(403)
            return None
        return super().send_head()

    def do_GET(self) -> None:
        if self.path.startswith("/expired"):
            self.send_error(403)
            return
        super().do_GET()


@pytest.fixture
def http_source(tmp_path: Path) -> Iterator[str]:
    """A plain HTTP server on 127.0.0.1 serving ``vocab.txt`` (a query string is ignored,
    as a signed-URL server ignores it once the signature holds): its base URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    (folder / "vocab.txt").write_text("a\nb\nc\n")
    (folder / "expired").mkdir()
    (folder / "expired" / "vocab.txt").write_text("a\nb\nc\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _signed_urls(base: str) -> list[str]:
    host = base.removeprefix("http://")
    return [
        f"{base}/vocab.txt?sig={SIG}&se=2030-01-01",  # Azure SAS-like
        f"{base}/vocab.txt?X-Amz-Credential={KEY}&X-Amz-Signature={SIG}&X-Amz-Security-Token={TOKEN}",
        f"http://{KEY}:{PASSWORD}@{host}/vocab.txt?token={SIG}#frag",
    ]


def _chain(error: BaseException) -> list[object]:
    seen: list[object] = []
    current: BaseException | None = error
    while current is not None:  # what a traceback (MODELKIT_ASSETS_DEBUG=1) would show
        seen += [str(current), repr(current), current.args]
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return seen


def test_signed_source_url_never_reaches_the_meta_logs_or_errors(
    store: AssetStore, tmp_path: Path, http_source: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A file asset published from a signed URL is named by the URL's path alone, and
    its ``source`` is the redacted URL, in the stored ``.meta`` bytes too."""
    caplog.set_level(logging.DEBUG)
    seen: list[object] = []
    for index, url in enumerate(_signed_urls(http_source)):
        name = f"signed/vocab{index}"
        seen.append(store.new(url, name))
        meta = store.meta(name, "0.0")
        assert list(meta.files) == ["vocab.txt"]
        assert meta.source == f"{http_source}/vocab.txt"
        raw = store.fs.cat_file(store.layout.meta(name, "0.0"))
        assert list(json.loads(raw)["files"]) == ["vocab.txt"]
        seen += [raw.decode(), meta, meta.to_dict(), list(store.list()), store.versions(name)]
        path = AssetsManager(store, tmp_path / "assets").fetch(f"{name}:0.0")
        assert path.read_text() == "a\nb\nc\n"
        seen.append(path)

    dead = f"http://127.0.0.1:{servers.closed_port()}"
    for bad in (
        f"{http_source}/missing.txt?sig={SIG}",
        f"{http_source}/forbidden/vocab.txt?sig={SIG}",
        f"{http_source}/expired/vocab.txt?sig={SIG}",
        f"{dead}/vocab.txt?sig={SIG}",
        f"http://{KEY}:{PASSWORD}@127.0.0.1:{servers.closed_port()}/v.txt",
    ):
        with pytest.raises(AssetsError) as info:
            store.new(bad, "signed/bad")
        seen += _chain(info.value)
    # ours at every level, any library's from INFO up (fsspec's http logs each URL it
    # requests at DEBUG, as botocore logs its signed requests: theirs to hide)
    seen += [
        r.getMessage() for r in caplog.records if r.name.startswith("modelkit_assets") or r.levelno >= 20
    ]
    seen += [str(p) for p in (tmp_path / "assets").rglob("*")]
    assert_no_signature(*seen)


def test_cli_never_shows_a_signed_source_url(tmp_path: Path, http_source: str) -> None:
    from typer.testing import CliRunner

    from modelkit_assets.cli.app import app

    env = {
        "MODELKIT_ASSETS_STORE": f"file://{tmp_path / 'store'}",
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }
    runner = CliRunner()
    url = _signed_urls(http_source)[1]
    runs = [
        ["-vv", "new", url, "signed/vocab", "--yes"],
        ["-vv", "update", _signed_urls(http_source)[2], "signed/vocab", "--yes"],
        ["list"],
        ["list", "--json"],
        ["versions", "signed/vocab"],
        ["versions", "signed/vocab", "--json"],
        ["info", "signed/vocab:0.0"],
        ["info", "signed/vocab:0.1", "--json"],
        ["fetch", "signed/vocab:0.0", "--json"],
        ["fetch", "signed/vocab:0.1"],
        ["verify", "--remote", "--all"],
    ]
    for args in runs:
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 0, (args, done.output)
        assert_no_signature(done.output)
    info = runner.invoke(app, ["info", "signed/vocab:0.0", "--json"], env=env)
    assert list(json.loads(info.output)["files"]) == ["vocab.txt"]
    for args in (["new", f"{http_source}/missing.txt?sig={SIG}", "signed/x", "--yes"],):
        done = runner.invoke(app, args, env={**env, "MODELKIT_ASSETS_DEBUG": "1"})
        assert done.exit_code == 1
        assert_no_signature(done.output, "".join(traceback.format_exception(done.exception)))  # type: ignore[arg-type]
    for path in (tmp_path / "store").rglob("*"):
        assert_no_signature(path)
        if path.is_file():
            assert_no_signature(path.read_bytes().decode(errors="replace"))


@pytest.mark.parametrize("cloud", ["s3", "gcs", "azure"])
def test_cloud_source_urls_with_credentials_are_redacted(
    request: pytest.FixtureRequest, cloud: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """s3://, gs:// and az:// sources carrying user:password or a query token: published
    under the key's own name, or refused with an error that shows neither."""
    caplog.set_level(logging.DEBUG)
    url, options = request.getfixturevalue(f"{cloud}_store_factory")()
    store = AssetStore(url, options)
    bucket_root = url.split("://", 1)[1]
    store.fs.pipe_file(f"{bucket_root}/src/vocab.txt", b"a\nb\n")
    protocol = url.split("://", 1)[0]
    seen: list[object] = []
    published = []
    for index, source in enumerate(
        (
            f"{protocol}://{KEY}:{PASSWORD}@{bucket_root}/src/vocab.txt",
            f"{protocol}://{bucket_root}/src/vocab.txt?X-Amz-Signature={SIG}&sv={TOKEN}",
        )
    ):
        try:
            version = store.new(source, f"cloud/vocab{index}")
        except AssetsError as err:
            seen += _chain(err)
            continue
        meta = store.meta(f"cloud/vocab{index}", version)
        published.append(meta)
        assert list(meta.files) == ["vocab.txt"]
        seen += [meta, store.fs.cat_file(store.layout.meta(f"cloud/vocab{index}", version)).decode()]
    seen += [r.getMessage() for r in caplog.records if r.name.startswith("modelkit_assets")]
    assert_no_signature(*seen)
    if cloud != "s3":  # s3:// takes key:secret from the URL; gs:// and az:// refuse it
        assert len(published) <= 1


# -- signing keys: a private key (and its passphrase) never leaves the key object ------------
PASSPHRASE = "fake-k3y-passphrase-8d7c6b"


def _private_key_files(folder: Path) -> dict[str, Path]:
    """An Ed25519 key in the clear and an EC P-256 key encrypted with PASSPHRASE."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from modelkit_assets.signing import generate_key

    plain, _ = generate_key(folder / "plain.pem")
    encrypted = folder / "encrypted.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE.encode()),
        )
    )
    encrypted.with_name("encrypted.pub.pem").write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return {"plain": plain, "encrypted": encrypted}


def _key_secrets(paths: dict[str, Path]) -> list[str]:
    """What must never be shown: each line of the private PEM bodies, the raw private
    scalars (hex and base64), and the passphrase."""
    import base64

    from cryptography.hazmat.primitives import serialization

    found = [PASSPHRASE]
    for path in paths.values():
        data = path.read_bytes()
        found += [line for line in data.decode().splitlines() if line and not line.startswith("-----")]
        password = PASSPHRASE.encode() if b"ENCRYPTED" in data else None
        key = serialization.load_pem_private_key(data, password=password)
        raw = key.private_bytes(  # the PKCS8 DER holds the scalar: any encoding of it
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        found += [raw.hex(), base64.b64encode(raw).decode()[8:40], raw[-32:].hex()]
        found.append(base64.b64encode(raw[-32:]).decode()[:24])
    return found


def assert_no_key(secrets: list[str], *texts: object) -> None:
    for text in texts:
        rendered = str(text)
        for secret in secrets:
            assert secret not in rendered, f"private key material leaked into: {rendered[:300]}"


def test_signing_keys_never_show_in_reprs_logs_or_errors(
    tmp_path: Path, sample_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from modelkit_assets.errors import ConfigurationError
    from modelkit_assets.signing import load_signing_key, load_trusted_keys

    caplog.set_level(logging.DEBUG)
    keys = _private_key_files(tmp_path)
    secrets = _key_secrets(keys)
    settings = Settings.from_env(
        {
            "MODELKIT_ASSETS_STORE": (tmp_path / "store").as_uri(),
            "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
            "MODELKIT_ASSETS_SIGNING_KEY": str(keys["encrypted"]),
            "MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE": PASSPHRASE,
        }
    )
    store = AssetStore(settings=settings)
    seen: list[object] = [repr(settings), repr(store), settings]
    loaded = store.signing_key()  # the configured, encrypted key
    plain = load_signing_key(keys["plain"])
    seen += [repr(loaded), str(loaded), repr(plain), loaded.public_pem, vars(loaded).get("origin")]
    assert loaded is not None and loaded.algorithm == "ecdsa-p256-sha256"
    seen += [store.new(sample_dir, "signed/model"), store.update(sample_dir, "signed/model", sign_key=plain)]
    seen += [s.to_json() for s in store.signatures.all("signed/model", "0.1")]
    seen += [store.signatures.all("signed/model", "0.0")]

    failures: list[BaseException] = []
    attempts = [
        lambda: load_signing_key(keys["encrypted"]),  # no passphrase
        lambda: load_signing_key(keys["encrypted"], "wrong-" + PASSPHRASE),
        lambda: load_signing_key(keys["plain"], PASSPHRASE),  # a passphrase for a clear key
        lambda: load_trusted_keys([keys["plain"]]),  # a private key given as trusted
        lambda: AssetsManager(
            store, tmp_path / "a", require_signature=True, trusted_keys=[keys["encrypted"]]
        ),
    ]
    for attempt in attempts:
        with pytest.raises(ConfigurationError) as info:
            attempt()
        failures.append(info.value)
        seen += _chain(info.value)
        seen.append("".join(traceback.format_exception(info.value)))
    assert len(failures) == len(attempts)
    assert_no_key(secrets, *seen, caplog.text)


def test_cli_never_shows_a_signing_key(tmp_path: Path, sample_dir: Path) -> None:
    keys = _private_key_files(tmp_path)
    secrets = _key_secrets(keys)
    base = {k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")}
    env = {
        **base,
        "MODELKIT_ASSETS_STORE": (tmp_path / "store").as_uri(),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
        "MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE": PASSPHRASE,
        "MODELKIT_ASSETS_TRUSTED_KEYS": str(tmp_path / "encrypted.pub.pem"),
    }
    debug = {**env, "MODELKIT_ASSETS_DEBUG": "1"}
    no_pass = {k: v for k, v in debug.items() if k != "MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE"}
    runs = [
        (env, ["-vv", "new", str(sample_dir), "k/model", "--yes", "--sign-key", str(keys["encrypted"])], 0),
        (env, ["-vv", "fetch", "k/model:0.0", "--require-signature", "--json"], 0),
        (env, ["info", "k/model:0.0", "--json"], 0),
        (env, ["verify", "--remote", "--all", "--require-signature", "--json"], 0),
        (no_pass, ["update", str(sample_dir), "k/model", "--yes", "--sign-key", str(keys["encrypted"])], 1),
        (debug, ["update", str(sample_dir), "k/model", "--yes", "--sign-key", str(keys["plain"])], 1),
        (
            {**debug, "MODELKIT_ASSETS_TRUSTED_KEYS": str(keys["plain"])},
            ["fetch", "k/model", "--require-signature"],
            1,
        ),
        (debug, ["sign", "k/model:0.0", "--sign-key", str(keys["encrypted"]), "--json"], 0),
    ]
    for run_env, args, code in runs:
        done = _cli(args, run_env, stdin="y\n")
        assert done.returncode == code, (args, done.stdout, done.stderr)
        assert_no_key(secrets, done.stdout, done.stderr)
