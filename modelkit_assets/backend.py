"""Opening an fsspec filesystem for a store URL, and everything backend-specific:
exclusive create, listing without stale caches, and translation of backend errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from modelkit_assets.errors import (
    AssetsError,
    BackendNotInstalledError,
    ConfigurationError,
    StoreError,
    StoreNotFoundError,
    StorePermissionError,
    StoreUnreachableError,
)
from modelkit_assets.localdisk import is_disk_error, is_under, local_disk_error

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

_EXTRAS = {
    "s3": "s3",
    "s3a": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "az": "azure",
    "abfs": "azure",
    "abfss": "azure",
}
_USERINFO_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@")


def redact_url(url: str) -> str:
    """The URL without user, password or query string: safe to print (G7)."""
    url = _USERINFO_RE.sub(r"\1", url)
    return url.split("?", 1)[0].split("#", 1)[0]


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


#: where storage options come from when the caller does not say (named in errors)
DEFAULT_OPTIONS_ORIGIN = "the storage options"
#: options every fsspec filesystem takes (instance and listings caches, event loop)
_FSSPEC_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop"}
)
#: backends whose constructor swallows unknown options (gcsfs, adlfs, memory, local) or
#: defers them to a first request (s3fs, to botocore's session): their option names are
#: checked up front. Others (sftp, http, ...) pass their extra options on and check them.
_CHECKED_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "memory", "file", "local"})
#: where those backends send their ``**kwargs``: s3fs to aiobotocore's session, adlfs to
#: azure-identity's DefaultAzureCredential (whose keywords are not in its signature)
_FORWARDED = {"s3": "aiobotocore.session:AioSession", "s3a": "aiobotocore.session:AioSession"}
_AZURE_CREDENTIAL_OPTIONS = frozenset(
    {
        "authority",
        "additionally_allowed_tenants",
        "broker_client_id",
        "broker_tenant_id",
        "interactive_browser_client_id",
        "interactive_browser_tenant_id",
        "managed_identity_client_id",
        "process_timeout",
        "shared_cache_tenant_id",
        "shared_cache_username",
        "visual_studio_code_tenant_id",
        "workload_identity_client_id",
        "workload_identity_tenant_id",
    }
)


def _named_parameters(func: Any) -> set[str]:
    import inspect

    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in kinds} - {"self"}


def accepted_options(protocol: str, cls: type) -> set[str] | None:
    """The storage option names a backend takes (``None``: not checked, see above)."""
    if protocol not in _CHECKED_PROTOCOLS:
        return None
    names = set(_FSSPEC_OPTIONS)
    for klass in cls.__mro__:
        if "__init__" in klass.__dict__:
            names |= _named_parameters(klass.__dict__["__init__"])
    forwarded = _FORWARDED.get(protocol)
    if forwarded is not None:
        import importlib

        module, _, attr = forwarded.partition(":")
        names |= _named_parameters(getattr(importlib.import_module(module), attr).__init__)
    if protocol in ("az", "abfs", "abfss"):
        names |= _AZURE_CREDENTIAL_OPTIONS
    return names


def check_options(protocol: str, cls: type, options: Mapping[str, Any], origin: str) -> None:
    """Refuse option names the backend does not know, before they are silently dropped or
    fail a first request (and get retried as if the store were down).

    Raises
    ------
    ConfigurationError
        Naming the unknown options (names only: values may be secrets) and ``origin``.
    """
    accepted = accepted_options(protocol, cls)
    if accepted is None:
        return
    azure = protocol in ("az", "abfs", "abfss")
    # DefaultAzureCredential also takes an exclude_*_credential switch per credential type
    unknown = sorted(k for k in options if k not in accepted and not (azure and k.startswith("exclude_")))
    if unknown:
        raise ConfigurationError(
            f"Unknown storage option(s) {', '.join(map(repr, unknown))} for {protocol}:// stores in "
            f"{origin}; fix or remove them (see the {cls.__module__.split('.')[0]} documentation "
            "for the options it takes)."
        )


def open_filesystem(
    url: str,
    storage_options: Mapping[str, Any] | None = None,
    *,
    pool_size: int | None = None,
    origin: str = DEFAULT_OPTIONS_ORIGIN,
) -> tuple[AbstractFileSystem, str]:
    """Return ``(filesystem, root path)`` for a store URL.

    ``pool_size`` sizes the S3 HTTP connection pool to the transfer concurrency
    (botocore's ``max_pool_connections`` defaults to 10, which would queue the other
    requests); a ``config_kwargs`` given by the user wins. ``origin`` says where the
    options come from (``MODELKIT_ASSETS_STORAGE_OPTIONS``, an option of the command),
    for error messages.

    Raises
    ------
    BackendNotInstalledError
        If the backend package is missing (with the extra to install).
    ConfigurationError
        If the URL's protocol is unknown to fsspec, or an option's name or value is not
        one the backend takes.
    """
    protocol = protocol_of(url)
    if protocol in ("gs", "gcs"):
        # gcsfs >= 2026 otherwise makes a gRPC bucket-type lookup that stalls on emulators
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    import fsspec.core

    options = dict(storage_options or {})
    try:
        cls = fsspec.get_filesystem_class(protocol)
    except ImportError:
        cls = None  # reported below, with the extra to install
    except ValueError:
        cls = None  # an unknown protocol: reported below
    if cls is not None:
        check_options(protocol, cls, options, origin)
    url, options = _credentials_from_url(url, protocol, options)
    if protocol in ("s3", "s3a"):
        options.setdefault("use_listings_cache", False)
        config = options.get("config_kwargs") or {}
        if not isinstance(config, Mapping):
            raise ConfigurationError(
                f"The storage option 'config_kwargs' in {origin} must be a JSON object (botocore's "
                "Config arguments)."
            )
        config = dict(config)
        if pool_size is not None:
            config.setdefault("max_pool_connections", max(10, pool_size))
        # retry.py retries each request with a bounded total: botocore's own retries (5
        # attempts, legacy backoff) would multiply with ours
        config.setdefault("retries", {"total_max_attempts": 2, "mode": "standard"})
        options["config_kwargs"] = config
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as err:
        extra = _EXTRAS.get(protocol)
        hint = f"pip install 'modelkit-assets[{extra}]'" if extra else "install its fsspec backend"
        raise BackendNotInstalledError(
            f"The backend for {protocol}:// stores is not installed: {hint}."
        ) from err
    except ValueError as err:
        if "Protocol not known" in str(err):
            raise ConfigurationError(
                f"Unknown store protocol {protocol!r} in {redact_url(url)}; use an fsspec URL "
                "such as s3://bucket/prefix, gs://, az://, file:// or memory://."
            ) from err
        raise ConfigurationError(_bad_options(protocol, origin, err)) from err
    except TypeError as err:
        raise ConfigurationError(_bad_options(protocol, origin, err)) from err
    _limit_backend_retries(fs, protocol, storage_options or {})
    return fs, root


def _limit_backend_retries(fs: AbstractFileSystem, protocol: str, options: Mapping[str, Any]) -> None:
    """Turn the backends' own retries down to one quick extra try, so that retry.py's
    policy (attempts, jittered backoff, deadline) is what bounds a failing store: nested
    retries would multiply (by default the Azure SDK waits 15 s, then 18 s, then 24 s;
    gcsfs tries 6 times up to 32 s apart, and logs a traceback for each failed request).
    """
    if protocol in ("s3", "s3a") and "retries" not in options:
        fs.retries = 2
    if protocol in ("gs", "gcs"):
        _limit_gcsfs_retries(fs)
    service = getattr(fs, "service_client", None) if protocol in ("az", "abfs", "abfss") else None
    policy = getattr(getattr(service, "_config", None), "retry_policy", None)
    if policy is not None and hasattr(policy, "total_retries") and hasattr(policy, "initial_backoff"):
        policy.total_retries = min(policy.total_retries, 1)
        policy.initial_backoff = min(policy.initial_backoff, 0.2)
        if hasattr(policy, "random_jitter_range"):
            policy.random_jitter_range = min(policy.random_jitter_range, 0.2)
        if hasattr(policy, "increment_base"):
            # the SDK adds increment_base ** n seconds to the initial backoff (3 s by default)
            policy.increment_base = min(policy.increment_base, 0.5)


#: the gcsfs methods that gcsfs wraps in ``retry_request(retries=6)`` when its class is defined
_GCSFS_RETRIED = ("_request", "_get_file_request", "_get_file_concurrent")
_GCSFS_ATTEMPTS = 2


def _limit_gcsfs_retries(fs: AbstractFileSystem) -> None:
    """Give this filesystem instance (only: other gcsfs users keep their defaults) its own
    copies of gcsfs's retried methods, decorated by gcsfs's own ``retry_request`` with 2
    attempts instead of 6. The undecorated method is the decorator's ``__wrapped__``."""
    import types

    try:
        from gcsfs.retry import retry_request
    except ImportError:  # a gcsfs without its retry module: nothing to turn down
        return
    for name in _GCSFS_RETRIED:
        original = getattr(getattr(type(fs), name, None), "__wrapped__", None)
        if original is not None:
            setattr(fs, name, types.MethodType(retry_request(retries=_GCSFS_ATTEMPTS)(original), fs))


