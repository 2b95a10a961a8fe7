"""Aliases (``name@prod``), on every backend (conftest's ``store``): moves, history and
removal; resolution everywhere a spec goes (AssetsManager, AssetStore.resolve, the CLI's
fetch/info/lock/sync, ``modelkit-assets://``); ``--expect``; invalid names; offline
resolution from the last value seen; and 12 processes moving one alias at once
(``shared_store``), with and without ``check_expect``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fsspec
import pytest
from typer.testing import CliRunner, Result

from modelkit_assets import (
    AliasConflictError,
    AssetNotFoundError,
    AssetsManager,
    AssetStore,
    InvalidSpecError,
    LockMismatchError,
    OfflineError,
    VersionNotFoundError,
)
from modelkit_assets.claims import who_am_i
from modelkit_assets.cli.app import app
from modelkit_assets.filesystem import parse_path
from modelkit_assets.spec import AssetSpec

Invoke = Callable[..., Result]
Store = tuple[str, dict[str, object]]

#: what each version of the test asset holds (a folder: a top file and a nested one)
CONTENT = {
    "0.0": {"top.txt": b"zero", "sub/part.bin": b"\x00zero-part"},
    "0.1": {"top.txt": b"one", "sub/part.bin": b"\x01one-part"},
    "0.2": {"top.txt": b"two", "sub/part.bin": b"\x02two-part"},
}


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def publish(store: AssetStore, tmp_path: Path, name: str = "team/model", count: int = 3) -> list[str]:
    """Publish the first ``count`` versions of ``CONTENT`` as ``name``."""
    versions = []
    for i, version in enumerate(list(CONTENT)[:count]):
        src = write_tree(tmp_path / "sources" / name.replace("/", "_") / version, CONTENT[version])
        versions.append(store.new(src, name) if i == 0 else store.update(src, name))
    assert versions == list(CONTENT)[:count]
    return versions


def listing(store: AssetStore) -> list[str]:
    """Every object under the store's root, asked of the server."""
    store.fs.invalidate_cache()
    return sorted(store.fs.find(store.layout.root))


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".SUCCESS"
    }


def nothing_in(folder: Path) -> bool:
    """Whether ``folder`` holds no file (an assets dir where nothing was installed or kept)."""
    return not folder.exists() or not any(p.is_file() for p in folder.rglob("*"))


def moves(store: AssetStore, name: str, alias: str) -> list[tuple[int, str | None, str | None]]:
    return [(m.seq, m.version, m.previous) for m in store.aliases.history(name, alias)]


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    return tmp_path / "assets"


