"""Text that comes from a store (descriptions, ``pushed_by``, sources, file names, tool
versions, dates) may hold terminal control sequences written by hand into a ``.meta``:
no command prints one raw, in plain output, in tables on a colour terminal, in JSON, in
logs or in error messages. Run on every backend (the store is the attacker's input)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers_snapshot import put_object
from typer.testing import CliRunner, Result

from modelkit_assets import AssetStore
from modelkit_assets.cli.app import app

#: clear screen, retitle (OSC ... BEL), carriage return over the line, C1 CSI, NUL, DEL,
#: backspace, form feed
EVIL = "A\x1b[2J\x1b]0;pwned\x07B\rC\x9b31mD\x00E\x7fF\x08G\x0cH"
#: what must never appear raw, even where rich legitimately writes its own ANSI styles
SEQUENCES = ("\x1b[2J", "\x1b]0;", "\x07", "\r", "\x9b", "\x00", "\x7f", "\x08", "\x0c")
ANY_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")

Invoke = Callable[..., Result]


def hostile_meta(store: AssetStore, name: str, version: str, **changes: object) -> None:
    """Rewrite a committed ``.meta`` by hand, as anyone with write access to the store can."""
    key = store.layout.meta(name, version)
    data = json.loads(store.fs.cat_file(key))
    data.update(changes)
    put_object(store, key, json.dumps(data).encode())
    store.fs.invalidate_cache()


@pytest.fixture
def cli(store_url: tuple[str, dict[str, object]], tmp_path: Path) -> Invoke:
    url, options = store_url
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        full = {
            "MODELKIT_ASSETS_STORE": url,
            "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options),
            "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
            **(env or {}),
        }
        return runner.invoke(app, list(args), env=full)

    return invoke


def test_no_command_prints_a_control_character_from_the_store(
    store: AssetStore, cli: Invoke, sample_dir: Path, tmp_path: Path
) -> None:
    store.new(sample_dir, "evil/model", description="fine")
    store.update(sample_dir, "evil/model")
    store.new(sample_dir, "evil/files")
    fields = {"description": EVIL, "pushed_by": EVIL, "source": EVIL, "tool_version": EVIL}
    hostile_meta(store, "evil/model", "0.0", **fields)
    hostile_meta(store, "evil/model", "0.1", **fields)
    # errors that quote store text: a file name and a date nobody could have published
    data = json.loads(store.fs.cat_file(store.layout.meta("evil/files", "0.0")))
    data["files"][f"x{EVIL}.txt"] = data["files"].pop("vocab.txt")
    data["contents"] = sorted(data["files"])
    hostile_meta(store, "evil/files", "0.0", files=data["files"], contents=data["contents"])
    store.new(sample_dir, "evil/date")
    hostile_meta(store, "evil/date", "0.0", push_date=EVIL)
    lockfile = tmp_path / "assets.lock"
    # an asset name no tool could publish, planted where the disk or memory takes any key
    # (the cloud emulators refuse control characters in keys)
    planted = store.url.startswith(("memory://", "file://"))
    if planted:
        meta = store.layout.meta("evil/model", "0.0")
        hostile_name = "evil/" + EVIL.replace("\x00", "")  # no NUL in a file name on disk
        put_object(store, meta.replace("evil/model", hostile_name), store.fs.cat_file(meta))

    runs: list[tuple[tuple[str, ...], int]] = [
        (("list",), 0),
        (("list", "--json"), 0),
        (("versions", "evil/model"), 0),
        (("versions", "evil/model", "--json"), 0),
        (("info", "evil/model:0.0"), 0),
        (("info", "evil/model:0.1", "--json"), 0),
        (("-vv", "fetch", "evil/model:0.0", "--json"), 0),
        (("fetch", "evil/model:0.1"), 0),
        (("verify", "evil/model", "--remote"), 0),
        (("repair", "--all"), 0),
        (("repair", "evil/model", "--json"), 0),
        (("cache", "list"), 0),
        (("cache", "list", "--json"), 0),
        (("lock", "evil/model:0.1", "-o", str(lockfile)), 0),
        (("lock", "evil/model:0.0", "-o", str(lockfile), "--json"), 0),
        (("sync", str(lockfile)), 0),
        (("info", "evil/files:0.0"), 1),
        (("fetch", "evil/files:0.0"), 1),
        (("versions", "evil/date"), 1),
        (("info", "evil/date:0.0"), 1),
        (("fetch", "evil/date:0.0"), 1),
    ]
    shown = set()
    for args, code in runs:
        for env in ({}, {"FORCE_COLOR": "1", "COLUMNS": "200"}):
            done = cli(*args, env=env)
            assert done.exit_code == code, (args, env, done.output)
            for sequence in SEQUENCES:
                assert sequence not in done.output, (args, env, sequence, done.output)
            if "--json" in args and code == 0:  # still valid JSON, the text intact in it
                data = json.loads(done.stdout)
                if args[0] == "info":
                    assert data["description"] == data["pushed_by"] == EVIL
            if not env:  # no colours: no control character at all but newlines and tabs
                assert not ANY_CONTROL.search(done.output), (args, done.output)
            elif args == ("versions", "evil/model"):  # rich's own styles still go through
                assert "\x1b[1m" in done.output
            # escaped by us (\u001b), or quoted with repr() by an error message (\x1b)
            if "\\u001b[2J" in done.output or "\\x1b[2J" in done.output:
                shown.add(args)
    # the hostile text was really shown (escaped), not dropped, where a command shows it
    assert shown == {
        ("versions", "evil/model"),
        ("versions", "evil/model", "--json"),
        ("info", "evil/model:0.0"),
        ("info", "evil/model:0.1", "--json"),
        ("-vv", "fetch", "evil/model:0.0", "--json"),
        ("info", "evil/files:0.0"),
        ("fetch", "evil/files:0.0"),
        *([("list",), ("list", "--json")] if planted else []),
    }


def test_escape_controls_keeps_printable_text() -> None:
    from modelkit_assets.cli.render import escape_controls

    assert escape_controls("naïve → ok\ttab\nline") == "naïve → ok\ttab\nline"
    assert escape_controls("\x1b[2J\x9b\x00\x7f") == "\\u001b[2J\\u009b\\u0000\\u007f"
