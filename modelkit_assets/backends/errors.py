"""Backend exceptions translated into ``StoreError``s that name the store and say what to do
(G7: the original message is dropped, it may quote signed URLs or keys)."""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator

from modelkit_assets.backends.registry import BACKENDS
from modelkit_assets.errors import (
    AssetsError,
    ConfigurationError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
    StoreUnreachableError,
)
from modelkit_assets.localdisk import is_disk_error, is_under, local_disk_error

#: where storage options come from when the caller does not say (named in errors)
DEFAULT_OPTIONS_ORIGIN = "the storage options"


class MissingBucketError(Exception):
    """The bucket or container of a path does not exist (``translate_error`` makes it a
    ``StoreNotFoundError`` naming the store)."""


_UNREACHABLE_NAMES = (
    "EndpointConnectionError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ConnectTimeoutError",
    "ServiceRequestError",
    "ConnectionError",
    "TimeoutError",
)
_MISSING_BUCKET_MARKERS = tuple(m for backend in BACKENDS for m in backend.missing_bucket_markers)
_PERMISSION_NAMES = (
    "AccessDenied",
    "AuthorizationFailure",
    "AuthorizationPermissionMismatch",
    "AuthenticationFailed",
    "RefreshError",
    "DefaultCredentialsError",
    "Invalid Credentials",
    "Forbidden",
    "ClientAuthenticationError",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "NoCredentialsError",
    "Unauthorized",
)


def _names(err: BaseException) -> list[str]:
    chain: list[BaseException] = []
    current: BaseException | None = err
    while current is not None and len(chain) < 8:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return [cls.__name__ for e in chain for cls in type(e).__mro__] + [str(e) for e in chain]


@contextlib.contextmanager
def store_errors(
    store: str, action: str, *, origin: str = DEFAULT_OPTIONS_ORIGIN, local: str | None = None
) -> Iterator[None]:
    """Translate backend exceptions into ``StoreError``s that name the store (G7: the
    original message is dropped, it may quote signed URLs or keys).

    A failure of the local disk is not the store's: with ``local`` (the local folder the
    block writes into, e.g. a download's destination), a full or read-only disk and any
    error naming a path inside ``local`` pass through unchanged, for the caller to report
    (``localdisk.local_writes``); without it, a full or read-only disk is the store's own
    (a ``file://`` store) and is reported as a ``LocalDiskError`` naming it.

    A ``TypeError`` or ``AttributeError`` raised inside the backend comes from how it was
    configured (an option of the wrong type or name, ``origin``): a ``ConfigurationError``,
    never retried.
    """
    try:
        yield
    except AssetsError:
        raise
    except (FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError):
        raise
    except OSError as err:
        if local is not None and (is_disk_error(err) or is_under(err, local)):
            raise
        failed = f"The store {store} could not {action}"
        disk = local_disk_error(err, store, "MODELKIT_ASSETS_STORE", failed) if is_disk_error(err) else None
        raise (disk or translate_error(err, store, action)) from err
    except (TypeError, AttributeError) as err:
        if not _raised_by_backend(err):
            raise
        raise ConfigurationError(
            f"The store {store} could not {action} with {origin} ({type(err).__name__}: an option "
            "has a wrong name or value); fix them, or set MODELKIT_ASSETS_DEBUG=1 to see the cause."
        ) from err
    except Exception as err:
        raise translate_error(err, store, action) from err


def _raised_by_backend(err: BaseException) -> bool:
    """Whether ``err`` was raised outside this package (a bug of ours stays a bug)."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return not str(tb.tb_frame.f_globals.get("__name__", "")).startswith("modelkit_assets")


def bad_options_message(protocol: str, origin: str, err: BaseException) -> str:
    # the type only: the backend's message may quote a value (G7)
    return (
        f"The {protocol}:// backend refused {origin} ({type(err).__name__}: an option has a "
        "wrong name or value); fix them, or set MODELKIT_ASSETS_DEBUG=1 to see the cause."
    )


def _http_status(err: BaseException) -> int | None:
    """The HTTP status of an SDK error (azure ``status_code``, gcsfs ``code``, botocore's
    response metadata), if it carries one."""
    for attr in ("status_code", "code", "status"):
        value = getattr(err, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


def translate_error(err: BaseException, store: str, action: str) -> StoreError:
    names = " ".join(_names(err))
    if (
        isinstance(err, PermissionError)
        or any(n in names for n in _PERMISSION_NAMES)
        or _http_status(err) in (401, 403)
    ):
        return StorePermissionError(
            f"The store {store} refused to {action}: permission denied. Check the credentials "
            "and their rights on this bucket or folder."
        )
    if isinstance(err, MissingBucketError) or any(
        m.lower() in names.lower() for m in _MISSING_BUCKET_MARKERS
    ):
        return StoreNotFoundError(
            f"The bucket or container of {store} does not exist; create it or fix the store URL."
        )
    if any(n in names for n in _UNREACHABLE_NAMES) or (
        isinstance(err, OSError)
        and err.errno in (errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH)
    ):
        return StoreUnreachableError(
            f"The store {store} could not be reached to {action}; check the endpoint and the "
            "network, then retry."
        )
    return StoreError(
        f"The store {store} failed to {action} ({type(err).__name__}); retry, or set "
        "MODELKIT_ASSETS_DEBUG=1 to see the cause."
    )
