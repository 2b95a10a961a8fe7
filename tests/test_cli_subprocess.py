"""The installed ``modelkit-assets`` command in real processes: piped answers, ``--yes``,
``$(...)``, exit codes, tracebacks, and what start-up imports."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from modelkit_assets import AssetStore
from modelkit_assets.errors import AssetNotFoundError

CLI = Path(sys.executable).with_name("modelkit-assets")
#: what neither ``--help`` nor a cached fetch may import (DESIGN.md G6, issue 3)
FORBIDDEN = re.compile(
    r"^(fsspec|s3fs|gcsfs|adlfs|botocore|aiobotocore|google|azure|pydantic|filelock|"
    r"rich\.(console|progress|table|markdown|traceback|syntax|pretty|live))(\.|$)"
)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")}
    clean["MODELKIT_ASSETS_STORE"] = (tmp_path / "store").as_uri()
    clean["MODELKIT_ASSETS_DIR"] = str(tmp_path / "assets")
    return clean


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 100)
    return path


def run(
    args: list[str], env: dict[str, str], *, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def shell(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_piped_yes_publishes(env: dict[str, str], source: Path) -> None:
    result = shell(f"printf 'y\\n' | {CLI} new {shlex.quote(str(source))} demo", env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "demo:0.0\n"
    assert "[y/N] y\n" in result.stderr
    assert AssetStore(env["MODELKIT_ASSETS_STORE"]).versions("demo") == ["0.0"]


def test_piped_no_writes_nothing(env: dict[str, str], source: Path) -> None:
    result = shell(f"printf 'n\\n' | {CLI} new {shlex.quote(str(source))} demo", env)
    assert result.returncode == 1
    assert "Nothing was published." in result.stderr
    with pytest.raises(AssetNotFoundError):
        AssetStore(env["MODELKIT_ASSETS_STORE"]).versions("demo")
    assert not (Path(env["MODELKIT_ASSETS_STORE"][len("file://") :]) / "demo").exists()


def test_closed_stdin_without_yes_refuses(env: dict[str, str], source: Path) -> None:
    result = run(["new", str(source), "demo"], env)
    assert result.returncode == 1
    assert "No answer on stdin: nothing was published; pass --yes" in result.stderr


def test_yes_needs_no_stdin_and_update_follows(env: dict[str, str], source: Path) -> None:
    assert run(["new", str(source), "demo", "--yes"], env).stdout == "demo:0.0\n"
    assert run(["update", str(source), "demo", "--yes"], env).stdout == "demo:0.1\n"
    assert run(["update", str(source), "demo", "--yes", "--bump-major"], env).stdout == "demo:1.0\n"


def test_fetch_in_command_substitution(env: dict[str, str], source: Path) -> None:
    run(["new", str(source), "demo", "--yes"], env)
    result = shell(f'cat "$({CLI} fetch demo:0)"', env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "weights" * 100
    assert "Downloading demo:0..." in result.stderr


def test_python_dash_m(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelkit_assets", "--version"], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0
    assert result.stdout.startswith("modelkit-assets ")


def test_errors_are_one_line_and_tracebacks_need_debug(env: dict[str, str]) -> None:
    result = run(["fetch", "ghost:1.0"], env)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: Version 1.0 of ghost does not exist")
    debug = run(["fetch", "ghost:1.0"], {**env, "MODELKIT_ASSETS_DEBUG": "1"})
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "VersionNotFoundError" in debug.stderr


def test_usage_error_exits_2(env: dict[str, str]) -> None:
    result = run(["fetch"], env)
    assert result.returncode == 2
    assert "Missing argument 'SPEC'" in result.stderr


def imported_modules(args: list[str], env: dict[str, str]) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "modelkit_assets", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }


def test_help_imports_nothing_heavy(env: dict[str, str]) -> None:
    modules = imported_modules(["--help"], env)
    assert "typer" in modules
    assert sorted(m for m in modules if FORBIDDEN.match(m)) == []


def test_cached_pinned_fetch_imports_nothing_heavy(env: dict[str, str], source: Path) -> None:
    run(["new", str(source), "demo", "--yes"], env)
    run(["fetch", "demo:0.0"], env)
    modules = imported_modules(["fetch", "demo:0.0"], env)
    assert "modelkit_assets.manager" in modules
    assert sorted(m for m in modules if FORBIDDEN.match(m)) == []
    # the check itself can fail: a download does import fsspec
    uncached = imported_modules(["fetch", "demo:0.0", "--force"], env)
    assert "fsspec" in uncached


def test_cached_fetch_under_required_signatures_stays_cheap(
    env: dict[str, str], source: Path, tmp_path: Path
) -> None:
    """A verified install is served under --require-signature by `stat` calls: neither
    fsspec nor cryptography is imported, and in-process the hit is three `stat`s."""
    from modelkit_assets import AssetsManager
    from modelkit_assets.signing import generate_key

    private, public = generate_key(tmp_path / "k.pem")
    signed = {**env, "MODELKIT_ASSETS_TRUSTED_KEYS": str(public), "MODELKIT_ASSETS_REQUIRE_SIGNATURE": "1"}
    assert run(["new", str(source), "demo", "--yes", "--sign-key", str(private)], env).returncode == 0
    assert run(["fetch", "demo:0.0"], signed).returncode == 0
    modules = imported_modules(["fetch", "demo:0.0"], signed)
    assert "modelkit_assets.manager" in modules
    assert sorted(m for m in modules if FORBIDDEN.match(m) or m.startswith("cryptography")) == []

    manager = AssetsManager(
        env["MODELKIT_ASSETS_STORE"],
        env["MODELKIT_ASSETS_DIR"],
        require_signature=True,
        trusted_keys=[public],
    )
    calls: list[str] = []
    real_stat = os.stat

    def counting_stat(path: object, *args: object, **kwargs: object) -> os.stat_result:
        calls.append(str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    os.stat = counting_stat  # type: ignore[assignment]
    try:
        path = manager.fetch("demo:0.0")
    finally:
        os.stat = real_stat
    assert path.read_bytes() == source.read_bytes()
    # the version, its marker, the record of the key that verified this install
    assert len(calls) == 3, calls


@pytest.mark.slow
def test_startup_benchmark_prints_a_table_and_skips_a_missing_modelkit(tmp_path: Path) -> None:
    script = Path(__file__).parents[1] / "benchmarks" / "startup.py"
    result = subprocess.run(
        [sys.executable, str(script), "--runs", "10", "--modelkit-venv", str(tmp_path / "no-venv")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"modelkit 0.1.3 not found at {tmp_path / 'no-venv' / 'bin' / 'modelkit'}" in result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == [
        "`python -c pass` (baseline)",
        "`modelkit-assets --help`",
        "`modelkit-assets fetch x:0.0` (cached)",
    ]
    for row in rows:
        assert re.search(r"\| \d+ ms \| \d+ ms \| \d+ ms \| [+-]\d+ ms \| \d+ ms \|$", row), row


def test_shell_completion_of_commands_and_options(env: dict[str, str]) -> None:
    commands = subprocess.run(
        [str(CLI)],
        env={
            **env,
            "_MODELKIT_ASSETS_COMPLETE": "complete_bash",
            "COMP_WORDS": "modelkit-assets vers",
            "COMP_CWORD": "1",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (commands.returncode, commands.stdout.split()) == (0, ["versions"])
    options = subprocess.run(
        [str(CLI)],
        env={
            **env,
            "_MODELKIT_ASSETS_COMPLETE": "complete_bash",
            "COMP_WORDS": "modelkit-assets fetch x --f",
            "COMP_CWORD": "3",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert options.stdout.split() == ["--force"]
