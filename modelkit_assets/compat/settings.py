"""modelkit.assets.settings: ``AssetSpec``."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from modelkit_assets.compat.errors import (
    InvalidAssetSpecError,
    InvalidNameError,
    InvalidVersionError,
    modelkit_errors,
)
from modelkit_assets.compat.versioning import AssetsVersioningSystem, versioning_class
from modelkit_assets.settings import Settings, read_settings
from modelkit_assets.spec import AssetSpec as _Spec
from modelkit_assets.spec import check_name, check_relative_path

#: modelkit's grammar of a spec's name: an asset name, or a local path (absolute, with
#: a drive letter, or with ``\\``) that ``AssetsManager.fetch_asset`` serves as it is
GENERIC_ASSET_NAME_RE = r"(([A-Z]:\\)|/)?[a-zA-Z0-9]([a-zA-Z0-9\-\_\.\/\\]*[a-zA-Z0-9])?"
GENERIC_ASSET_VERSION_RE = r"(?P<version>[0-9A-Za-z\.\-\_]+?)"
REMOTE_ASSET_RE = (
    rf"^(?P<name>{GENERIC_ASSET_NAME_RE})"
    rf"(:{GENERIC_ASSET_VERSION_RE})?"
    rf"(\[(?P<sub_part>(\/?{GENERIC_ASSET_NAME_RE})+)\])?$"
)


def current_settings() -> Settings:
    """The settings as the environment says now: modelkit reads it at each construction,
    not once per process. Its ``MODELKIT_STORAGE_PROVIDER`` is left to ``StorageProvider``,
    which raises modelkit's errors for it."""
    return read_settings(ignore={"MODELKIT_STORAGE_PROVIDER"})


def is_local_path(name: str) -> bool:
    """Whether a spec's name can only be a local path (never an asset name)."""
    return name.startswith("/") or "\\" in name


class AssetSpec:
    """modelkit's mutable spec: ``name``, ``version`` (may be partial or ``None``),
    ``sub_part`` and the ``versioning`` system they are read with.

    Raises
    ------
    InvalidNameError, InvalidVersionError, InvalidAssetSpecError,
    UnknownAssetsVersioningSystemError
    """

    versioning: AssetsVersioningSystem

    def __init__(
        self,
        name: str,
        versioning: str | None = None,
        version: str | None = None,
        sub_part: str | None = None,
    ) -> None:
        # read at each construction, as modelkit does (not once per process)
        system = versioning or current_settings().versioning
        self.versioning = versioning_class(system)()
        self.check_name_valid(name)
        self.name = name
        if version:
            self.check_version_valid(version)
            self.versioning.check_version_valid(version)
        self.version = version or None
        if sub_part is not None:
            # modelkit drops empty segments (a leading or trailing `/`)
            sub_part = sub_part.strip("/")
            with modelkit_errors():
                check_relative_path(sub_part, what="sub-part")
        self.sub_part = sub_part

    @staticmethod
    def from_string(input_string: str, versioning: str | None = None) -> AssetSpec:
        """Parse ``name[:version][[sub/part]]`` with modelkit's grammar."""
        match = re.match(REMOTE_ASSET_RE, input_string) if isinstance(input_string, str) else None
        if match is None:
            raise InvalidAssetSpecError(
                f"Invalid asset spec {input_string!r}: write `name[:version][[sub/part]]`."
            )
        return AssetSpec(
            name=match["name"], versioning=versioning, version=match["version"], sub_part=match["sub_part"]
        )

    @classmethod
    def check_name_valid(cls, name: str) -> None:
        """An asset name (modelkit-assets' rules, which include modelkit's), or a local
        path as modelkit accepts it (``/abs/path``, ``C:\\dir\\file``).

        Raises
        ------
        InvalidNameError
        """
        if isinstance(name, str) and is_local_path(name):
            if not re.fullmatch(GENERIC_ASSET_NAME_RE, name):
                raise InvalidNameError(
                    f"Invalid name {name!r}: a local path uses only [A-Za-z0-9], `/`, `\\`, `-`, `_` "
                    "and `.`, and starts and ends with a letter or digit."
                )
            return
        with modelkit_errors():
            check_name(name)

    @classmethod
    def check_version_valid(cls, name: str) -> None:
        """Check the characters of a version, for any versioning system (modelkit's
        generic check: ``[A-Za-z0-9._-]``; the system checks the rest).

        Raises
        ------
        InvalidVersionError
        """
        if name and not re.fullmatch(GENERIC_ASSET_VERSION_RE, name):
            raise InvalidVersionError(f"Invalid version {name!r}: use only [A-Za-z0-9], `.`, `-` and `_`.")

    def is_version_complete(self) -> bool:
        return bool(self.version) and self.versioning.is_version_complete(str(self.version))

    def sort_versions(self, version_list: Iterable[str]) -> list[str]:
        return self.versioning.sort_versions(version_list)

    def set_latest_version(self, all_versions: list[str]) -> None:
        """Pin ``version`` to the latest of ``all_versions`` it designates."""
        if not self.version:
            self.version = all_versions[0]
        else:
            self.version = self.versioning.get_latest_partial_version(self.version, all_versions)

    def get_local_versions(self, local_name: str | os.PathLike[str]) -> list[str]:
        """The complete versions found as entries of the folder ``local_name``."""
        if not os.path.isdir(local_name):
            return []
        system = self.versioning.system()
        return self.sort_versions(d for d in os.listdir(local_name) if system.is_valid(d))

    def to_spec(self) -> _Spec:
        """The modelkit-assets ``AssetSpec``."""
        with modelkit_errors():
            return _Spec(self.name, self.version, self.sub_part)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AssetSpec):
            return False
        return (self.name, self.version, self.sub_part) == (other.name, other.version, other.sub_part)

    __hash__ = None  # type: ignore[assignment]  # mutable, as modelkit's

    def __str__(self) -> str:
        return str(_Spec(self.name, self.version, self.sub_part))

    def __repr__(self) -> str:
        return f"AssetSpec({str(self)!r}, versioning={self.versioning.system_name!r})"
