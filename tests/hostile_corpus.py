"""A corpus of hostile inputs, each with the error it must raise (tests/test_hostile.py).

Four kinds of case:

``name``    ``store.new(file, NAME)``
``spec``    ``manager.fetch(SPEC)`` against a store holding ``ok:0.0`` (a folder asset)
``meta``    ``manager.fetch("evil:0.0")`` after planting these bytes as its ``.meta``
``source``  ``store.new(FOLDER, "src")`` after a spoiler function prepared ``FOLDER``

Each case names the exception class and a fragment of its message (the one-line error
must say what is wrong). Unicode look-alikes use characters that render like ASCII ones
(Cyrillic o U+043E, fullwidth m U+FF4D, the Kelvin sign U+212A).
"""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelkit_assets.errors import (
    InvalidMetaError,
    InvalidNameError,
    InvalidSourceError,
    InvalidSpecError,
    InvalidSubPartError,
    InvalidVersionError,
    SubPartNotFoundError,
)


@dataclass(frozen=True)
class Case:
    kind: str  # name, spec, meta, source
    payload: Any
    error: type[Exception]
    message: str


PUSH_DATE = "2024-05-01T12:00:00+00:00"


def meta(contents: list[str] | None = None, **fields: Any) -> bytes:
    data: dict[str, Any] = {"push_date": PUSH_DATE, "is_directory": True, "contents": contents or ["f"]}
    data.update(fields)
    return json.dumps(data).encode()


_NOT_VALID = "is not valid"

NAMES: dict[str, Case] = {
    f"name: {label}": Case("name", value, InvalidNameError, fragment)
    for label, value, fragment in [
        ("parent", "..", _NOT_VALID),
        ("trailing parent", "a/..", _NOT_VALID),
        ("climbing", "../escape", _NOT_VALID),
        ("absolute", "/etc/passwd", "empty segment"),
        ("backslash", "a\\b", _NOT_VALID),
        ("windows drive", "C:\\x", _NOT_VALID),
        ("NUL", "a\x00b", _NOT_VALID),
        ("tab", "a\tb", _NOT_VALID),
        ("newline", "a\nb", _NOT_VALID),
        ("DEL", "a\x7fb", _NOT_VALID),
        ("escape sequence", "a\x1b[31mred", _NOT_VALID),
        ("cyrillic o look-alike", "m\u043edel", _NOT_VALID),
        ("fullwidth m", "\uff4dodel", _NOT_VALID),
        ("kelvin sign", "\u212a", _NOT_VALID),
        ("zero-width space", "mo\u200bdel", _NOT_VALID),
        ("right-to-left override", "a\u202eb", _NOT_VALID),
        ("combining accent", "cafe\u0301", _NOT_VALID),
        ("tilde", "~root", _NOT_VALID),
        ("shell variable", "$HOME", _NOT_VALID),
        ("space", "a b", _NOT_VALID),
        ("hidden segment", "a/.git", _NOT_VALID),
        ("empty segment", "a//b", "empty segment"),
        ("empty", "", "empty"),
        ("segment of 300 characters", "a" * 300, "the limit is"),
        ("name of 6000 characters", "/".join(["a" * 100] * 60), "the limit is"),
        ("version as a segment", "a/0.0", "is a version"),
        ("date version as a segment", "a/2024-05-01T12-00-00Z/b", "is a version"),
        ("index suffix", "a.versions", "reserves"),
        ("meta suffix", "a/b.meta", "reserves"),
    ]
}

SPECS: dict[str, Case] = {
    f"spec: {label}": Case("spec", value, error, fragment)
    for label, value, error, fragment in [
        ("fullwidth digit version", "ok:\uff10.0", InvalidVersionError, _NOT_VALID),
        ("arabic-indic digit version", "ok:\u0661.0", InvalidVersionError, _NOT_VALID),
        ("NUL in version", "ok:0.0\x00", InvalidVersionError, _NOT_VALID),
        ("negative version", "ok:-1.0", InvalidVersionError, _NOT_VALID),
        ("signed version", "ok:+1.0", InvalidVersionError, _NOT_VALID),
        ("version with a space", "ok: 1.0", InvalidVersionError, _NOT_VALID),
        ("version with an underscore", "ok:1_0.0", InvalidVersionError, "not a major_minor version"),
        ("version of 5000 characters", "ok:1." + "9" * 5000, InvalidVersionError, "the limit is"),
        ("parent version", "ok:..", InvalidVersionError, ""),
        ("second colon", "ok:0.0:1", InvalidVersionError, _NOT_VALID),
        ("URL as a spec", "s3://bucket/key", InvalidVersionError, _NOT_VALID),
        ("sub-part climbing", "ok:0.0[../../../etc/passwd]", InvalidSubPartError, ""),
        ("sub-part absolute", "ok:0.0[/etc/passwd]", InvalidSubPartError, ""),
        ("sub-part with backslashes", "ok:0.0[a\\..\\..\\x]", InvalidSubPartError, ""),
        ("sub-part with NUL", "ok:0.0[a\x00]", InvalidSubPartError, "control character"),
        ("sub-part with a newline", "ok:0.0[a\nb]", InvalidSubPartError, "control character"),
        ("sub-part of 5000 characters", "ok:0.0[" + "a" * 5000 + "]", InvalidSubPartError, "the limit is"),
        ("sub-part nested parent", "ok:0.0[sub/../../..]", InvalidSubPartError, ""),
        ("sub-part fullwidth dots", "ok:0.0[\uff0e\uff0e/x]", SubPartNotFoundError, "has no"),
        ("sub-part is the cache marker", "ok:0.0[.SUCCESS]", SubPartNotFoundError, "has no"),
        ("unclosed sub-part", "ok:0.0[x", InvalidSpecError, ""),
        ("empty spec", "", InvalidNameError, "empty"),
    ]
}

