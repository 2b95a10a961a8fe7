"""``Remote``: one store location and the few requests the protocol makes to it.

Everything that talks to a store goes through a ``Remote``: ``AssetStore`` (publish,
list, describe), the claim protocol (``claims.py``), the maintenance commands and the
compat layer. Each request is one call to the fsspec filesystem, its backend errors
translated into ``StoreError``s (``backends.store_errors``) and retried with the store's
``RetryPolicy`` (``retry.py``)::

    Remote(url, storage_options)
      .fs .root .layout .retry .display_url        opened lazily, on first use
      .request(action, func)                       any call: translated + retried
      .list(path) .exists(key) .read(key)          never served from a stale cache
      .create_exclusive(key, data)                 the commit primitive (G1)
      .replace(key, data) .remove(key)             the index; clean-ups

The storage options (credentials) are kept here and nowhere else; they are never
printed (G7): ``repr`` and ``display_url`` carry the URL without its secrets.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from modelkit_assets.backends import (
    DEFAULT_OPTIONS_ORIGIN,
    backend_for,
    check_bucket,
    create_exclusive,
    list_dir,
    open_filesystem,
    redact_url,
    store_errors,
    write_replace,
)
from modelkit_assets.errors import ConfigurationError, OfflineError
from modelkit_assets.layout import RemoteLayout
from modelkit_assets.retry import RetryPolicy
from modelkit_assets.settings import DEFAULT_CONCURRENCY, DEFAULT_RETRIES, DEFAULT_RETRY_DEADLINE_S

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

T = TypeVar("T")


class Remote:
    """A store location: its filesystem, root, layout and retry policy.

    Parameters
    ----------
    url
        Any fsspec URL, or a local path (made absolute).
    storage_options
        Passed to fsspec; never printed.
    pool_size
        Requests in flight at once (sizes the S3 connection pool).
    filesystem
        An already open filesystem to use instead of opening one.
    retry
        The retry policy; by default ``attempts`` tries within ``deadline_s``, and none
        on local disk or memory.
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
        *,
        pool_size: int = DEFAULT_CONCURRENCY,
        filesystem: AbstractFileSystem | None = None,
        retry: RetryPolicy | None = None,
        attempts: int = DEFAULT_RETRIES,
        deadline_s: float = DEFAULT_RETRY_DEADLINE_S,
        offline: bool = False,
        options_origin: str | None = None,
    ) -> None:
        text = os.fspath(url)
        if "://" not in text:
            from pathlib import Path

            text = Path(text).expanduser().resolve().as_uri()
        self.url = text
        self.storage_options: Mapping[str, Any] = dict(storage_options or {})
        self.pool_size = pool_size
        self._fs = filesystem
        self._root: str | None = None
        self._retry = retry
        self._retry_bounds = (attempts, deadline_s)
        #: never contact the store: every request is refused before any connection
        self.offline = offline
        #: where the storage options come from, named when the backend refuses them
        self.options_origin = options_origin or DEFAULT_OPTIONS_ORIGIN

    @property
    def display_url(self) -> str:
        """The URL without credentials (G7)."""
        return redact_url(self.url)

    @property
    def protocol(self) -> str:
        return self.url.split("://", 1)[0].lower()

    def __repr__(self) -> str:
        return f"Remote({self.display_url!r})"

    # -- opening --------------------------------------------------------------------
    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec filesystem (opened on first use). Every request goes through here,
        so this is where offline mode stops them: no connection is ever attempted.

        Raises
        ------
        OfflineError
            When offline mode is on.
        """
        if self.offline:
            raise OfflineError(
                f"offline: the store {self.display_url} is not used while MODELKIT_ASSETS_OFFLINE "
                "is set; unset it to reach the store."
            )
        if self._fs is None or self._root is None:
            with store_errors(self.display_url, "open the store", origin=self.options_origin):
                fs, root = open_filesystem(
                    self.url, self.storage_options, pool_size=self.pool_size, origin=self.options_origin
                )
            if self._fs is None:
                self._fs = fs
            self._root = root
        return self._fs

    @property
    def root(self) -> str:
        """The store's root path inside its filesystem."""
        if self._root is None and self.offline and backend_for(self.protocol).is_local_storage:
            # keys of a disk or memory store are known without any connection, offline too
            # (compat checks that the assets dir is not the store's folder)
            with store_errors(self.display_url, "open the store", origin=self.options_origin):
                self._root = open_filesystem(self.url, self.storage_options, origin=self.options_origin)[1]
        if self._root is None:
            self.fs  # noqa: B018 - opening resolves the root
        if self._root is None:  # pragma: no cover - set by ``fs``
            raise ConfigurationError(f"The store {self.display_url} has no root path.")
        return self._root

    @property
    def layout(self) -> RemoteLayout:
        return RemoteLayout(self.root)

    @property
    def retry(self) -> RetryPolicy:
        """How each request is retried; never on a local disk or in memory, where a
        failure does not go away by itself."""
        if self._retry is None:
            if backend_for(self.fs).is_local_storage:
                self._retry = RetryPolicy.never()
            else:
                attempts, deadline = self._retry_bounds
                self._retry = RetryPolicy(attempts=attempts, deadline_s=deadline)
        return self._retry

    # -- requests -------------------------------------------------------------------
    @contextlib.contextmanager
    def errors(self, action: str, *, local: str | None = None) -> Iterator[None]:
        """Translate backend errors raised inside into ``StoreError``s naming ``action``;
        failures of the local folder ``local`` (a download's destination) pass through,
        for the caller to report as local disk errors (localdisk.py)."""
        with store_errors(self.display_url, action, origin=self.options_origin, local=local):
            yield

    def request(self, action: str, func: Callable[[], T]) -> T:
        """``func()`` (one store request), its errors translated and retried."""

        def attempt() -> T:
            with store_errors(self.display_url, action, origin=self.options_origin):
                try:
                    return func()
                except FileNotFoundError:
                    # object stores answer a write or read in a missing bucket with "no such
                    # key" too: one more request, on this failure path only, tells them apart
                    check_bucket(self.fs, self.root)
                    raise

        return self.retry.call(attempt, what=action)

    def list(self, path: str, action: str = "list") -> list[dict[str, Any]]:
        """The entries of ``path`` (one delimited listing; missing means empty)."""
        return self.request(action, lambda: list_dir(self.fs, path))

    def exists(self, key: str, action: str = "check") -> bool:
        """Whether the object ``key`` exists, asked of the server (no cached answer)."""

        def check() -> bool:
            self.fs.invalidate_cache(key)
            return backend_for(self.fs).object_exists(self.fs, key)

        return self.request(action, check)

    def read(self, key: str, action: str = "read", *, limit: int | None = None) -> bytes:
        """The bytes of ``key`` (at most its first ``limit`` bytes).

        Raises
        ------
        FileNotFoundError
            If there is no such object.
        """

        def read() -> bytes:
            self.fs.invalidate_cache(key)
            if limit is not None:
                return bytes(self.fs.cat_file(key, start=0, end=limit))
            return bytes(self.fs.cat_file(key))

        return self.request(action, read)

    def create_exclusive(self, key: str, data: bytes, action: str = "create") -> None:
        """Create ``key`` only if nothing is there (G1; ``backends.create_exclusive``).

        Raises
        ------
        FileExistsError
            If it exists (possibly our own create, retried after a lost answer).
        """
        self.request(action, functools.partial(create_exclusive, self.fs, key, data))

    def replace(self, key: str, data: bytes, action: str = "write") -> None:
        """Overwrite ``key`` (the mutable index only; atomic on local disk)."""
        self.request(action, functools.partial(write_replace, self.fs, key, data))

    def remove(self, key: str, action: str = "remove") -> None:
        """Remove ``key`` and everything under it; nothing there is not an error."""

        def remove() -> None:
            self.fs.invalidate_cache(key)
            if self.fs.exists(key):
                self.fs.rm(key, recursive=True)

        with contextlib.suppress(FileNotFoundError):
            self.request(action, remove)
