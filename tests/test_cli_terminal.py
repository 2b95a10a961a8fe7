"""``modelkit-assets`` on a real (pseudo-)terminal, driven by pexpect: the confirmation
answered ``y`` and ``n``, rich progress, and Ctrl-C in the middle of an upload and of a
download, which must leave nothing partial and exit 130."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pexpect
import pytest

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import AssetNotFoundError

CLI = str(Path(sys.executable).with_name("modelkit-assets"))
SLOW = str(Path(__file__).with_name("cli_slow_transfers.py"))
FILES = 30


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")}
    clean.update(
        {
            "MODELKIT_ASSETS_STORE": (tmp_path / "store").as_uri(),
            "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
            "TERM": "xterm-256color",
            "COLUMNS": "150",
            "LINES": "40",
            # one file at a time: Ctrl-C then stops the transfer where it is
            "MODELKIT_ASSETS_CONCURRENCY": "1",
            "CLI_SLOW_TRANSFER_S": "0.1",
        }
    )
    clean.pop("NO_COLOR", None)
    return clean


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    for index in range(FILES):
        (root / f"shard-{index:02d}.bin").write_bytes(os.urandom(50_000))
    return root


def spawn(args: list[str], env: dict[str, str], *, slow: bool = False) -> pexpect.spawn:
    command, argv = (sys.executable, [SLOW, *args]) if slow else (CLI, args)
    return pexpect.spawn(command, argv, env=env, dimensions=(40, 150), encoding="utf-8", timeout=30)


def finish(child: pexpect.spawn) -> int:
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return int(child.exitstatus)


def test_prompt_answered_yes(env: dict[str, str], folder: Path) -> None:
    child = spawn(["new", str(folder), "team/model", "-d", "from a terminal"], env)
    child.expect("New version")
    child.expect("team/model:0.0")
    child.expect(r"Publish team/model:0\.0 to file://\S+\? \[y/N\] ")
    child.sendline("y")
    child.expect(r"Published team/model:0\.0 \(30 files, 1\.5 MB\)")
    assert finish(child) == 0
    store = AssetStore(env["MODELKIT_ASSETS_STORE"])
    assert store.versions("team/model") == ["0.0"]
    assert store.meta("team/model", "0.0").description == "from a terminal"


def test_prompt_answered_no(env: dict[str, str], folder: Path) -> None:
    child = spawn(["new", str(folder), "team/model"], env)
    child.expect(r"\[y/N\] ")
    child.sendline("n")
    child.expect("Nothing was published.")
    assert finish(child) == 1
    with pytest.raises(AssetNotFoundError):
        AssetStore(env["MODELKIT_ASSETS_STORE"]).versions("team/model")


def test_ctrl_c_at_the_prompt_exits_130(env: dict[str, str], folder: Path) -> None:
    child = spawn(["new", str(folder), "team/model"], env)
    child.expect(r"\[y/N\] ")
    child.sendintr()
    assert finish(child) == 130
    assert not AssetStore(env["MODELKIT_ASSETS_STORE"]).exists("team/model")


def test_ctrl_c_mid_upload_publishes_nothing(env: dict[str, str], folder: Path) -> None:
    child = spawn(["new", str(folder), "team/model", "--yes"], env, slow=True)
    child.expect("Uploading team/model:0.0")
    child.expect(rf"\b([3-9]|1[0-9])/{FILES} files")  # well under way, far from done
    child.sendintr()
    child.expect("Interrupted: team/model:0.0 was not published")
    assert finish(child) == 130
    store = AssetStore(env["MODELKIT_ASSETS_STORE"])
    assert not store.exists("team/model")
    assert list(store.list()) == []
    # the interrupted writer's claim is stale (its process is gone): a rerun publishes 0.0
    child = spawn(["new", str(folder), "team/model", "--yes"], env)
    child.expect(rf"{FILES}/{FILES} files")
    assert finish(child) == 0
    assert store.versions("team/model") == ["0.0"]
    fetched = AssetsManager(store, Path(env["MODELKIT_ASSETS_DIR"])).fetch("team/model:0.0")
    assert sorted(p.name for p in fetched.iterdir() if p.name != ".SUCCESS") == sorted(
        p.name for p in folder.iterdir()
    )


def test_ctrl_c_mid_download_leaves_the_cache_unchanged(env: dict[str, str], folder: Path) -> None:
    store = AssetStore(env["MODELKIT_ASSETS_STORE"])
    store.new(folder, "team/model")
    assets = Path(env["MODELKIT_ASSETS_DIR"])
    child = spawn(["fetch", "team/model:0.0"], env, slow=True)
    child.expect("Downloading team/model:0.0")
    child.expect(rf"\b([3-9]|1[0-9])/{FILES} files")
    child.sendintr()
    child.expect("Interrupted: team/model:0.0 was not installed")
    assert finish(child) == 130
    assert not (assets / "team" / "model" / "0.0").exists()
    staging = assets / ".cache" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    with pytest.raises(AssetNotFoundError):
        AssetsManager(None, assets, offline=True).fetch("team/model:0.0")
    child = spawn(["fetch", "team/model:0.0"], env)
    child.expect(str(assets / "team" / "model" / "0.0"))
    assert finish(child) == 0
    assert (assets / "team" / "model" / "0.0" / "shard-29.bin").read_bytes() == (
        folder / "shard-29.bin"
    ).read_bytes()
