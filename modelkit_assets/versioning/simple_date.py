"""``simple_date``: versions are UTC timestamps ``YYYY-MM-DDThh-mm-ssZ``."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable

from modelkit_assets.errors import InvalidVersionError
from modelkit_assets.versioning.base import VersioningSystem

_FORMAT = "%Y-%m-%dT%H-%M-%SZ"
_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z")


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SimpleDate(VersioningSystem):
    """Both ``new`` and ``update`` use the current UTC second; when that second is taken
    (two publishes in one second), the next free second is used.
    """

    name = "simple_date"

    def __init__(self, clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self._clock = clock

    def check(self, version: str) -> str:
        """Accept any version of the form, real date or not: modelkit 0.1.3 checks only
        the form, so a store it wrote may hold ``9999-99-99T99-99-99Z``; versions made
        here are always real UTC times."""
        if not _RE.fullmatch(version):
            raise InvalidVersionError(
                f"Version {version!r} is not a simple_date version: write "
                "`YYYY-MM-DDThh-mm-ssZ` (UTC), e.g. `2024-05-01T12-00-00Z`."
            )
        return version

    def _moment(self, version: str) -> dt.datetime:
        self.check(version)
        try:
            return dt.datetime.strptime(version, _FORMAT).replace(tzinfo=dt.UTC)
        except ValueError as err:
            raise InvalidVersionError(
                f"Version {version!r} is not a real date and time: no version can follow it."
            ) from err

    def sort_key(self, version: str) -> str:
        # the fixed-width format sorts as text exactly as it sorts as time
        return version

    def _free_now(self, taken: Iterable[str]) -> str:
        taken_set = set(taken)
        latest = max((v for v in taken_set if _RE.fullmatch(v)), default=None)
        moment = self._clock().replace(microsecond=0)
        if latest is not None:
            moment = max(moment, self._moment(latest) + dt.timedelta(seconds=1))
        candidate = moment.strftime(_FORMAT)
        while candidate in taken_set:
            candidate = self.following(candidate)
        return candidate

    def initial(self, taken: Iterable[str]) -> str:
        return self._free_now(taken)

    def next(self, versions: Iterable[str], *, major: str | None = None, bump_major: bool = False) -> str:
        if major is not None:
            raise InvalidVersionError(
                "simple_date versions have no major: run `update NAME` without `:VERSION`."
            )
        return self._free_now(versions)

    def following(self, version: str, *, bump_major: bool = False) -> str:
        return (self._moment(version) + dt.timedelta(seconds=1)).strftime(_FORMAT)
