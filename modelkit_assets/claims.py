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
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelkit_assets._version import __version__
from modelkit_assets.backends import basename
from modelkit_assets.errors import PublishConflictError, VersionExistsError

if TYPE_CHECKING:
    from modelkit_assets.remote import Remote
    from modelkit_assets.versioning import VersioningSystem

logger = logging.getLogger(__name__)
MAX_CLAIM_TRIES = 200
#: the claim key of an asset's creation (``new``): no version can be named so
NEW_KEY = ".new"


@dataclass(frozen=True)
class Claim:
    """Ownership of one version while it is being published."""

    key: str
    version: str
    attempt: int
    writer: str
    #: taken over from a dead writer whose uploads were left in place (``keep_data``)
    resumed: bool = False


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
        Age after which another host's claim is stale.
    """

    def __init__(self, remote: Remote, versioning: VersioningSystem, ttl_s: float) -> None:
        self.remote = remote
        self.versioning = versioning
        self.ttl_s = ttl_s

    def is_committed(self, name: str, version: str) -> bool:
        """Whether ``{version}.meta`` exists (asked of the server)."""
        return self.remote.exists(self.remote.layout.meta(name, version), f"check {name}:{version}")

    def acquire(
        self, name: str, key: str, writer: str, *, now: dt.datetime | None = None, keep_data: bool = False
    ) -> Claim | None:
        """Own ``key`` (a version, or ``NEW_KEY``) of ``name`` for ``writer``, or return ``None``.

        Attempt 0 is created exclusively; if it exists, the latest attempt is read and,
        when its writer is dead, the next attempt is created exclusively (a resume). The
        dead writer's uploads are removed, unless ``keep_data``: the claim is then
        ``resumed`` and the caller must keep only what it proves intact.
        """
        body = json.dumps(
            {
                "writer": writer,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "created": (now or utc_now()).isoformat(),
                "tool_version": __version__,
            }
        ).encode()
        if self._create(name, key, 0, body, writer):
            return Claim(key, key, 0, writer)
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
        if not self.is_stale(layout.claim(name, key, attempt), now=now):
            return None
        if not self._create(name, key, attempt + 1, body, writer):
            return None
        if key != NEW_KEY:
            if self.is_committed(name, key):
                # the dead writer finished: its version is published and never touched (G1)
                return None
            if keep_data:
                return Claim(key, key, attempt + 1, writer, resumed=True)
            # the dead writer may have left data behind: start from a clean prefix
            self.remote.remove(layout.data(name, key), f"clean {name}:{key}")
        return Claim(key, key, attempt + 1, writer)

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

    def is_stale(self, claim_key: str, *, now: dt.datetime | None = None) -> bool:
        """Whether the writer of a claim is gone: same host and its process dead, older
        than the claim TTL, or an unreadable claim (a missing one is not stale)."""
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
    ) -> Claim:
        """Claim ``candidate``, or the first following version no other writer holds.

        Raises
        ------
        PublishConflictError
            After ``MAX_CLAIM_TRIES`` versions taken by concurrent writers.
        """
        taken = set(committed)
        for _ in range(MAX_CLAIM_TRIES):
            if candidate not in taken:
                claim = self.acquire(name, candidate, writer, keep_data=keep_data)
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
        self, name: str, version: str, committed: list[str], writer: str, *, keep_data: bool = False
    ) -> Claim:
        """Claim exactly ``version``.

        Raises
        ------
        VersionExistsError
            If it is committed or another writer holds it.
        """
        claim = None if version in committed else self.acquire(name, version, writer, keep_data=keep_data)
        if claim is None or self.is_committed(name, version):
            raise VersionExistsError(
                f"Version {version} of {name} already exists in {self.remote.display_url}, or another "
                "writer is publishing it; nothing was overwritten. Pick another version."
            )
        return claim

    def withdraw(self, name: str, claim: Claim, new_claim: Claim | None = None) -> None:
        """After a failed upload (never after a commit was attempted): remove the data,
        then the claim, so that nothing is left to skip and a rerun takes the same
        version. Best effort: if the store is still failing, the claim stays and the next
        publisher treats it as stale once this process has exited.
        """
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
