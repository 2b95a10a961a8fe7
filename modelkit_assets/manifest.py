"""What a version holds: the manifest written in its ``.meta`` and read back safely.

A ``.meta`` keeps modelkit 0.1.3's fields (``push_date``, ``is_directory``, ``contents``)
so that modelkit can fetch what we publish, and adds ours: ``files`` (size and sha256 per
file), ``size``, ``pushed_by``, ``tool_version``, ``description``, ``source`` and
``publish_id``. A modelkit-made ``.meta`` has no hashes: ``verifiable`` is then False.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelkit_assets.errors import InvalidMetaError, InvalidSubPartError
from modelkit_assets.layout import SUCCESS_NAME
from modelkit_assets.spec import check_relative_path


@dataclass(frozen=True)
class FileEntry:
    """One file of a version: its size and sha256 (``None`` when modelkit pushed it),
    and the sha256 of each ``block_size`` block (``None`` in older or modelkit-made
    manifests), which make parts of a file verifiable on their own."""

    size: int | None
    sha256: str | None
    blocks: tuple[str, ...] | None = None


@dataclass(frozen=True)
class AssetMeta:
    """The typed content of a version's ``.meta``.

    For a directory asset ``files`` maps each relative path (``/``-separated) to its
    entry; for a file asset it holds one entry, keyed by the source file's name.
    """

    name: str
    version: str
    push_date: dt.datetime
    is_directory: bool
    files: Mapping[str, FileEntry]
    size: int | None = None
    pushed_by: str | None = None
    tool_version: str | None = None
    description: str | None = None
    source: str | None = None
    publish_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: bytes per block of ``FileEntry.blocks`` (``None`` when no entry has blocks)
    block_size: int | None = None

    @property
    def file_entry(self) -> FileEntry:
        """The entry of a file asset (one object at the version's own key); size and hash
        unknown when the manifest lists none (modelkit-made)."""
        return next(iter(self.files.values()), FileEntry(None, None))

    @property
    def verifiable(self) -> bool:
        """Whether every file has a size and a sha256 to check downloads against.

        A file asset published by modelkit has no entry at all: not verifiable.
        """
        if not self.is_directory and not self.files:
            return False
        return all(e.sha256 is not None and e.size is not None for e in self.files.values())

    @property
    def contents(self) -> list[str]:
        """modelkit's ``contents``: sorted relative paths of a directory asset."""
        return sorted(self.files) if self.is_directory else []

    def digest(self) -> str:
        """sha256 of the manifest (paths, sizes and hashes): one value for lockfiles."""
        canonical = json.dumps(
            {p: [e.size, e.sha256] for p, e in sorted(self.files.items())}, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "push_date": self.push_date.isoformat(),
            "is_directory": self.is_directory,
        }
        if self.is_directory:
            data["contents"] = self.contents
        data["files"] = {p: _entry_dict(e) for p, e in sorted(self.files.items())}
        if self.block_size is not None and any(e.blocks is not None for e in self.files.values()):
            data["block_size"] = self.block_size
        data["size"] = self.size
        data["pushed_by"] = self.pushed_by
        data["tool_version"] = self.tool_version
        data["description"] = self.description
        data["source"] = self.source
        data["publish_id"] = self.publish_id
        return data

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False).encode()

    @classmethod
    def from_json(cls, raw: bytes, name: str, version: str) -> AssetMeta:
        """Parse and validate a ``.meta`` (ours or modelkit's).

        Raises
        ------
        InvalidMetaError
            If it is not JSON, has wrong types, or lists an unsafe, duplicate or
            case-colliding path.
        """
        where = f"The metadata of {name}:{version}"
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as err:  # nesting bombs too
            raise InvalidMetaError(
                f"{where} is not valid JSON; run `modelkit-assets repair {name}` or republish."
            ) from err
        if not isinstance(data, dict):
            raise InvalidMetaError(f"{where} is not a JSON object.")
        try:
            push_date = dt.datetime.fromisoformat(str(data["push_date"]))
        except (KeyError, ValueError) as err:
            raise InvalidMetaError(f"{where} has no valid `push_date`.") from err
        if push_date.tzinfo is None:
            push_date = push_date.replace(tzinfo=dt.UTC)
        is_directory = data.get("is_directory")
        if not isinstance(is_directory, bool):
            raise InvalidMetaError(f"{where} has no boolean `is_directory`.")
        block_size = data.get("block_size")
        if block_size is not None and (
            not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1
        ):
            raise InvalidMetaError(f"{where} has an invalid `block_size`.")
        files = _parse_files(data, is_directory, where, block_size)
        size = data.get("size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidMetaError(f"{where} has an invalid `size`.")
        strings = {}
        for key in ("pushed_by", "tool_version", "description", "source", "publish_id"):
            value = data.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidMetaError(f"{where} has a non-text `{key}`.")
            strings[key] = value
        known = {"push_date", "is_directory", "contents", "files", "size", "block_size", *strings}
        return cls(
            name=name,
            version=version,
            push_date=push_date,
            is_directory=is_directory,
            files=files,
            size=size,
            extra={k: v for k, v in data.items() if k not in known},
            block_size=block_size,
            **strings,
        )


def _entry_dict(entry: FileEntry) -> dict[str, Any]:
    data: dict[str, Any] = {"size": entry.size, "sha256": entry.sha256}
    if entry.blocks is not None:
        data["blocks"] = list(entry.blocks)
    return data


def _parse_files(
    data: dict[str, Any], is_directory: bool, where: str, block_size: int | None
) -> dict[str, FileEntry]:
    raw_files = data.get("files")
    if raw_files is not None and not isinstance(raw_files, dict):
        raise InvalidMetaError(f"{where} has a `files` that is not an object.")
    contents = data.get("contents")
    if is_directory:
        if not isinstance(contents, list) or not all(isinstance(p, str) for p in contents):
            raise InvalidMetaError(f"{where} is a directory without a list of `contents`.")
        if raw_files is not None and set(raw_files) != set(contents):
            raise InvalidMetaError(f"{where} lists different files in `contents` and `files`.")
        paths: list[str] = list(contents)
    else:
        paths = list(raw_files or {})
        if len(paths) > 1:
            raise InvalidMetaError(f"{where} is a file asset but lists several files.")
    check_paths(paths, where=where)
    files: dict[str, FileEntry] = {}
    for path in paths:
        entry = (raw_files or {}).get(path) or {}
        if not isinstance(entry, dict):
            raise InvalidMetaError(f"{where} has an invalid entry for {path!r}.")
        size, sha = entry.get("size"), entry.get("sha256")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise InvalidMetaError(f"{where} has an invalid size for {path!r}.")
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64 or not _is_hex(sha)):
            raise InvalidMetaError(f"{where} has an invalid sha256 for {path!r}.")
        blocks = _parse_blocks(entry, size, block_size, path, where)
        files[path] = FileEntry(size=size, sha256=sha, blocks=blocks)
    return files


