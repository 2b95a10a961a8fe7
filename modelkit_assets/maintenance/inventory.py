"""What the local assets dir holds: every installed version, its size and its last use.

Last use is read, never written. The G6 hot path (a pinned cache hit) costs one or two
``stat`` calls and writes nothing, so it cannot record a use without doubling its cost
and without failing on a read-only assets dir. Instead ``last_used`` is the latest of

- the access time (``st_atime``) of the version's files: the kernel updates it when the
  files are actually read, which is the use that matters, at no cost to us. With the
  Linux default ``relatime`` it moves at most once a day (plenty to prune by age in
  days); on a ``noatime`` mount it never moves, and
- the install time (the marker's ``st_mtime``), the floor when atimes say nothing.

Maintenance reads (``verify``) open files with ``O_NOATIME`` where allowed so that
checking a version does not count as using it.

Besides versions, ``scan_leftovers`` finds what killed fetches (and prunes) left in
``.cache/staging``: partial downloads can weigh as much as the versions themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from modelkit_assets.layout import CACHE_DIR, SUCCESS_NAME, CacheLayout
from modelkit_assets.versioning import VersioningSystem


@dataclass(frozen=True)
class CachedVersion:
    """One installed version of the assets dir."""

    name: str
    version: str
    path: Path
    is_directory: bool
    size: int
    files: int
    installed: dt.datetime
    last_used: dt.datetime
    #: bytes of its files that other cached versions use too (one copy on disk: hard links
    #: to the same content, see blobs.py)
    shared: int = 0
    #: (device, inode, size) of each of its files: what removing it frees depends on
    #: which of these other versions still use (empty: all its bytes are its own)
    contents: tuple[tuple[int, int, int], ...] = field(default=(), repr=False, compare=False)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "path": str(self.path),
            "is_directory": self.is_directory,
            "size": self.size,
            "shared": self.shared,
            "files": self.files,
            "installed": self.installed.isoformat(),
            "last_used": self.last_used.isoformat(),
        }


def content_keys(version: CachedVersion) -> dict[Any, int]:
    """Each content a version's files take on disk, with its size (a version scanned
    without its contents counts as one content of its own size)."""
    if not version.contents:
        return {("version", version.name, version.version): version.size}
    return {(dev, ino): size for dev, ino, size in version.contents}


def disk_size(versions: Iterable[CachedVersion]) -> int:
    """Bytes ``versions`` take on disk together: each shared content counted once."""
    seen: dict[Any, int] = {}
    for version in versions:
        seen.update(content_keys(version))
    return sum(seen.values())


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC)


def _measure(path: Path, is_directory: bool) -> tuple[int, int, float, tuple[tuple[int, int, int], ...]]:
    """(bytes, files, latest atime, contents) of a version, without following symlinks."""
    if not is_directory:
        st = path.lstat()
        return st.st_size, 1, st.st_atime, ((st.st_dev, st.st_ino, st.st_size),)
    size = files = 0
    atime = 0.0  # folders' atimes move when anyone lists them (this scan too): files only
    contents = []
    for folder, _dirs, names in os.walk(path):
        for file_name in names:
            if folder == str(path) and file_name == SUCCESS_NAME:
                continue
            st = os.lstat(os.path.join(folder, file_name))
            size += st.st_size
            files += 1
            atime = max(atime, st.st_atime)
            contents.append((st.st_dev, st.st_ino, st.st_size))
    return size, files, atime, tuple(contents)


def _versions_in(folder: Path) -> Iterator[tuple[str, bool, Path]]:
    """(version, is_directory, marker) of every complete version directly in ``folder``."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return
    names = {e.name for e in entries}
    for entry in entries:
        if entry.name.startswith(".") and entry.name.endswith(SUCCESS_NAME) and entry.is_file():
            version = entry.name[1 : -len(SUCCESS_NAME)]
            if version in names and not os.path.isdir(folder / version):
                yield version, False, Path(entry.path)
        elif not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            marker = Path(entry.path) / SUCCESS_NAME
            if marker.is_file():
                yield entry.name, True, marker


def scan_cache(
    assets_dir: str | os.PathLike[str], versioning: VersioningSystem, *, name: str | None = None
) -> list[CachedVersion]:
    """Every complete version in ``assets_dir`` (only under ``name`` if given), sorted by
    name then latest version first. Versions another versioning system would name are
    listed too (sorted after, by text): the cache may be shared.
    """
    layout = CacheLayout(Path(assets_dir).expanduser())
    root = layout.assets_dir
    found: list[CachedVersion] = []
    stack = [layout.asset_dir(name)] if name else [root]
    while stack:
        folder = stack.pop()
        versions = list(_versions_in(folder))
        version_dirs = {v for v, is_dir, _ in versions if is_dir}
        rel = folder.relative_to(root).as_posix()
        for version, is_directory, marker in versions:
            path = folder / version
            try:
                size, files, atime, contents = _measure(path, is_directory)
                installed = marker.lstat().st_mtime
            except FileNotFoundError:  # pruned or replaced while we looked
                continue
            found.append(
                CachedVersion(
                    name=rel,
                    version=version,
                    path=path,
                    is_directory=is_directory,
                    size=size,
                    files=files,
                    installed=_utc(installed),
                    last_used=_utc(max(atime, installed)),
                    contents=contents,
                )
            )
        try:
            children = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in children:
            if (
                entry.is_dir(follow_symlinks=False)
                and not entry.name.startswith(".")
                and entry.name not in version_dirs
                and not (folder == root and entry.name == CACHE_DIR)
            ):
                stack.append(Path(entry.path))

    # a content is shared when more than one version uses it (hard links to one blob)
    users: dict[tuple[int, int], int] = {}
    for item in found:
        for dev, ino, _size in set(item.contents):
            users[(dev, ino)] = users.get((dev, ino), 0) + 1
    found = [
        replace(item, shared=sum(size for dev, ino, size in item.contents if users[(dev, ino)] > 1))
        for item in found
    ]

    def order(item: CachedVersion) -> tuple[str, int, Any]:
        valid = versioning.is_valid(item.version)
        return item.name, 0 if valid else 1, versioning.sort_key(item.version) if valid else item.version

    # latest first within a name: sort by name, then reverse each name's versions
    found.sort(key=order)
    by_name: dict[str, list[CachedVersion]] = {}
    for item in found:
        by_name.setdefault(item.name, []).append(item)
    result: list[CachedVersion] = []
    for versions_of_name in by_name.values():
        valid = [v for v in versions_of_name if versioning.is_valid(v.version)]
        other = [v for v in versions_of_name if not versioning.is_valid(v.version)]
        result.extend(reversed(valid))
        result.extend(other)
    return result


