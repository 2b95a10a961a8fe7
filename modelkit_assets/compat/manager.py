"""modelkit.assets.manager: ``AssetsManager``."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import Any

from modelkit_assets.backend import protocol_of
from modelkit_assets.compat.errors import (
    AssetDoesNotExistError,
    LocalAssetDoesNotExistError,
    NoConfiguredProviderError,
    ObjectDoesNotExistError,
    StorageDriverError,
    _modelkit_errors,
)
from modelkit_assets.compat.remote import StorageProvider, _meta_dict
from modelkit_assets.compat.settings import AssetSpec
from modelkit_assets.layout import SUCCESS_NAME
from modelkit_assets.manager import AssetsManager as _Manager
from modelkit_assets.settings import get_settings


# -- fetching (modelkit.assets.manager) ----------------------------------------------
class AssetsManager:
    """modelkit's ``AssetsManager``: ``fetch_asset(spec)`` returns a local path.

    Parameters
    ----------
    assets_dir
        An existing folder (``MODELKIT_ASSETS_DIR``, else the working directory, as
        modelkit).
    timeout
        Seconds to wait for another process's download of the same asset
        (``MODELKIT_ASSETS_TIMEOUT_S``, 600 by default).
    storage_provider
        The store; ``None`` builds one from the environment, and without one the assets
        dir is served alone.

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
        settings = get_settings()
        self.assets_dir = str(assets_dir or os.environ.get("MODELKIT_ASSETS_DIR") or os.getcwd())
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
            store = self.storage_provider._store_for(system) if self.storage_provider else None
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
        is pinned to the version found, as modelkit does.

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
        if force_download and self.storage_provider is None:
            raise StorageDriverError(
                f"Cannot force the download of {spec}: no storage provider is configured."
            )
        manager = self._manager(spec.versioning.system_name)
        not_found = ObjectDoesNotExistError if self.storage_provider else LocalAssetDoesNotExistError
        try:
            with _modelkit_errors(not_found=not_found):
                result = manager.fetch_info(spec.to_spec(), force=bool(force_download))
        except LocalAssetDoesNotExistError:
            if spec.version or self.storage_provider is not None:
                raise
            info: dict[str, Any] = {"path": self._unversioned(spec)}
        else:
            spec.version = result.version
            info = {"path": str(result.path), "version": result.version, "from_cache": result.from_cache}
            if result.meta is not None:
                info["meta"] = _meta_dict(result.meta)
        return info if return_info else info["path"]

    def _unversioned(self, spec: AssetSpec) -> str:
        """modelkit's pre-downloaded mode: ``{assets_dir}/{name}[/{sub_part}]`` as is."""
        path = Path(self.assets_dir).joinpath(*spec.name.split("/"))
        if spec.sub_part:
            path = path.joinpath(*spec.sub_part.split("/"))
        if not path.exists():
            raise AssetDoesNotExistError(
                f"Asset {spec} has no version in the assets dir {self.assets_dir} and is not a "
                "path inside it; configure a store (MODELKIT_STORAGE_PROVIDER) or fetch it first."
            )
        return str(path)

    def __repr__(self) -> str:
        return f"AssetsManager(assets_dir={self.assets_dir!r}, storage_provider={self.storage_provider!r})"


def _same_dir(root: str, assets_dir: str) -> bool:
    try:
        return os.path.samefile(root, assets_dir)
    except OSError:
        return False


def _success_file_path(local_path: str) -> str:
    """modelkit's marker of a fetched version at ``local_path`` (file or folder)."""
    if os.path.isdir(local_path):
        return os.path.join(local_path, SUCCESS_NAME)
    folder, name = os.path.split(local_path)
    return os.path.join(folder, f".{name}{SUCCESS_NAME}")


def _fetch_local_version(asset_name: str, local_name: str) -> dict[str, str]:
    """placeholder"""
    raise NotImplementedError
