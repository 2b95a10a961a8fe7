"""Store backends: opening an fsspec filesystem for a store URL, and everything that
differs between backends, behind one small set of hooks (``base.Backend``).

One module per backend (``local``, ``memory``, ``s3``, ``gcs``, ``azure``); any other
fsspec protocol is driven by the generic hooks. The functions here are what the rest of
the package calls: they pick the backend of a filesystem and never branch on protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelkit_assets.backends.base import Backend
from modelkit_assets.backends.errors import (
    DEFAULT_OPTIONS_ORIGIN,
    MissingBucketError,
    bad_options_message,
    store_errors,
    translate_error,
)
from modelkit_assets.backends.registry import backend_for
from modelkit_assets.errors import BackendNotInstalledError, ConfigurationError
from modelkit_assets.urls import USERINFO_RE, basename, protocol_of, redact_url

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

__all__ = [
    "DEFAULT_OPTIONS_ORIGIN",
    "Backend",
    "MissingBucketError",
    "backend_for",
    "basename",
    "check_bucket",
    "create_exclusive",
    "ensure_parent",
    "list_dir",
    "open_filesystem",
    "protocol_of",
    "redact_url",
    "store_errors",
    "translate_error",
    "write_replace",
]


def open_filesystem(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    pool_size: int | None = None,
    origin: str = DEFAULT_OPTIONS_ORIGIN,
) -> tuple[AbstractFileSystem, str]:
    """Return ``(filesystem, root path)`` for a store URL.

    ``pool_size`` sizes the connection pool to the transfer concurrency where the backend
    has one; ``origin`` says where the options come from (``MODELKIT_ASSETS_STORAGE_OPTIONS``,
    an option of the command), for error messages.

    Raises
    ------
    BackendNotInstalledError
        If the backend package is missing (with the extra to install).
    ConfigurationError
        If the URL's protocol is unknown to fsspec, or an option's name or value is not
        one the backend takes, or the URL holds credentials the backend cannot take.
    """
    protocol = protocol_of(url)
    backend = backend_for(protocol)
    options = dict(storage_options or {})
    try:
        cls = backend.filesystem_class(protocol)
    except ImportError as err:
        raise _not_installed(protocol) from err
    except ValueError:  # a protocol fsspec does not know
        raise ConfigurationError(
            f"Unknown store protocol {protocol!r} in {redact_url(url)}; use an fsspec URL "
            "such as s3://bucket/prefix, gs://, az://, file:// or memory://."
        ) from None
    backend.check_options(protocol, cls, options, origin)
    match = USERINFO_RE.match(url)
    if match is not None:
        userinfo = url[len(match.group(1)) : match.end() - 1]
        url, options = backend.credentials_from_url(
            url, match.group(1) + url[match.end() :], userinfo, options
        )
    options = backend.prepare_options(options, pool_size=pool_size, origin=origin)
    try:
        fs, root = backend.open(cls, url, options)
    except ImportError as err:
        raise _not_installed(protocol) from err
    except (TypeError, ValueError) as err:
        raise ConfigurationError(bad_options_message(protocol, origin, err)) from err
    backend.limit_retries(fs, storage_options or {})
    return fs, root


def _not_installed(protocol: str) -> BackendNotInstalledError:
    extra = backend_for(protocol).extra
    hint = f"pip install 'modelkit-assets[{extra}]'" if extra else "install its fsspec backend"
    return BackendNotInstalledError(f"The backend for {protocol}:// stores is not installed: {hint}.")


def create_exclusive(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` only if nothing is there, atomically (G1), with what each
    backend enforces (see each backend's ``create_exclusive``). ``data`` is never empty:
    a zero-length s3fs exclusive write is not enforced.

    Raises
    ------
    FileExistsError
        If the object already exists.
    """
    if not data:
        raise ValueError("exclusive create needs non-empty data")
    backend_for(fs).create_exclusive(fs, path, data)


def write_replace(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Overwrite ``path`` with ``data`` (readers see the old bytes or the new)."""
    backend_for(fs).write_replace(fs, path, data)


def ensure_parent(fs: AbstractFileSystem, path: str) -> None:
    """Create the parent folder where the backend has real folders (local disk)."""
    backend_for(fs).ensure_parent(fs, path)


def list_dir(fs: AbstractFileSystem, path: str) -> list[dict[str, Any]]:
    """One delimited listing of ``path``, never served from a stale listings cache."""
    fs.invalidate_cache(path)
    try:
        entries = fs.ls(path, detail=True)
    except FileNotFoundError:
        entries = []
    except NotADirectoryError:
        return []
    if not entries:
        # object stores answer "nothing here" for a missing bucket too: tell them apart
        check_bucket(fs, path)
    # some backends list a file path as itself
    return [e for e in entries if e["name"].rstrip("/") != path.rstrip("/") or e["type"] == "directory"]


def check_bucket(fs: AbstractFileSystem, path: str) -> None:
    """Raise ``MissingBucketError`` if ``path``'s bucket or container does not exist.

    Only called when a listing came back empty or a key was missing, so the extra request
    is paid on the rare paths (a new asset, a wrong store URL). Credentials allowed to
    read objects but not to look at the bucket itself get the benefit of the doubt.
    """
    backend = backend_for(fs)
    if backend.is_local_storage:
        return
    bucket = path.split("://", 1)[-1].lstrip("/").split("/", 1)[0]
    if not bucket:
        return
    try:
        exists = backend.bucket_exists(fs, bucket)
    except FileNotFoundError:
        exists = False
    except Exception:  # no right to look at the bucket itself: the listing's answer stands
        return
    if exists is False:
        raise MissingBucketError("the bucket does not exist")
