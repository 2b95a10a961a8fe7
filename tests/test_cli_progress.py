"""The CLI's progress display (fed by real transfers of the library) and its error table."""

from __future__ import annotations

import errno
import io
import os
import uuid
from pathlib import Path

import pytest
from rich.console import Console

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.cli.errors import describe
from modelkit_assets.cli.progress import MAX_FILE_ROWS, Transfer, human_size
from modelkit_assets.errors import IntegrityError, StoreUnreachableError


@pytest.fixture(params=["memory", "local"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AssetStore:
    if request.param == "memory":
        return AssetStore(f"memory://prog{uuid.uuid4().hex[:12]}")
    return AssetStore((tmp_path / "store").as_uri())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    for index in range(MAX_FILE_ROWS + 3):
        (root / f"part-{index}.bin").write_bytes(os.urandom(1000 * (index + 1)))
    return root


def terminal() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=120, color_system=None), buffer


def test_rich_upload_counts_every_byte_and_file(store: AssetStore, folder: Path) -> None:
    plan = store.plan_new(folder, "x")
    console, buffer = terminal()
    transfer = Transfer(
        "rich",
        "x:0.0",
        "upload",
        total_bytes=plan.source.size,
        total_files=len(plan.source.files),
        console=console,
    )
    with transfer:
        store.publish(plan, callback=transfer.callback)
    files = len(plan.source.files)
    assert (transfer.files_done, transfer.bytes_done) == (files, plan.source.size)
    text = buffer.getvalue()
    assert "Uploading x:0.0" in text
    assert f"{files}/{files} files" in text
    assert "28.0/28.0 kB" in text  # rich's DownloadColumn at the end


def test_rich_download_learns_the_totals(store: AssetStore, folder: Path, tmp_path: Path) -> None:
    store.new(folder, "x")
    console, buffer = terminal()
    transfer = Transfer("rich", "x:0.0", "download", console=console)
    with transfer:
        result = AssetsManager(store, tmp_path / "assets").fetch_info("x:0.0", callback=transfer.callback)
    assert result.from_cache is False
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert (transfer.files_done, transfer.bytes_done, transfer.total_files) == (7, size, 7)
    assert "Downloading x:0.0" in buffer.getvalue()
    assert "7/7 files" in buffer.getvalue()


def test_plain_lines(store: AssetStore, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = store.plan_new(folder, "x")
    transfer = Transfer("plain", "x:0.0", "upload", total_bytes=plan.source.size, total_files=7)
    with transfer:
        store.publish(plan, callback=transfer.callback)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "Uploading x:0.0 (0/7 files, 28.0 kB)..."
    assert err[1].startswith("Uploaded x:0.0: 7/7 files, 28.0 kB in ")
    assert len(err) == 2


def test_nothing_is_drawn_for_a_cache_hit_or_when_off(
    store: AssetStore, folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.new(folder, "x")
    manager = AssetsManager(store, tmp_path / "assets")
    manager.fetch("x:0.0")
    hit = Transfer("plain", "x:0.0", "download")
    with hit:
        manager.fetch("x:0.0", callback=hit.callback)
    off = Transfer("off", "x:0.0", "download")
    assert off.callback is None
    with off:
        manager.fetch("x:0.0", force=True, callback=off.callback)
    assert capsys.readouterr().err == ""


def test_an_interrupted_transfer_prints_no_summary(capsys: pytest.CaptureFixture[str]) -> None:
    transfer = Transfer("plain", "x:0.0", "upload", total_bytes=10, total_files=1)
    with pytest.raises(KeyboardInterrupt), transfer:
        assert transfer.callback is not None
        transfer.callback.set_size(1)
        raise KeyboardInterrupt
    assert capsys.readouterr().err == "Uploading x:0.0 (0/1 files, 10 B)...\n"


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "? B"), (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (20_000, "20.0 kB"), (3.5e9, "3.5 GB")],
)
def test_human_size(size: float | None, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (IntegrityError("x:0.0[a] has 3 bytes where the manifest says 4."), "x:0.0[a] has 3 bytes where"),
        (
            StoreUnreachableError("The store s3://b could not be reached\nretry."),
            "could not be reached retry.",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/ro/assets"),
            "Permission denied on /ro/assets;",
        ),
        (OSError(errno.ENOSPC, "No space left", "/full"), "No space left on the device: /full;"),
        (
            OSError(errno.EIO, "Input/output error", "/dev/x"),
            "Input/output error: /dev/x; set MODELKIT_ASSETS_DEBUG",
        ),
        (ValueError("token=abc"), "Unexpected error (ValueError); set MODELKIT_ASSETS_DEBUG=1"),
        (MemoryError(), "Out of memory;"),
    ],
)
def test_error_table(error: BaseException, line: str) -> None:
    text = describe(error)
    assert line in text
    assert "\n" not in text
    assert "token=abc" not in text
