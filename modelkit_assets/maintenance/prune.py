"""Removing cached versions: a pure plan, then a careful execution.

Rules (``PrunePolicy``), combined:

- ``keep_newest=N``: the N newest versions of each asset (by version order) are never
  removed; given alone, every other version is removed;
- ``older_than``: versions not used (see ``inventory``) for that long are removed;
- ``max_size``: then, least recently used first, versions are removed until the cache
  holds at most that many bytes.

Execution never removes a version in use by another process (``usage``): it takes the
asset's cache lock without waiting (a fetch in progress holds it), probes the leases and
``/proc``, and skips the version when any says busy. The marker goes first, so a
concurrent reader sees "not cached" (and downloads again under the lock) rather than a
half-deleted folder; then the data is renamed into the staging area and removed.

Every prune also reclaims the *leftovers* of ``.cache/staging`` (``inventory.Leftover``):
partial downloads of fetchers that were killed, and versions a killed prune had moved
aside. A download's folder is removed only while its asset's cache lock is free (the
fetcher that made it held that lock for the folder's whole life, and the kernel released
it when the fetcher died); a running fetch's folder is kept.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelkit_assets.cache import AssetCache
from modelkit_assets.layout import CACHE_DIR
from modelkit_assets.maintenance.inventory import (
    CachedVersion,
    Leftover,
    content_keys,
    disk_size,
    is_leftover_name,
    scan_cache,
    scan_leftovers,
)
from modelkit_assets.maintenance.usage import leased, open_by_others
from modelkit_assets.versioning import VersioningSystem


@dataclass(frozen=True)
class PrunePolicy:
    """What to remove; at least one rule must be given."""

    older_than: dt.timedelta | None = None
    max_size: int | None = None
    keep_newest: int | None = None

    def __post_init__(self) -> None:
        if self.older_than is None and self.max_size is None and self.keep_newest is None:
            raise ValueError("give at least one of older_than, max_size, keep_newest")
        if self.keep_newest is not None and self.keep_newest < 0:
            raise ValueError("keep_newest must be >= 0")
        if self.max_size is not None and self.max_size < 0:
            raise ValueError("max_size must be >= 0")


@dataclass
class PruneResult:
    """What a prune removed (or would remove, with ``dry_run``) and what it kept."""

    removed: list[CachedVersion] = field(default_factory=list)
    skipped: list[tuple[CachedVersion, str]] = field(default_factory=list)
    kept: list[CachedVersion] = field(default_factory=list)
    dry_run: bool = False
    leftovers_removed: list[Leftover] = field(default_factory=list)
    leftovers_kept: list[tuple[Leftover, str]] = field(default_factory=list)
    #: bytes on disk freed (or that would be): a content shared with a kept version stays;
    #: contents of the cache's store no version uses any more are removed with the last
    disk_freed: int = 0
    #: bytes on disk the kept versions take (each shared content once)
    disk_remaining: int = 0
    #: contents of the store removed because no cached version used them any more
    blobs_removed: int = 0

    @property
    def freed(self) -> int:
        """Bytes of the versions removed."""
        return sum(v.size for v in self.removed)

    @property
    def reclaimed(self) -> int:
        """Bytes of the staging leftovers removed."""
        return sum(leftover.size for leftover in self.leftovers_removed)

    @property
    def remaining(self) -> int:
        return sum(v.size for v in self.kept) + sum(v.size for v, _ in self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "removed": [v.to_dict() for v in self.removed],
            "skipped": [{**v.to_dict(), "reason": why} for v, why in self.skipped],
            "freed": self.freed,
            "remaining": self.remaining,
            "leftovers_removed": [leftover.to_dict() for leftover in self.leftovers_removed],
            "leftovers_kept": [
                {**leftover.to_dict(), "reason": why} for leftover, why in self.leftovers_kept
            ],
            "reclaimed": self.reclaimed,
            "disk_freed": self.disk_freed,
            "disk_remaining": self.disk_remaining,
            "blobs_removed": self.blobs_removed,
        }


def plan_prune(
    versions: Sequence[CachedVersion],
    policy: PrunePolicy,
    versioning: VersioningSystem,
    *,
    now: dt.datetime | None = None,
) -> list[CachedVersion]:
    """The versions ``policy`` removes, least recently used first (pure: no I/O)."""
    now = now or dt.datetime.now(dt.UTC)
    protected: set[tuple[str, str]] = set()
    if policy.keep_newest is not None:
        by_name: dict[str, list[str]] = {}
        for v in versions:
            by_name.setdefault(v.name, []).append(v.version)
        for name, names_versions in by_name.items():
            valid = versioning.sort(names_versions)
            others = sorted(x for x in names_versions if not versioning.is_valid(x))
            for version in (valid + others)[: policy.keep_newest]:
                protected.add((name, version))
    candidates = [v for v in versions if (v.name, v.version) not in protected]
    if policy.older_than is None and policy.max_size is None:
        chosen = list(candidates)
    else:
        chosen = []
        if policy.older_than is not None:
            cutoff = now - policy.older_than
            chosen = [v for v in candidates if v.last_used < cutoff]
        if policy.max_size is not None:
            # bytes on disk: a content shared by versions is freed with the last of them
            remaining = [v for v in versions if v not in chosen]
            for v in sorted(candidates, key=lambda c: c.last_used):
                if disk_size(remaining) <= policy.max_size:
                    break
                if v not in chosen:
                    chosen.append(v)
                    remaining.remove(v)
    return sorted(chosen, key=lambda c: c.last_used)


def _busy_reason(cache: AssetCache, version: CachedVersion, open_elsewhere: set[Path]) -> str | None:
    if leased(cache, version.name, version.version):
        return "leased by a running process"
    if version.path in open_elsewhere:
        return "open in another process"
    return None


def _remove(cache: AssetCache, version: CachedVersion) -> None:
    layout = cache.layout
    if version.is_directory:
        layout.dir_marker(version.name, version.version).unlink(missing_ok=True)
    else:
        layout.file_marker(version.name, version.version).unlink(missing_ok=True)
    trash_root = layout.staging_root()
    trash_root.mkdir(parents=True, exist_ok=True)
    trash = trash_root / f"pruned-{uuid.uuid4().hex}"
    os.replace(version.path, trash)
    if trash.is_dir():
        shutil.rmtree(trash, ignore_errors=True)
    else:
        trash.unlink(missing_ok=True)
    layout.manifest(version.name, version.version).unlink(missing_ok=True)
    cache.forget_signers(version.name, version.version)
    # the lease file stays: unlinking it could strand a holder that opened it just now


def _lock_names(cache: AssetCache) -> dict[str, list[str]]:
    """Asset names that have a cache lock file, by their staging prefix (``/`` as ``__``,
    which two names can share: ``a/b`` and ``a__b``)."""
    root = cache.assets_dir / CACHE_DIR
    staging = cache.layout.staging_root()
    names: dict[str, list[str]] = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == root:  # the content store's folders (.blobs...) hold no asset lock
            dirs[:] = [d for d in dirs if not d.startswith(".")]
        if Path(folder) == staging:
            dirs[:] = [d for d in dirs if not is_leftover_name(d)]
        rel = Path(folder).relative_to(root)
        for file_name in files:
            if file_name.endswith(".lock"):
                name = (rel / file_name[: -len(".lock")]).as_posix()
                names.setdefault(name.replace("/", "__"), []).append(name)
    return names


def _reclaim(
    cache: AssetCache, leftover: Leftover, names: dict[str, list[str]], *, dry_run: bool
) -> str | None:
    """Remove one leftover unless its fetch is running; the reason it was kept, or ``None``.

    The cache lock of every name the folder may belong to is taken without waiting and
    held while the folder is removed, so no fetch of that asset can start meanwhile.
    """
    with contextlib.ExitStack() as held:
        for name in names.get(leftover.key, []) if leftover.key is not None else []:
            try:
                free = held.enter_context(cache.lock_if_free(name))
            except OSError as err:  # a read-only assets dir: no way to tell, so keep it
                return f"the cache lock of {name} cannot be taken ({err.strerror or type(err).__name__})"
            if not free:
                return f"a fetch of {name} is running (cache lock held)"
        if not dry_run:
            # a trash folder may be under removal by a running prune: removing it too is harmless
            shutil.rmtree(leftover.path, ignore_errors=True)
            if leftover.path.exists() and not leftover.path.is_dir():
                leftover.path.unlink(missing_ok=True)
        return None


def reclaim_leftovers(
    assets_dir: str | os.PathLike[str], *, dry_run: bool = False
) -> tuple[list[Leftover], list[tuple[Leftover, str]]]:
    """Remove the staging leftovers whose fetch (or prune) is dead; keep a running fetch's.

    Returns (removed, kept with the reason); with ``dry_run`` nothing is removed.
    """
    cache = AssetCache(assets_dir)
    leftovers = scan_leftovers(cache.assets_dir)
    if not leftovers:
        return [], []
    names = _lock_names(cache)
    removed: list[Leftover] = []
    kept: list[tuple[Leftover, str]] = []
    for leftover in leftovers:
        reason = _reclaim(cache, leftover, names, dry_run=dry_run)
        if reason is None:
            removed.append(leftover)
        else:
            kept.append((leftover, reason))
    return removed, kept


def prune(
    assets_dir: str | os.PathLike[str],
    policy: PrunePolicy,
    versioning: VersioningSystem,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
) -> PruneResult:
    """Remove the versions ``policy`` selects, skipping those in use (see module doc).

    With ``dry_run`` nothing is removed, and versions in use are still reported as
    skipped, so the plan shown is the one that would run. Staging leftovers of dead
    fetches are reclaimed too (``reclaim_leftovers``).
    """
    cache = AssetCache(assets_dir)
    leftovers_removed, leftovers_kept = reclaim_leftovers(cache.assets_dir, dry_run=dry_run)
    versions = scan_cache(cache.assets_dir, versioning)
    chosen = plan_prune(versions, policy, versioning, now=now)
    chosen_keys = {(v.name, v.version) for v in chosen}
    result = PruneResult(
        kept=[v for v in versions if (v.name, v.version) not in chosen_keys],
        dry_run=dry_run,
        leftovers_removed=leftovers_removed,
        leftovers_kept=leftovers_kept,
    )
    open_elsewhere = open_by_others([v.path for v in chosen])
    for version in chosen:
        reason = _busy_reason(cache, version, open_elsewhere)
        if reason is not None:
            result.skipped.append((version, reason))
            continue
        if dry_run:
            result.removed.append(version)
            continue
        with cache.lock_if_free(version.name) as free:
            # re-checked under the lock: a lease may have been taken since the first probe
            reason = _busy_reason(cache, version, set()) if free else "being fetched (cache lock held)"
            if reason is not None:
                result.skipped.append((version, reason))
                continue
            _remove(cache, version)
            result.removed.append(version)
    kept = result.kept + [v for v, _ in result.skipped]
    result.disk_remaining = disk_size(kept)
    freed_by_versions = disk_size(kept + result.removed) - result.disk_remaining
    # then the store's contents no version links to any more (a dry run counts those the
    # removals would leave unused too: they are among freed_by_versions already)
    leaving = Counter((dev, ino) for v in result.removed for dev, ino, _ in v.contents) if dry_run else None
    blobs, blocks = cache.blobs.remove_unused(dry_run=dry_run, leaving=leaving)
    counted = {key for v in result.removed for key in content_keys(v)}
    result.blobs_removed = len(blobs)
    result.disk_freed = (
        freed_by_versions + sum(b.size for b in blobs if (b.device, b.inode) not in counted) + blocks
    )
    return result
