"""G7: recognisable fake credentials, given every way a user can give them (storage
options, MODELKIT_ASSETS_STORAGE_OPTIONS, AWS_* variables, a store URL with a user and
password), never appear in output, logs (DEBUG included), exception messages or reprs,
through successful commands and every error path, in the library and in the CLI.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
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
    fails(lambda: manager.fetch("secret/model:0.1"))
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
