"""modelkit-assets: immutable, versioned ML assets in any fsspec store, fetched into a
verified local cache.

Public names are imported lazily so that ``import modelkit_assets`` (and the CLI's
start-up) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from modelkit_assets._version import __version__

if TYPE_CHECKING:
    from modelkit_assets.errors import (
        AssetExistsError,
        AssetNotFoundError,
        AssetsError,
        IntegrityError,
        InvalidSpecError,
        StoreError,
        VersionExistsError,
        VersionNotFoundError,
    )
    from modelkit_assets.manager import AssetsManager, FetchResult
    from modelkit_assets.manifest import AssetMeta
    from modelkit_assets.settings import Settings
    from modelkit_assets.spec import AssetSpec
    from modelkit_assets.store import AssetStore

_LAZY = {
    "AssetExistsError": "modelkit_assets.errors",
    "AssetMeta": "modelkit_assets.manifest",
    "AssetNotFoundError": "modelkit_assets.errors",
    "AssetSpec": "modelkit_assets.spec",
    "AssetStore": "modelkit_assets.store",
    "AssetsError": "modelkit_assets.errors",
    "AssetsManager": "modelkit_assets.manager",
    "FetchResult": "modelkit_assets.manager",
    "IntegrityError": "modelkit_assets.errors",
    "InvalidSpecError": "modelkit_assets.errors",
    "Settings": "modelkit_assets.settings",
    "StoreError": "modelkit_assets.errors",
    "VersionExistsError": "modelkit_assets.errors",
    "VersionNotFoundError": "modelkit_assets.errors",
}

__all__ = [
    "AssetExistsError",
    "AssetMeta",
    "AssetNotFoundError",
    "AssetSpec",
    "AssetStore",
    "AssetsError",
    "AssetsManager",
    "FetchResult",
    "IntegrityError",
    "InvalidSpecError",
    "Settings",
    "StoreError",
    "VersionExistsError",
    "VersionNotFoundError",
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