@pytest.fixture
def cli(store: AssetStore, assets_dir: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
        full_env = {
            "MODELKIT_ASSETS_STORE": store.url,
            "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(dict(store.storage_options)),
            "MODELKIT_ASSETS_DIR": str(assets_dir),
            **(env or {}),
        }
        return runner.invoke(app, list(args), env=full_env, input=input)

    return invoke


def refused(result: Result, *fragments: str) -> str:
    """Exit 1 with one ``Error:`` line on stderr (no traceback) naming ``fragments``."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# -- set, move, remove, history ------------------------------------------------------------
def test_set_move_remove_and_history(store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path)
    name = "team/model"
    assert store.aliases.current(name, "prod") is None
    assert store.aliases.history(name, "prod") == []
    assert store.aliases.names(name) == [] and store.aliases.values(name) == {}

    before = dt.datetime.now(dt.UTC)
    first = store.set_alias(name, "prod", "0.0")
    assert (first.seq, first.alias, first.version, first.previous) == (0, "prod", "0.0", None)
    assert first.by == who_am_i() and "@" in (first.by or "")
    assert first.at is not None
    at = dt.datetime.fromisoformat(first.at)
    assert before - dt.timedelta(seconds=1) <= at <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    # one object per move, created under the asset's hidden folder
    assert store.fs.exists(store.layout.alias_move(name, "prod", 0))
    assert store.resolve_alias(name, "prod") == "0.0"

    # a partial version points to its latest
    second = store.set_alias(name, "prod", "0")
    assert (second.seq, second.version, second.previous) == (1, "0.2", "0.0")
    staging = store.set_alias(name, "staging", "0.1")
    assert (staging.seq, staging.version, staging.previous) == (0, "0.1", None)
    assert store.aliases.names(name) == ["prod", "staging"]
    values = store.aliases.values(name)
    assert {a: (m.seq, m.version, m.previous) for a, m in values.items()} == {
        "prod": (1, "0.2", "0.0"),
        "staging": (0, "0.1", None),
    }
    current = store.aliases.current(name, "prod")
    assert current is not None and (current.seq, current.version) == (1, "0.2")

    # moving to the same version is a move too (the history keeps it)
    assert store.set_alias(name, "prod", "0.2").seq == 2

    removed = store.remove_alias(name, "prod")
    assert (removed.seq, removed.version, removed.previous) == (3, None, "0.2")
    with pytest.raises(VersionNotFoundError, match=r"team/model@prod is not set"):
        store.resolve_alias(name, "prod")
    with pytest.raises(VersionNotFoundError):
        store.remove_alias(name, "prod")  # already removed: nothing written
    assert list(store.aliases.values(name)) == ["staging"]
    assert store.aliases.names(name) == ["prod", "staging"]  # its history stays

    again = store.set_alias(name, "prod", "0.1")
    assert (again.seq, again.version, again.previous) == (4, "0.1", None)
    assert moves(store, name, "prod") == [
        (0, "0.0", None),
        (1, "0.2", "0.0"),
        (2, "0.2", "0.2"),
        (3, None, "0.2"),
        (4, "0.1", None),
    ]
    history = store.aliases.history(name, "prod")
    assert all(m.alias == "prod" and m.by == who_am_i() and m.at for m in history)
    assert [m.at for m in history] == sorted(m.at for m in history if m.at)

    # nothing is written for a version or an asset that does not exist
    before_objects = listing(store)
    with pytest.raises(VersionNotFoundError):
        store.set_alias(name, "prod", "0.9")
    with pytest.raises(VersionNotFoundError):
        store.set_alias(name, "prod", "3")
    with pytest.raises(AssetNotFoundError):
        store.set_alias("team/nothing", "prod", "0.0")
    with pytest.raises(VersionNotFoundError):
        store.remove_alias(name, "never")
    assert listing(store) == before_objects
    # a removed alias of another asset is not this asset's
    with pytest.raises(VersionNotFoundError):
        store.resolve_alias("team/nothing", "prod")


def test_expect_refuses_a_stale_move(store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path)
    name = "team/model"
    # expect None: only while the alias is unset
    made = store.set_alias(name, "prod", "0.0", expect=None, check_expect=True)
    assert (made.seq, made.version) == (0, "0.0")
    before = listing(store)
    with pytest.raises(AliasConflictError, match=r"team/model@prod points to 0\.0, not nothing"):
        store.set_alias(name, "prod", "0.1", expect=None, check_expect=True)
    with pytest.raises(AliasConflictError, match=r"points to 0\.0, not 0\.2"):
        store.set_alias(name, "prod", "0.1", expect="0.2", check_expect=True)
    with pytest.raises(AliasConflictError):
        store.remove_alias(name, "prod", expect="0.1", check_expect=True)
    assert listing(store) == before  # a refused move writes nothing
    assert store.set_alias(name, "prod", "0.1", expect="0.0", check_expect=True).previous == "0.0"
    # expect without check_expect is only informative: the move is made
    assert store.set_alias(name, "prod", "0.2", expect="0.0").previous == "0.1"
    assert store.remove_alias(name, "prod", expect="0.2", check_expect=True).version is None
    # removed counts as unset for expect=None
    assert store.set_alias(name, "prod", "0.0", expect=None, check_expect=True).seq == 4
    assert moves(store, name, "prod") == [
        (0, "0.0", None),
        (1, "0.1", "0.0"),
        (2, "0.2", "0.1"),
        (3, None, "0.2"),
        (4, "0.0", None),
    ]


def test_an_undone_move_never_reverts_a_later_successful_move(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelkit_assets.maintenance.retention import retire_version

    publish(store, tmp_path)
    store.set_alias("team/model", "prod", "0.0")
    other_client = AssetStore(store.url, dict(store.storage_options))
    real_move = store.aliases.move
    theirs = []

    def move(*args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(store.aliases, "move", real_move)
        retire_version(store, "team/model", "0.1")  # retired after set_alias found it committed
        ours = real_move(*args, **kwargs)
        theirs.append(other_client.set_alias("team/model", "prod", "0.2"))  # succeeds
        return ours

    monkeypatch.setattr(store.aliases, "move", move)
    with pytest.raises(AliasConflictError, match="retired while"):
        store.set_alias("team/model", "prod", "0.1")
    assert [(m.version, m.previous) for m in theirs] == [("0.2", "0.1")]
    # the other client's move, made after ours and reported successful, is the value
    assert store.resolve_alias("team/model", "prod") == "0.2"


# -- resolution everywhere a spec goes -----------------------------------------------------
def test_manager_and_store_resolve_aliases(store: AssetStore, tmp_path: Path, assets_dir: Path) -> None:
    publish(store, tmp_path)
    name = "team/model"
    store.set_alias(name, "prod", "0.0")
    manager = AssetsManager(store, assets_dir)

    assert store.resolve("team/model@prod") == "0.0"
    assert store.resolve(AssetSpec.parse("team/model@prod[sub/part.bin]")) == "0.0"
    assert manager.resolve("team/model@prod") == "0.0"
    path = manager.fetch("team/model@prod")
    assert path == assets_dir / "team" / "model" / "0.0"
    assert tree(path) == CONTENT["0.0"]
    assert manager.fetch("team/model@prod[sub/part.bin]").read_bytes() == CONTENT["0.0"]["sub/part.bin"]
    info = manager.fetch_info("team/model@prod[top.txt]")
    assert (info.name, info.version, info.sub_part, info.from_cache) == ("team/model", "0.0", "top.txt", True)
    assert info.path.read_bytes() == b"zero"

    # the alias moves: the next fetch follows it (an alias is never a cache hit by itself)
    store.set_alias(name, "prod", "0.2")
    info = manager.fetch_info("team/model@prod")
    assert (info.version, info.from_cache) == ("0.2", False)
    assert tree(info.path) == CONTENT["0.2"]
    assert manager.fetch("team/model@prod[top.txt]").read_bytes() == b"two"
    assert store.resolve("team/model@prod") == "0.2"

    # an unset or removed alias is VersionNotFoundError everywhere
    store.remove_alias(name, "prod")
    for call in (
        lambda: store.resolve("team/model@prod"),
        lambda: manager.fetch("team/model@prod"),
        lambda: manager.fetch_info("team/model@staging[top.txt]"),
        lambda: manager.resolve("team/model@staging"),
    ):
        with pytest.raises(VersionNotFoundError, match=r"team/model@(prod|staging) is not set"):
            call()


def test_fsspec_paths_with_an_alias(store: AssetStore, tmp_path: Path, assets_dir: Path) -> None:
    publish(store, tmp_path)
    store.set_alias("team/model", "prod", "0.1")
    options = {
        "store": store.url,
        "store_options": dict(store.storage_options),
        "assets_dir": str(assets_dir),
    }
    with fsspec.open("modelkit-assets://team/model@prod/sub/part.bin", "rb", **options) as f:
        assert f.read() == CONTENT["0.1"]["sub/part.bin"]
    fs = fsspec.filesystem("modelkit-assets", **options)
    assert sorted(fs.ls("team/model@prod", detail=False)) == [
        "team/model@prod/sub",
        "team/model@prod/top.txt",
    ]
    entries = fs.ls("team/model@prod/sub", detail=True)
    assert [(e["name"], e["type"], e["size"], e["version"]) for e in entries] == [
        ("team/model@prod/sub/part.bin", "file", len(CONTENT["0.1"]["sub/part.bin"]), "0.1")
    ]
    assert fs.info("team/model@prod/top.txt")["version"] == "0.1"
    assert fs.cat_file("team/model@prod/top.txt") == b"one"

    store.set_alias("team/model", "prod", "0.2")  # resolved again on every call
    assert fs.cat_file("team/model@prod/top.txt") == b"two"
    assert fs.info("team/model@prod/top.txt")["version"] == "0.2"
    with fsspec.open("modelkit-assets://team/model@prod/top.txt", "rb", **options) as f:
        assert f.read() == b"two"
    with pytest.raises(VersionNotFoundError):
        fs.cat_file("team/model@staging/top.txt")
    with pytest.raises(InvalidSpecError):
        fs.cat_file("team/model@prod:0.1/top.txt")


def test_cli_fetch_info_lock_and_frozen_sync(
    cli: Invoke, store: AssetStore, tmp_path: Path, assets_dir: Path
) -> None:
    publish(store, tmp_path)
    assert cli("alias", "set", "team/model@prod", "0.1").stdout == "team/model@prod -> 0.1\n"

    fetched = cli("fetch", "team/model@prod")
    assert fetched.exit_code == 0, fetched.output
    assert Path(fetched.stdout.strip()) == assets_dir / "team" / "model" / "0.1"
    part = cli("fetch", "team/model@prod[sub/part.bin]", "--json")
    assert part.exit_code == 0, part.output
    data = json.loads(part.stdout)
    assert (data["version"], data["sub_part"]) == ("0.1", "sub/part.bin")
    assert Path(data["path"]).read_bytes() == CONTENT["0.1"]["sub/part.bin"]

    info = cli("info", "team/model@prod", "--json")
    assert info.exit_code == 0, info.output
    assert (json.loads(info.stdout)["name"], json.loads(info.stdout)["version"]) == ("team/model", "0.1")
    assert cli("info", "team/model@prod[sub/part.bin]").exit_code == 0
    refused(cli("info", "team/model@prod[nope.txt]"), "nope.txt")

    lockfile = tmp_path / "assets.lock"
    locked = cli("lock", "team/model@prod", "team/model@prod[top.txt]", "-o", str(lockfile))
    assert locked.exit_code == 0, locked.output
    entries = json.loads(lockfile.read_text())["assets"]
    assert [(e["spec"], e["name"], e["version"]) for e in entries] == [
        ("team/model@prod", "team/model", "0.1"),
        ("team/model@prod[top.txt]", "team/model", "0.1"),
    ]
    synced = cli("sync", str(lockfile), "--frozen", env={"MODELKIT_ASSETS_DIR": str(tmp_path / "other")})
    assert synced.exit_code == 0, synced.output
    assert (tmp_path / "other" / "team" / "model" / "0.1" / "top.txt").read_bytes() == b"one"

    # the alias moves: --frozen fails, fetching nothing; without it the locked version installs
    assert cli("alias", "set", "team/model@prod", "0.2").exit_code == 0
    fresh = tmp_path / "fresh"
    refused(
        cli("sync", str(lockfile), "--frozen", env={"MODELKIT_ASSETS_DIR": str(fresh)}),
        "team/model@prod now resolves to 0.2, locked 0.1",
    )
    assert not (fresh / "team").exists()
    unfrozen = cli("sync", str(lockfile), env={"MODELKIT_ASSETS_DIR": str(fresh)})
    assert unfrozen.exit_code == 0, unfrozen.output
    assert tree(fresh / "team" / "model" / "0.1") == CONTENT["0.1"]
    assert not (fresh / "team" / "model" / "0.2").exists()
    # and the library's sync says the same
    from modelkit_assets.maintenance.lockfile import Lockfile
    from modelkit_assets.maintenance.lockfile import sync as run_sync

    with pytest.raises(LockMismatchError, match=r"now resolves to 0\.2"):
        run_sync(Lockfile.read(lockfile), AssetsManager(store, tmp_path / "lib"), frozen=True)

    now = cli("fetch", "team/model@prod", "--json")
    assert json.loads(now.stdout)["version"] == "0.2"
    refused(cli("fetch", "team/model@staging"), "team/model@staging is not set")
    refused(cli("info", "team/model@staging"), "is not set")
    refused(cli("lock", "team/model@staging", "-o", str(tmp_path / "x.lock")), "is not set")
    assert not (tmp_path / "x.lock").exists()


def test_cli_alias_commands(cli: Invoke, store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path)
    assert "has no alias" in cli("alias", "list", "team/model").stdout
    assert json.loads(cli("alias", "list", "team/model", "--json").stdout) == {
        "name": "team/model",
        "aliases": {},
    }
    assert cli("alias", "history", "team/model@prod").stdout == "team/model@prod was never set.\n"

    made = cli("alias", "set", "team/model@prod", "0.0", "--expect", "none", "--json")
    assert made.exit_code == 0, made.output
    move = json.loads(made.stdout)
    assert {k: move[k] for k in ("name", "seq", "alias", "version", "previous", "by")} == {
        "name": "team/model",
        "seq": 0,
        "alias": "prod",
        "version": "0.0",
        "previous": None,
        "by": who_am_i(),
    }
    # --expect none once it is set, and a stale --expect: exit 1, one line, nothing written
    before = listing(store)
    refused(cli("alias", "set", "team/model@prod", "0.1", "--expect", "none"), "points to 0.0, not nothing")
    refused(cli("alias", "set", "team/model@prod", "0.1", "--expect", "0.2"), "points to 0.0, not 0.2")
    refused(cli("alias", "rm", "team/model@prod", "--expect", "0.1"), "points to 0.0, not 0.1")
    refused(cli("alias", "set", "team/model@prod", "0.7"), "0.7")
    refused(cli("alias", "set", "team/model:0.1", "0.1"), "NAME@ALIAS")
    refused(cli("alias", "set", "team/model@prod[top.txt]", "0.1"), "NAME@ALIAS")
    assert listing(store) == before

    moved = cli("alias", "set", "team/model@prod", "0", "--expect", "0.0")
    assert moved.stdout == "team/model@prod -> 0.2 (was 0.0)\n"
    assert cli("alias", "set", "team/model@staging", "0.1").exit_code == 0
    listed = cli("alias", "list", "team/model")
    lines = listed.stdout.splitlines()
    assert [line.split("  (")[0] for line in lines] == ["team/model@prod -> 0.2", "team/model@staging -> 0.1"]
    assert all(f"by {who_am_i()}" in line for line in lines)
    data = json.loads(cli("alias", "list", "team/model", "--json").stdout)
    assert {a: (m["seq"], m["version"], m["previous"]) for a, m in data["aliases"].items()} == {
        "prod": (1, "0.2", "0.0"),
        "staging": (0, "0.1", None),
    }

    removed = cli("alias", "rm", "team/model@staging", "--expect", "0.1")
    assert removed.exit_code == 0 and removed.stdout == "team/model@staging removed (was 0.1)\n"
    refused(cli("alias", "rm", "team/model@staging"), "team/model@staging is not set")
    assert list(json.loads(cli("alias", "list", "team/model", "--json").stdout)["aliases"]) == ["prod"]
    history = json.loads(cli("alias", "history", "team/model@staging", "--json").stdout)
    assert [(m["seq"], m["version"], m["previous"]) for m in history["moves"]] == [
        (0, "0.1", None),
        (1, None, "0.1"),
    ]
    text = cli("alias", "history", "team/model@prod").stdout.splitlines()
    assert len(text) == 2
    assert text[0].split()[0] == "0" and "-> 0.0" in text[0] and f"by {who_am_i()}" in text[0]
    assert text[1].split()[0] == "1" and "-> 0.2" in text[1]
    assert "removed" in cli("alias", "history", "team/model@staging").stdout.splitlines()[1]


# -- invalid names -----------------------------------------------------------------------
BAD_ALIASES = ["", "1prod", "-prod", "_prod", "pr od", "prod.eu", "prod/eu", "pröd", "a" * 65, "prod\n"]


@pytest.mark.parametrize("alias", BAD_ALIASES, ids=repr)
def test_invalid_alias_names_are_rejected(store: AssetStore, tmp_path: Path, alias: str) -> None:
    publish(store, tmp_path, count=1)
    before = listing(store)
    manager = AssetsManager(store, tmp_path / "assets")
    with pytest.raises(InvalidSpecError):
        store.set_alias("team/model", alias, "0.0")
    with pytest.raises(InvalidSpecError):
        store.resolve_alias("team/model", alias)
    with pytest.raises(InvalidSpecError):
        store.aliases.history("team/model", alias)
    with pytest.raises(InvalidSpecError):
        AssetSpec.parse(f"team/model@{alias}[top.txt]")
    with pytest.raises(InvalidSpecError):
        manager.fetch(f"team/model@{alias}")
    if "/" not in alias:  # for fsspec, `model@prod/eu` is the path eu inside model@prod
        with pytest.raises(InvalidSpecError):
            parse_path(f"team/model@{alias}/top.txt")
    assert listing(store) == before
    assert nothing_in(tmp_path / "assets")


def test_longest_alias_and_alias_with_version_rejected(store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, count=2)
    longest = "a" + "B-_9" * 15 + "zzz"
    assert len(longest) == 64
    assert store.set_alias("team/model", longest, "0.1").version == "0.1"
    assert store.resolve(f"team/model@{longest}") == "0.1"
    assert AssetSpec.parse("team/model@prod[x/y]") == AssetSpec("team/model", None, "x/y", alias="prod")
    assert str(AssetSpec.parse("team/model@prod[x/y]")) == "team/model@prod[x/y]"
    manager = AssetsManager(store, tmp_path / "assets")
    for text in ("team/model@prod:0.1", "team/model@prod:0.1[top.txt]", "team/model:0.1@prod", "team/model@"):
        with pytest.raises(InvalidSpecError):
            AssetSpec.parse(text)
        with pytest.raises(InvalidSpecError):
            store.resolve(text)
        with pytest.raises(InvalidSpecError):
            manager.fetch(text)
    with pytest.raises(InvalidSpecError, match="names both an alias and a version"):
        AssetSpec("team/model", "0.1", alias="prod")
    with pytest.raises(InvalidSpecError):
        parse_path("team/model@prod:0.1/top.txt")
    assert nothing_in(tmp_path / "assets")


def test_cli_rejects_invalid_alias_specs(cli: Invoke, store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, count=1)
    before = listing(store)
    refused(cli("alias", "set", "team/model@1prod", "0.0"), "Alias '1prod' is not valid")
    refused(cli("alias", "set", "team/model@prod:0.0", "0.0"), "names both an alias and a version")
    refused(cli("fetch", "team/model@prod:0.0"), "names both an alias and a version")
    refused(cli("fetch", "team/model@pr.od"), "is not valid")
    refused(cli("info", "team/model@prod:0.0"), "names both")
    refused(cli("alias", "history", "team/model@"), "is not valid")
    assert listing(store) == before


# -- offline -----------------------------------------------------------------------------
def test_offline_resolves_from_the_last_value_seen(
    cli: Invoke, store: AssetStore, tmp_path: Path, assets_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    publish(store, tmp_path)
    store.set_alias("team/model", "prod", "0.1")
    store.set_alias("team/model", "staging", "0.2")
    online = AssetsManager(store, assets_dir)
    assert online.fetch_info("team/model@prod").version == "0.1"  # seen (and installed)
    store.set_alias("team/model", "prod", "0.0")  # moved after it was seen

    offline = AssetsManager(store, assets_dir, offline=True)
    with caplog.at_level(logging.WARNING, logger="modelkit_assets"):
        info = offline.fetch_info("team/model@prod[top.txt]")
    assert (info.version, info.path.read_bytes()) == ("0.1", b"one")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and warnings[0].name == "modelkit_assets.manager"
    message = warnings[0].getMessage()
    assert "team/model@prod = 0.1" in message and "last seen" in message and "offline" in message.lower()
    assert offline.resolve("team/model@prod") == "0.1"

    # never seen here (set in the store, but this assets dir never resolved it)
    with pytest.raises(OfflineError, match=r"team/model@staging cannot be resolved: offline mode is on"):
        offline.fetch("team/model@staging")
    with pytest.raises(OfflineError):
        AssetsManager(store, tmp_path / "empty", offline=True).resolve("team/model@prod")

    # MODELKIT_ASSETS_OFFLINE=1 through the CLI and fsspec: same value, warning on stderr
    offline_env = {"MODELKIT_ASSETS_OFFLINE": "1"}
    result = cli("fetch", "team/model@prod", env=offline_env)
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == assets_dir / "team" / "model" / "0.1"
    assert "team/model@prod = 0.1" in result.stderr and "last seen" in result.stderr
    refused(cli("fetch", "team/model@staging", env=offline_env), "team/model@staging cannot be resolved")
    fs = fsspec.filesystem("modelkit-assets", store=store.url, assets_dir=str(assets_dir), offline=True)
    assert fs.cat_file("team/model@prod/top.txt") == b"one"

    # online again: the store's value is used, and remembered for the next offline run
    assert cli("fetch", "team/model@prod", "--json").exit_code == 0
    assert AssetsManager(store, assets_dir, offline=True).resolve("team/model@prod") == "0.0"


# -- 12 processes moving one alias at once ---------------------------------------------------
# Runs in its own process: opens the store, says it is ready, waits for `go`, then moves the
# alias. Its first create of a move waits for the start line written in `go`: every mover has
# then read the alias before any of them writes (the test checks it from the times reported),
# so all of them race for the same move number.
MOVER = r"""
import json, os, sys, time
job = json.loads(os.environ.pop("MODELKIT_ASSETS_TEST_JOB"))
from modelkit_assets import AssetStore
from modelkit_assets.errors import AssetsError
from modelkit_assets.remote import Remote

store = AssetStore(job["url"], job["options"])
store.fs  # opens the filesystem (imports the backend) before the start
stats = {"reached": None, "line": None, "creates": 0, "collisions": 0}
real_create = Remote.create_exclusive

def create_exclusive(self, key, data, action="create"):
    if "/.aliases/" in key:
        if stats["reached"] is None:
            stats["reached"] = time.time()
            time.sleep(max(0.0, stats["line"] - time.time()))
        stats["creates"] += 1
        try:
            return real_create(self, key, data, action)
        except FileExistsError:
            stats["collisions"] += 1
            raise
    return real_create(self, key, data, action)

Remote.create_exclusive = create_exclusive
open(os.path.join(job["ready_dir"], str(os.getpid())), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(job["go"]):
    if time.monotonic() > deadline:
        sys.exit("no go")
    time.sleep(0.002)
while True:
    text = open(job["go"]).read()
    if text:
        break
stats["line"] = float(text)
started = time.time()
outcomes = []
for attempt in range(job["attempts"]):
    expected = None
    try:
        if job["check_expect"]:
            current = store.aliases.current(job["name"], job["alias"])
            expected = current.version if current is not None else None
            move = store.set_alias(
                job["name"], job["alias"], job["version"], expect=expected, check_expect=True
            )
        else:
            move = store.set_alias(job["name"], job["alias"], job["version"])
        outcomes.append({"seq": move.seq, "version": move.version, "previous": move.previous,
                         "expected": expected})
    except AssetsError as err:
        outcomes.append({"error": type(err).__name__, "message": str(err), "expected": expected})
print(json.dumps({"outcomes": outcomes, "started": started, "finished": time.time(), **stats}))
"""
START_TIMEOUT_S = 90.0
MOVERS = 12


def run_movers(
    store: Store, tmp_path: Path, *, check_expect: bool, attempts: int, versions: list[str]
) -> list[dict[str, Any]]:
    """Start ``MOVERS`` processes, release them together, and return their reports once
    the overlap is proven: they all started within half a second, and every one of them
    had read the alias (reached its first create) before the start line, when the first
    of them could write."""
    url, options = store
    ready = tmp_path / "ready"
    ready.mkdir()
    go = tmp_path / "go"
    procs = []
    for i in range(MOVERS):
        job = {
            "url": url,
            "options": options,
            "name": "team/model",
            "alias": "prod",
            "version": versions[i % len(versions)],
            "check_expect": check_expect,
            "attempts": attempts,
            "go": str(go),
            "ready_dir": str(ready),
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", MOVER],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "MODELKIT_ASSETS_TEST_JOB": json.dumps(job)},
            )
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while len(list(ready.iterdir())) < MOVERS:
            for proc in procs:
                assert proc.poll() is None, f"a mover exited before the start: {proc.communicate()}"
            assert time.monotonic() < deadline, "the movers never all became ready"
            time.sleep(0.01)
        # the start line leaves every mover time to read the alias (a few requests)
        delay = 0.8 if url.startswith("file://") else 2.5
        line = time.time() + delay
        staging = tmp_path / "go.tmp"
        staging.write_text(repr(line))
        staging.rename(go)
        reports = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    starts = [r["started"] for r in reports]
    assert max(starts) - min(starts) < 0.5, f"the movers did not start together: {starts}"
    reached = [r["reached"] for r in reports]
    assert all(t is not None for t in reached), reports
    # every mover had read the alias before any could write: their moves overlapped
    assert max(reached) < line, f"a mover reached its first create after the start line: {reached}"
    assert max(starts) < min(r["finished"] for r in reports)
    return reports


@pytest.mark.slow
def test_12_concurrent_moves_are_all_kept_in_order(shared_store: Store, tmp_path: Path) -> None:
    store = AssetStore(*shared_store)
    publish(store, tmp_path)
    reports = run_movers(shared_store, tmp_path, check_expect=False, attempts=1, versions=list(CONTENT))

    outcomes = [o for r in reports for o in r["outcomes"]]
    assert all("seq" in o for o in outcomes), [o for o in outcomes if "seq" not in o]
    assert len(outcomes) == MOVERS
    # all read an unset alias, then created move 0 at the same moment: only one got it, and
    # each of the 11 others collided at least once before taking a later number
    assert sum(r["collisions"] > 0 for r in reports) >= MOVERS - 1, reports
    seqs = sorted(o["seq"] for o in outcomes)
    assert seqs == list(range(MOVERS))  # each success a distinct move, numbered 0..11

    history = store.aliases.history("team/model", "prod")
    assert [m.seq for m in history] == list(range(MOVERS))
    by_seq = {o["seq"]: o for o in outcomes}
    for move in history:  # every successful move is in the history, exactly as reported
        reported = by_seq[move.seq]
        assert (move.version, move.previous) == (reported["version"], reported["previous"])
    # each move names the one before it: nothing was overwritten or skipped
    assert history[0].previous is None
    assert all(history[i].previous == history[i - 1].version for i in range(1, MOVERS))
    assert store.resolve_alias("team/model", "prod") == history[-1].version
    assert store.resolve("team/model@prod") == history[-1].version


@pytest.mark.slow
def test_12_concurrent_moves_with_expect(shared_store: Store, tmp_path: Path) -> None:
    store = AssetStore(*shared_store)
    publish(store, tmp_path)
    store.set_alias("team/model", "prod", "0.0")
    # never back to 0.0: a move to the value it expects would leave the next one unstale
    reports = run_movers(shared_store, tmp_path, check_expect=True, attempts=3, versions=["0.1", "0.2"])

    outcomes = [o for r in reports for o in r["outcomes"]]
    successes = [o for o in outcomes if "seq" in o]
    failures = [o for o in outcomes if "seq" not in o]
    assert len(outcomes) == MOVERS * 3
    assert {f["error"] for f in failures} <= {"AliasConflictError"}, failures
    assert all("moved meanwhile" in f["message"] for f in failures)
    # first attempts: everyone read 0.0, then all wrote at once: exactly one was not stale
    first = [r["outcomes"][0] for r in reports]
    assert all(o["expected"] == "0.0" for o in first)
    assert sum("seq" in o for o in first) == 1, first

    history = store.aliases.history("team/model", "prod")
    assert len(history) == 1 + len(successes)  # the successes are the moves, no more, no less
    assert sorted(o["seq"] for o in successes) == list(range(1, len(history)))
    for o in successes:  # each success was written as the successor of the value it read
        move = history[o["seq"]]
        assert (move.version, move.previous) == (o["version"], o["expected"])
        assert o["previous"] == o["expected"]
    assert all(history[i].previous == history[i - 1].version for i in range(1, len(history)))
    assert store.resolve_alias("team/model", "prod") == history[-1].version
