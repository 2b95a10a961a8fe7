"""The hooks every store backend answers, with the behaviour of a plain fsspec filesystem.

A backend is one subclass of :class:`Backend` per family of fsspec protocols (see
``local.py``, ``memory.py``, ``s3.py``, ``gcs.py``, ``azure.py``). Whatever fsspec can
open and this package has no module for gets :class:`Backend` itself: the generic,
safe answers (``pipe_file(mode="create")`` for the commit, no options checked, no
transfer tuning). Supporting one more backend well is one more module here.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

from modelkit_assets.errors import ConfigurationError
from modelkit_assets.urls import protocol_of, redact_url

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from fsspec.callbacks import Callback

    from modelkit_assets.integrity import StreamHasher
    from modelkit_assets.manifest import FileEntry
    from modelkit_assets.transfer import Tuning

#: options every fsspec filesystem takes (instance and listings caches, event loop)
FSSPEC_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop"}
)
#: bytes a streamed download holds in memory (a chunk being hashed and written)
STREAM_BUFFER = 2**20


def named_parameters(func: Any) -> set[str]:
    """The keyword names ``func`` takes (empty when it has no readable signature)."""
    try:
        parameters = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return set()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.kind in kinds} - {"self"}


class Backend:
    """A family of fsspec protocols and how this package drives it."""

    #: the URL schemes (fsspec protocols) this backend serves
    protocols: ClassVar[tuple[str, ...]] = ()
    #: the ``modelkit-assets[extra]`` that installs it (``None``: nothing to install)
    extra: ClassVar[str | None] = None
    #: whether option names are checked up front: backends that swallow unknown options
    #: (or defer them to a first request) are checked; others check their own
    checks_options: ClassVar[bool] = False
    #: ``"module:Class"`` whose ``__init__`` receives the filesystem's extra ``**kwargs``
    forwards_options_to: ClassVar[str | None] = None
    #: option names taken through ``**kwargs`` that no signature shows
    extra_option_names: ClassVar[frozenset[str]] = frozenset()
    #: option name prefixes taken that way (``exclude_*_credential``)
    extra_option_prefixes: ClassVar[tuple[str, ...]] = ()
    #: a local disk or process memory: failures do not go away by retrying, keys are
    #: known without any connection, there is no bucket to look for
    is_local_storage: ClassVar[bool] = False
    #: words in an error's class names or message that say the bucket is missing
    missing_bucket_markers: ClassVar[tuple[str, ...]] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    # -- opening --------------------------------------------------------------------
    def filesystem_class(self, protocol: str) -> type:
        """The fsspec class for ``protocol`` (``ImportError`` if its package is missing,
        ``ValueError`` if fsspec does not know the protocol)."""
        import fsspec

        return fsspec.get_filesystem_class(protocol)  # type: ignore[no-any-return]

    def open(self, cls: type, url: str, options: dict[str, Any]) -> tuple[AbstractFileSystem, str]:
        """``(filesystem, root path)`` for ``url``: fsspec's own reading of the URL."""
        import fsspec.core

        fs, root = fsspec.core.url_to_fs(url, **options)
        return fs, root

    def accepted_options(self, cls: type) -> set[str] | None:
        """The storage option names ``cls`` takes (``None``: not checked here)."""
        if not self.checks_options:
            return None
        names = set(FSSPEC_OPTIONS) | self.extra_option_names
        for klass in cls.__mro__:
            if "__init__" in klass.__dict__:
                names |= named_parameters(klass.__dict__["__init__"])
        if self.forwards_options_to is not None:
            module, _, attr = self.forwards_options_to.partition(":")
            names |= named_parameters(getattr(importlib.import_module(module), attr).__init__)
        return names

    def check_options(self, protocol: str, cls: type, options: Mapping[str, Any], origin: str) -> None:
        """Refuse option names the backend does not know, before they are silently dropped
        or fail a first request (and get retried as if the store were down).

        Raises
        ------
        ConfigurationError
            Naming the unknown options (names only: values may be secrets) and ``origin``.
        """
        accepted = self.accepted_options(cls)
        if accepted is None:
            return
        unknown = sorted(
            k for k in options if k not in accepted and not k.startswith(self.extra_option_prefixes)
        )
        if unknown:
            raise ConfigurationError(
                f"Unknown storage option(s) {', '.join(map(repr, unknown))} for {protocol}:// stores in "
                f"{origin}; fix or remove them (see the {cls.__module__.split('.')[0]} documentation "
                "for the options it takes)."
            )

    def credentials_from_url(
        self, url: str, clean_url: str, userinfo: str, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """What to do with ``user:password@`` in a store URL: protocols that parse their own
        userinfo (sftp, ftp, http) get the URL unchanged."""
        return url, options

    def prepare_options(
        self, options: dict[str, Any], *, pool_size: int | None, origin: str
    ) -> dict[str, Any]:
        """The options to open the filesystem with (``pool_size``: requests in flight)."""
        return options

    def limit_retries(self, fs: AbstractFileSystem, options: Mapping[str, Any]) -> None:
        """Turn the backend's own retries down, so that retry.py bounds a failing store."""

    # -- the store protocol -----------------------------------------------------------
    def create_exclusive(self, fs: AbstractFileSystem, path: str, data: bytes) -> None:
        """Write ``data`` at ``path`` only if nothing is there, atomically (G1).

        Raises
        ------
        FileExistsError
            If the object already exists.
        """
        fs.pipe_file(path, data, mode="create")

    def write_replace(self, fs: AbstractFileSystem, path: str, data: bytes) -> None:
        """Overwrite ``path`` with ``data``, readers seeing the old or the new bytes."""
        fs.pipe_file(path, data)

    def ensure_folder(self, fs: AbstractFileSystem, path: str) -> None:
        """Create the folder ``path`` where the backend has real folders."""

    def ensure_parent(self, fs: AbstractFileSystem, path: str) -> None:
        """Create ``path``'s parent folder where the backend has real folders."""
        self.ensure_folder(fs, path.rstrip("/").rsplit("/", 1)[0])

    def object_exists(self, fs: AbstractFileSystem, key: str) -> bool:
        """Whether the object (not a folder) ``key`` exists."""
        return bool(fs.exists(key))

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        """Whether ``bucket`` exists, in one request that tells a missing bucket apart
        (``None``: the backend has no buckets). ``FileNotFoundError`` means missing."""
        fs.invalidate_cache(bucket)
        return bool(fs.exists(bucket))

    # -- transfers ----------------------------------------------------------------------
    #: whether ``aput``/``aget`` stream files natively on the filesystem's event loop;
    #: otherwise transfer.py moves each file through ``open_read``/``open_write``
    streams_async: ClassVar[bool] = False

    def open_read(self, fs: AbstractFileSystem, path: str, tuning: Tuning) -> tuple[BinaryIO, int | None]:
        """A readable file object of the object ``path`` and its size when known."""
        handle = fs.open(path, "rb", block_size=tuning.part_size)
        size = getattr(handle, "size", None)
        return handle, size if isinstance(size, int) else None

    def write_small(self, fs: AbstractFileSystem, path: str, data: bytes) -> None:
        """Write a whole object of at most ``part_size`` bytes in one request."""
        fs.pipe_file(path, data)

    def open_write(self, fs: AbstractFileSystem, path: str, tuning: Tuning) -> BinaryIO:
        """A writable file object creating ``path``, holding at most ``part_size`` bytes."""
        handle: BinaryIO = fs.open(path, "wb", block_size=tuning.part_size)
        return handle

    def abort_write(self, fs: AbstractFileSystem, path: str, handle: BinaryIO) -> None:
        """Give up a write: cancel what the object store started (a multipart or resumable
        upload) without committing the bytes written so far (closing would)."""
        with contextlib.suppress(Exception):
            discard = getattr(handle, "discard", None)
            if callable(discard):
                discard()
        if hasattr(handle, "forced"):
            handle.forced = True  # fsspec's buffered files: close() then skips the last flush
        with contextlib.suppress(Exception):
            handle.close()

    async def aput(
        self,
        fs: AbstractFileSystem,
        local: str,
        key: str,
        tuning: Tuning,
        callback: Callback,
        hasher: StreamHasher,
        *,
        resume: bool = False,
    ) -> None:
        """Upload ``local`` to ``key`` on ``fs``'s loop, feeding ``hasher`` every byte sent;
        with ``resume``, continue what a dead writer left of this upload where the store
        can prove it intact."""
        raise NotImplementedError

    async def aget(
        self,
        fs: AbstractFileSystem,
        key: str,
        local: str,
        tuning: Tuning,
        callback: Callback,
        hasher: StreamHasher,
        *,
        start: int = 0,
    ) -> None:
        """Download ``key`` from byte ``start`` on into ``local`` (whose first ``start``
        bytes are kept) on ``fs``'s loop, feeding ``hasher`` every byte."""
        raise NotImplementedError

    # -- resume: what the store recorded when it wrote an object ----------------------
    #: whether objects written by ``aput``/``open_write`` carry a checksum the store
    #: recorded at write time (``stored_checksum``): a resumed publish keeps the objects
    #: a dead writer left whose checksum matches the file; elsewhere it starts clean
    records_checksums: ClassVar[bool] = False

    def stored_checksum(self, fs: AbstractFileSystem, key: str) -> str | None:
        """The checksum the store recorded for ``key`` when it was written, if any."""
        return None

    def checksums_of(self, entry: FileEntry) -> set[str]:
        """The checksums ``stored_checksum`` gives for an object of this entry's bytes."""
        return set()

    def job_cost(self, direction: str, size: int | None, tuning: Tuning) -> int:
        """Bytes one file transfer holds in memory while it runs (transfer.py's table)."""
        if size is None:
            return tuning.part_size
        return min(size, tuning.part_size)


class CloudBackend(Backend):
    """An object store reached over the network (S3, GCS, Azure)."""

    checks_options = True

    def credentials_from_url(
        self, url: str, clean_url: str, userinfo: str, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """Refused: the cloud SDKs do not read credentials from a URL, they would take
        ``key:secret@bucket`` as the bucket name and quote it in every request and error.

        Raises
        ------
        ConfigurationError
            Always.
        """
        raise ConfigurationError(
            f"The store URL {redact_url(url)} holds credentials, which {protocol_of(url)}:// stores do "
            "not take from a URL: remove them and use the storage options or the SDK's variables."
        )
