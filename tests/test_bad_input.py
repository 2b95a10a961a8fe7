"""G5 and G3 on bad input: unsafe or malformed names, versions, sub-parts, ``.meta``
contents and source folders are refused before anything is written, in the store or in
the assets dir (runs on every backend)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import file_permissions_apply
from helpers_snapshot import put_object, store_objects, tree

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import (
    InvalidMetaError,
    InvalidNameError,
    InvalidSourceError,
    InvalidSpecError,
    InvalidSubPartError,
    InvalidVersionError,
)

PUSH_DATE = "2024-05-01T12:00:00+00:00"
#: the large matrices check validation, which happens before any backend is involved: they run
#: on the in-process backends; one representative of each runs on every backend
IN_PROCESS_BACKENDS = pytest.mark.parametrize("backend", ["memory", "local"])


def assert_nothing_written(store: AssetStore, manager: AssetsManager, action: Callable[[], Any]) -> Exception:
    """Run ``action``, which must fail, and prove it left the store and cache as they were."""
    before_store, before_cache = store_objects(store), tree(manager.assets_dir)
    with pytest.raises(Exception) as info:
        action()
    assert store_objects(store) == before_store
    assert tree(manager.assets_dir) == before_cache
    return info.value


# -- names, versions, sub-parts -----------------------------------------------------------
BAD_NAMES = ["../escape", "/abs", "a/../../b", "a\\b", "a\x00b", ".hidden", "a//b", "a/", "", "a b", "ü"]


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_by_new(
    store: AssetStore, manager: AssetsManager, sample_file: Path, name: str
) -> None:
    error = assert_nothing_written(store, manager, lambda: store.new(sample_file, name))
    assert isinstance(error, InvalidNameError)


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_by_update_fetch_and_reads(
    store: AssetStore, manager: AssetsManager, sample_file: Path, name: str
) -> None:
    store.new(sample_file, "ok")
    for action in (
        lambda: store.update(sample_file, name),
        lambda: manager.fetch(name),
        lambda: manager.fetch(f"{name}:0.0"),
        lambda: store.versions(name),
        lambda: store.meta(name, "0.0"),
    ):
        error = assert_nothing_written(store, manager, action)
        assert isinstance(error, InvalidSpecError), (name, error)


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ("ok:../0.0", InvalidVersionError),
        ("ok:0.0/..", InvalidVersionError),
        ("ok:1.2.3", InvalidVersionError),
        ("ok:latest", InvalidVersionError),
        ("ok:01.0", InvalidVersionError),
        ("ok:0.0[../../../etc/passwd]", InvalidSubPartError),
        ("ok:0.0[/etc/passwd]", InvalidSubPartError),
        ("ok:0.0[a/../../x]", InvalidSubPartError),
        ("ok:0.0[a\\..\\x]", InvalidSubPartError),
        ("ok:0.0[x\x00]", InvalidSubPartError),
        ("ok[..]", InvalidSubPartError),
        ("ok:0.0[x", InvalidSpecError),
    ],
)
def test_bad_versions_and_sub_parts_are_refused_by_fetch(
    store: AssetStore, manager: AssetsManager, sample_dir: Path, spec: str, error: type[Exception]
) -> None:
    store.new(sample_dir, "ok")
    refused = assert_nothing_written(store, manager, lambda: manager.fetch(spec))
    assert type(refused) is error


def test_a_sub_part_cannot_climb_out_of_a_cached_version(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    store.new(sample_dir, "ok")
    manager.fetch("ok:0.0")  # installed: the cache-hit path must check sub-parts too
    refused = assert_nothing_written(store, manager, lambda: manager.fetch("ok:0.0[../../x]"))
    assert isinstance(refused, InvalidSubPartError)


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize("spec", ["ok:0.0", "ok:../1", "ok:1.0.0", "ok[x]", "ok:0[vocab.txt]"])
def test_update_takes_a_name_or_a_major_only(
    store: AssetStore, manager: AssetsManager, sample_file: Path, spec: str
) -> None:
    store.new(sample_file, "ok")
    refused = assert_nothing_written(store, manager, lambda: store.update(sample_file, spec))
    assert isinstance(refused, InvalidSpecError)


@pytest.mark.parametrize("name", ["a/0.0", "a/0.0/b", "a/1.2/c/d", "a/2024-05-01T12-00-00Z", "a.versions"])
def test_names_that_would_mix_with_another_assets_keys_are_refused(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path, name: str
) -> None:
    """Asset ``a/0.0/b`` would upload into ``a:0.0``'s data and overwrite its ``b/0.0``:
    such names are refused, so a published version can never be changed this way (G1)."""
    (sample_dir / "b").mkdir()
    (sample_dir / "b" / "0.0").write_bytes(b"published")
    store.new(sample_dir, "a")
    refused = assert_nothing_written(store, manager, lambda: store.new(sample_file, name))
    assert isinstance(refused, InvalidNameError)
    assert "rename" in str(refused)
    assert manager.fetch("a:0.0[b/0.0]").read_bytes() == b"published"


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize("name", ["a/v1.0", "a/1", "1.0", "a/0.0x", "a/meta"])
def test_names_near_the_reserved_ones_are_fine(store: AssetStore, sample_file: Path, name: str) -> None:
    store.new(sample_file, "a")
    assert store.new(sample_file, name) == "0.0"
    assert store.versions("a") == ["0.0"]


# -- .meta contents ------------------------------------------------------------------
def plant_meta(store: AssetStore, name: str, version: str, payload: bytes) -> None:
    put_object(store, store.layout.meta(name, version), payload)


def meta(contents: list[str] | None = None, **fields: Any) -> bytes:
    data: dict[str, Any] = {"push_date": PUSH_DATE, "is_directory": True, "contents": contents or ["f"]}
    data.update(fields)
    return json.dumps(data).encode()


SHA = "0" * 64
BAD_METAS = {
    "not json": (b"{not json", "not valid JSON"),
    "not utf-8": (b"\xff\xfe\x00", "not valid JSON"),
    "a list": (b"[1, 2]", "not a JSON object"),
    "no push_date": (json.dumps({"is_directory": False}).encode(), "push_date"),
    "bad push_date": (meta(push_date="yesterday"), "push_date"),
    "is_directory not bool": (meta(is_directory="yes"), "is_directory"),
    "contents not a list": (meta(contents=None).replace(b'["f"]', b'"f"'), "contents"),
    "contents not text": (meta(contents=None).replace(b'["f"]', b"[1]"), "contents"),
    "files not an object": (meta(files=["f"]), "`files` that is not an object"),
    "files differ from contents": (meta(files={"g": {}}), "different files"),
    "negative size": (meta(files={"f": {"size": -1}}), "invalid size for 'f'"),
    "size as text": (meta(files={"f": {"size": "1"}}), "invalid size for 'f'"),
    "size as bool": (meta(files={"f": {"size": True}}), "invalid size for 'f'"),
    "bad sha256": (meta(files={"f": {"sha256": "zz"}}), "invalid sha256 for 'f'"),
    "upper-case sha256": (meta(files={"f": {"sha256": "A" * 64}}), "invalid sha256 for 'f'"),
    "entry not an object": (meta(files={"f": 3}), "invalid entry for 'f'"),
    "total size negative": (meta(size=-5), "invalid `size`"),
    "pushed_by not text": (meta(pushed_by=5), "non-text `pushed_by`"),
    "parent path": (meta(["../../outside"]), "unsafe path"),
    "nested parent path": (meta(["a/../../outside"]), "unsafe path"),
    "absolute path": (meta(["/etc/passwd"]), "unsafe path"),
    "backslash path": (meta(["a\\..\\b"]), "unsafe path"),
    "NUL in path": (meta(["a\x00b"]), "unsafe path"),
    "dot path": (meta(["."]), "unsafe path"),
    "empty path": (meta([""]), "unsafe path"),
    "duplicate": (meta(["f", "f"]), "collide"),
    "case collision": (meta(["Model.bin", "model.bin"]), "collide"),
    "NFC collision": (meta(["caf\u00e9", "cafe\u0301"]), "unsafe path"),
    "file and folder": (meta(["a", "a/b"]), "both as a file and as a folder"),
    "file asset with two files": (
        json.dumps({"push_date": PUSH_DATE, "is_directory": False, "files": {"a": {}, "b": {}}}).encode(),
        "several files",
    ),
    "file asset with an unsafe key": (
        json.dumps({"push_date": PUSH_DATE, "is_directory": False, "files": {"../x": {}}}).encode(),
        "unsafe path",
    ),
}


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize("case", sorted(BAD_METAS))
def test_bad_meta_is_refused_before_anything_is_written(
    store: AssetStore, manager: AssetsManager, case: str
) -> None:
    payload, message = BAD_METAS[case]
    plant_meta(store, "evil", "0.0", payload)
    assert store.versions("evil") == ["0.0"]  # it looks committed
    for action in (
        lambda: manager.fetch("evil:0.0"),
        lambda: manager.fetch("evil"),
        lambda: store.meta("evil", "0.0"),
    ):
        error = assert_nothing_written(store, manager, action)
        assert isinstance(error, InvalidMetaError), error
        assert message in str(error)
        assert "evil:0.0" in str(error)


def test_a_well_formed_hand_written_meta_is_fetched(store: AssetStore, manager: AssetsManager) -> None:
    """The counterpart of the refusals above: a modelkit-style meta (no hashes) with its
    data is accepted, so the refusals come from the defects and nothing else."""
    put_object(store, store.layout.data("fine", "0.0", "sub/f"), b"data")
    plant_meta(store, "fine", "0.0", meta(["sub/f"]))
    path = manager.fetch("fine:0.0")
    assert (path / "sub" / "f").read_bytes() == b"data"


# -- source folders ------------------------------------------------------------------
def _symlink_inside(root: Path) -> None:
    (root / "link.txt").symlink_to(root / "vocab.txt")


def _symlink_outside(root: Path) -> None:
    (root / "passwd").symlink_to("/etc/passwd")


def _symlink_dir(root: Path) -> None:
    (root / "up").symlink_to(root.parent, target_is_directory=True)


def _dangling(root: Path) -> None:
    (root / "gone").symlink_to(root / "missing")


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pipe")


def _socket(root: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))


def _case(root: Path) -> None:
    (root / "VOCAB.txt").write_text("x")


def _backslash(root: Path) -> None:
    (root / "a\\b").write_text("x")


def _control(root: Path) -> None:
    (root / "a\nb").write_text("x")


def _not_nfc(root: Path) -> None:
    (root / "cafe\u0301").write_text("x")


def _file_and_folder_case(root: Path) -> None:
    (root / "Sub").write_text("x")  # "sub/" is a folder already


BAD_SOURCES: dict[str, tuple[Callable[[Path], None], str]] = {
    "symlink to a file inside": (_symlink_inside, "symbolic link"),
    "symlink to a file outside": (_symlink_outside, "symbolic link"),
    "symlink to a folder": (_symlink_dir, "symbolic link"),
    "dangling symlink": (_dangling, "symbolic link"),
    "fifo": (_fifo, "not a regular file"),
    "unix socket": (_socket, "not a regular file"),
    "case collision": (_case, "collide"),
    "backslash in a name": (_backslash, "`\\`"),
    "control character in a name": (_control, "control character"),
    "name not in NFC": (_not_nfc, "NFC"),
    "file and folder differing by case": (_file_and_folder_case, "both as a file and as a folder"),
}


@IN_PROCESS_BACKENDS
@pytest.mark.parametrize("case", sorted(BAD_SOURCES))
def test_bad_source_folders_are_refused(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path, case: str
) -> None:
    spoil, message = BAD_SOURCES[case]
    store.new(sample_file, "existing")
    spoil(sample_dir)
    for action in (
        lambda: store.new(sample_dir, "fresh"),
        lambda: store.update(sample_dir, "existing"),
        lambda: store.new(sample_dir, "fresh", dry_run=True),
    ):
        error = assert_nothing_written(store, manager, action)
        assert isinstance(error, InvalidSourceError), error
        assert message in str(error)


def test_empty_folders_are_refused(store: AssetStore, manager: AssetsManager, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    (empty / "only" / "folders").mkdir(parents=True)
    error = assert_nothing_written(store, manager, lambda: store.new(empty, "e"))
    assert isinstance(error, InvalidSourceError)
    assert "holds no file" in str(error)


def test_missing_source_is_refused(store: AssetStore, manager: AssetsManager, tmp_path: Path) -> None:
    error = assert_nothing_written(store, manager, lambda: store.new(tmp_path / "nope", "e"))
    assert isinstance(error, InvalidSourceError)
    assert "does not exist" in str(error)


def test_unreadable_file_is_refused(store: AssetStore, manager: AssetsManager, sample_dir: Path) -> None:
    secret = sample_dir / "vocab.txt"
    secret.chmod(0)

    def publish() -> None:
        with file_permissions_apply():  # root reads any file otherwise
            store.new(sample_dir, "e")

    try:
        error = assert_nothing_written(store, manager, publish)
    finally:
        secret.chmod(0o644)
    assert isinstance(error, InvalidSourceError)
    assert "permission denied" in str(error)


def test_an_empty_file_and_empty_subfolders_publish_fine(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    """Empty subfolders are not files: they are skipped, not refused."""
    (sample_dir / "void").mkdir()
    assert store.new(sample_dir, "ok") == "0.0"
    assert "void" not in "".join(store.meta("ok", "0.0").contents)
    assert (manager.fetch("ok:0.0[sub/deeper/empty.bin]")).read_bytes() == b""


@pytest.mark.parametrize("case", ["parent path", "case collision", "not json"])
def test_bad_meta_is_refused_on_every_backend(store: AssetStore, manager: AssetsManager, case: str) -> None:
    payload, message = BAD_METAS[case]
    plant_meta(store, "evil", "0.0", payload)
    error = assert_nothing_written(store, manager, lambda: manager.fetch("evil"))
    assert isinstance(error, InvalidMetaError)
    assert message in str(error)


def test_bad_input_is_refused_on_every_backend(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    store.new(sample_file, "ok")
    _symlink_outside(sample_dir)
    for action, error in (
        (lambda: store.new(sample_dir, "fresh"), InvalidSourceError),
        (lambda: store.new(sample_file, "../escape"), InvalidNameError),
        (lambda: store.update(sample_file, "ok:../0"), InvalidVersionError),
        (lambda: manager.fetch("ok:0.0[../../x]"), InvalidSubPartError),
    ):
        assert isinstance(assert_nothing_written(store, manager, action), error)
