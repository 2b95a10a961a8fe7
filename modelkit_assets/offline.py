"""What the assets dir alone can answer, for offline mode (``MODELKIT_ASSETS_OFFLINE=1``).

Offline, the store is never reached (``AssetStore`` refuses before any connection). The
read-only questions the CLI asks a store (``list``, ``versions``, ``info``, ``lock``) are
answered here from the cache instead: the installed versions and the manifest copy each
fetch keeps in ``.cache/manifests``. Such answers cover the cached versions only; the
store may hold more.

``Catalog`` is what those commands need from either source; ``AssetStore`` and
``CachedCatalog`` both provide it.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from modelkit_assets.errors import AssetNotFoundError, VersionNotFoundError
from modelkit_assets.spec import AssetSpec

if TYPE_CHECKING:
    from modelkit_assets.manager import AssetsManager
    from modelkit_assets.manifest import AssetMeta
    from modelkit_assets.versioning import VersioningSystem

#: how offline answers tell the user to get the full picture
ONLINE_HINT = "unset MODELKIT_ASSETS_OFFLINE to ask the store"


class Catalog(Protocol):
    """The read-only questions asked of a store (``AssetStore`` answers them)."""

    @property
    def display_url(self) -> str: ...

    @property
    def versioning(self) -> VersioningSystem: ...

    def list(self, prefix: str = "") -> Iterator[tuple[str, builtins.list[str]]]: ...

    def versions(self, name: str) -> builtins.list[str]: ...

    def resolve(self, spec: AssetSpec | str) -> str: ...

    def meta(self, name: str, version: str) -> AssetMeta: ...


def cached_assets(manager: AssetsManager, prefix: str = "") -> dict[str, builtins.list[str]]:
    """Every asset of the assets dir under ``prefix`` (a name, or a folder of names) and
    its installed versions, latest first (a walk of the name folders: no file is read)."""
    cache, versioning = manager.cache, manager.versioning
    prefix = prefix.strip("/")
    root = cache.assets_dir.joinpath(*prefix.split("/")) if prefix else cache.assets_dir
    found: dict[str, builtins.list[str]] = {}
    for folder, dirs, _ in os.walk(root):
        rel = Path(folder).relative_to(cache.assets_dir).as_posix()
        versions = cache.versions(rel, versioning) if rel != "." else []
        if versions:
            found[rel] = versions
        # hidden folders hold locks and staging; version folders hold data, not names
        dirs[:] = [d for d in dirs if not d.startswith(".") and not (rel != "." and versioning.is_valid(d))]
    return dict(sorted(found.items()))


class CachedCatalog:
    """A ``Catalog`` answered from ``manager``'s assets dir alone (no store, no network)."""

    def __init__(self, manager: AssetsManager) -> None:
        self.manager = manager

    @property
    def display_url(self) -> str:
        """Where answers come from (the ``store`` of ``list --json`` and of a lockfile)."""
        return f"{self.manager.assets_dir} (offline cache)"

    @property
    def versioning(self) -> VersioningSystem:
        return self.manager.versioning

    def list(self, prefix: str = "") -> Iterator[tuple[str, builtins.list[str]]]:
        """Cached assets under ``prefix`` and their cached versions, latest first."""
        yield from cached_assets(self.manager, prefix).items()

    def versions(self, name: str) -> builtins.list[str]:
        """Cached versions of ``name``, latest first.

        Raises
        ------
        AssetNotFoundError
            When no version of ``name`` is cached.
        """
        found = self.manager.cache.versions(name, self.versioning)
        if not found:
            raise AssetNotFoundError(
                f"No version of {name} is in the assets dir {self.manager.assets_dir}; offline mode "
                f"is on: {ONLINE_HINT}."
            )
        return found

    def resolve(self, spec: AssetSpec | str) -> str:
        """The cached version ``spec`` points to (the latest cached one for a partial spec)."""
        parsed = AssetSpec.parse(spec) if isinstance(spec, str) else spec
        version = self.manager.resolve(parsed)
        if self.manager.cache.cached_path(parsed.name, version) is None:
            raise VersionNotFoundError(
                f"{parsed.name}:{version} is not in the assets dir {self.manager.assets_dir}; "
                f"offline mode is on: {ONLINE_HINT}."
            )
        return version

    def meta(self, name: str, version: str) -> AssetMeta:
        """The manifest kept in the cache when ``name:version`` was fetched.

        Raises
        ------
        VersionNotFoundError
            When the version is not cached, or was cached without its manifest (by
            modelkit, or an older release).
        """
        if self.manager.cache.cached_path(name, version) is None:
            raise VersionNotFoundError(
                f"{name}:{version} is not in the assets dir {self.manager.assets_dir}; offline "
                f"mode is on: {ONLINE_HINT}."
            )
        meta = self.manager.cache.read_manifest(name, version)
        if meta is None:
            raise VersionNotFoundError(
                f"{name}:{version} is in the assets dir {self.manager.assets_dir} without its "
                f"manifest (fetched by modelkit or an older release); offline mode is on: {ONLINE_HINT}."
            )
        return meta
