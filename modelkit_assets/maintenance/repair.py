"""Repairing a store: rebuild ``.versions`` indexes, find orphaned data and stale claims.

The truth of a store is its committed ``.meta`` objects (G2); everything else can be
derived or is residue::

    {name}.versions            rebuilt from the committed metas when it disagrees
    {name}/{version}[/...]     without {version}.meta: in progress, or orphaned when no
                               live claim covers it and it is older than the claim TTL
    {name}/.claims/{v}/{n}     of a committed version: leftover (harmless); of an
                               uncommitted one whose writer is dead: stale
    {name}/.signatures/{v}/    which committed versions are unsigned (reported where the
                               asset has signed versions, or signatures are required);
                               of an uncommitted version that is not in progress: orphaned

Nothing is deleted unless ``delete_orphans`` is set. Deleting goes through the
publisher's own protocol: repair first *claims* the version (which succeeds only when no
live writer holds it), so it can never remove data a running publisher is uploading.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelkit_assets.backends import basename
from modelkit_assets.claims import NEW_KEY
from modelkit_assets.layout import CLAIMS_DIR, META_SUFFIX, VERSIONS_SUFFIX, committed_versions

if TYPE_CHECKING:
    from modelkit_assets.store import AssetStore


@dataclass(frozen=True)
class Orphan:
    """Version data with no ``.meta``: a publish that died before its commit."""

    version: str
    objects: int
    size: int
    modified: dt.datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "objects": self.objects,
            "size": self.size,
            "modified": self.modified.isoformat() if self.modified else None,
        }


@dataclass(frozen=True)
class ClaimState:
    """The claims of one version (or of the asset's creation, ``.new``)."""

    version: str
    attempts: int
    state: str  # "leftover" (version committed), "stale" (writer dead), "live"

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "attempts": self.attempts, "state": self.state}


@dataclass
class AssetRepair:
    """What ``repair`` found (and did) for one asset."""

    name: str
    committed: list[str] = field(default_factory=list)
    index_before: list[str] | None = None
    index_rebuilt: bool = False
    orphans: list[Orphan] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)
    claims: list[ClaimState] = field(default_factory=list)
    deleted_orphans: list[str] = field(default_factory=list)
    deleted_claims: list[str] = field(default_factory=list)
    #: committed versions with at least one signature object, and those with none
    signed: list[str] = field(default_factory=list)
    unsigned: list[str] = field(default_factory=list)
    #: signatures of versions that were never committed (a publish that died before it)
    orphan_signatures: list[str] = field(default_factory=list)
    signatures_checked: bool = False

    @property
    def stale_claims(self) -> list[ClaimState]:
        return [c for c in self.claims if c.state == "stale"]

    @property
    def unsigned_to_report(self) -> list[str]:
        """Unsigned versions worth a line: where the asset signs, or signing is required."""
        return self.unsigned if self.signatures_checked else []

    @property
    def clean(self) -> bool:
        """Nothing to report: index right, no orphans, no stale claims, nothing unsigned
        among signed versions."""
        return (
            not self.index_rebuilt
            and not self.orphans
            and not self.stale_claims
            and not self.unsigned_to_report
            and not self.orphan_signatures
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "committed": self.committed,
            "index_before": self.index_before,
            "index_rebuilt": self.index_rebuilt,
            "orphans": [o.to_dict() for o in self.orphans],
            "in_progress": self.in_progress,
            "claims": [c.to_dict() for c in self.claims],
            "deleted_orphans": self.deleted_orphans,
            "deleted_claims": self.deleted_claims,
            "signed": self.signed,
            "unsigned": self.unsigned,
            "orphan_signatures": self.orphan_signatures,
        }


def _modified(info: dict[str, Any]) -> dt.datetime | None:
    """An object's modification time from a backend's ``info`` (each names it its way)."""
    for key in ("mtime", "LastModified", "last_modified", "updated", "created", "timeCreated"):
        value = info.get(key)
        if value is None:
            continue
        try:
            if isinstance(value, int | float):
                stamp = dt.datetime.fromtimestamp(float(value), dt.UTC)
            elif isinstance(value, dt.datetime):
                stamp = value
            else:
                stamp = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except (ValueError, OSError, OverflowError):
            continue
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)
    return None


def asset_names(store: AssetStore) -> list[str]:
    """Every asset of the store, committed or not: a folder holding ``.meta`` objects or
    a ``.claims`` folder (a ``new`` that never committed has only the latter)."""
    found = []
    for rel, entries in store.walk():
        has_claims = any(e["type"] == "directory" and basename(e["name"]) == CLAIMS_DIR for e in entries)
        if rel and (has_claims or committed_versions(entries)):
            found.append(rel)
    return sorted(found)


