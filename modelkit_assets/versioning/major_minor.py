"""``major_minor``: versions ``X.Y`` of integers, modelkit's default system."""

from __future__ import annotations

import re
from collections.abc import Iterable

from modelkit_assets.errors import InvalidVersionError, VersionNotFoundError
from modelkit_assets.versioning.base import VersioningSystem

_RE = re.compile(r"(0|[1-9][0-9]{0,8})(?:\.(0|[1-9][0-9]{0,8}))?")


class MajorMinor(VersioningSystem):
    """``new`` gives ``0.0``; ``update`` bumps the minor of the latest (or given) major;
    ``bump_major`` gives ``(latest major + 1).0``; ``1`` resolves to the latest ``1.*``.
    """

    name = "major_minor"
    has_majors = True

    def _parse(self, version: str) -> tuple[int, int | None]:
        match = _RE.fullmatch(version)
        if match is None:
            raise InvalidVersionError(
                f"Version {version!r} is not a major_minor version: write `MAJOR.MINOR` "
                "with integers (e.g. `1.2`), or `MAJOR` for the latest of a major."
            )
        minor = match[2]
        return int(match[1]), (int(minor) if minor is not None else None)

    def check(self, version: str) -> str:
        self._parse(version)
        return version

    def is_complete(self, version: str) -> bool:
        return self._parse(version)[1] is not None

    def sort_key(self, version: str) -> tuple[int, int]:
        major, minor = self._parse(version)
        return major, minor or 0

    def matches(self, partial: str, version: str) -> bool:
        major, minor = self._parse(partial)
        v_major, v_minor = self._parse(version)
        return major == v_major and (minor is None or minor == v_minor)

    def initial(self, taken: Iterable[str]) -> str:
        return "0.0"

    def next(self, versions: Iterable[str], *, major: str | None = None, bump_major: bool = False) -> str:
        ordered = self.sort(versions)
        if not ordered:
            return self.initial(())
        if bump_major:
            return f"{self._parse(ordered[0])[0] + 1}.0"
        if major is not None:
            wanted, minor = self._parse(major)
            if minor is not None:
                raise InvalidVersionError(
                    f"`update` takes a major (e.g. `name:{wanted}`), not a full version ({major!r})."
                )
            in_major = [v for v in ordered if self._parse(v)[0] == wanted]
            if not in_major:
                raise VersionNotFoundError(
                    f"Major version {wanted} does not exist (majors: "
                    f"{', '.join(self.groups(ordered))}); use --bump-major to start a new major."
                )
            ordered = in_major
        v_major, v_minor = self._parse(ordered[0])
        return f"{v_major}.{(v_minor or 0) + 1}"

    def following(self, version: str, *, bump_major: bool = False) -> str:
        major, minor = self._parse(version)
        return f"{major + 1}.0" if bump_major else f"{major}.{(minor or 0) + 1}"

    def groups(self, versions: Iterable[str]) -> dict[str, list[str]]:
        grouped: dict[str, list[str]] = {}
        for version in self.sort(versions):
            grouped.setdefault(str(self._parse(version)[0]), []).append(version)
        return grouped
