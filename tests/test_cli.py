"""Every command, option and error path of ``modelkit-assets``, through typer's CliRunner.

Stores are in-process ``memory://`` roots (shared by every ``AssetStore`` of the process)
or local ``file://`` folders; the CliRunner's stdin is a pipe, so progress is plain lines.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets._version import __version__
from modelkit_assets.cli.app import app
from modelkit_assets.errors import AssetExistsError, AssetNotFoundError

Invoke = Callable[..., Result]


@pytest.fixture
def store_url() -> str:
    return f"memory://cli{uuid.uuid4().hex[:12]}"


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    return tmp_path / "assets"


@pytest.fixture
def cli(store_url: str, assets_dir: Path) -> Invoke:
    """Run the app with the store and assets dir in the environment (as a user would)."""
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        full_env = {"MODELKIT_ASSETS_STORE": store_url, "MODELKIT_ASSETS_DIR": str(assets_dir)}
        full_env.update(env or {})
        return runner.invoke(app, list(args), input=input, env=full_env)

    return invoke


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(20_000))
    (root / "sub" / "vocab.txt").write_text("a\nb\n")
    (root / "config.json").write_text('{"k": 1}')
    return root


@pytest.fixture
def one_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"0123456789")
    return path


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip()]


# -- global options ---------------------------------------------------------------------
def test_version(cli: Invoke) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"modelkit-assets {__version__}\n"


def test_help_lists_every_command_and_the_environment(cli: Invoke) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for command in ("new", "update", "list", "versions", "info", "fetch"):
        assert f"\n  {command} " in result.stdout
    for variable in ("MODELKIT_ASSETS_STORE", "MODELKIT_ASSETS_DIR", "MODELKIT_ASSETS_VERSIONING_SYSTEM"):
        assert variable in result.stdout
    assert "--install-completion" in result.stdout
    assert "MODELKIT_ASSETS_DEBUG=1" in result.stdout


@pytest.mark.parametrize("command", ["new", "update", "list", "versions", "info", "fetch"])
def test_every_command_has_help(cli: Invoke, command: str) -> None:
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert f"Usage: modelkit-assets {command}" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],  # no command: help, as a usage error
        ["fetch"],  # missing argument
        ["new", "only-a-path"],
        ["fetch", "x", "--no-such-option"],
        ["no-such-command"],
        ["--verbose=3", "list"],
    ],
)
def test_usage_errors_exit_2(cli: Invoke, args: list[str]) -> None:
    result = cli(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert ("Usage: modelkit-assets" if not args else "Error: ") in result.stderr


def test_store_option_overrides_the_environment(cli: Invoke, one_file: Path, tmp_path: Path) -> None:
    other = f"memory://other{uuid.uuid4().hex[:8]}"
    assert cli("--store", other, "new", str(one_file), "x", "--yes").exit_code == 0
    assert AssetStore(other).versions("x") == ["0.0"]
    assert "0 assets" in cli("list").stdout


def test_assets_dir_option_overrides_the_environment(
    cli: Invoke, one_file: Path, tmp_path: Path, assets_dir: Path
) -> None:
    cli("new", str(one_file), "x", "--yes")
    elsewhere = tmp_path / "elsewhere"
    result = cli("--assets-dir", str(elsewhere), "fetch", "x:0.0")
    assert result.exit_code == 0
    assert Path(result.stdout.strip()) == elsewhere / "x" / "0.0"
    assert not assets_dir.exists()


def test_versioning_option_selects_simple_date(cli: Invoke, one_file: Path, store_url: str) -> None:
    result = cli("--versioning", "simple_date", "new", str(one_file), "dated", "--yes")
    assert result.exit_code == 0, result.output
    version = result.stdout.strip().split(":", 1)[1]
    assert AssetStore(store_url, versioning="simple_date").versions("dated") == [version]
    assert version.endswith("Z") and "T" in version


def test_unknown_versioning_system_is_one_line(cli: Invoke) -> None:
    result = cli("--versioning", "nope", "list")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        "Error: Unknown versioning system 'nope'; choose one of: major_minor, simple_date."
    ]


def test_store_none_serves_the_assets_dir_alone(cli: Invoke, one_file: Path, assets_dir: Path) -> None:
    cli("new", str(one_file), "x", "--yes")
    path = cli("fetch", "x:0.0").stdout.strip()
    result = cli("--store", "none", "fetch", "x:0.0")
    assert result.exit_code == 0
    assert result.stdout.strip() == path
    missing = cli("--store", "none", "fetch", "y:0.0")
    assert missing.exit_code == 1
    assert "no store is configured" in missing.stderr
    assert cli("--store", "none", "list").exit_code == 1


def test_quiet_prints_results_only(cli: Invoke, folder: Path) -> None:
    result = cli("-q", "new", str(folder), "x", "--yes")
    assert result.exit_code == 0
    assert result.stdout == "x:0.0\n"
    assert result.stderr == ""
    fetched = cli("-q", "fetch", "x:0.0")
    assert fetched.stderr == ""
    assert Path(fetched.stdout.strip()).is_dir()


def test_verbose_logs_the_library(cli: Invoke, one_file: Path) -> None:
    cli("new", str(one_file), "x", "--yes")
    result = cli("-v", "fetch", "x:0.0")
    assert result.exit_code == 0
    assert "INFO: Fetched x:0.0 from memory://" in result.stderr
    assert "INFO" not in cli("fetch", "x:0.0", "--force").stderr


# -- new / update -------------------------------------------------------------------------
def test_new_yes_publishes_and_prints_the_version(cli: Invoke, folder: Path, store_url: str) -> None:
    result = cli("new", str(folder), "nlp/model", "--yes", "--description", "first cut")
    assert result.exit_code == 0, result.output
    assert result.stdout == "nlp/model:0.0\n"
    err = result.stderr
    assert f"Store        {store_url}" in err
    assert "Asset        nlp/model" in err
    assert "Versions     none yet (new asset)" in err
    assert "New version  nlp/model:0.0" in err
    assert f"Source       {folder} (folder)" in err
    assert "Contents     3 files, 20.0 kB" in err
    assert "Description  first cut" in err
    assert "Uploading nlp/model:0.0 (0/3 files, 20.0 kB)..." in err
    assert "Uploaded nlp/model:0.0: 3/3 files, 20.0 kB in" in err
    assert f"Published nlp/model:0.0 (3 files, 20.0 kB) to {store_url}." in err
    store = AssetStore(store_url)
    assert store.versions("nlp/model") == ["0.0"]
    meta = store.meta("nlp/model", "0.0")
    assert meta.description == "first cut"
    assert sorted(meta.files) == ["config.json", "sub/vocab.txt", "weights.bin"]


@pytest.mark.parametrize("answer", ["y\n", "yes\n", "Y\n"])
def test_new_asks_and_publishes_on_yes(cli: Invoke, one_file: Path, store_url: str, answer: str) -> None:
    result = cli("new", str(one_file), "x", input=answer)
    assert result.exit_code == 0, result.output
    assert f"Publish x:0.0 to {store_url}? [y/N] {answer.strip()}" in result.stderr
    assert result.stdout == "x:0.0\n"
    assert AssetStore(store_url).versions("x") == ["0.0"]


@pytest.mark.parametrize("answer", ["n\n", "no\n", "\n", "maybe\n"])
def test_new_declined_writes_nothing(cli: Invoke, one_file: Path, store_url: str, answer: str) -> None:
    result = cli("new", str(one_file), "x", input=answer)
    assert result.exit_code == 1
    assert "Nothing was published." in result.stderr
    assert result.stdout == ""
    assert not AssetStore(store_url).exists("x")
    assert AssetStore(store_url).fs.find(f"/cli{store_url.split('cli', 1)[1]}") == []


def test_new_without_an_answer_on_stdin(cli: Invoke, one_file: Path, store_url: str) -> None:
    result = cli("new", str(one_file), "x", input="")
    assert result.exit_code == 1
    assert "No answer on stdin: nothing was published; pass --yes" in result.stderr
    assert not AssetStore(store_url).exists("x")


def test_new_dry_run_writes_nothing(cli: Invoke, folder: Path, store_url: str) -> None:
    result = cli("new", str(folder), "x", "--dry-run")
    assert result.exit_code == 0
    assert result.stdout == "x:0.0\n"
    assert "New version  x:0.0" in result.stderr
    assert "Dry run: x:0.0 was not published; nothing was written." in result.stderr
    assert "[y/N]" not in result.stderr
    assert not AssetStore(store_url).exists("x")


def test_new_on_an_existing_asset_is_one_line(cli: Invoke, one_file: Path, store_url: str) -> None:
    cli("new", str(one_file), "x", "--yes")
    result = cli("new", str(one_file), "x", "--yes")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        f"Error: Asset x already exists in {store_url} (latest 0.0); publish a new version with "
        "`modelkit-assets update PATH x`."
    ]
    assert AssetStore(store_url).versions("x") == ["0.0"]


def test_new_from_a_missing_path(cli: Invoke, tmp_path: Path) -> None:
    result = cli("new", str(tmp_path / "nope"), "x", "--yes")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        f"Error: {tmp_path / 'nope'} does not exist; give the path of a file or folder to publish."
    ]


def test_new_with_an_invalid_name(cli: Invoke, one_file: Path) -> None:
    result = cli("new", str(one_file), "../escape", "--yes")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Asset name '../escape' is not valid")
    assert len(lines(result.stderr)) == 1


def test_update_minor_major_and_given_major(cli: Invoke, one_file: Path, store_url: str) -> None:
    assert cli("new", str(one_file), "x", "-y").stdout == "x:0.0\n"
    assert cli("update", str(one_file), "x", "-y").stdout == "x:0.1\n"
    bumped = cli("update", str(one_file), "x", "--bump-major", "-y")
    assert bumped.stdout == "x:1.0\n"
    assert "Versions     major 0: 0.1, 0.0" in bumped.stderr
    result = cli("update", str(one_file), "x:0", "-y")
    assert result.stdout == "x:0.2\n"
    assert "Versions     major 1: 1.0" in result.stderr
    assert "             major 0: 0.1, 0.0" in result.stderr
    assert "New version  x:0.2" in result.stderr
    assert AssetStore(store_url).versions("x") == ["1.0", "0.2", "0.1", "0.0"]


def test_update_prompt_and_dry_run(cli: Invoke, one_file: Path, store_url: str) -> None:
    cli("new", str(one_file), "x", "-y")
    dry = cli("update", str(one_file), "x", "--dry-run")
    assert (dry.exit_code, dry.stdout) == (0, "x:0.1\n")
    declined = cli("update", str(one_file), "x", input="n\n")
    assert declined.exit_code == 1
    assert AssetStore(store_url).versions("x") == ["0.0"]
    accepted = cli("update", str(one_file), "x", input="y\n")
    assert (accepted.exit_code, accepted.stdout) == (0, "x:0.1\n")


def test_update_of_a_missing_major(cli: Invoke, one_file: Path) -> None:
    cli("new", str(one_file), "x", "-y")
    result = cli("update", str(one_file), "x:3", "-y")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        "Error: Major version 3 does not exist (majors: 0); use --bump-major to start a new major."
    ]


def test_update_of_a_missing_asset(cli: Invoke, one_file: Path, store_url: str) -> None:
    result = cli("update", str(one_file), "ghost", "-y")
    assert result.exit_code == 1
    assert f"Error: Asset ghost does not exist in {store_url}" in result.stderr


def test_update_with_a_full_version_is_refused(cli: Invoke, one_file: Path) -> None:
    cli("new", str(one_file), "x", "-y")
    result = cli("update", str(one_file), "x:0.0", "-y")
    assert result.exit_code == 2  # a usage error, found before the store is read
    assert "`update` takes a major" in result.stderr


def test_publish_says_when_a_concurrent_writer_took_the_version(
    cli: Invoke, one_file: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("new", str(one_file), "x", "-y")
    from modelkit_assets.cli import publish

    def confirm_after_someone_else_published(question: str) -> bool:
        AssetStore(store_url).update(one_file, "x")  # takes 0.1 while we are asked
        return True

    monkeypatch.setattr(publish, "confirm", confirm_after_someone_else_published)
    result = cli("update", str(one_file), "x")
    assert result.exit_code == 0, result.output
    assert result.stdout == "x:0.2\n"
    assert "x:0.1 was taken by a concurrent writer: published as x:0.2 instead." in result.stderr
    assert AssetStore(store_url).versions("x") == ["0.2", "0.1", "0.0"]


def test_interrupted_publish_exits_130(
    cli: Invoke, one_file: Path, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("modelkit_assets.store.upload", interrupted)
    result = cli("new", str(one_file), "x", "--yes")
    assert result.exit_code == 130
    assert "Interrupted: x:0.0 was not published" in result.stderr
    assert not AssetStore(store_url).exists("x")


# -- list / versions / info -------------------------------------------------------------
def test_list_empty_store(cli: Invoke, store_url: str) -> None:
    result = cli("list")
    assert result.exit_code == 0
    assert lines(result.stdout) == [f"0 assets, 0 versions in {store_url}"]


def test_list_table_prefix_and_json(cli: Invoke, one_file: Path, store_url: str) -> None:
    for name in ("nlp/tokenizer", "nlp/vocab", "vision/resnet"):
        cli("new", str(one_file), name, "-y")
    for _ in range(8):
        cli("update", str(one_file), "nlp/tokenizer", "-y")
    result = cli("list")
    assert result.exit_code == 0
    assert [line.split() for line in lines(result.stdout)] == [
        ["Asset", "Versions", "(latest", "first)", "Count"],
        ["nlp/tokenizer", "0.8,", "0.7,", "0.6,", "0.5,", "0.4,", "0.3", "(+3", "more)", "9"],
        ["nlp/vocab", "0.0", "1"],
        ["vision/resnet", "0.0", "1"],
        ["3", "assets,", "11", "versions", "in", store_url],
    ]
    prefixed = cli("list", "nlp")
    assert "vision/resnet" not in prefixed.stdout
    assert f"2 assets, 10 versions in {store_url}" in prefixed.stdout
    data = json.loads(cli("list", "--json").stdout)
    assert data["store"] == store_url
    assert [a["name"] for a in data["assets"]] == ["nlp/tokenizer", "nlp/vocab", "vision/resnet"]
    assert data["assets"][0]["versions"][:2] == ["0.8", "0.7"]
    assert data["assets"][0]["count"] == 9


def test_list_on_the_embedded_store_says_where_it_is(one_file: Path) -> None:
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0
    assert "Using the embedded local store at file://" in result.stderr
    assert "0 assets, 0 versions in file://" in result.stdout


def test_versions_table_and_json(cli: Invoke, one_file: Path, folder: Path) -> None:
    cli("new", str(one_file), "x", "-y", "-d", "tiny")
    cli("update", str(folder), "x", "-y", "--bump-major", "-d", "folder")
    result = cli("versions", "x")
    assert result.exit_code == 0
    out = lines(result.stdout)
    assert out[0] == "x"
    assert out[1].split() == ["Version", "Pushed", "(UTC)", "Size", "Files", "Pushed", "by", "Description"]
    assert out[2].startswith("1.0 ") and out[2].endswith("folder") and " 20.0 kB      3 " in out[2]
    assert out[-1].startswith("0.0 ") and out[-1].endswith("tiny") and " 10 B      1 " in out[-1]
    data = json.loads(cli("versions", "x", "--json").stdout)
    assert [v["version"] for v in data["versions"]] == ["1.0", "0.0"]
    assert data["versions"][0]["is_directory"] is True
    assert data["versions"][1]["files"]["model.bin"]["size"] == 10


def test_versions_of_a_missing_asset(cli: Invoke, store_url: str) -> None:
    result = cli("versions", "ghost")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        f"Error: Asset ghost does not exist in {store_url}; check the name with `modelkit-assets list`, "
        "or publish it with `modelkit-assets new PATH ghost`."
    ]


def test_info_resolves_and_draws_the_files(cli: Invoke, folder: Path, store_url: str) -> None:
    cli("new", str(folder), "x", "-y", "-d", "hello")
    cli("update", str(folder), "x", "-y")
    result = cli("info", "x:0")
    assert result.exit_code == 0
    out = result.stdout
    assert "Asset       x:0.1" in out
    assert f"Store       {store_url}" in out
    assert "Size        20.0 kB in 3 files" in out
    assert "Verifiable  yes (sha256 per file)" in out
    meta = AssetStore(store_url).meta("x", "0.1")
    assert f"weights.bin  20.0 kB  sha256:{meta.files['weights.bin'].sha256[:12]}" in out
    assert "sub/" in out and "vocab.txt" in out
    assert "Description" not in out  # 0.1 has none
    only_sub = cli("info", "x:0.0[sub]").stdout
    assert "vocab.txt" in only_sub and "weights.bin" not in only_sub
    assert "Description  hello" in only_sub
    data = json.loads(cli("info", "x", "--json").stdout)
    assert (data["name"], data["version"], data["digest"]) == ("x", "0.1", meta.digest())
    assert data["contents"] == ["config.json", "sub/vocab.txt", "weights.bin"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x:7.0", "Error: Asset x has no version matching 7.0"),
        ("x:7", "Error: Asset x has no version matching 7"),
        ("x:0.0[nope.txt]", "Error: x:0.0 has no 'nope.txt'"),
        ("x:zero", "Error: Version 'zero' is not a major_minor version"),
    ],
)
def test_info_errors(cli: Invoke, folder: Path, spec: str, message: str) -> None:
    cli("new", str(folder), "x", "-y")
    result = cli("info", spec)
    assert result.exit_code == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(lines(result.stderr)) == 1


# -- fetch ------------------------------------------------------------------------------
def test_fetch_prints_the_path_alone(cli: Invoke, folder: Path, assets_dir: Path) -> None:
    cli("new", str(folder), "x", "-y")
    result = cli("fetch", "x")
    assert result.exit_code == 0
    assert result.stdout == f"{assets_dir / 'x' / '0.0'}\n"
    assert (Path(result.stdout.strip()) / "sub" / "vocab.txt").read_text() == "a\nb\n"
    assert "Downloading x..." in result.stderr
    assert "Downloaded x: 3/3 files, 20.0 kB in" in result.stderr
    again = cli("fetch", "x:0.0")
    assert again.stdout == result.stdout
    assert again.stderr == ""  # a cache hit moves nothing


def test_fetch_sub_part(cli: Invoke, folder: Path, assets_dir: Path) -> None:
    cli("new", str(folder), "x", "-y")
    result = cli("fetch", "x:0.0[sub/vocab.txt]")
    assert result.stdout == f"{assets_dir / 'x' / '0.0' / 'sub' / 'vocab.txt'}\n"
    missing = cli("fetch", "x:0.0[nope]")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("Error: x:0.0 has no 'nope'")


def test_fetch_json_and_force(cli: Invoke, one_file: Path, assets_dir: Path) -> None:
    cli("new", str(one_file), "x", "-y")
    first = json.loads(cli("fetch", "x:0", "--json").stdout)
    assert first["from_cache"] is False
    assert first["version"] == "0.0"
    assert first["path"] == str(assets_dir / "x" / "0.0")
    assert first["meta"]["files"]["model.bin"]["size"] == 10
    cached = json.loads(cli("fetch", "x:0", "--json").stdout)
    assert cached["from_cache"] is True and "meta" not in cached
    forced = json.loads(cli("fetch", "x:0.0", "--json", "--force").stdout)
    assert forced["from_cache"] is False
    by_env = cli("fetch", "x:0.0", "--json", env={"MODELKIT_STORAGE_FORCE_DOWNLOAD": "1"})
    assert json.loads(by_env.stdout)["from_cache"] is False


def test_fetch_errors(cli: Invoke, store_url: str) -> None:
    result = cli("fetch", "ghost:1.0")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        f"Error: Version 1.0 of ghost does not exist in {store_url}; see `modelkit-assets versions ghost`."
    ]
    bad = cli("fetch", "bad name")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("Error: Asset name 'bad name' is not valid")


def test_fetch_into_an_unusable_assets_dir(cli: Invoke, one_file: Path, tmp_path: Path) -> None:
    cli("new", str(one_file), "x", "-y")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = cli("--assets-dir", str(blocker), "fetch", "x:0.0")
    assert result.exit_code == 1
    assert len(lines(result.stderr)) == 1
    assert result.stderr.startswith("Error: ")
    assert str(blocker) in result.stderr
    assert "Traceback" not in result.output


def test_fetch_of_what_a_local_store_holds(tmp_path: Path, one_file: Path) -> None:
    store_url = (tmp_path / "store").as_uri()
    runner = CliRunner()
    env = {"MODELKIT_ASSETS_DIR": str(tmp_path / "assets")}
    assert runner.invoke(app, ["--store", store_url, "new", str(one_file), "x", "-y"], env=env).exit_code == 0
    result = runner.invoke(app, ["--store", store_url, "fetch", "x:0.0"], env=env)
    assert Path(result.stdout.strip()).read_bytes() == b"0123456789"
    assert "Downloaded x:0.0: 1/1 files, 10 B in" in result.stderr


# -- errors -----------------------------------------------------------------------------
def test_debug_variable_lets_the_exception_through(cli: Invoke, one_file: Path) -> None:
    cli("new", str(one_file), "x", "-y")
    result = cli("new", str(one_file), "x", "-y", env={"MODELKIT_ASSETS_DEBUG": "1"})
    assert result.exit_code == 1
    assert isinstance(result.exception, AssetExistsError)
    missing = cli("versions", "ghost", env={"MODELKIT_ASSETS_DEBUG": "1"})
    assert isinstance(missing.exception, AssetNotFoundError)


def test_unexpected_errors_hide_their_message(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: AssetStore, prefix: str = "") -> None:
        raise RuntimeError("https://bucket/key?X-Amz-Signature=s3cr3t")

    monkeypatch.setattr(AssetStore, "list", broken)
    result = cli("list")
    assert result.exit_code == 1
    assert lines(result.stderr) == [
        "Error: Unexpected error (RuntimeError); set MODELKIT_ASSETS_DEBUG=1 to see the traceback "
        "and report it."
    ]
    assert "s3cr3t" not in result.output


def test_credentials_in_the_store_url_are_never_printed(one_file: Path, tmp_path: Path) -> None:
    url = f"memory://user:s3cr3t@creds{uuid.uuid4().hex[:8]}/root"
    runner = CliRunner()
    env = {"MODELKIT_ASSETS_DIR": str(tmp_path / "assets")}
    results = [
        runner.invoke(app, ["--store", url, "new", str(one_file), "x", "-y"], env=env),
        runner.invoke(app, ["--store", url, "new", str(one_file), "x", "-y"], env=env),  # error path
        runner.invoke(app, ["--store", url, "list"], env=env),
        runner.invoke(app, ["--store", url, "info", "x", "--json"], env=env),
        runner.invoke(app, ["--store", url, "versions", "ghost"], env=env),
    ]
    assert [r.exit_code for r in results] == [0, 1, 0, 0, 1]
    for result in results:
        assert "s3cr3t" not in result.output
    assert "memory://creds" in results[2].stdout


def test_the_manager_sees_what_the_cli_published(
    cli: Invoke, folder: Path, store_url: str, tmp_path: Path
) -> None:
    cli("new", str(folder), "x", "-y")
    path = AssetsManager(store_url, tmp_path / "lib-assets").fetch("x:0.0[config.json]")
    assert path.read_text() == '{"k": 1}'


def test_update_says_which_files_were_copied_inside_the_store(cli: Invoke, folder: Path) -> None:
    cli("new", str(folder), "x", "-y")
    (folder / "config.json").write_text('{"k": 2}')
    result = cli("update", str(folder), "x", "-y")
    assert result.exit_code == 0, result.output
    assert "Uploaded x:0.1: 1/3 files, 8 B in" in result.stderr
    assert "2 of 3 files were unchanged since the previous version: copied inside the store" in result.stderr
    path = Path(cli("fetch", "x:0.1").stdout.strip())
    assert (path / "config.json").read_text() == '{"k": 2}'
    assert (path / "weights.bin").read_bytes() == (folder / "weights.bin").read_bytes()


def test_logging_is_restored_after_a_command(cli: Invoke, one_file: Path) -> None:
    import logging

    logger = logging.getLogger("modelkit_assets")
    before = (list(logger.handlers), logger.level, logger.propagate)
    cli("-q", "new", str(one_file), "x", "-y")
    cli("-vv", "fetch", "x:0.0")
    assert (list(logger.handlers), logger.level, logger.propagate) == before
