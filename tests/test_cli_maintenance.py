"""The maintenance commands through typer's CliRunner: cache list/prune, verify, repair,
lock/sync, copy, bundle (output, --json, exit codes)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.cli.app import app
from modelkit_assets.cli.cache import parse_duration, parse_size

Invoke = Callable[..., Result]


@pytest.fixture
def store(tmp_path: Path) -> AssetStore:
    return AssetStore(f"memory://clim{uuid.uuid4().hex[:12]}")


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    return tmp_path / "assets"


@pytest.fixture
def cli(store: AssetStore, assets_dir: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        full_env = {"MODELKIT_ASSETS_STORE": store.url, "MODELKIT_ASSETS_DIR": str(assets_dir), **(env or {})}
        return runner.invoke(app, list(args), env=full_env)

    return invoke


@pytest.fixture
def published(store: AssetStore, sample_file: Path, sample_dir: Path, assets_dir: Path) -> AssetsManager:
    store.new(sample_dir, "nlp/tokenizer")
    store.new(sample_file, "models/clf")
    store.update(sample_file, "models/clf")
    manager = AssetsManager(store, assets_dir)
    for spec in ("nlp/tokenizer:0.0", "models/clf:0.0", "models/clf:0.1"):
        manager.fetch(spec)
    return manager


def test_parsers() -> None:
    assert parse_duration("30d").days == 30 and parse_duration("12h").total_seconds() == 43200
    assert parse_size("10GB") == 10 * 1000**3 and parse_size("1.5KiB") == 1536 and parse_size("2048") == 2048


def test_cache_list_table_and_json(cli: Invoke, published: AssetsManager, assets_dir: Path) -> None:
    result = cli("cache", "list")
    assert result.exit_code == 0, result.output
    assert "models/clf" in result.output and "nlp/tokenizer" in result.output
    assert "3 versions" in result.output and str(assets_dir) in result.output
    data = json.loads(cli("cache", "list", "--json").output)
    assert data["count"] == 3 and data["total_size"] == sum(v["size"] for v in data["versions"])
    assert [v["version"] for v in data["versions"] if v["name"] == "models/clf"] == ["0.1", "0.0"]


def test_cache_prune_dry_run_then_for_real(cli: Invoke, published: AssetsManager) -> None:
    result = cli("cache", "prune", "--keep-newest", "1", "--dry-run")
    assert result.exit_code == 0 and "Would remove models/clf:0.0" in result.output
    assert published.cache.cached_path("models/clf", "0.0") is not None
    data = json.loads(cli("cache", "prune", "--keep-newest", "1", "--json").output)
    assert [v["version"] for v in data["removed"]] == ["0.0"] and not data["dry_run"]
    assert published.cache.cached_path("models/clf", "0.0") is None


@pytest.mark.parametrize("args", [[], ["--older-than", "soon"], ["--max-size", "lots"]])
def test_cache_prune_usage_errors(cli: Invoke, args: list[str]) -> None:
    result = cli("cache", "prune", *args)
    assert result.exit_code == 2


def test_verify_ok_then_every_problem_and_exit_1(cli: Invoke, published: AssetsManager) -> None:
    result = cli("verify", "--all", "--remote")
    assert result.exit_code == 0, result.output
    assert "Checked 3 cached, 3 stored version(s)" in result.output and result.output.rstrip().endswith("OK.")
    root = published.cache.layout.version_path("nlp/tokenizer", "0.0")
    (root / "vocab.txt").write_text("changed")
    (root / "config.json").unlink()
    result = cli("verify", "nlp/tokenizer")
    assert result.exit_code == 1
    assert "cache: nlp/tokenizer:0.0[vocab.txt]: 7 bytes where the manifest says 6" in result.output
    assert "cache: nlp/tokenizer:0.0[config.json]: missing" in result.output
    data = json.loads(cli("verify", "nlp/tokenizer:0.0", "--json").stdout)
    assert not data["ok"] and len(data["problems"]) == 3
    assert cli("verify").exit_code == 2
    missing = cli("verify", "nope:1.0")
    assert missing.exit_code == 1 and "fetch it first" in missing.output


def test_repair_reports_then_rebuilds(cli: Invoke, store: AssetStore, published: AssetsManager) -> None:
    store.fs.rm(store.layout.versions_index("models/clf"))
    result = cli("repair", "--all", "--dry-run")
    assert result.exit_code == 0 and "index would rebuild: was [missing], now [0.1, 0.0]" in result.output
    assert store.read_index("models/clf") is None
    data = json.loads(cli("repair", "models/clf", "--json").output)
    assert data["assets"][0]["index_rebuilt"] and store.read_index("models/clf") == ["0.1", "0.0"]
    assert "0 index(es) rebuilt" in cli("repair", "--all").output
    assert cli("repair").exit_code == 2


def test_lock_and_sync(
    cli: Invoke, store: AssetStore, published: AssetsManager, tmp_path: Path, sample_file: Path
) -> None:
    lockfile = tmp_path / "assets.lock"
    result = cli("lock", "models/clf", "nlp/tokenizer:0", "-o", str(lockfile))
    assert result.exit_code == 0 and "models/clf -> models/clf:0.1" in result.output
    assert json.loads(lockfile.read_text())["assets"][1]["version"] == "0.0"
    fresh = tmp_path / "ci"
    result = cli("sync", str(lockfile), env={"MODELKIT_ASSETS_DIR": str(fresh)})
    assert result.exit_code == 0, result.output
    assert "2 asset(s) match" in result.output and "(2 fetched, 0 cached)" in result.output
    store.update(sample_file, "models/clf")
    result = cli("sync", str(lockfile), "--frozen", env={"MODELKIT_ASSETS_DIR": str(tmp_path / "other")})
    assert result.exit_code == 1
    assert "is out of date: models/clf now resolves to 0.2, locked 0.1" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert cli("sync", str(tmp_path / "missing.lock")).exit_code == 1


def test_copy_to_another_store(
    cli: Invoke, store: AssetStore, published: AssetsManager, tmp_path: Path
) -> None:
    target = (tmp_path / "prod").as_uri()
    result = cli("copy", "models/clf", "--to", target)
    assert result.exit_code == 0, result.output
    assert "models/clf:0.1 copied (1 file(s)" in result.output
    result = cli("copy", "models/clf", "--to", target, "--all-versions", "--json")
    assert [(v["version"], v["status"]) for v in json.loads(result.output)["versions"]] == [
        ("0.0", "copied"),
        ("0.1", "present"),
    ]
    assert AssetStore(target).versions("models/clf") == ["0.1", "0.0"]
    assert cli("copy", "models/clf", "--to", target, "--to-storage-options", "[1]").exit_code == 2


def test_bundle_then_serve_from_it_without_a_store(
    cli: Invoke, published: AssetsManager, tmp_path: Path
) -> None:
    target = tmp_path / "bundle"
    result = cli("bundle", "nlp/tokenizer", "models/clf:0", str(target))
    assert result.exit_code == 0, result.output
    assert "models/clf:0 -> models/clf:0.1" in result.output and "MODELKIT_ASSETS_STORE=none" in result.output
    before = sorted(str(p) for p in target.rglob("*"))
    env = {"MODELKIT_ASSETS_STORE": "none", "MODELKIT_ASSETS_DIR": str(target)}
    fetched = cli("fetch", "nlp/tokenizer[vocab.txt]", env=env)
    assert fetched.exit_code == 0 and fetched.output.strip() == str(target / "nlp/tokenizer/0.0/vocab.txt")
    assert cli("verify", "--all", env=env).exit_code == 0
    assert sorted(str(p) for p in target.rglob("*")) == before
    assert cli("bundle", str(target)).exit_code == 2
