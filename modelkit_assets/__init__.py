"""modelkit-assets: immutable, versioned ML assets in any fsspec store, fetched into a
verified local cache.

The public names are the ones in ``__all__`` (each documented in the README's API
section; ``tests/test_public_api.py`` holds both to this list). The error tree is
imported at once (``errors.py`` imports nothing); the classes that pull in fsspec are
imported lazily, on first access, so that ``import modelkit_assets`` (and the CLI's
start-up) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from modelkit_assets._version import __version__
from modelkit_assets.errors import (
    AliasConflictError,
    AssetExistsError,
    AssetNotFoundError,
    AssetsError,
    BackendNotInstalledError,
    CacheLockTimeoutError,
    CacheNotWritableError,
    ClaimLostError,
    ConfigurationError,
    IntegrityError,
    InvalidMetaError,
    InvalidNameError,
    InvalidSourceError,
    InvalidSpecError,
    InvalidSubPartError,
    InvalidVersionError,
    LocalDiskError,
    LockfileError,
    LockMismatchError,
    OfflineError,
    PublishConflictError,
    ReadOnlyFilesystemError,
    SignatureError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
    StoreUnreachableError,
    SubPartNotFoundError,
    UnknownVersioningSystemError,
    VersionExistsError,
    VersioningOptionError,
    VersionNotFoundError,
)

if TYPE_CHECKING:
    from modelkit_assets.manager import AssetsManager, FetchResult
    from modelkit_assets.manifest import AssetMeta, FileEntry
    from modelkit_assets.settings import Settings
    from modelkit_assets.spec import AssetSpec
    from modelkit_assets.store import AssetStore, PublishPlan

_LAZY = {
    "AssetMeta": "modelkit_assets.manifest",
    "AssetSpec": "modelkit_assets.spec",
    "AssetStore": "modelkit_assets.store",
    "AssetsManager": "modelkit_assets.manager",
    "FetchResult": "modelkit_assets.manager",
    "FileEntry": "modelkit_assets.manifest",
    "PublishPlan": "modelkit_assets.store",
    "Settings": "modelkit_assets.settings",
}

__all__ = [
    "AliasConflictError",
    "AssetExistsError",
    "AssetMeta",
    "AssetNotFoundError",
    "AssetSpec",
    "AssetStore",
    "AssetsError",
    "AssetsManager",
    "BackendNotInstalledError",
    "CacheLockTimeoutError",
    "CacheNotWritableError",
    "ClaimLostError",
    "ConfigurationError",
    "FetchResult",
    "FileEntry",
    "IntegrityError",
    "InvalidMetaError",
    "InvalidNameError",
    "InvalidSourceError",
    "InvalidSpecError",
    "InvalidSubPartError",
    "InvalidVersionError",
    "LocalDiskError",
    "LockMismatchError",
    "LockfileError",
    "OfflineError",
    "PublishConflictError",
    "PublishPlan",
    "ReadOnlyFilesystemError",
    "Settings",
    "SignatureError",
    "StoreError",
    "StoreNotFoundError",
    "StorePermissionError",
    "StoreUnreachableError",
    "SubPartNotFoundError",
    "UnknownVersioningSystemError",
    "VersionExistsError",
    "VersionNotFoundError",
    "VersioningOptionError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'modelkit_assets' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
