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
      remove what the dead writer uploaded into {name}/{version} -> owned

A committed version is never claimed again; a claim whose upload failed is withdrawn
(data first, then claim) so that a rerun takes the same version.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import os
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelkit_assets._version import __version__
from modelkit_assets.backend import basename, create_exclusive, list_dir
from modelkit_assets.errors import PublishConflictError, VersionExistsError

if TYPE_CHECKING:
    from modelkit_assets.store import AssetStore

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


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(store: AssetStore, name: str, key: str, writer: str) -> Claim | None:
    """Own ``key`` (a version, or ``NEW_KEY``) of ``name`` for ``writer``, or return ``None``.

    Attempt 0 is created exclusively; if it exists, the latest attempt is read and,
    when its writer is dead, the next attempt is created exclusively (a resume).
    """
    body = json.dumps(
        {
            "writer": writer,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "created": now().isoformat(),
            "tool_version": __version__,
        }
    ).encode()
    action = f"claim {name}:{key}"
    if _create(store, name, key, 0, body, writer):
        return Claim(key, key, 0, writer)
    folder = store.layout.claims_dir(name, key)
    claims = sorted(
        (
            int(basename(e["name"]))
            for e in store._request(action, lambda: list_dir(store.fs, folder))
            if e["type"] == "file" and basename(e["name"]).isdigit()
        ),
    )
    if not claims:
        return None
    attempt = claims[-1]
    if not is_stale(store, store.layout.claim(name, key, attempt)):
        return None
    if not _create(store, name, key, attempt + 1, body, writer):
        return None
    if key != NEW_KEY:
        if store._meta_exists(name, key):
            # the dead writer finished: its version is published and never touched (G1)
            return None
        # the dead writer may have left data behind: start from a clean prefix
        store._remove_quietly(store.layout.data(name, key))
    return Claim(key, key, attempt + 1, writer)


def _create(store: AssetStore, name: str, key: str, attempt: int, body: bytes, writer: str) -> bool:
    """Create claim ``attempt`` of ``key`` exclusively; ``False`` if another writer has it.

    A create that reached the server but whose answer was lost is retried and then
    refused as existing: the claim is still ours when its body names our writer id.
    """
    claim_key = store.layout.claim(name, key, attempt)
    action = f"claim {name}:{key}"
    try:
        store._request(action, lambda: create_exclusive(store.fs, claim_key, body))
        return True
    except FileExistsError:
        pass
    return _writer(store, claim_key) == writer


def _writer(store: AssetStore, claim_key: str) -> str | None:
    """The writer id in a claim object (``None`` if unreadable or gone)."""

    def read() -> bytes:
        store.fs.invalidate_cache(claim_key)
        return bytes(store.fs.cat_file(claim_key))

    try:
        info = json.loads(store._request("read a claim", read))
    except (FileNotFoundError, ValueError):
        return None
    writer = info.get("writer") if isinstance(info, dict) else None
    return writer if isinstance(writer, str) else None


def is_stale(store: AssetStore, claim_key: str) -> bool:
    """Whether the writer of a claim is gone: same host and its process dead, older than
    the store's claim TTL, or an unreadable claim (a missing one is not stale)."""
    try:
        info = json.loads(store._request("read a claim", lambda: store.fs.cat_file(claim_key)))
        created = dt.datetime.fromisoformat(info["created"])
    except FileNotFoundError:
        return False
    except (ValueError, KeyError, TypeError):
        return True  # an unreadable claim cannot belong to a live writer of ours
    same_host = info.get("host") == socket.gethostname()
    if same_host and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"]):
        return True
    return (now() - created).total_seconds() > store.claim_ttl_s


def claim_version(
    store: AssetStore, name: str, candidate: str, committed: list[str], writer: str, *, bump_major: bool
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
            claim = acquire(store, name, candidate, writer)
            # a modelkit writer commits without claiming: check the commit itself
            if claim is not None and not store._meta_exists(name, candidate):
                return claim
        taken.add(candidate)
        candidate = store.versioning.following(candidate, bump_major=bump_major)
    raise PublishConflictError(
        f"Could not claim a version of {name} in {store.display_url} after {MAX_CLAIM_TRIES} "
        "tries: too many concurrent writers; retry."
    )


def claim_pinned(store: AssetStore, name: str, version: str, committed: list[str], writer: str) -> Claim:
    """Claim exactly ``version``.

    Raises
    ------
    VersionExistsError
        If it is committed or another writer holds it.
    """
    claim = None if version in committed else acquire(store, name, version, writer)
    if claim is None or store._meta_exists(name, version):
        raise VersionExistsError(
            f"Version {version} of {name} already exists in {store.display_url}, or another "
            "writer is publishing it; nothing was overwritten. Pick another version."
        )
    return claim


def withdraw(store: AssetStore, name: str, claim: Claim, new_claim: Claim | None) -> None:
    """After a failed upload (never after a commit was attempted): remove the data,
    then the claim, so that nothing is left to skip and a rerun takes the same
    version. Best effort: if the store is still failing, the claim stays and the next
    publisher treats it as stale once this process has exited.
    """
    try:
        store._remove_quietly(store.layout.data(name, claim.version))
        for held in (claim, new_claim):
            if held is not None:
                key = store.layout.claim(name, held.key, held.attempt)
                action = f"release the claim of {name}:{claim.version}"
                store._request(action, functools.partial(store.fs.rm, key))
    except Exception as err:  # the upload's own error is the one to report
        logger.debug("Could not withdraw the claim of %s:%s (%s)", name, claim.version, type(err).__name__)
