"""Versioning systems: built-in ``major_minor`` and ``simple_date``, plus any registered
under the entry point group ``modelkit_assets.versioning``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from modelkit_assets.errors import UnknownVersioningSystemError
from modelkit_assets.versioning.base import VersioningSystem
from modelkit_assets.versioning.major_minor import MajorMinor
from modelkit_assets.versioning.simple_date import SimpleDate

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

ENTRY_POINT_GROUP = "modelkit_assets.versioning"
DEFAULT = "major_minor"
_BUILTIN: dict[str, type[VersioningSystem]] = {"major_minor": MajorMinor, "simple_date": SimpleDate}


@cache
def _plugins() -> dict[str, EntryPoint]:
    """Registered entry points by name, not loaded: a broken plugin only fails when chosen."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _load(entry_point: EntryPoint) -> type[VersioningSystem]:
    where = f"The versioning system {entry_point.name!r} ({entry_point.value})"
    try:
        loaded = entry_point.load()
    except Exception as err:
        raise UnknownVersioningSystemError(
            f"{where} failed to load ({type(err).__name__}: {err}); reinstall the package that "
            "provides it, or choose another system."
        ) from err
    if not (isinstance(loaded, type) and issubclass(loaded, VersioningSystem)):
        raise UnknownVersioningSystemError(
            f"{where} is not a subclass of modelkit_assets.versioning.VersioningSystem; fix its entry point."
        )
    return loaded


def available() -> list[str]:
    """Names of every versioning system that can be selected."""
    return sorted({*_BUILTIN, *_plugins()})


def get_versioning(system: str | VersioningSystem | None = None) -> VersioningSystem:
    """Return the versioning system named ``system`` (the default when ``None``).

    Raises
    ------
    UnknownVersioningSystemError
        If nothing is registered under that name, or its plugin fails to load.
    """
    if isinstance(system, VersioningSystem):
        return system
    name = system or DEFAULT
    cls = _BUILTIN.get(name)
    if cls is None:
        # entry points are read only for a name we do not know: keeps start-up cheap
        entry_point = _plugins().get(name)
        if entry_point is None:
            raise UnknownVersioningSystemError(
                f"Unknown versioning system {name!r}; choose one of: {', '.join(available())}."
            )
        cls = _load(entry_point)
    return cls()


__all__ = ["MajorMinor", "SimpleDate", "VersioningSystem", "available", "get_versioning"]
