"""modelkit.assets.versioning.versioning: the base class of versioning systems."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from modelkit_assets import errors
from modelkit_assets.compat.errors import (
    MajorVersionDoesNotExistError,
    modelkit_errors,
)
from modelkit_assets.versioning import VersioningSystem, get_versioning


# -- versioning (modelkit.assets.versioning) -----------------------------------------
class AssetsVersioningSystem:
    """modelkit's versioning interface (class methods only) over a modelkit-assets
    ``VersioningSystem``: subclasses name the system in ``system_name``.
    """

    system_name: ClassVar[str] = ""

    @classmethod
    def system(cls) -> VersioningSystem:
        """The modelkit-assets system doing the work."""
        with modelkit_errors():
            return get_versioning(cls.system_name)

    @classmethod
    def get_initial_version(cls) -> str:
        return cls.system().initial(())

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        """Raise ``InvalidVersionError`` unless ``version`` is a (partial) version."""
        with modelkit_errors():
            cls.system().check(version)

    @classmethod
    def is_version_complete(cls, version: str) -> bool:
        """Whether ``version`` names one version; as in modelkit, the base class (a system
        without partial versions) says yes to anything."""
        if not cls.system_name:
            return True
        with modelkit_errors():
            return cls.system().is_complete(version)

    @classmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        """Latest first; an invalid version raises ``InvalidVersionError`` (as modelkit)."""
        system = cls.system()
        with modelkit_errors():
            return sorted(version_list, key=system.sort_key, reverse=True)

    @classmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        """The version ``update`` publishes after ``version_list``."""
        params = params or {}
        major = params.get("major")
        with modelkit_errors(not_found=MajorVersionDoesNotExistError):
            return cls.system().next(
                version_list or [],
                major=str(major) if major is not None else None,
                bump_major=bool(params.get("bump_major")),
            )

    @classmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        """``{"display": text for the update prompt, "params": for increment_version}``."""
        version_list = list(kwargs.get("version_list") or [])
        display = [f"Found a total of {len(version_list)} versions ", f"{version_list}"]
        if version_list:
            display.append(f"Last version is {version_list[0]}")
        return {"display": "\n".join(display), "params": {}}

    @classmethod
    def get_latest_partial_version(cls, version: str, versions: list[str]) -> str:
        """modelkit's: the first (latest) of ``versions``, for a system without partial
        versions; ``MajorMinorAssetsVersioningSystem`` picks within the major."""
        if not versions:
            raise MajorVersionDoesNotExistError(f"No version to choose for {version!r}: the list is empty.")
        return versions[0]

    def is_version_valid(self, version: str) -> bool:
        try:
            self.check_version_valid(version)
        except errors.InvalidVersionError:
            return False
        return True
