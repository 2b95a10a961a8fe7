"""Retiring versions (``retire``) and keeping only recent ones (``gc``), on every backend
(conftest's ``store``): a retired version disappears from versions, list, the index and
fetch; its number is never given again; aliased versions are never retired; gc's
decisions; dry runs and refusals write nothing; an interrupted retire is finished by a
rerun; and a fetch racing a retire installs a whole verified version or nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

import modelkit_assets.transfer
from modelkit_assets import (
    AliasConflictError,
    AssetExistsError,
    AssetNotFoundError,
    AssetsManager,
    AssetStore,
    IntegrityError,
    InvalidSpecError,
    StoreUnreachableError,
    VersionExistsError,
    VersionNotFoundError,
)
from modelkit_assets.cache import AssetCache
from modelkit_assets.claims import who_am_i
from modelkit_assets.cli.app import app
from modelkit_assets.maintenance.copy import copy
from modelkit_assets.maintenance.retention import (
    RetireDecision,
    plan_gc,
    plan_retire,
    retire,
    retire_version,
)

Invoke = Callable[..., Result]
NAME = "team/model"


def files_of(version: str) -> dict[str, bytes]:
    """A folder of four files whose bytes name the version."""
    tag = version.encode()
    return {
        "a.txt": b"a-" + tag,
        "b.bin": b"b-" + tag * 50,
        "sub/c.txt": b"c-" + tag,
        "sub/deeper/d.bin": b"d-" + tag * 100,
    }


def source(tmp_path: Path, label: str) -> Path:
    root = tmp_path / "sources" / label
    for rel, data in files_of(label).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def publish(store: AssetStore, tmp_path: Path, count: int, name: str = NAME) -> list[str]:
    """``count`` versions 0.0, 0.1, ... of ``name``, each holding ``files_of(version)``."""
    versions = []
    for i in range(count):
        src = source(tmp_path, f"0.{i}")
        versions.append(store.new(src, name) if i == 0 else store.update(src, name))
    assert versions == [f"0.{i}" for i in range(count)]
    return versions


def listing(store: AssetStore) -> list[str]:
    """Every object under the store's root, asked of the server."""
    store.fs.invalidate_cache()
    return sorted(store.fs.find(store.layout.root))


def version_objects(store: AssetStore, name: str, version: str) -> list[str]:
    """The objects of a version: its meta, its data and its signatures."""
    meta = store.layout.meta(name, version)
    data = store.layout.data(name, version) + "/"
    signatures = store.layout.signatures_dir(name, version) + "/"
    return [k for k in listing(store) if k == meta or k.startswith((data, signatures))]


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".SUCCESS"
    }


def installed(assets_dir: Path, name: str = NAME) -> list[str]:
    folder = assets_dir.joinpath(*name.split("/"))
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def assert_gone(store: AssetStore, tmp_path: Path, version: str, name: str = NAME) -> None:
    """``version`` is retired: hidden everywhere, unfetchable, its objects removed."""
    assert version in store.retired(name)
    assert version not in store.versions(name)
    assert version not in dict(store.list()).get(name, [])
    assert version not in (store.read_index(name) or [])
    assert store.fs.exists(store.layout.tombstone(name, version))
    assert version_objects(store, name, version) == []
    with pytest.raises(VersionNotFoundError):
        store.meta(name, version)
    with pytest.raises(VersionNotFoundError):
        store.resolve(f"{name}:{version}")
    fresh = tmp_path / f"fresh-{version}-{len(list(tmp_path.glob('fresh-*')))}"
    manager = AssetsManager(store, fresh)
    with pytest.raises(VersionNotFoundError):
        manager.fetch(f"{name}:{version}")
    with pytest.raises(VersionNotFoundError):
        manager.fetch(f"{name}:{version}[a.txt]")
    assert installed(fresh, name) == []


