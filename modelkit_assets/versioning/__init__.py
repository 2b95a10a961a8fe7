"""Versioning systems: built-in ``major_minor`` and ``simple_date``, plus any registered
under the entry point group ``modelkit_assets.versioning``.
"""

from __future__ import annotations

from functools import cache

from modelkit_assets.errors import UnknownVersioningSystemError
from modelkit_assets.versioning.base import VersioningSystem
from modelkit_assets.versioning.major_minor import MajorMinor
from modelkit_assets.versioning.simple_date import SimpleDate

ENTRY_POINT_GROUP = "modelkit_assets.versioning"
DEFAULT = "major_minor"
_BUILTIN: dict[str, type[VersioningSystem]] = {"major_minor": MajorMinor, "simple_date": SimpleDate}


@cache
def _plugins() -> dict[str, type[VersioningSystem]]:
    from importlib.metadata import entry_points

    return {ep.name: ep.load() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Names of every versioning system that can be selected."""
    return sorted({*_BUILTIN, *_plugins()})


def get_versioning(system: str | VersioningSystem | None = None) -> VersioningSystem:
    """Return the versioning system named ``system`` (the default when ``None``).

    Raises
    ------
    UnknownVersioningSystemError
        If nothing is registered under that name.
    """
    if isinstance(system, VersioningSystem):
        return system
    name = system or DEFAULT
    cls = _BUILTIN.get(name)
    if cls is None:
        # entry points are read only for a name we do not know: keeps start-up cheap
        cls = _plugins().get(name)
    if cls is None:
        raise UnknownVersioningSystemError(
            f"Unknown versioning system {name!r}; choose one of: {', '.join(available())}."
        )
    return cls()


__all__ = ["MajorMinor", "SimpleDate", "VersioningSystem", "available", "get_versioning"]