METAS: dict[str, Case] = {
    f"meta: {label}": Case("meta", payload, InvalidMetaError, fragment)
    for label, payload, fragment in [
        ("not JSON", b"{not json", "not valid JSON"),
        ("truncated JSON", meta()[:-7], "not valid JSON"),
        ("nesting bomb", b"[" * 100_000, "not valid JSON"),
        ("binary", os.urandom(64) + b"\xff", "not valid JSON"),
        ("null", b"null", "not a JSON object"),
        ("number", b"42", "not a JSON object"),
        ("push_date is a number", meta(push_date=1), "push_date"),
        ("is_directory is null", meta(is_directory=None), "is_directory"),
        ("contents is a string", meta(contents=None).replace(b'["f"]', b'"f"'), "contents"),
        ("size is a string", meta(files={"f": {"size": "10"}}), "invalid size"),
        ("sha256 is a number", meta(files={"f": {"sha256": 5}}), "invalid sha256"),
        ("path climbing out of the version", meta(["a/../../b"]), "unsafe path"),
        ("path into the parent version", meta(["../0.1/f"]), "unsafe path"),
        ("absolute path", meta(["/root/.ssh/authorized_keys"]), "unsafe path"),
        ("backslash path", meta(["..\\..\\x"]), "unsafe path"),
        ("NUL in a path", meta(["f\x00.txt"]), "unsafe path"),
        ("control character in a path", meta(["f\x1b.txt"]), "unsafe path"),
        ("duplicate paths", meta(["f", "f"]), "collide"),
        ("case collision", meta(["Model.bin", "model.bin"]), "collide"),
        ("NFC/NFD collision", meta(["caf\u00e9", "cafe\u0301"]), "unsafe path"),
        ("kelvin sign vs K", meta(["\u212a.bin", "K.bin"]), "unsafe path"),
        ("a file inside a file", meta(["a", "a/b"]), "both as a file and as a folder"),
        ("the cache marker as a file", meta([".SUCCESS"]), "completion marker"),
    ]
}


# -- source folders ----------------------------------------------------------------------
def _link_inside(root: Path) -> None:
    (root / "link").symlink_to(root / "f.txt")


def _link_outside(root: Path) -> None:
    (root / "passwd").symlink_to("/etc/passwd")


def _link_folder(root: Path) -> None:
    (root / "up").symlink_to(root.parent, target_is_directory=True)


def _link_broken(root: Path) -> None:
    (root / "gone").symlink_to(root / "missing")


def _link_loop_self(root: Path) -> None:
    (root / "self").symlink_to(root, target_is_directory=True)


def _link_loop_pair(root: Path) -> None:
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")


def _fifo(root: Path) -> None:
    os.mkfifo(root / "pipe")


def _char_device(root: Path) -> None:
    try:  # root in a container may create /dev/null's twin; elsewhere a FIFO stands in
        os.mknod(root / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except (PermissionError, OSError):
        os.mkfifo(root / "null")


def _socket(root: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))


def _only_empty_folders(root: Path) -> None:
    (root / "f.txt").unlink()
    (root / "a" / "b").mkdir(parents=True)


def _newline_name(root: Path) -> None:
    (root / "evil\nname").write_text("x")


def _backslash_name(root: Path) -> None:
    (root / "..\\..\\x").write_text("x")


def _case_collision(root: Path) -> None:
    (root / "F.TXT").write_text("x")


def _marker_name(root: Path) -> None:
    (root / ".SUCCESS").write_text("forged marker")


Spoiler = Callable[[Path], None]
SOURCES: dict[str, Case] = {
    f"source: {label}": Case("source", spoil, InvalidSourceError, fragment)
    for label, spoil, fragment in [
        ("symlink to a file inside", _link_inside, "symbolic link"),
        ("symlink to a file outside", _link_outside, "symbolic link"),
        ("symlink to a folder", _link_folder, "symbolic link"),
        ("broken symlink", _link_broken, "symbolic link"),
        ("symlink loop to itself", _link_loop_self, "symbolic link"),
        ("symlink loop of two", _link_loop_pair, "symbolic link"),
        ("FIFO", _fifo, "not a regular file"),
        ("character device", _char_device, "not a regular file"),
        ("unix socket", _socket, "not a regular file"),
        ("only empty folders", _only_empty_folders, "holds no file"),
        ("newline in a file name", _newline_name, "control character"),
        ("backslashes in a file name", _backslash_name, "`\\`"),
        ("names colliding by case", _case_collision, "collide"),
        ("a file named like the cache marker", _marker_name, ".SUCCESS"),
    ]
}

CORPUS: dict[str, Case] = {**NAMES, **SPECS, **METAS, **SOURCES}