def _credentials_from_url(url: str, protocol: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Take ``user:password@`` out of a cloud store URL before fsspec sees it (G7).

    s3fs, gcsfs and adlfs do not read credentials from the URL: they would take
    ``key:secret@bucket`` as the bucket name and quote it in every request and error.
    For S3 the pair becomes the ``key``/``secret`` options (unless given); other cloud
    backends have no such pair and refuse it. Other protocols (sftp, ftp, http) parse
    their own userinfo and get the URL unchanged.

    Raises
    ------
    ConfigurationError
        If a gs:// or az:// URL holds credentials.
    """
    match = _USERINFO_RE.match(url)
    if match is None or protocol not in _EXTRAS:
        return url, options
    userinfo = url[len(match.group(1)) : match.end() - 1]
    clean = match.group(1) + url[match.end() :]
    if protocol not in ("s3", "s3a"):
        raise ConfigurationError(
            f"The store URL {redact_url(url)} holds credentials, which {protocol}:// stores do not "
            "take from a URL: remove them and use the storage options or the SDK's variables."
        )
    from urllib.parse import unquote

    key, _, secret = userinfo.partition(":")
    options = dict(options)
    options.setdefault("key", unquote(key))
    if secret:
        options.setdefault("secret", unquote(secret))
    return clean, options


def is_local(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def create_exclusive(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` only if nothing is there, atomically (G1).

    Uses what each backend enforces: ``os.link`` of a complete temporary file on local
    disk (fsspec's local ``mode="create"`` overwrites), and ``pipe_file(mode="create")``
    elsewhere (s3fs ``If-None-Match``, gcsfs ``ifGenerationMatch=0``, adlfs
    ``If-None-Match``, memory). ``data`` is never empty: a zero-length s3fs exclusive
    write is not enforced.

    Raises
    ------
    FileExistsError
        If the object already exists.
    """
    if not data:
        raise ValueError("exclusive create needs non-empty data")
    if is_local(fs):
        local = fs._strip_protocol(path)
        folder = os.path.dirname(local)
        os.makedirs(folder, exist_ok=True)
        # not mkstemp: its 0600 would make the object unreadable to the other users of a
        # shared store; 0666 gets the umask and default ACLs, as any plain write does
        tmp = os.path.join(folder, f".tmp-{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, local)
        finally:
            os.unlink(tmp)
        return
    if _is_memory(fs):
        # memory's "xb" checks then writes: two threads could both pass the check
        with _MEMORY_CREATE_LOCK:
            fs.pipe_file(path, data, mode="create")
        return
    fs.pipe_file(path, data, mode="create")


_MEMORY_CREATE_LOCK = threading.Lock()


def _is_memory(fs: AbstractFileSystem) -> bool:
    from fsspec.implementations.memory import MemoryFileSystem

    return isinstance(fs, MemoryFileSystem)


def ensure_parent(fs: AbstractFileSystem, path: str) -> None:
    """Create the parent folder where the backend has real folders (local disk)."""
    if is_local(fs):
        os.makedirs(os.path.dirname(fs._strip_protocol(path)), exist_ok=True)


def write_replace(fs: AbstractFileSystem, path: str, data: bytes) -> None:
    """Overwrite ``path`` with ``data``; on local disk by an atomic rename."""
    if is_local(fs):
        local = fs._strip_protocol(path)
        os.makedirs(os.path.dirname(local), exist_ok=True)
        tmp = f"{local}.tmp-{uuid.uuid4().hex}"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, local)
        return
    fs.pipe_file(path, data)


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


class MissingBucketError(Exception):
    """The bucket or container of a path does not exist (``translate_error`` makes it a
    ``StoreNotFoundError`` naming the store)."""


def check_bucket(fs: AbstractFileSystem, path: str) -> None:
    """Raise ``MissingBucketError`` if ``path``'s bucket or container does not exist.

    Only called when a listing came back empty, so the extra request is paid on the
    rare paths (a new asset, a wrong store URL). Credentials allowed to read objects but
    not to look at the bucket itself get the benefit of the doubt.
    """
    if is_local(fs) or _is_memory(fs):
        return
    bucket = fs._strip_protocol(path).lstrip("/").split("/", 1)[0]
    if not bucket:
        return
    try:
        exists = _bucket_exists(fs, bucket)
    except Exception:  # no right to look at the bucket itself: the listing's answer stands
        return
    if not exists:
        raise MissingBucketError("the bucket does not exist")


def _bucket_exists(fs: AbstractFileSystem, bucket: str) -> bool:
    """One request that tells a missing bucket apart (the backends' own ``exists`` hide
    errors: s3fs answers ``False`` when refused, adlfs warns and answers ``True``)."""
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    try:
        if "s3" in protocols:
            fs.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1)
        elif "gs" in protocols:
            fs.call("GET", "b/{}", bucket, json_out=True)
        elif protocols & {"az", "abfs"}:
            from fsspec.asyn import sync

            return bool(sync(fs.loop, fs.service_client.get_container_client(bucket).exists))
        else:
            fs.invalidate_cache(bucket)
            return bool(fs.exists(bucket))
    except FileNotFoundError:
        return False
    return True


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


_UNREACHABLE_NAMES = (
    "EndpointConnectionError",
    "ClientConnectorError",
    "ServerDisconnectedError",
    "ConnectTimeoutError",
    "ServiceRequestError",
    "ConnectionError",
    "TimeoutError",
)
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
        if is_disk_error(err):
            failed = f"The store {store} could not {action}"
            error = local_disk_error(err, store, "MODELKIT_ASSETS_STORE", failed)
            assert error is not None
            raise error from err
        raise translate_error(err, store, action) from err
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


def _bad_options(protocol: str, origin: str, err: BaseException) -> str:
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
    if (
        isinstance(err, MissingBucketError)
        or "NoSuchBucket" in names
        or "ContainerNotFound" in names
        or "bucket does not exist" in names.lower()
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
