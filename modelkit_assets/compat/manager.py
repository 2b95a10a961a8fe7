"""modelkit.assets.manager: ``AssetsManager``.

``fetch_asset`` follows modelkit 0.1.3's steps::

    spec -> resolve the version    store (through modelkit-assets: the committed versions),
                                   or without a store the version folders of the assets dir
         -> fetch that version     with a store: modelkit-assets' verified, locked, atomic
                                   fetch (markers are modelkit's); without one: the folder
                                   as it is (pre-downloaded mode, no marker needed)
         -> no version at all      the spec is a local path: in the assets dir, relative
                                   to the working dir, or absolute (modelkit's fallback)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from typing import Any

from modelkit_assets.backends import protocol_of
from modelkit_assets.compat.errors import (
    AssetDoesNotExistError,
    AssetFetchError,
    LocalAssetDoesNotExistError,
    MajorVersionDoesNotExistError,
    NoConfiguredProviderError,
    ObjectDoesNotExistError,
    StorageDriverError,
    modelkit_errors,
)
from modelkit_assets.compat.remote import StorageProvider, meta_dict
from modelkit_assets.compat.settings import AssetSpec, current_settings
from modelkit_assets.layout import SUCCESS_NAME
from modelkit_assets.manager import AssetsManager as _Manager
from modelkit_assets.settings import ModelkitEnvironment
from modelkit_assets.spec import AssetSpec as _Spec


class AssetsManager:
    """modelkit's ``AssetsManager``: ``fetch_asset(spec)`` returns a local path.

    Parameters
    ----------
    assets_dir
        An existing folder (``MODELKIT_ASSETS_DIR``, else the working directory, as
        modelkit).
    timeout
        Seconds to wait for another process's download of the same asset
        (``MODELKIT_ASSETS_TIMEOUT_S``, 600 by default: modelkit's 10 is too short for
        big assets).
    storage_provider
        The store; ``None`` builds one from the environment, and without one the assets
        dir is served alone (pre-downloaded mode).

    The environment is read at each construction, as modelkit does.

    Raises
    ------
    FileNotFoundError
        If ``assets_dir`` is not a folder.
    StorageDriverError
        If the assets dir is the store's own folder.
    """

    assets_dir: str
    timeout: int
    storage_provider: StorageProvider | None

    def __init__(
        self,
        assets_dir: str | os.PathLike[str] | None = None,
        timeout: int | None = None,
        storage_provider: StorageProvider | None = None,
    ) -> None:
        settings = current_settings()
        self.assets_dir = str(assets_dir or ModelkitEnvironment.read().assets_dir or os.getcwd())
        if not os.path.isdir(self.assets_dir):
            raise FileNotFoundError(f"Assets directory {self.assets_dir} does not exist; create it first.")
        self.timeout = int(timeout or settings.timeout_s)
        if storage_provider is None:
            with contextlib.suppress(NoConfiguredProviderError):
                storage_provider = StorageProvider()
        self.storage_provider = storage_provider
        if storage_provider is not None:
            store = storage_provider.store
            if protocol_of(store.url) == "file" and _same_dir(store.layout.root, self.assets_dir):
                raise StorageDriverError(
                    f"The assets dir {self.assets_dir} is the store's own folder; point "
                    "MODELKIT_ASSETS_DIR elsewhere, or drop the storage provider to serve it as is."
                )
        # no provider: serve the assets dir alone, never the embedded store
        self._settings = settings if storage_provider else dataclasses.replace(settings, store_url=None)
        self._managers: dict[str, _Manager] = {}

    def _manager(self, system: str) -> _Manager:
        manager = self._managers.get(system)
        if manager is None:
            store = self.storage_provider.store_for(system) if self.storage_provider else None
            manager = _Manager(
                store, self.assets_dir, timeout=self.timeout, versioning=system, settings=self._settings
            )
            self._managers[system] = manager
        return manager

    def fetch_asset(
        self, spec: AssetSpec | str, return_info: bool = False, force_download: bool | None = None
    ) -> Any:
        """The local path of ``spec``, downloading and verifying it if needed.

        With ``return_info`` returns modelkit's dict: ``path``, ``version``,
        ``from_cache`` and, after a download, ``meta``. A partial ``AssetSpec`` passed in
        is pinned to the version found, as modelkit does. A spec with no version that is
        no asset is served as a local path (in the assets dir, relative to the working
        dir, or absolute): then the dict has only ``path``.

        Raises
        ------
        ObjectDoesNotExistError
            The asset or version is not in the store.
        LocalAssetDoesNotExistError, AssetDoesNotExistError
            No store is configured and the assets dir does not have it.
        AssetFetchError
            The sub-part does not exist.
        StorageDriverError
            ``force_download`` without a store.
        IntegrityError, CacheLockTimeoutError, StoreError
        """
        if isinstance(spec, str):
            spec = AssetSpec.from_string(spec)
        if force_download is None and self.storage_provider is not None:
            force_download = self.storage_provider.force_download
        info = self._fetch_asset(spec, _force_download=bool(force_download))
        if not os.path.exists(info["path"]):
            raise AssetFetchError(
                f"{spec} has no {spec.sub_part!r}: {info['path']} does not exist."
                if spec.sub_part
                else f"{spec} is not at {info['path']}."
            )
        return info if return_info else info["path"]

    def _fetch_asset(self, spec: AssetSpec, _force_download: bool = False) -> dict[str, Any]:
        self._resolve_version(spec)
        return self._fetch_asset_version(spec, _force_download)

    def _resolve_version(self, spec: AssetSpec) -> None:
        """Pin ``spec.version`` to the version to fetch (left ``None`` for a local path)."""
        if spec.is_version_complete():
            return
        if self.storage_provider is not None:
            with modelkit_errors(not_found=ObjectDoesNotExistError):
                spec.version = self._manager(spec.versioning.system_name).resolve(
                    _Spec(spec.name, spec.version)
                )
            return
        local_versions = self._list_local_versions(spec)
        if not local_versions and not spec.version:
            return  # no version anywhere: a local path
        try:
            if not local_versions:
                raise MajorVersionDoesNotExistError(spec.version)
            spec.set_latest_version(local_versions)
        except MajorVersionDoesNotExistError:
            raise LocalAssetDoesNotExistError(
                f"{spec} is not in the assets dir {self.assets_dir} (it has "
                f"{', '.join(local_versions[:5]) or 'no version of it'}), and no storage provider "
                "is configured."
            ) from None

    def _fetch_asset_version(self, spec: AssetSpec, _force_download: bool) -> dict[str, Any]:
        """modelkit's ``{"path", "version", "from_cache"[, "meta"]}`` for a pinned spec
        (``{"path"}`` for a spec without version: a local path).

        Raises
        ------
        StorageDriverError
            ``_force_download`` without a storage provider.
        LocalAssetDoesNotExistError
            No storage provider, and the version is not in the assets dir.
        """
        if not spec.version:
            info: dict[str, Any] = _fetch_local_version(
                spec.name, os.path.join(self.assets_dir, *spec.name.split("/"))
            )
        elif self.storage_provider is None:
            if _force_download:
                raise StorageDriverError(
                    f"Cannot force the download of {spec}: no storage provider is configured."
                )
            if spec.version not in self._list_local_versions(spec):
                raise LocalAssetDoesNotExistError(
                    f"{spec.name}:{spec.version} is not in the assets dir {self.assets_dir}, and no "
                    "storage provider is configured."
                )
            if self._settings.require_signature:
                # served only if a trusted key verified this install (SignatureError if not)
                result = self._manager(spec.versioning.system_name).fetch_info(_Spec(spec.name, spec.version))
                path = str(result.path)
            else:
                path = os.path.join(self.assets_dir, *spec.name.split("/"), spec.version)
            info = {"from_cache": True, "version": spec.version, "path": path}
        else:
            with modelkit_errors():
                result = self._manager(spec.versioning.system_name).fetch_info(
                    _Spec(spec.name, spec.version, spec.sub_part), force=_force_download
                )
            info = {"from_cache": result.from_cache, "version": result.version, "path": str(result.path)}
            if result.meta is not None:
                info["meta"] = meta_dict(result.meta)
            return info  # the path is the sub-part's, checked (and repaired if damaged)
        if spec.sub_part:  # modelkit ignores the sub-part of a local path: we do not
            info["path"] = os.path.join(info["path"], *(p for p in spec.sub_part.split("/") if p))
        return info

    def _list_local_versions(self, spec: AssetSpec) -> list[str]:
        """The versions of ``spec.name`` with a folder or file in the assets dir."""
        return spec.get_local_versions(os.path.join(self.assets_dir, *spec.name.split("/")))

    def __repr__(self) -> str:
        return f"AssetsManager(assets_dir={self.assets_dir!r}, storage_provider={self.storage_provider!r})"


def _success_file_path(local_path: str) -> str:
    """modelkit's marker of a fetched version at ``local_path`` (file or folder)."""
    if os.path.isdir(local_path):
        return os.path.join(local_path, SUCCESS_NAME)
    folder, name = os.path.split(local_path)
    return os.path.join(folder, f".{name}{SUCCESS_NAME}")


def _fetch_local_version(asset_name: str, local_name: str) -> dict[str, str]:
    """modelkit's local-path fallback: ``local_name`` (the spec's place in the assets dir)
    if it exists, else the spec relative to the working dir, else the spec as an absolute
    path.

    Raises
    ------
    AssetDoesNotExistError
        If none of them exists.
    """
    if os.path.exists(local_name):
        return {"path": local_name}
    path = os.path.join(os.getcwd(), *asset_name.split("/"))
    if os.path.exists(path):
        return {"path": path}
    if os.path.isabs(asset_name) and os.path.exists(asset_name):
        return {"path": asset_name}
    raise AssetDoesNotExistError(
        f"{asset_name} is no asset of the assets dir and no local path (relative to the working "
        f"dir {os.getcwd()}, or absolute); configure a store (MODELKIT_STORAGE_PROVIDER) to fetch it."
    )


def _same_dir(root: str, assets_dir: str) -> bool:
    try:
        return os.path.samefile(root, assets_dir)
    except OSError:
        return False
