"""modelkit.assets.versioning: the versioning systems, by name."""

from __future__ import annotations

from functools import cache

from modelkit_assets.compat.errors import modelkit_errors
from modelkit_assets.compat.versioning.major_minor import MajorMinorAssetsVersioningSystem
from modelkit_assets.compat.versioning.simple_date import SimpleDateAssetsVersioningSystem
from modelkit_assets.compat.versioning.versioning import AssetsVersioningSystem
from modelkit_assets.versioning import get_versioning

__all__ = ["AssetsVersioningSystem", "MajorMinorAssetsVersioningSystem", "SimpleDateAssetsVersioningSystem"]


_SYSTEMS: dict[str, type[AssetsVersioningSystem]] = {
    "major_minor": MajorMinorAssetsVersioningSystem,
    "simple_date": SimpleDateAssetsVersioningSystem,
}


@cache
def versioning_class(name: str) -> type[AssetsVersioningSystem]:
    """modelkit's class for a system, including third-party (entry point) systems."""
    found = _SYSTEMS.get(name)
    if found is not None:
        return found
    with modelkit_errors():
        get_versioning(name)  # unknown names fail here, with the list of known ones
    return type(f"{name}AssetsVersioningSystem", (AssetsVersioningSystem,), {"system_name": name})