def _parse_blocks(
    entry: dict[str, Any], size: int | None, block_size: int | None, path: str, where: str
) -> tuple[str, ...] | None:
    """An entry's block hashes: one per ``block_size`` bytes of its size, or ``None``."""
    blocks = entry.get("blocks")
    if blocks is None:
        return None
    if (
        not isinstance(blocks, list)
        or block_size is None
        or size is None
        or not all(isinstance(b, str) and len(b) == 64 and _is_hex(b) for b in blocks)
        or len(blocks) != -(-size // block_size)
    ):
        raise InvalidMetaError(f"{where} has invalid block hashes for {path!r}.")
    return tuple(blocks)


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def check_paths(paths: list[str], *, where: str) -> None:
    """Reject unsafe paths and paths that would collide on a case-insensitive disk.

    Raises
    ------
    InvalidMetaError
        Naming the first offending path.
    """
    seen: dict[str, str] = {}
    prefixes: set[str] = set()
    for path in paths:
        try:
            check_relative_path(path, what="path")
        except InvalidSubPartError as err:
            raise InvalidMetaError(f"{where} lists an unsafe path: {err}") from err
        if path == SUCCESS_NAME:
            # a folder version's completion marker in the cache: a file of that name would
            # stand for it (and be overwritten by it)
            raise InvalidMetaError(
                f"{where} lists {path!r}, the name of the cache's completion marker; rename it."
            )
        folded = unicodedata.normalize("NFC", path).casefold()
        if folded in seen:
            raise InvalidMetaError(
                f"{where} lists {path!r} and {seen[folded]!r}, which collide "
                "(duplicate, or same name in another case)."
            )
        seen[folded] = path
        parts = folded.split("/")
        prefixes.update("/".join(parts[:i]) for i in range(1, len(parts)))
    clash = prefixes & set(seen)
    if clash:
        raise InvalidMetaError(f"{where} lists {seen[clash.pop()]!r} both as a file and as a folder.")