@pytest.fixture
def cli(store: AssetStore, tmp_path: Path) -> Invoke:
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        full_env = {
            "MODELKIT_ASSETS_STORE": store.url,
            "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(dict(store.storage_options)),
            "MODELKIT_ASSETS_DIR": str(tmp_path / "cli-assets"),
            **(env or {}),
        }
        return runner.invoke(app, list(args), env=full_env, input=input)

    return invoke


def refused(result: Result, *fragments: str) -> None:
    """Exit 1 with one ``Error:`` line on stderr (no traceback) naming ``fragments``."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


# -- a retired version disappears ----------------------------------------------------------
def test_a_retired_version_disappears(store: AssetStore, tmp_path: Path) -> None:
    from modelkit_assets.signing import generate_key

    publish(store, tmp_path, 2)
    private, _ = generate_key(tmp_path / "publisher.pem")
    assert store.update(source(tmp_path, "0.2"), NAME, sign_key=private) == "0.2"
    assert store.signatures.all(NAME, "0.2") != []
    assert store.set_alias(NAME, "prod", "0.0").version == "0.0"
    untouched = {v: version_objects(store, NAME, v) for v in ("0.0", "0.1")}

    before = listing(store)
    plan = plan_retire(store, [f"{NAME}:0.2"])
    assert [(d.name, d.version, d.action) for d in plan.decisions] == [(NAME, "0.2", "retire")]
    assert plan.decisions[0].pushed == store.meta(NAME, "0.2").push_date
    assert listing(store) == before  # planning writes nothing

    assert retire(store, plan) == plan.to_retire
    assert store.versions(NAME) == ["0.1", "0.0"]
    assert dict(store.list()) == {NAME: ["0.1", "0.0"]}
    assert store.read_index(NAME) == ["0.1", "0.0"]  # modelkit's index no longer lists it
    assert store.retired(NAME) == ["0.2"]
    assert store.resolve(NAME) == "0.1" and store.resolve(f"{NAME}:0") == "0.1"
    assert_gone(store, tmp_path, "0.2")
    assert store.signatures.all(NAME, "0.2") == []
    tombstone = json.loads(store.fs.cat_file(store.layout.tombstone(NAME, "0.2")))
    assert tombstone["version"] == "0.2" and tombstone["by"] == who_am_i()
    # the other versions and the alias are untouched, and still fetch whole
    assert {v: version_objects(store, NAME, v) for v in ("0.0", "0.1")} == untouched
    manager = AssetsManager(store, tmp_path / "assets")
    assert tree(manager.fetch(f"{NAME}:0.1")) == files_of("0.1")
    assert tree(manager.fetch(f"{NAME}@prod")) == files_of("0.0")
    assert tree(manager.fetch(NAME)) == files_of("0.1")

    # a second retire of it is a no-op that says so
    again = plan_retire(store, [f"{NAME}:0.2"])
    assert [(d.version, d.action) for d in again.decisions] == [("0.2", "already retired")]
    assert again.to_retire == [] and retire(store, again) == []
    assert retire_version(store, NAME, "0.2") is False
    assert store.versions(NAME) == ["0.1", "0.0"]


def test_retire_takes_exact_published_versions(store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, 2)
    store.set_alias(NAME, "prod", "0.1")
    before = listing(store)
    for text in (f"{NAME}:0", NAME, f"{NAME}@prod", f"{NAME}:0.1[a.txt]"):
        with pytest.raises(InvalidSpecError, match="exact versions"):
            plan_retire(store, [text])
    with pytest.raises(VersionNotFoundError, match=r"team/model:0\.7 does not exist"):
        plan_retire(store, [f"{NAME}:0.7"])
    with pytest.raises(AssetNotFoundError):
        plan_retire(store, ["team/other:0.0"])
    # one bad spec refuses the whole plan, before anything is written
    with pytest.raises(VersionNotFoundError):
        plan_retire(store, [f"{NAME}:0.0", f"{NAME}:0.9"])
    assert listing(store) == before


# -- numbers are never given again ---------------------------------------------------------
def test_retired_numbers_are_never_given_again(store: AssetStore, tmp_path: Path) -> None:
    src = source(tmp_path, "any")
    assert store.new(src, NAME) == "0.0"
    assert store.update(src, NAME) == "0.1"
    retire_version(store, NAME, "0.1")  # the latest
    assert store.plan_update(src, NAME).version == "0.2"
    assert store.update(src, NAME) == "0.2"

    retire_version(store, NAME, "0.2")
    retire_version(store, NAME, "0.0")  # every version retired
    assert store.retired(NAME) == ["0.2", "0.1", "0.0"]
    with pytest.raises(AssetNotFoundError):
        store.versions(NAME)
    assert NAME not in dict(store.list())
    assert store.read_index(NAME) in ([], None)
    before = listing(store)
    with pytest.raises(AssetExistsError, match="every version retired"):
        store.new(src, NAME)
    with pytest.raises(AssetExistsError):
        store.plan_new(src, NAME, version="0.0")
    assert listing(store) == before
    assert store.update(src, NAME) == "0.3"  # numbering goes on

    # bump rules too: a retired major is never started again
    assert store.update(src, NAME, bump_major=True) == "1.0"
    retire_version(store, NAME, "1.0")
    assert store.plan_update(src, NAME, bump_major=True).version == "2.0"
    assert store.update(src, f"{NAME}:1") == "1.1"
    assert store.update(src, NAME, bump_major=True) == "2.0"
    assert store.versions(NAME) == ["2.0", "1.1", "0.3"]

    # a pinned publish of a retired number is refused, nothing written
    before = listing(store)
    for version in ("0.0", "0.1", "1.0"):
        with pytest.raises(VersionExistsError, match="retired"):
            store.plan_update(src, NAME, version=version)
    assert listing(store) == before
    assert store.update(src, f"{NAME}:0") == "0.4"


def test_copy_into_a_retired_number_is_refused(store: AssetStore, tmp_path: Path) -> None:
    src = AssetStore(store.url + "-src", dict(store.storage_options))
    publish(src, tmp_path, 1)
    publish(store, tmp_path, 2)
    retire_version(store, NAME, "0.0")
    # 0.0 as modelkit 0.1.3 publishes it (or a publisher whose process has exited): no live claim
    store.remote.remove(store.layout.claims_dir(NAME, "0.0"))
    before = listing(store)
    with pytest.raises(AssetExistsError):
        copy(src, store, f"{NAME}:0.0")
    assert listing(store) == before
    assert not store.is_committed(NAME, "0.0")


# -- aliased versions ----------------------------------------------------------------------
def test_aliased_versions_are_never_retired(store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, 4)
    store.set_alias(NAME, "prod", "0.0")
    store.set_alias(NAME, "staging", "0.1")
    before = listing(store)
    with pytest.raises(AliasConflictError, match=r"team/model:0\.0 is aliased \(team/model@prod\)"):
        plan_retire(store, [f"{NAME}:0.0"])
    with pytest.raises(AliasConflictError, match="team/model@staging"):
        plan_retire(store, [f"{NAME}:0.2", f"{NAME}:0.1"])
    with pytest.raises(AliasConflictError):
        retire_version(store, NAME, "0.1")
    assert listing(store) == before

    plan = plan_gc(store, [NAME], keep_last=0)
    assert [(d.version, d.action, d.reason) for d in plan.decisions] == [
        ("0.3", "retire", ""),
        ("0.2", "retire", ""),
        ("0.1", "keep", "aliased (team/model@staging)"),
        ("0.0", "keep", "aliased (team/model@prod)"),
    ]
    retire(store, plan)
    assert store.versions(NAME) == ["0.1", "0.0"]
    assert store.read_index(NAME) == ["0.1", "0.0"]

    # an alias is never moved to a retired version
    history = store.aliases.history(NAME, "prod")
    with pytest.raises(VersionNotFoundError):
        store.set_alias(NAME, "prod", "0.3")
    assert store.aliases.history(NAME, "prod") == history

    # once the alias moves away (or is removed), the version can go
    store.set_alias(NAME, "prod", "0.1")
    store.remove_alias(NAME, "staging")
    plan = plan_gc(store, [NAME], keep_last=0)
    assert [(d.version, d.action) for d in plan.decisions] == [("0.1", "keep"), ("0.0", "retire")]
    retire(store, plan)
    assert store.versions(NAME) == ["0.1"]
    assert_gone(store, tmp_path, "0.0")


@pytest.mark.parametrize("first", ["retire", "alias"])
def test_a_retire_racing_an_alias_move_never_leaves_an_alias_on_a_retired_version(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: str
) -> None:
    """The two interleavings of ``set_alias(0.1)`` and ``retire 0.1``: the retire runs
    fully between the move's check of the version and its write (the move is undone), or
    the move lands between the tombstone and the retire's second look (the retire is
    undone). Either way no alias points to a retired version."""
    publish(store, tmp_path, 3)
    store.set_alias(NAME, "prod", "0.0")
    real_move = store.aliases.move
    real_create = store.remote.create_exclusive

    if first == "retire":

        def move(*args: Any, **kwargs: Any) -> Any:
            monkeypatch.setattr(store.aliases, "move", real_move)
            retire_version(store, NAME, "0.1")  # after set_alias found 0.1 committed
            return real_move(*args, **kwargs)

        monkeypatch.setattr(store.aliases, "move", move)
        with pytest.raises(AliasConflictError, match="retired while"):
            store.set_alias(NAME, "prod", "0.1")
        assert store.resolve_alias(NAME, "prod") == "0.0"  # undone
        assert store.retired(NAME) == ["0.1"]
        assert_gone(store, tmp_path, "0.1")
    else:
        moved: dict[str, Any] = {}

        def create(key: str, data: bytes, action: str = "create") -> None:
            real_create(key, data, action)
            if key == store.layout.tombstone(NAME, "0.1") and not moved:
                # between the tombstone and the retire's second look at the aliases
                moved["move"] = real_move(NAME, "prod", "0.1")

        monkeypatch.setattr(store.remote, "create_exclusive", create)
        with pytest.raises(AliasConflictError, match="is aliased"):
            retire_version(store, NAME, "0.1")
        assert moved
        assert store.retired(NAME) == []  # the tombstone was taken back
        assert store.versions(NAME) == ["0.2", "0.1", "0.0"]
        assert store.read_index(NAME) == ["0.2", "0.1", "0.0"]
        assert store.resolve("team/model@prod") == "0.1"
        assert tree(AssetsManager(store, tmp_path / "assets").fetch("team/model@prod")) == files_of("0.1")


# -- gc decisions ----------------------------------------------------------------------------
def test_gc_keep_last_and_older_than(store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, 5)
    publish(store, tmp_path, 1, name="team/other")
    pushed = {v: store.meta(NAME, v).push_date for v in store.versions(NAME)}
    assert all(p is not None for p in pushed.values())
    before = listing(store)

    def decisions(plan: Any) -> list[tuple[str, str, str, str]]:
        return [(d.name, d.version, d.action, d.reason) for d in plan.decisions]

    plan = plan_gc(store, [NAME, "team/other"], keep_last=2)
    assert decisions(plan) == [
        (NAME, "0.4", "keep", "among the 2 latest"),
        (NAME, "0.3", "keep", "among the 2 latest"),
        (NAME, "0.2", "retire", ""),
        (NAME, "0.1", "retire", ""),
        (NAME, "0.0", "retire", ""),
        ("team/other", "0.0", "keep", "among the 2 latest"),
    ]
    assert [d.version for d in plan_gc(store, [NAME], keep_last=0).to_retire] == [
        "0.4",
        "0.3",
        "0.2",
        "0.1",
        "0.0",
    ]
    assert plan_gc(store, [NAME], keep_last=5).to_retire == []
    assert plan_gc(store, [NAME], keep_last=50).to_retire == []

    # ages, against a chosen `now`: 30 days after a moment between the pushes of 0.1 and 0.2
    month = dt.timedelta(days=30)
    middle = pushed["0.1"] + (pushed["0.2"] - pushed["0.1"]) / 2
    assert pushed["0.1"] < middle < pushed["0.2"]
    aged = plan_gc(store, [NAME], keep_last=1, older_than=month, now=middle + month)
    assert [(d.version, d.action, d.reason, d.pushed) for d in aged.decisions] == [
        ("0.4", "keep", "among the 1 latest", None),
        ("0.3", "keep", "more recent", pushed["0.3"]),
        ("0.2", "keep", "more recent", pushed["0.2"]),
        ("0.1", "retire", "", pushed["0.1"]),
        ("0.0", "retire", "", pushed["0.0"]),
    ]
    # --keep-last wins over the age, and nothing is older than a month today
    assert plan_gc(store, [NAME], keep_last=4, older_than=month, now=middle + 10 * month).to_retire == [
        RetireDecision(NAME, "0.0", "retire", pushed=pushed["0.0"])
    ]
    assert plan_gc(store, [NAME], keep_last=0, older_than=month).to_retire == []
    with pytest.raises(InvalidSpecError):
        plan_gc(store, [NAME], keep_last=-1)
    with pytest.raises(AssetNotFoundError):
        plan_gc(store, ["team/missing"], keep_last=1)
    assert listing(store) == before  # planning writes nothing

    assert [d.version for d in retire(store, aged)] == ["0.1", "0.0"]
    assert store.versions(NAME) == ["0.4", "0.3", "0.2"]
    assert store.read_index(NAME) == ["0.4", "0.3", "0.2"]
    for version in ("0.1", "0.0"):
        assert_gone(store, tmp_path, version)
    # a second gc counts what is left
    assert [d.version for d in plan_gc(store, [NAME], keep_last=2).to_retire] == ["0.2"]
    assert store.versions("team/other") == ["0.0"]


# -- the CLI ---------------------------------------------------------------------------------
def test_dry_runs_and_refusals_write_nothing(cli: Invoke, store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, 3)
    before = listing(store)

    dry = cli("gc", NAME, "--keep-last", "1", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout == ""
    assert "Dry run: 2 version(s) would be retired (team/model:0.1, team/model:0.0)" in dry.stderr
    assert "retire  team/model:0.1" in dry.stderr and "keep  team/model:0.2" in dry.stderr
    data = json.loads(cli("gc", NAME, "--keep-last", "1", "--dry-run", "--json").stdout)
    assert data["dry_run"] is True
    assert [(d["version"], d["action"]) for d in data["decisions"]] == [
        ("0.2", "keep"),
        ("0.1", "retire"),
        ("0.0", "retire"),
    ]
    assert cli("gc", NAME, "--keep-last", "0", "--older-than", "30d", "--dry-run").exit_code == 0
    dry = cli("retire", f"{NAME}:0.1", f"{NAME}:0.0", "--dry-run", "--yes")
    assert dry.exit_code == 0 and "nothing was written" in dry.stderr
    data = json.loads(cli("retire", f"{NAME}:0.0", "--dry-run", "--json").stdout)
    assert data["dry_run"] is True and data["decisions"][0]["action"] == "retire"

    # a "no", or no answer at all, retires nothing and exits 1
    answered_no = cli("retire", f"{NAME}:0.1", input="n\n")
    assert answered_no.exit_code == 1 and answered_no.stdout == ""
    assert "[y/N]" in answered_no.stderr and "Nothing was retired." in answered_no.stderr
    assert cli("gc", NAME, "--keep-last", "1", input="no\n").exit_code == 1
    assert cli("retire", f"{NAME}:0.1", input="").exit_code == 1
    assert cli("retire", f"{NAME}:0.1", "--json", input="n\n").exit_code == 1

    # refusals: one line, exit 1
    store.set_alias(NAME, "prod", "0.0")
    before = listing(store)
    refused(cli("retire", f"{NAME}:0.0", "--yes"), "is aliased", "team/model@prod")
    refused(cli("retire", f"{NAME}:0", "--yes"), "exact versions")
    refused(cli("retire", f"{NAME}@prod", "--yes"), "exact versions")
    refused(cli("retire", f"{NAME}:0.9", "--yes"), "does not exist")
    refused(cli("gc", "team/missing", "--keep-last", "1", "--yes"), "team/missing")
    bad = cli("gc", NAME, "--keep-last", "-1", "--yes")
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert listing(store) == before
    assert store.versions(NAME) == ["0.2", "0.1", "0.0"]


def test_cli_retire_and_gc(cli: Invoke, store: AssetStore, tmp_path: Path) -> None:
    publish(store, tmp_path, 5)
    assert cli("fetch", f"{NAME}:0.1").exit_code == 0  # installed here before it is retired

    done = cli("retire", f"{NAME}:0.1", "--yes")
    assert done.exit_code == 0, done.output
    assert done.stdout == "team/model:0.1 retired\n"
    assert "retire  team/model:0.1 (published " in done.stderr
    assert_gone(store, tmp_path, "0.1")

    answered = cli("retire", f"{NAME}:0.0", "--json", input="y\n")
    assert answered.exit_code == 0, answered.output
    data = json.loads(answered.stdout)
    assert data["dry_run"] is False
    assert [(d["name"], d["version"], d["action"]) for d in data["retired"]] == [(NAME, "0.0", "retire")]
    assert_gone(store, tmp_path, "0.0")

    again = cli("retire", f"{NAME}:0.0", "--yes")
    assert again.exit_code == 0 and again.stdout == ""
    assert "already retired  team/model:0.0" in again.stderr and "Nothing to retire." in again.stderr

    store.set_alias(NAME, "prod", "0.2")
    gc = cli("gc", NAME, "--keep-last", "1", "--yes", "--json")
    assert gc.exit_code == 0, gc.output
    assert [d["version"] for d in json.loads(gc.stdout)["retired"]] == ["0.3"]
    assert store.versions(NAME) == ["0.4", "0.2"]
    nothing = cli("gc", NAME, "--keep-last", "0", "--older-than", "1000d", "--yes")
    assert nothing.exit_code == 0 and "Nothing to retire." in nothing.stderr

    # the CLI's readers agree
    listed = json.loads(cli("versions", NAME, "--json").stdout)
    assert [v["version"] for v in listed["versions"]] == ["0.4", "0.2"]
    refused(cli("info", f"{NAME}:0.3"), "0.3")
    refused(cli("fetch", f"{NAME}:0.3"), "0.3")
    assert installed(tmp_path / "cli-assets") == ["0.1"]  # only what was installed before
    assert cli("update", str(source(tmp_path, "new")), NAME, "--yes").stdout.strip() == f"{NAME}:0.5"


# -- an interrupted retire, rerun ------------------------------------------------------------
INTERRUPTIONS = ["after the tombstone", "after the index", "after the meta"]


def interrupt(store: AssetStore, monkeypatch: pytest.MonkeyPatch, where: str, version: str) -> None:
    """Make the next ``retire_version`` of ``version`` stop at ``where`` (a store failure)."""
    failure = StoreUnreachableError("the store stopped answering (test)")
    if where == "after the tombstone":

        def refresh(name: str, **kwargs: Any) -> list[str]:
            raise failure

        monkeypatch.setattr(store, "refresh_index", refresh)
        return
    target = (
        store.layout.meta(NAME, version) if where == "after the index" else store.layout.data(NAME, version)
    )
    real_remove = store.remote.remove

    def remove(key: str, action: str = "remove") -> None:
        if key == target:
            raise failure
        real_remove(key, action)

    monkeypatch.setattr(store.remote, "remove", remove)


def interrupted(store: AssetStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str) -> None:
    publish(store, tmp_path, 3)
    with monkeypatch.context() as patch:
        interrupt(store, patch, where, "0.1")
        with pytest.raises(StoreUnreachableError):
            retire_version(store, NAME, "0.1")
    # half retired: hidden from our listings already, not yet gone from the store
    assert store.retired(NAME) == ["0.1"]
    assert store.versions(NAME) == ["0.2", "0.0"]
    assert version_objects(store, NAME, "0.1") != []


@pytest.mark.parametrize("where", INTERRUPTIONS)
def test_retire_version_again_finishes_an_interrupted_retire(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    interrupted(store, monkeypatch, tmp_path, where)
    assert retire_version(store, NAME, "0.1") is False
    assert_gone(store, tmp_path, "0.1")
    assert store.read_index(NAME) == ["0.2", "0.0"]


def test_the_retire_command_again_finishes_an_interrupted_retire(
    cli: Invoke, store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the tombstone was written, then the store stopped answering: .meta, data and the
    # index entry are all still there (modelkit still lists and fetches the version)
    interrupted(store, monkeypatch, tmp_path, "after the tombstone")
    assert store.read_index(NAME) == ["0.2", "0.1", "0.0"]
    rerun = cli("retire", f"{NAME}:0.1", "--yes")
    assert rerun.exit_code == 0, rerun.output
    assert_gone(store, tmp_path, "0.1")


# -- a fetch racing a retire -----------------------------------------------------------------
@pytest.mark.parametrize("when", ["before the 1st file", "before the 2nd file", "before the install"])
def test_a_fetch_racing_a_retire_installs_all_or_nothing(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """The fetcher read the ``.meta``; the version is retired while its files download,
    one at a time. Before the download ends: it fails (IntegrityError: files missing) and
    installs nothing. Once every file is verified: the whole version is installed."""
    publish(store, tmp_path, 2)
    fetcher = AssetStore(store.url, dict(store.storage_options), concurrency=1)
    assets = tmp_path / "assets"
    manager = AssetsManager(fetcher, assets)
    retired: list[str] = []
    downloads = []
    real_resume_point = modelkit_assets.transfer._resume_point
    real_install = AssetCache.install

    def resume_point(job: Any, hasher: Any) -> int:
        # called in a worker thread as each file's download starts
        downloads.append(job.src)
        target = {"before the 1st file": 1, "before the 2nd file": 2}.get(when)
        if len(downloads) == target and not retired:
            retired.append("0.0")
            retire_version(store, NAME, "0.0")
        return real_resume_point(job, hasher)

    def install(self: AssetCache, *args: Any, **kwargs: Any) -> Path:
        if when == "before the install" and not retired:
            retired.append("0.0")
            retire_version(store, NAME, "0.0")
        return real_install(self, *args, **kwargs)

    monkeypatch.setattr(modelkit_assets.transfer, "_resume_point", resume_point)
    monkeypatch.setattr(AssetCache, "install", install)

    if when == "before the install":
        result = manager.fetch_info(f"{NAME}:0.0")
        assert retired and not result.from_cache
        assert tree(result.path) == files_of("0.0")  # whole and verified
        assert installed(assets) == ["0.0"]
    else:
        with pytest.raises((IntegrityError, VersionNotFoundError)) as caught:
            manager.fetch(f"{NAME}:0.0")
        assert retired
        assert "team/model:0.0" in str(caught.value)
        assert installed(assets) == []
        assert manager.cache.installed(NAME, "0.0") is None
        staging = assets / ".cache" / "staging"
        assert not staging.exists() or not any(p.is_file() for p in staging.rglob("*"))
    if when == "before the 2nd file":
        assert len(set(downloads)) >= 2  # the first file had been downloaded
    assert_gone(store, tmp_path, "0.0")
    # the store still serves the rest
    assert tree(manager.fetch(NAME)) == files_of("0.1")
