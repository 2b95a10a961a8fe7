"""modelkit.assets.errors (and the errors modelkit defines in its other modules)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from modelkit_assets import errors


# -- errors (modelkit.assets.errors, .manager, .remote, .versioning.major_minor) -------
class AssetsManagerError(errors.AssetsError):
    """modelkit's base class of asset errors."""


class AssetAlreadyExistsError(AssetsManagerError, errors.AssetExistsError):
    """The asset (``new``) or the version (``update``) already exists."""


class AssetDoesNotExistError(AssetsManagerError, errors.AssetNotFoundError):
    """``update`` of an asset that was never created, or an unknown local path."""


class AssetMajorVersionDoesNotExistError(AssetsManagerError, errors.VersionNotFoundError):
    """The major version asked for does not exist."""


class LocalAssetDoesNotExistError(AssetsManagerError, errors.VersionNotFoundError):
    """No store is configured and the assets dir does not hold the version."""


class UnknownAssetsVersioningSystemError(AssetsManagerError, errors.UnknownVersioningSystemError):
    """No versioning system has this name."""


class InvalidAssetSpecError(AssetsManagerError, errors.InvalidSpecError):
    """The spec string cannot be parsed."""


class InvalidNameError(InvalidAssetSpecError, errors.InvalidNameError):
    """The asset name breaks the naming rules."""


class InvalidVersionError(InvalidAssetSpecError, errors.InvalidVersionError):
    """The version is not valid for the versioning system."""


class InvalidMajorVersionError(InvalidVersionError):
    """A major version is not an integer."""


class MajorVersionDoesNotExistError(InvalidVersionError):
    """No version of the asset has this major."""


class StorageDriverError(errors.AssetsError):
    """modelkit's base class of storage errors."""


class ObjectDoesNotExistError(StorageDriverError, errors.AssetNotFoundError):
    """The asset, its index or the version's objects are not in the store."""


class AssetFetchError(errors.SubPartNotFoundError):
    """The fetched path (a sub-part) does not exist."""


class NoConfiguredProviderError(errors.ConfigurationError):
    """No ``MODELKIT_STORAGE_PROVIDER`` (nor ``MODELKIT_ASSETS_STORE``) is set."""


class UnknownDriverError(errors.ConfigurationError):
    """The provider is not one of ``gcs``, ``s3``, ``az``, ``local``."""


class DriverNotInstalledError(errors.BackendNotInstalledError):
    """The fsspec backend of the provider is not installed."""


_MODELKIT_ERRORS = (AssetsManagerError, StorageDriverError, AssetFetchError, errors.ConfigurationError)


def _translate(err: errors.AssetsError, not_found: type[errors.AssetsError]) -> errors.AssetsError | None:
    """The modelkit-named error for one of ours (``None``: keep ours, modelkit has none)."""
    if isinstance(err, errors.InvalidNameError):
        return InvalidNameError(str(err))
    if isinstance(err, errors.InvalidVersionError):
        return InvalidVersionError(str(err))
    if isinstance(err, errors.InvalidSpecError):
        return InvalidAssetSpecError(str(err))
    if isinstance(err, errors.UnknownVersioningSystemError):
        return UnknownAssetsVersioningSystemError(str(err))
    if isinstance(err, errors.AssetExistsError):
        return AssetAlreadyExistsError(str(err))
    if isinstance(err, errors.SubPartNotFoundError):
        return AssetFetchError(str(err))
    if isinstance(err, errors.AssetNotFoundError):
        return not_found(str(err))
    if isinstance(err, errors.BackendNotInstalledError):
        return DriverNotInstalledError(str(err))
    return None


@contextlib.contextmanager
def modelkit_errors(not_found: type[errors.AssetsError] = ObjectDoesNotExistError) -> Iterator[None]:
    """Re-raise modelkit-assets errors under modelkit's names (the cause is chained)."""
    try:
        yield
    except _MODELKIT_ERRORS:
        raise
    except errors.AssetsError as err:
        translated = _translate(err, not_found)
        if translated is None:
            raise
        raise translated from err
