"""modelkit 0.1.3's asset API (``modelkit.assets``) on top of modelkit-assets.

Code written for modelkit runs after changing its imports::

    # from modelkit.assets.manager import AssetsManager
    # from modelkit.assets.remote import StorageProvider
    # from modelkit.assets.settings import AssetSpec
    from modelkit_assets.compat import AssetsManager, AssetSpec, StorageProvider

Names, signatures, return values and environment variables are modelkit's; what runs
underneath is modelkit-assets', so the guarantees of DESIGN.md hold:

- ``StorageProvider.new/update`` publish exactly the version they are given through the
  claim and the exclusive commit, and raise ``AssetAlreadyExistsError`` rather than
  overwrite a version, even against a concurrent writer (G1-G3).
- ``AssetsManager.fetch_asset`` stages, verifies (size + sha256 when the ``.meta`` has
  them) and atomically installs; its ``.SUCCESS`` markers and lock files are modelkit's,
  so both tools share one assets dir (G4).
- ``get_versions_info`` and ``iterate_assets`` read the committed ``.meta`` objects, so
  a stale ``.versions`` index never hides a version (G2).
- Asset names follow modelkit-assets' stricter rules (G5): no absolute path, no ``\\``,
  no segment starting with ``.``, first and last characters a letter or digit (modelkit's
  rule). A spec that names no asset and has no version is a local path, served as it is
  (in the assets dir, relative to the working dir, or absolute), as modelkit documents.
- The environment is read at each construction, as modelkit does.
- ``MODELKIT_ASSETS_TIMEOUT_S`` defaults to 600 s (modelkit's 10 s is too short for big
  assets); ``filter_versions`` compares majors as numbers (``1`` does not match ``10.3``);
  ``SimpleDateAssetsVersioningSystem.increment_version`` never returns a taken version.

The modules mirror ``modelkit.assets``: ``errors``, ``versioning`` (``major_minor``,
``simple_date``, ``versioning``), ``settings``, ``remote``, ``manager``. modelkit's own
test suite runs against them (tests/conformance, README "Coming from modelkit").

Every error keeps its modelkit name and also inherits the modelkit-assets class it
corresponds to, so either can be caught::

    AssetsManagerError (AssetsError)
    ├── AssetAlreadyExistsError (AssetExistsError)
    ├── AssetDoesNotExistError (AssetNotFoundError)
    ├── AssetMajorVersionDoesNotExistError (VersionNotFoundError)
    ├── LocalAssetDoesNotExistError (VersionNotFoundError)
    ├── UnknownAssetsVersioningSystemError (UnknownVersioningSystemError)
    └── InvalidAssetSpecError (InvalidSpecError)
        ├── InvalidNameError (InvalidNameError)
        └── InvalidVersionError (InvalidVersionError)
            ├── InvalidMajorVersionError
            └── MajorVersionDoesNotExistError
    StorageDriverError (AssetsError)
    └── ObjectDoesNotExistError (AssetNotFoundError)
    AssetFetchError (SubPartNotFoundError)
    NoConfiguredProviderError (ConfigurationError)
    UnknownDriverError (ConfigurationError)
    DriverNotInstalledError (BackendNotInstalledError)
"""

from modelkit_assets.compat import errors, manager, remote, settings, versioning
from modelkit_assets.compat.errors import (
    AssetAlreadyExistsError,
    AssetDoesNotExistError,
    AssetFetchError,
    AssetMajorVersionDoesNotExistError,
    AssetsManagerError,
    DriverNotInstalledError,
    InvalidAssetSpecError,
    InvalidMajorVersionError,
    InvalidNameError,
    InvalidVersionError,
    LocalAssetDoesNotExistError,
    MajorVersionDoesNotExistError,
    NoConfiguredProviderError,
    ObjectDoesNotExistError,
    StorageDriverError,
    UnknownAssetsVersioningSystemError,
    UnknownDriverError,
)
from modelkit_assets.compat.manager import AssetsManager
from modelkit_assets.compat.remote import StorageProvider, StoreDriver
from modelkit_assets.compat.settings import AssetSpec
from modelkit_assets.compat.versioning import (
    AssetsVersioningSystem,
    MajorMinorAssetsVersioningSystem,
    SimpleDateAssetsVersioningSystem,
)

__all__ = [
    "AssetAlreadyExistsError",
    "AssetDoesNotExistError",
    "AssetFetchError",
    "AssetMajorVersionDoesNotExistError",
    "AssetSpec",
    "AssetsManager",
    "AssetsManagerError",
    "AssetsVersioningSystem",
    "DriverNotInstalledError",
    "InvalidAssetSpecError",
    "InvalidMajorVersionError",
    "InvalidNameError",
    "InvalidVersionError",
    "LocalAssetDoesNotExistError",
    "MajorMinorAssetsVersioningSystem",
    "MajorVersionDoesNotExistError",
    "NoConfiguredProviderError",
    "ObjectDoesNotExistError",
    "SimpleDateAssetsVersioningSystem",
    "StorageDriverError",
    "StorageProvider",
    "StoreDriver",
    "UnknownAssetsVersioningSystemError",
    "UnknownDriverError",
    "errors",
    "manager",
    "remote",
    "settings",
    "versioning",
]
