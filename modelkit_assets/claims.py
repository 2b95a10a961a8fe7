"""The claim protocol: which writer owns a version while it is being published (G1-G3).

A claim is a small JSON object created exclusively (``create_exclusive``) under the
asset's hidden ``.claims`` folder; whoever creates it owns the version until it commits::

    {name}/.claims/{version}/000000     attempt 0: the first writer of {version}
    {name}/.claims/{version}/000001     attempt 1: a resume after attempt 0's writer died
    {name}/.claims/.new/000000          the creation of the asset (``new``), same rules

    acquire(version)
      create attempt 0 exclusively ----------------------------> owned
        | exists (or our own create whose answer was lost: the body names our writer -> owned)
        v
      read the latest attempt n: live writer --------------------> not owned (next version)
        | stale: same host and its pid gone, or older than the claim TTL, or unreadable
        v
      create attempt n+1 exclusively: taken by another resumer --> not owned
        v
      {version}.meta exists (the dead writer committed) ---------> not owned, never touched
        v
      remove what the dead writer uploaded into {name}/{version} -> owned (resumed)
      (or, with keep_data, leave it for the publisher to keep what it can prove intact)

Leases (how a dead writer on another host is told from a slow one, without trusting
clocks to agree between hosts): a claim names its lease (``lease_s``) and a heartbeat
counter (``beat``). Its writer rewrites it every quarter lease while it publishes
(``Lease``), and stops before committing, saying so (``ClaimLostError``), if it could not
renew within one lease or sees a later attempt (its claim taken over). A writer waiting
for a claim (``new``, a pinned version) watches the object on its *own* monotonic clock:
a change means alive; no change for ``STALE_LEASES`` leases means dead, and it takes the
claim over (attempt n+1). A writer killed on another host so blocks ``new`` for about
three leases (3 minutes by default), not the 6-hour TTL that still applies to claims
written without a lease. ``update`` never waits: it takes the next version.

``Claims`` runs this protocol over a ``Remote`` (remote.py): it needs nothing of
``AssetStore``, which owns one. A committed version is never claimed again; a claim
whose upload failed is withdrawn (data first, then claim) so that a rerun takes the
same version.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelkit_assets._version import __version__
from modelkit_assets.backends import basename
from modelkit_assets.errors import ClaimLostError, PublishConflictError, VersionExistsError
from modelkit_assets.layout import committed_versions

if TYPE_CHECKING:
    from modelkit_assets.remote import Remote
    from modelkit_assets.versioning import VersioningSystem

logger = logging.getLogger(__name__)
MAX_CLAIM_TRIES = 200
#: the claim key of an asset's creation (``new``): no version can be named so
NEW_KEY = ".new"
#: a claim unchanged for this many of its leases (on the waiter's clock) is dead
STALE_LEASES = 3
#: bounds on the lease a claim declares (a waiter trusts it within these)
MIN_LEASE_S, MAX_LEASE_S = 0.05, 3600.0


@dataclass(frozen=True)
class Claim:
    """Ownership of one version while it is being published."""

    key: str
    version: str
    attempt: int
    writer: str
    #: taken over from a dead writer whose uploads were left in place (``keep_data``)
    resumed: bool = False
    #: the claim object as written (its heartbeats rewrite it with ``beat`` + 1)
    body: dict[str, object] = field(default_factory=dict, compare=False, repr=False)
    #: the writer id of the dead claim this one took over
    taken_from: str | None = None


def who_am_i() -> str:
    """``user@host`` of this process, as recorded in metas, claims and alias moves."""
    try:
        user = getpass.getuser()
    except Exception:  # no user database in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Claims:
    """The claim protocol over one store.

    Parameters
    ----------
    remote
        The store's location.
    versioning
        Gives the version that follows a taken one.
    ttl_s
        Age after which another host's claim written without a lease is stale.
    lease_s
        This writer's lease: its claims are renewed every quarter of it.
    """

    def __init__(
        self, remote: Remote, versioning: VersioningSystem, ttl_s: float, lease_s: float = 60.0
    ) -> None:
        self.remote = remote
        self.versioning = versioning
        self.ttl_s = ttl_s
        self.lease_s = lease_s

    def is_committed(self, name: str, version: str) -> bool:
        """Whether ``{version}.meta`` exists (asked of the server)."""
        return self.remote.exists(self.remote.layout.meta(name, version), f"check {name}:{version}")

    def acquire(
        self,
        name: str,
        key: str,
        writer: str,
        *,
        now: dt.datetime | None = None,
        keep_data: bool = False,
        wait: bool = False,
        dead: frozenset[str] = frozenset(),
    ) -> Claim | None:
        """Own ``key`` (a version, or ``NEW_KEY``) of ``name`` for ``writer``, or return ``None``.

        Attempt 0 is created exclusively; if it exists, the latest attempt is read and,
        when its writer is dead, the next attempt is created exclusively (a resume). The
        dead writer's uploads are removed, unless ``keep_data``: the claim is then
        ``resumed`` and the caller must keep only what it proves intact. ``wait``: a
        claim with a lease is watched until it changes (alive: ``None``) or stays the
        same for ``STALE_LEASES`` leases (dead: taken over). ``dead``: writer ids already
        found dead (by watching another of their claims), taken over at once.
        """
        fields: dict[str, object] = {
            "writer": writer,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "created": (now or utc_now()).isoformat(),
            "tool_version": __version__,
            "lease_s": self.lease_s,
            "beat": 0,
        }
        body = json.dumps(fields).encode()
        if self._create(name, key, 0, body, writer):
            return Claim(key, key, 0, writer, body=fields)
        layout = self.remote.layout
        folder = layout.claims_dir(name, key)
        claims = sorted(
            int(basename(e["name"]))
            for e in self.remote.list(folder, f"claim {name}:{key}")
            if e["type"] == "file" and basename(e["name"]).isdigit()
        )
        if not claims:
            return None
        attempt = claims[-1]
        latest = layout.claim(name, key, attempt)
        previous_writer = self.writer(latest)
        if (
            previous_writer not in dead
            and not self.is_stale(latest, now=now)
            and not (wait and self._watch(name, key, latest))
        ):
            return None
        if not self._create(name, key, attempt + 1, body, writer):
            return None
        if key != NEW_KEY:
            if self.is_committed(name, key):
                # the dead writer finished: its version is published and never touched (G1)
                return None
            # a dead writer's signature names a manifest that will not be committed
            self.remote.remove(layout.signatures_dir(name, key), f"clean {name}:{key}")
            if keep_data:
                return Claim(
                    key, key, attempt + 1, writer, resumed=True, body=fields, taken_from=previous_writer
                )
            # the dead writer may have left data behind: start from a clean prefix
            self.remote.remove(layout.data(name, key), f"clean {name}:{key}")
        return Claim(key, key, attempt + 1, writer, body=fields, taken_from=previous_writer)

    def _watch(self, name: str, key: str, claim_key: str) -> bool:
        """Whether a claim with a lease is dead: unchanged for ``STALE_LEASES`` of its
        leases, timed on this process's monotonic clock (never the claim's dates)."""
        try:
            first = self.remote.read(claim_key, f"watch the claim of {name}:{key}")
            info = json.loads(first)
            lease = float(info["lease_s"])
        except FileNotFoundError:
            return False
        except (ValueError, KeyError, TypeError):
            return False  # no lease (an older writer): the TTL decides, in is_stale
        lease = min(max(lease, MIN_LEASE_S), MAX_LEASE_S)
        deadline = time.monotonic() + STALE_LEASES * lease
        logger.warning(
            "%s:%s is being published by %s; waiting up to %.0f s to see whether that writer is alive.",
            name,
            key if key != NEW_KEY else "(new)",
            info.get("host", "another writer"),
            STALE_LEASES * lease,
        )
        while time.monotonic() < deadline:
            time.sleep(min(lease / 4, 1.0, max(0.0, deadline - time.monotonic())))
            try:
                now = self.remote.read(claim_key, f"watch the claim of {name}:{key}")
            except FileNotFoundError:
                return False  # withdrawn: its writer gave up (the caller tries again)
            if now != first:
                return False  # renewed: alive
            if self._finished(name, key):
                return False  # its writer committed: nothing to take over
        return True

    def _finished(self, name: str, key: str) -> bool:
        """Whether the claimed work was committed: the version's ``.meta``, or for
        ``NEW_KEY`` any version of the asset."""
        if key != NEW_KEY:
            return self.is_committed(name, key)
        entries = self.remote.list(self.remote.layout.asset_dir(name), f"list {name}")
        return bool(committed_versions(entries))

    def hold(self, name: str, claim: Claim) -> Lease:
        """Start renewing ``claim`` (see ``Lease``)."""
        lease = Lease(self, name, claim)
        lease.start()
        return lease

    def _create(self, name: str, key: str, attempt: int, body: bytes, writer: str) -> bool:
        """Create claim ``attempt`` of ``key`` exclusively; ``False`` if another writer has it.

        A create that reached the server but whose answer was lost is retried and then
        refused as existing: the claim is still ours when its body names our writer id.
        """
        claim_key = self.remote.layout.claim(name, key, attempt)
        try:
            self.remote.create_exclusive(claim_key, body, f"claim {name}:{key}")
            return True
        except FileExistsError:
            pass
        return self.writer(claim_key) == writer

    def _read(self, claim_key: str) -> object:
        return json.loads(self.remote.read(claim_key, "read a claim"))

    def writer(self, claim_key: str) -> str | None:
        """The writer id in a claim object (``None`` if unreadable or gone)."""
        try:
            info = self._read(claim_key)
        except (FileNotFoundError, ValueError):
            return None
        writer = info.get("writer") if isinstance(info, dict) else None
        return writer if isinstance(writer, str) else None

    def is_stale(self, claim_key: str, *, now: dt.datetime | None = None, by_age: bool = False) -> bool:
        """Whether the writer of a claim is gone: same host and its process dead, older
        than the claim TTL, or an unreadable claim (a missing one is not stale). A claim
        with a lease is judged by watching it (``acquire(wait=True)``), not by its date,
        unless ``by_age`` (``repair``: older than the TTL, far beyond any lease)."""
        try:
            info = self._read(claim_key)
            if not isinstance(info, dict):
                return True
            created = dt.datetime.fromisoformat(info["created"])
        except FileNotFoundError:
            return False
        except (ValueError, KeyError, TypeError):
            return True  # an unreadable claim cannot belong to a live writer of ours
        same_host = info.get("host") == socket.gethostname()
        if same_host and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"]):
            return True
        if "lease_s" in info and not by_age:
            return False  # a lease: only watching it tells (``_watch``), never its dates
        try:
            age = ((now or utc_now()) - created).total_seconds()
        except TypeError:  # a naive date: not written by us
            return True
        return age > self.ttl_s

    def claim_version(
        self,
        name: str,
        candidate: str,
        committed: list[str],
        writer: str,
        *,
        bump_major: bool,
        keep_data: bool = False,
        wait: bool = False,
        dead: frozenset[str] = frozenset(),
    ) -> Claim:
        """Claim ``candidate``, or the first following version no other writer holds
        (``wait``, ``dead``: see ``acquire``).

        Raises
        ------
        PublishConflictError
            After ``MAX_CLAIM_TRIES`` versions taken by concurrent writers.
        """
        taken = set(committed)
        for _ in range(MAX_CLAIM_TRIES):
            if candidate not in taken:
                claim = self.acquire(name, candidate, writer, keep_data=keep_data, wait=wait, dead=dead)
                # a modelkit writer commits without claiming: check the commit itself
                if claim is not None and not self.is_committed(name, candidate):
                    return claim
            taken.add(candidate)
            candidate = self.versioning.following(candidate, bump_major=bump_major)
        raise PublishConflictError(
            f"Could not claim a version of {name} in {self.remote.display_url} after "
            f"{MAX_CLAIM_TRIES} tries: too many concurrent writers; retry."
        )

    def claim_pinned(
        self,
        name: str,
        version: str,
        committed: list[str],
        writer: str,
        *,
        keep_data: bool = False,
        wait: bool = False,
        dead: frozenset[str] = frozenset(),
    ) -> Claim:
        """Claim exactly ``version``.

        Raises
        ------
        VersionExistsError
            If it is committed or another writer holds it.
        """
        claim = (
            None
            if version in committed
            else self.acquire(name, version, writer, keep_data=keep_data, wait=wait, dead=dead)
        )
        if claim is None or self.is_committed(name, version):
            raise VersionExistsError(
                f"Version {version} of {name} already exists in {self.remote.display_url}, or another "
                "writer is publishing it; nothing was overwritten. Pick another version."
            )
        return claim

    def withdraw(
        self, name: str, claim: Claim, new_claim: Claim | None = None, leases: Sequence[Lease] = ()
    ) -> None:
        """After a failed upload (never after a commit was attempted): remove the data,
        then the claim, so that nothing is left to skip and a rerun takes the same
        version. Best effort: if the store is still failing, the claim stays and the next
        publisher treats it as stale once this process has exited. A claim taken over
        or not renewed in time (a lost lease) may be another writer's now: nothing is
        touched (the new owner cleans the version; ``repair`` finds what is left).
        """
        if any(lease.lost for lease in leases):
            return
        layout = self.remote.layout
        try:
            self.remote.remove(layout.data(name, claim.version), f"clean {name}:{claim.version}")
            for held in (claim, new_claim):
                if held is not None:
                    key = layout.claim(name, held.key, held.attempt)
                    self.remote.remove(key, f"release the claim of {name}:{claim.version}")
        except Exception as err:  # the upload's own error is the one to report
            logger.debug(
                "Could not withdraw the claim of %s:%s (%s)", name, claim.version, type(err).__name__
            )


class Lease:
    """Keeps a claim alive while its writer publishes: a thread rewrites the claim object
    (``beat`` + 1) every quarter lease and looks for a later attempt (a takeover).

    ``check()`` raises ``ClaimLostError`` when the claim was taken over, or when no
    renewal succeeded within one lease: a waiter may then take it over, so the writer
    must stop before committing.
    """

    def __init__(self, claims: Claims, name: str, claim: Claim) -> None:
        self.claims = claims
        self.name = name
        self.claim = claim
        self.lease_s = claims.lease_s
        self.renewed = time.monotonic()
        self.renewals = 0
        self.taken_over = False
        #: set once ``check`` refused: the claim may be another writer's
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease {name}:{claim.key}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _later_attempt(self) -> bool:
        """Whether the claim is no longer this writer's: a later attempt exists, or its own
        is gone (removed by ``repair`` or a new owner: never created again by a renewal)."""
        remote, claim = self.claims.remote, self.claim
        folder = remote.layout.claims_dir(self.name, claim.key)
        entries = remote.list(folder, f"renew the claim of {self.name}:{claim.key}")
        attempts = {int(basename(e["name"])) for e in entries if basename(e["name"]).isdigit()}
        return claim.attempt not in attempts or any(a > claim.attempt for a in attempts)

    def _run(self) -> None:
        remote, claim = self.claims.remote, self.claim
        key = remote.layout.claim(self.name, claim.key, claim.attempt)
        body = dict(claim.body)
        while not self._stop.wait(self.lease_s / 4):
            try:
                if self._later_attempt():
                    self.taken_over = True
                    return
                body["beat"] = int(body.get("beat", 0) or 0) + 1  # type: ignore[call-overload]
                remote.replace(key, json.dumps(body).encode(), f"renew the claim of {self.name}:{claim.key}")
            except Exception as err:  # a failed renewal: check() stops the writer after a lease
                logger.debug(
                    "Could not renew the claim of %s:%s (%s)", self.name, claim.key, type(err).__name__
                )
                continue
            self.renewed = time.monotonic()
            self.renewals += 1

    def check(self) -> None:
        """Raise ``ClaimLostError`` if the claim may no longer be this writer's.

        Once the lease was renewed at least once (a long publish), the store is also
        asked whether a later attempt exists (one listing).
        """
        what = f"{self.name}:{self.claim.key}" if self.claim.key != NEW_KEY else f"{self.name} (new)"
        if not self.taken_over and self.renewals and self._later_attempt():
            self.taken_over = True
        if self.taken_over:
            self.lost = True
            raise ClaimLostError(
                f"The claim on {what} was taken over by another writer (this one was presumed dead); "
                "nothing was committed. Rerun the command."
            )
        silent = time.monotonic() - self.renewed
        if silent > self.lease_s:
            self.lost = True
            raise ClaimLostError(
                f"The claim on {what} could not be renewed for {silent:.0f} s (lease {self.lease_s:g} s): "
                "another writer may have taken it over; nothing was committed. Rerun the command."
            )
