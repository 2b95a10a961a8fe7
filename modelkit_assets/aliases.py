"""Aliases (``name@prod``): a movable name for a version, with its whole history.

An alias is a sequence of *moves*, each a small JSON object created exclusively::

    {name}/.aliases/{alias}/000000    {"version": "1.2", "previous": null, "at": ..., "by": ...}
    {name}/.aliases/{alias}/000001    {"version": "1.3", "previous": "1.2", ...}
    {name}/.aliases/{alias}/000002    {"version": null, "previous": "1.3", ...}   (removed)

The alias's value is its highest move. A move takes the number after the highest it
read; if a concurrent mover took that number first, the create fails and it tries the
next one, so every move that reports success is in the history, in the order the store
accepted them (never lost, never overwritten: the exclusive create proven on every
backend is the only primitive). With ``expect``, a move based on a stale read is refused
instead (``AliasConflictError``): it is written only as the successor of the value it
expected. modelkit 0.1.3 never looks under ``.aliases/``.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkit_assets.backends import basename
from modelkit_assets.claims import who_am_i
from modelkit_assets.errors import AliasConflictError, InvalidMetaError
from modelkit_assets.spec import check_alias

if TYPE_CHECKING:
    from modelkit_assets.remote import Remote

#: a move is retried at the next number this many times before giving up
MAX_MOVE_TRIES = 1000
MAX_MOVE_BYTES = 16 * 1024


@dataclass(frozen=True)
class AliasMove:
    """One move of an alias: the version it points to from then on (``None``: removed)."""

    seq: int
    alias: str
    version: str | None
    previous: str | None
    at: str | None
    by: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "alias": self.alias,
            "version": self.version,
            "previous": self.previous,
            "at": self.at,
            "by": self.by,
        }


class Aliases:
    """The aliases of one store."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    def _seqs(self, name: str, alias: str) -> list[int]:
        folder = self.remote.layout.aliases_dir(name, alias)
        entries = self.remote.list(folder, f"read {name}@{alias}")
        return sorted(int(basename(e["name"])) for e in entries if basename(e["name"]).isdigit())

    def _read(self, name: str, alias: str, seq: int) -> AliasMove:
        key = self.remote.layout.alias_move(name, alias, seq)
        raw = self.remote.read(key, f"read {name}@{alias}")
        try:
            if len(raw) > MAX_MOVE_BYTES:
                raise ValueError("oversized")
            data = json.loads(raw)
            version, previous = data.get("version"), data.get("previous")
            if not all(v is None or isinstance(v, str) for v in (version, previous)):
                raise ValueError("fields")
        except (ValueError, AttributeError) as err:
            raise InvalidMetaError(
                f"Move {seq} of {name}@{alias} in {self.remote.display_url} is malformed ({err}); "
                "remove it or move the alias again."
            ) from None
        at, by = data.get("at"), data.get("by")
        return AliasMove(
            seq,
            alias,
            version,
            previous,
            at if isinstance(at, str) else None,
            by if isinstance(by, str) else None,
        )

    def _raw(self, name: str, alias: str, seq: int) -> dict[str, Any]:
        try:
            data = json.loads(
                self.remote.read(self.remote.layout.alias_move(name, alias, seq), f"read {name}@{alias}")
            )
        except (ValueError, FileNotFoundError):
            return {}
        return data if isinstance(data, dict) else {}

    def current(self, name: str, alias: str) -> AliasMove | None:
        """The alias's last move (its ``version`` is ``None`` once removed), or ``None``
        if it was never set: one listing and one read."""
        check_alias(alias)
        seqs = self._seqs(name, alias)
        return self._read(name, alias, seqs[-1]) if seqs else None

    def history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of the alias, oldest first."""
        check_alias(alias)
        seqs = self._seqs(name, alias)
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(seqs)))) as pool:
            return list(pool.map(lambda s: self._read(name, alias, s), seqs))

    def names(self, name: str) -> list[str]:
        """The aliases ever set on ``name`` (one listing)."""
        entries = self.remote.list(self.remote.layout.aliases_dir(name), f"list the aliases of {name}")
        return sorted(basename(e["name"]) for e in entries if e["type"] == "directory")

    def values(self, name: str) -> dict[str, AliasMove]:
        """Each alias of ``name`` that is set, with its last move."""
        found = {}
        names = self.names(name)
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(names)))) as pool:
            for alias, move in zip(names, pool.map(lambda a: self.current(name, a), names), strict=True):
                if move is not None and move.version is not None:
                    found[alias] = move
        return found

    def move(
        self,
        name: str,
        alias: str,
        version: str | None,
        *,
        expect: str | None = None,
        check_expect: bool = False,
    ) -> AliasMove:
        """Point ``name@alias`` at ``version`` (``None`` removes it) and return the move.

        ``check_expect``: refuse unless the alias's value is ``expect`` (``None``: unset or
        removed) when the move is written.

        Raises
        ------
        AliasConflictError
            With ``check_expect``, when the alias's value is not ``expect``.
        """
        check_alias(alias)
        move_id = uuid.uuid4().hex
        seqs = self._seqs(name, alias)
        seq = seqs[-1] + 1 if seqs else 0
        previous = self._read(name, alias, seqs[-1]).version if seqs else None
        for _ in range(MAX_MOVE_TRIES):
            if check_expect and previous != expect:
                raise AliasConflictError(
                    f"{name}@{alias} points to {previous or 'nothing'}, not {expect or 'nothing'} as "
                    f"expected: it was moved meanwhile; nothing was changed. Read it again "
                    f"(`modelkit-assets alias list {name}`) and retry."
                )
            body = {
                "id": move_id,
                "alias": alias,
                "version": version,
                "previous": previous,
                "at": dt.datetime.now(dt.UTC).isoformat(),
                "by": who_am_i(),
            }
            key = self.remote.layout.alias_move(name, alias, seq)
            try:
                self.remote.create_exclusive(key, json.dumps(body).encode(), f"move {name}@{alias}")
                return AliasMove(seq, alias, version, previous, body["at"], body["by"])
            except FileExistsError:
                pass  # a concurrent move took this number (or our create whose answer was lost)
            raw = self._raw(name, alias, seq)
            if raw.get("id") == move_id:
                return AliasMove(seq, alias, version, previous, body["at"], body["by"])
            previous = self._read(name, alias, seq).version
            seq += 1
        raise AliasConflictError(f"{name}@{alias} is being moved by too many writers at once; retry.")