#: ``{name with / as __}@{version}-{uuid}``: a fetch's staging folder (cache.py)
_STAGING_RE = re.compile(r"(?P<key>[^@]+)@(?P<version>.+)-[0-9a-f]{32}")
#: ``pruned-{uuid}``: a version prune moved aside before deleting it (prune.py)
_TRASH_RE = re.compile(r"pruned-[0-9a-f]{32}")


@dataclass(frozen=True)
class Leftover:
    """A folder of ``.cache/staging`` that a fetch (``staging``: a download being verified)
    or a prune (``trash``: a version being deleted) has not removed yet: it was killed, or
    it is still running (``prune`` tells them apart by the asset's cache lock).
    """

    path: Path
    kind: str  # "staging" or "trash"
    key: str | None  # staging: the asset name with "/" written "__" (the folder's prefix)
    version: str | None
    size: int
    files: int
    modified: dt.datetime

    @property
    def label(self) -> str:
        if self.key is None:
            return f"{self.path.name} (a version being removed)"
        return f"{self.key.replace('__', '/')}:{self.version} (a download)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "kind": self.kind,
            "version": self.version,
            "size": self.size,
            "files": self.files,
            "modified": self.modified.isoformat(),
        }


def _tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under ``path`` (or of the file itself), without following symlinks."""
    if not path.is_dir():
        return path.lstat().st_size, 1
    size = files = 0
    for folder, _dirs, names in os.walk(path):
        for file_name in names:
            with contextlib.suppress(FileNotFoundError):
                size += os.lstat(os.path.join(folder, file_name)).st_size
                files += 1
    return size, files


def is_leftover_name(name: str) -> bool:
    """Whether an entry of ``.cache/staging`` is a staging or trash folder (pure)."""
    return bool(_STAGING_RE.fullmatch(name) or _TRASH_RE.fullmatch(name))


def scan_leftovers(assets_dir: str | os.PathLike[str]) -> list[Leftover]:
    """Every staging and trash folder in the assets dir, oldest first (live or not)."""
    root = CacheLayout(Path(assets_dir).expanduser()).staging_root()
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found: list[Leftover] = []
    for entry in entries:
        staging = _STAGING_RE.fullmatch(entry.name)
        if staging is None and not _TRASH_RE.fullmatch(entry.name):
            continue
        path = Path(entry.path)
        try:
            size, files = _tree_size(path)
            modified = path.lstat().st_mtime
        except FileNotFoundError:  # finished (or reclaimed) while we looked
            continue
        found.append(
            Leftover(
                path=path,
                kind="staging" if staging else "trash",
                key=staging["key"] if staging else None,
                version=staging["version"] if staging else None,
                size=size,
                files=files,
                modified=_utc(modified),
            )
        )
    return sorted(found, key=lambda leftover: leftover.modified)


@dataclass(frozen=True)
class CacheUsage:
    """Bytes on disk of an assets dir, each content counted once (blobs.py)."""

    disk: int  # what the versions, the unused contents and the partial reads take
    shared: int  # contents used by more than one version (stored once)
    unused: int  # contents of the store no version uses (``cache prune`` removes them)
    partial: int  # blocks kept by lazy reads (lazy.py)


def cache_usage(
    assets_dir: str | os.PathLike[str], versions: Iterable[CachedVersion], *, whole_cache: bool = True
) -> CacheUsage:
    """The disk usage of ``versions`` (and, with ``whole_cache``, of the store's unused
    contents and partial reads)."""
    from modelkit_assets.blobs import BlobStore

    users: dict[Any, int] = {}
    sizes: dict[Any, int] = {}
    for version in versions:
        for key, size in content_keys(version).items():
            users[key] = users.get(key, 0) + 1
            sizes[key] = size
    shared = sum(sizes[key] for key, count in users.items() if count > 1)
    unused = partial = 0
    if whole_cache:
        store = BlobStore(Path(assets_dir).expanduser())
        unused = sum(blob.size for blob in store.blobs() if blob.links == 0)
        partial = sum(size for _sha, _folder, size, _count in store.block_sets())
    return CacheUsage(sum(sizes.values()) + unused + partial, shared, unused, partial)
