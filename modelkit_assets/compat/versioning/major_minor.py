"""modelkit.assets.versioning.major_minor: ``X.Y`` versions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from modelkit_assets.compat.errors import (
    InvalidMajorVersionError,
    MajorVersionDoesNotExistError,
)
from modelkit_assets.compat.versioning.versioning import AssetsVersioningSystem

__all__ = ["InvalidMajorVersionError", "MajorMinorAssetsVersioningSystem", "MajorVersionDoesNotExistError"]


class MajorMinorAssetsVersioningSystem(AssetsVersioningSystem):
    """``X.Y`` versions (modelkit's default): ``0.0`` first, ``update`` bumps the minor of
    the latest (or given) major, ``bump_major`` starts the next major."""

    system_name = "major_minor"

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        if version:  # modelkit accepts an empty version here
            super().check_version_valid(version)

    @classmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        version_list = list(kwargs.get("version_list") or [])
        version = kwargs.get("version")
        current_major = None
        if version:
            cls.check_version_valid(version)
            current_major = version.split(".")[0]
        majors = sorted({v.split(".")[0] for v in cls.sort_versions(version_list)}, key=int)
        display = [
            f"Found a total of {len(version_list)} versions ",
            f"({len(majors)} major versions) ",
        ]
        display += [f" - major `{m}` = " + ", ".join(cls.filter_versions(version_list, m)) for m in majors]
        return {
            "display": "\n".join(display),
            "params": {"bump_major": bool(kwargs.get("bump_major")), "major": current_major},
        }

    @classmethod
    def get_latest_partial_version(cls, version: str, versions: list[str]) -> str:
        """The latest of ``versions`` in ``version``'s major, as modelkit: ``1`` and also
        the complete ``1.1`` give the latest ``1.*`` (majors compared as numbers).

        Raises
        ------
        MajorVersionDoesNotExistError
            If the major has no version.
        """
        cls.check_version_valid(version)
        return cls.latest_version(versions, version.split(".")[0])

    @classmethod
    def filter_versions(cls, version_list: Iterable[str], major: str) -> list[str]:
        """The versions of ``major``, in their given order.

        Raises
        ------
        InvalidMajorVersionError
            If ``major`` is not an integer.
        """
        major = str(major)
        if not re.fullmatch(r"[0-9]+", major):
            raise InvalidMajorVersionError(f"Major version {major!r} is not valid: give an integer.")
        system = cls.system()
        return [v for v in version_list if system.is_valid(v) and system.matches(str(int(major)), v)]

    @classmethod
    def latest_version(cls, version_list: Iterable[str], major: str | None = None) -> str:
        """The latest version (of ``major``).

        Raises
        ------
        MajorVersionDoesNotExistError
            If ``major`` has no version.
        """
        versions = list(version_list)
        if major:
            versions = cls.filter_versions(versions, major)
            if not versions:
                raise MajorVersionDoesNotExistError(f"Major version {major} does not exist.")
        if not versions:
            raise MajorVersionDoesNotExistError("There is no version to choose from.")
        return cls.sort_versions(versions)[0]
