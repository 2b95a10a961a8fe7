"""Retiring versions (``retire``) and keeping only the recent ones (``gc``).

A retired version disappears from ``versions``, ``list``, ``.versions`` and ``fetch``,
and its number is never given again (someone's lockfile may pin it). The steps, each
safe to stop after (rerunning ``retire`` finishes the job)::

    1. no alias points to it               (else refused: move the alias first)
    2. tombstone                           exclusive create of {name}/.retired-{version}/tombstone:
                                           our listings hide it from here on, and no publish
                                           takes its number again
    3. no alias points to it (again)       an alias moved to it meanwhile: tombstone removed,
                                           refused (``set_alias`` checks the other way round)
    4. {name}.versions rewritten           modelkit stops listing it
    5. {version}.meta removed              nobody can resolve or fetch it any more
    6. its data and signatures removed

A fetch that read the ``.meta`` before step 5 either downloads the whole verified
version or finds objects missing and fails with ``IntegrityError``, installing nothing
(G4). ``gc`` retires, per asset, every version but the ``keep_last`` latest (and, with
``older_than``, only those published before that age), never an aliased one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelkit_assets.claims import who_am_i
from modelkit_assets.errors import AliasConflictError, InvalidSpecError, VersionNotFoundError
from modelkit_assets.spec import AssetSpec

if TYPE_CHECKING:
    from modelkit_assets.store import AssetStore


@dataclass(frozen=True)
class RetireDecision:
    """What ``retire``/``gc`` does (or would do) with one version."""

    name: str
    version: str
    action: str  # "retire", "keep", "already retired"
    reason: str = ""
    pushed: dt.datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "action": self.action,
            "reason": self.reason,
            "push_date": self.pushed.isoformat() if self.pushed else None,
        }


@dataclass
class RetirePlan:
    """Every decision, in order; ``to_retire`` is what will be retired."""

    decisions: list[RetireDecision] = field(default_factory=list)

    @property
    def to_retire(self) -> list[RetireDecision]:
        return [d for d in self.decisions if d.action == "retire"]

    def to_dict(self) -> dict[str, Any]:
        return {"decisions": [d.to_dict() for d in self.decisions]}


def _aliases_to(store: AssetStore, name: str, version: str) -> list[str]:
    return sorted(alias for alias, move in store.aliases.values(name).items() if move.version == version)


def plan_retire(store: AssetStore, specs: Iterable[str]) -> RetirePlan:
    """Check ``NAME:VERSION`` specs (complete versions only) without writing anything.

    Raises
    ------
    InvalidSpecError
        For a partial version, an alias or a sub-part: retiring names exact versions.
    VersionNotFoundError
        For a version that was never published.
    AliasConflictError
        For a version an alias points to.
    """
    plan = RetirePlan()
    for text in specs:
        spec = AssetSpec.parse(text)
        if (
            spec.version is None
            or spec.alias
            or spec.sub_part
            or not store.versioning.is_complete(spec.version)
        ):
            raise InvalidSpecError(
                f"`retire` takes exact versions, NAME:VERSION such as {spec.name}:1.2, not {text!r}."
            )
        store.versioning.check(spec.version)
        if spec.version in store.retired(spec.name):
            index = store.read_index(spec.name) or []
            unfinished = spec.version in index or store.is_committed(spec.name, spec.version)
            if unfinished:  # interrupted after its tombstone: finish it
                plan.decisions.append(RetireDecision(spec.name, spec.version, "retire", "finishing"))
            else:
                plan.decisions.append(RetireDecision(spec.name, spec.version, "already retired"))
            continue
        if spec.version not in store.versions(spec.name):
            raise VersionNotFoundError(
                f"{spec.name}:{spec.version} does not exist in {store.display_url}; see "
                f"`modelkit-assets versions {spec.name}`."
            )
        aliases = _aliases_to(store, spec.name, spec.version)
        if aliases:
            raise _aliased(store, spec.name, spec.version, aliases)
        meta = store.meta(spec.name, spec.version)
        plan.decisions.append(RetireDecision(spec.name, spec.version, "retire", pushed=meta.push_date))
    return plan


def plan_gc(
    store: AssetStore,
    names: Sequence[str],
    *,
    keep_last: int,
    older_than: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> RetirePlan:
    """Per asset: keep the ``keep_last`` latest versions and every aliased one; with
    ``older_than``, also every version published more recently than that."""
    if keep_last < 0:
        raise InvalidSpecError("--keep-last is a number of versions to keep, 0 or more.")
    now = now or dt.datetime.now(dt.UTC)
    plan = RetirePlan()
    for name in names:
        versions = store.versions(name)
        aliased: dict[str, list[str]] = {}
        for alias, move in store.aliases.values(name).items():
            if move.version is not None:
                aliased.setdefault(move.version, []).append(alias)
        for index, version in enumerate(versions):
            if index < keep_last:
                plan.decisions.append(RetireDecision(name, version, "keep", f"among the {keep_last} latest"))
                continue
            if version in aliased:
                names_ = ", ".join(f"{name}@{a}" for a in sorted(aliased[version]))
                plan.decisions.append(RetireDecision(name, version, "keep", f"aliased ({names_})"))
                continue
            pushed = store.meta(name, version).push_date if older_than is not None else None
            if older_than is not None and pushed is not None and now - pushed < older_than:
                plan.decisions.append(RetireDecision(name, version, "keep", "more recent", pushed))
                continue
            plan.decisions.append(RetireDecision(name, version, "retire", pushed=pushed))
    return plan


def _aliased(store: AssetStore, name: str, version: str, aliases: list[str]) -> AliasConflictError:
    pointing = ", ".join(f"{name}@{a}" for a in aliases)
    return AliasConflictError(
        f"{name}:{version} is aliased ({pointing}): an aliased version is never retired; move the "
        f"alias first (`modelkit-assets alias set {name}@{aliases[0]} VERSION`)."
    )


def retire_version(store: AssetStore, name: str, version: str) -> bool:
    """Retire one committed version (see the module docstring); ``False`` when it was
    already retired (the remaining steps are then finished).

    Raises
    ------
    AliasConflictError
        If an alias points to it (before or while it is retired).
    """
    layout, remote = store.layout, store.remote
    where = f"retire {name}:{version}"
    aliases = _aliases_to(store, name, version)
    if aliases:
        raise _aliased(store, name, version, aliases)
    body = json.dumps(
        {"version": version, "retired_at": dt.datetime.now(dt.UTC).isoformat(), "by": who_am_i()}
    ).encode()
    created = True
    try:
        remote.create_exclusive(layout.tombstone(name, version), body, where)
    except FileExistsError:
        created = False
    aliases = _aliases_to(store, name, version)
    if aliases:  # an alias moved to it while the tombstone was written
        if created:
            remote.remove(layout.tombstone(name, version).rsplit("/", 1)[0], where)
        raise _aliased(store, name, version, aliases)
    store.refresh_index(name)
    remote.remove(layout.meta(name, version), where)
    remote.remove(layout.data(name, version), where)
    store.signatures.remove(name, version)
    return created


def retire(store: AssetStore, plan: RetirePlan) -> list[RetireDecision]:
    """Carry out ``plan``; return the decisions carried out."""
    done = []
    for decision in plan.to_retire:
        retire_version(store, decision.name, decision.version)
        done.append(decision)
    return done
