"""Every error modelkit-assets raises, in one tree.

Each class also inherits the builtin that matches its failure, so callers that catch
``FileNotFoundError`` or ``ValueError`` keep working::

    AssetsError
    ├── InvalidSpecError (ValueError)
    │   ├── InvalidNameError
    │   ├── InvalidVersionError
    │   ├── InvalidSubPartError
    │   └── VersioningOptionError
    ├── UnknownVersioningSystemError (ValueError)
    ├── ConfigurationError (ValueError)
    ├── InvalidSourceError (ValueError)
    ├── InvalidMetaError (ValueError)
    ├── IntegrityError (OSError)
    ├── AssetNotFoundError (FileNotFoundError)
    │   ├── VersionNotFoundError
    │   └── SubPartNotFoundError
    ├── AssetExistsError (FileExistsError)
    │   └── VersionExistsError
    ├── PublishConflictError (RuntimeError)
    │   └── ClaimLostError
    ├── AliasConflictError (RuntimeError)
    ├── CacheLockTimeoutError (TimeoutError)
    ├── LocalDiskError (OSError)
    │   └── CacheNotWritableError (PermissionError)
    ├── SignatureError (PermissionError)
    ├── LockfileError (ValueError)
    ├── LockMismatchError (RuntimeError)
    ├── StoreError (OSError)
    │   ├── StoreNotFoundError
    │   ├── StorePermissionError (PermissionError)
    │   └── StoreUnreachableError (ConnectionError)
    ├── BackendNotInstalledError (ImportError)
    ├── ReadOnlyFilesystemError (PermissionError)
    └── OfflineError (RuntimeError)

Messages name the asset, the version and the store (its URL without secrets) and say
what to do next. They never contain credentials or storage options.

``modelkit_assets.compat`` raises modelkit 0.1.3's error names (``AssetAlreadyExistsError``,
``ObjectDoesNotExistError``, ...), each a subclass of the matching class above; its
docstring draws that tree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class AssetsError(Exception):
    """Base class of every modelkit-assets error."""


class InvalidSpecError(AssetsError, ValueError):
    """An asset spec (``name[:version][[sub/part]]``) cannot be parsed."""


class InvalidNameError(InvalidSpecError):
    """An asset name breaks the naming rules."""


class InvalidVersionError(InvalidSpecError):
    """A version is not valid for the versioning system in use."""


class InvalidSubPartError(InvalidSpecError):
    """A sub-part would leave the asset version or is malformed."""


class VersioningOptionError(InvalidSpecError):
    """An option that means nothing for the versioning system in use (``--bump-major`` or
    ``NAME:MAJOR`` with ``simple_date``), or two options that contradict each other."""


class UnknownVersioningSystemError(AssetsError, ValueError):
    """No versioning system is registered under this name."""


class ConfigurationError(AssetsError, ValueError):
    """The settings (environment or arguments) are inconsistent or malformed."""


class InvalidSourceError(AssetsError, ValueError):
    """The file or folder to publish cannot be published as it is."""


class InvalidMetaError(AssetsError, ValueError):
    """A ``.meta`` object in the store is malformed or unsafe."""


class IntegrityError(AssetsError, OSError):
    """Downloaded bytes do not match the manifest."""


class AssetNotFoundError(AssetsError, FileNotFoundError):
    """The asset does not exist in the store (nor in the cache)."""


class VersionNotFoundError(AssetNotFoundError):
    """The asset exists but not this version."""


class SubPartNotFoundError(AssetNotFoundError):
    """The version exists but has no such sub-part."""


class AssetExistsError(AssetsError, FileExistsError):
    """``new`` was asked for an asset that already exists."""


class VersionExistsError(AssetExistsError):
    """A version that was about to be committed already exists."""


class PublishConflictError(AssetsError, RuntimeError):
    """Too many concurrent writers took every candidate version."""


class ClaimLostError(PublishConflictError):
    """A publisher's claim was taken over, or could not be renewed within its lease: it
    stopped before committing."""


class AliasConflictError(AssetsError, RuntimeError):
    """An alias move based on a stale read (``--expect``), or a move that raced a retire."""


class CacheLockTimeoutError(AssetsError, TimeoutError):
    """Another process held the asset's cache lock for too long."""


class LocalDiskError(AssetsError, OSError):
    """A local folder (the assets dir, ``TMPDIR``, a local store) cannot be written: full,
    read-only, not a folder, permission denied. Says which setting points there; never
    retried (``localdisk.py`` builds it)."""


class CacheNotWritableError(LocalDiskError, PermissionError):
    """A version must be installed but the assets dir is read-only (or not ours to write);
    versions already in it are still served."""


class SignatureError(AssetsError, PermissionError):
    """A version is refused because signatures are required and none by a trusted key
    matches its manifest (or a version cannot be signed)."""


class LockfileError(AssetsError, ValueError):
    """An ``assets.lock`` file cannot be read or is malformed."""


class LockMismatchError(AssetsError, RuntimeError):
    """What the store or the cache holds differs from an ``assets.lock`` (``sync``)."""


class StoreError(AssetsError, OSError):
    """The store could not be read or written."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """The bucket, container or root folder of the store does not exist."""


class StorePermissionError(StoreError, PermissionError):
    """The credentials in use are refused by the store."""


class StoreUnreachableError(StoreError, ConnectionError):
    """The store's endpoint does not answer."""


class BackendNotInstalledError(AssetsError, ImportError):
    """The fsspec backend of the store URL is not installed."""


class ReadOnlyFilesystemError(AssetsError, PermissionError):
    """A write through the ``modelkit-assets://`` fsspec protocol: published versions
    never change; publish a new one instead."""


class OfflineError(AssetsError, RuntimeError):
    """Offline mode (``MODELKIT_ASSETS_OFFLINE``) is on and the operation needs the store:
    it is refused before any connection is attempted."""


@contextlib.contextmanager
def first_error() -> Iterator[None]:
    """Raise a failed ``TaskGroup``'s first error itself: callers (and ``store_errors``)
    expect the backend's own exception, not an ``ExceptionGroup``."""
    try:
        yield
    except ExceptionGroup as failed:
        raise failed.exceptions[0] from None