def repair_asset(
    store: AssetStore,
    name: str,
    *,
    delete_orphans: bool = False,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    require_signature: bool = False,
) -> AssetRepair:
    """Check one asset; rebuild its index if wrong; with ``delete_orphans`` remove orphaned
    data, signatures and stale or leftover claims (see the module docstring for the safety
    rules). With ``dry_run`` nothing is written: the report says what would be done.
    ``require_signature``: unsigned versions are reported even where none is signed."""
    now = now or dt.datetime.now(dt.UTC)
    report = AssetRepair(name)
    entries = store.remote.list(store.layout.asset_dir(name), f"list {name}")
    metas = set(committed_versions(entries))
    report.committed = store.versioning.sort(metas)
    report.index_before = store.read_index(name)
    if report.index_before is not None or report.committed:
        report.index_rebuilt = report.index_before != report.committed
        if report.index_rebuilt and not dry_run:
            store.refresh_index(name)

    claim_states = _claims(store, name, set(report.committed))
    report.claims = claim_states
    live = {c.version for c in claim_states if c.state == "live"}
    ttl = dt.timedelta(seconds=store.claim_ttl_s)
    for entry in entries:
        version = basename(entry["name"])
        if version.endswith((META_SUFFIX, VERSIONS_SUFFIX)) or version.startswith("."):
            continue
        if version in metas or not store.versioning.is_valid(version):
            continue
        objects = _objects(store, entry)
        modified = max((m for m in (_modified(o) for o in objects) if m), default=None)
        if version in live or (modified is not None and now - modified < ttl):
            report.in_progress.append(version)
            continue
        size = sum(int(o.get("size") or 0) for o in objects)
        report.orphans.append(Orphan(version, len(objects), size, modified))
    signed = store.signatures.signed_versions(name)
    report.signed = [v for v in report.committed if v in signed]
    report.unsigned = [v for v in report.committed if v not in signed]
    report.signatures_checked = require_signature or bool(report.signed)
    report.orphan_signatures = store.versioning.sort(
        v for v in signed if v not in metas and v not in report.in_progress and v not in live
    )
    if delete_orphans and not dry_run:
        _delete(store, name, report)
    return report


def _objects(store: AssetStore, entry: dict[str, Any]) -> list[dict[str, Any]]:
    if entry["type"] != "directory":
        return [entry]

    def find() -> list[dict[str, Any]]:
        store.fs.invalidate_cache(entry["name"])
        return list(store.fs.find(entry["name"], detail=True).values())

    return store.remote.request("list orphaned data", find)


def _claims(store: AssetStore, name: str, committed: set[str]) -> list[ClaimState]:
    layout, remote = store.layout, store.remote
    action = f"list the claims of {name}"
    states: list[ClaimState] = []
    for entry in remote.list(layout.claims_dir(name), action):
        version = basename(entry["name"])
        if entry["type"] != "directory":
            continue
        attempts = sorted(
            basename(e["name"])
            for e in remote.list(layout.claims_dir(name, version), action)
            if basename(e["name"]).isdigit()
        )
        if not attempts:
            continue
        if version in committed or (version == NEW_KEY and committed):
            state = "leftover"
        elif store.claims.is_stale(layout.claim(name, version, int(attempts[-1])), by_age=True):
            state = "stale"
        else:
            state = "live"
        states.append(ClaimState(version, len(attempts), state))
    return states


def _delete(store: AssetStore, name: str, report: AssetRepair) -> None:
    layout = store.layout
    writer = f"repair-{uuid.uuid4().hex}"
    doomed = {o.version for o in report.orphans} | set(report.orphan_signatures)
    doomed |= {c.version for c in report.claims if c.state in ("stale", "leftover") and c.version != NEW_KEY}
    orphans = {o.version for o in report.orphans}
    for version in sorted(doomed):
        committed = version in report.committed
        if not committed and store.claims.acquire(name, version, writer) is None:
            continue  # a live writer took it over since we looked
        action = f"delete orphaned data of {name}:{version}"
        if not committed:
            store.remote.remove(layout.data(name, version), action)
            store.signatures.remove(name, version)
        store.remote.remove(layout.claims_dir(name, version), action)
        if version in orphans or version in report.orphan_signatures:
            report.deleted_orphans.append(version)
        report.deleted_claims.append(version)
    new_claim = next((c for c in report.claims if c.version == NEW_KEY), None)
    if new_claim is not None and new_claim.state in ("stale", "leftover"):
        store.remote.remove(layout.claims_dir(name, NEW_KEY), f"delete the creation claim of {name}")
        report.deleted_claims.append(NEW_KEY)


def repair(
    store: AssetStore,
    names: Iterable[str] | None = None,
    *,
    delete_orphans: bool = False,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    require_signature: bool = False,
) -> list[AssetRepair]:
    """Repair ``names`` (every asset of the store when ``None``); ``now`` and
    ``require_signature`` as in ``repair_asset``."""
    from modelkit_assets.spec import check_name

    targets = asset_names(store) if names is None else [check_name(n) for n in names]
    return [
        repair_asset(
            store,
            n,
            delete_orphans=delete_orphans,
            dry_run=dry_run,
            now=now,
            require_signature=require_signature,
        )
        for n in targets
    ]
