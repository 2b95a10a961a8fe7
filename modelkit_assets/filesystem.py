"""``modelkit-assets://``: published assets as a read-only fsspec filesystem.

So that notebooks, pandas, PyArrow or PyTorch code that takes a URL can read an asset
without knowing about this library::

    fsspec.open("modelkit-assets://nlp/tokenizer:1.2/vocab.txt").read()
    pandas.read_csv("modelkit-assets://data/iris:1/iris.csv")

The protocol is registered through the ``fsspec.specs`` entry point, so installing the
package is enough: nothing needs to be imported first.

Paths
-----
A path (what follows ``modelkit-assets://``; leading and trailing ``/`` are ignored) is
read segment by segment, without any I/O (``parse_path``):

1. The first segment that contains ``:`` ends the asset name and holds the version;
   the segments after it are a path inside that version::

       nlp/tokenizer:1.2/vocab.txt  ->  asset nlp/tokenizer, version 1.2, file vocab.txt
       data/iris:1                  ->  the latest 1.* of data/iris (partial versions resolve
                                        on every call, as AssetsManager.fetch does)

2. A path without any ``:`` is an asset name at its latest version: a file asset reads
   as a file, a directory asset as a folder. A file inside the latest version cannot be
   written without a version (``data/iris/iris.csv`` is the asset ``data/iris/iris.csv``),
   so ``ls`` of a version-less directory asset names its entries with the resolved
   version (``data/iris:1.0/iris.csv``): valid paths, pinned to what was listed.

3. The empty path, and a path without ``:`` that is not an asset but a prefix of asset
   names (``data``), is a folder whose entries are the next segment of those names. When a
   name is both an asset and the prefix of other names, the asset wins: reach the others
   by their full name.

Reading
-------
Bytes are read only from the verified local cache: opening a file fetches its whole
version through ``AssetsManager`` (every file checked against its size and sha256, G4)
and opens the cached copy, so nothing is ever read unverified and the next read costs no
network call (G6). ``ls``, ``info``, ``exists`` and ``find`` read the cached version, or
its manifest (``.meta``) in the store when it is not cached yet, and download no data.
Writing raises ``ReadOnlyFilesystemError`` (a ``PermissionError``): publish with
``AssetStore.new/update`` or ``modelkit-assets update``.

Storage options
---------------
Every option falls back on the environment (``MODELKIT_ASSETS_*``, see ``settings``)::

    store           store URL (or an AssetStore); e.g. "s3://bucket/prefix"
    store_options   fsspec options of the store (credentials, endpoint_url, ...)
    assets_dir      the local cache
    offline         True: resolve and read from the cache alone, never touch the network
    versioning      "major_minor" / "simple_date" / a registered system
    require_signature  True: open only versions a trusted key signed
    trusted_keys    PEM files of the trusted public keys (MODELKIT_ASSETS_TRUSTED_KEYS)
    manager         an AssetsManager to use instead of all of the above
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

from fsspec import AbstractFileSystem

from modelkit_assets.errors import (
    AssetNotFoundError,
    ConfigurationError,
    InvalidSpecError,
    ReadOnlyFilesystemError,
    StoreUnreachableError,
    SubPartNotFoundError,
)
from modelkit_assets.layout import SUCCESS_NAME
from modelkit_assets.spec import AssetSpec, check_alias, check_name, check_relative_path, check_version_syntax

if TYPE_CHECKING:
    from modelkit_assets.manager import AssetsManager
    from modelkit_assets.store import AssetStore

logger = logging.getLogger(__name__)

PROTOCOL = "modelkit-assets"

#: options of fsspec's own machinery, accepted and passed on to ``AbstractFileSystem``
_FSSPEC_OPTIONS = frozenset(
    {"skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths", "asynchronous", "loop"}
)


@dataclass(frozen=True)
class AssetPath:
    """A parsed ``modelkit-assets://`` path (see the module docstring for the rule).

    ``name`` is empty for the root; ``version`` is ``None`` when the path has no ``:``
    (the latest version, or a prefix of names); ``inner`` is the ``/``-separated path
    inside the version, empty for the version itself.
    """

    name: str
    version: str | None = None
    inner: str = ""
    #: ``name@alias``: the version the alias points to
    alias: str | None = None

    @property
    def pinned(self) -> bool:
        """Whether the path holds a version segment (``name:version`` or ``name@alias``)."""
        return self.version is not None or self.alias is not None

    @property
    def spec(self) -> AssetSpec:
        """The version part as a spec (no sub-part)."""
        return AssetSpec(self.name, self.version, alias=self.alias)


def parse_path(path: str) -> AssetPath:
    """Split a path (protocol already stripped) into name, version and inner path.

    Pure: no I/O. The first segment containing ``:`` (a version) or ``@`` (an alias)
    ends the name.

    Raises
    ------
    InvalidSpecError
        If the name, version or inner path breaks the naming rules (G5).
    """
    path = path.strip("/")
    if not path:
        return AssetPath("")
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if ":" in segment or "@" in segment:
            alias = None
            if "@" in segment and (":" not in segment or segment.index("@") < segment.index(":")):
                last, alias = segment.split("@", 1)
                check_alias(alias)
                version = None
            else:
                last, version = segment.split(":", 1)
                check_version_syntax(version)
            name = "/".join([*segments[:index], last])
            inner = "/".join(segments[index + 1 :])
            check_name(name)
            if inner:
                check_relative_path(inner, what="path")
            return AssetPath(name, version, inner, alias)
    return AssetPath(check_name(path))


@dataclass(frozen=True)
class _Tree:
    """The files of one complete version: relative path -> size (``None`` if unknown).

    A file asset has the single key ``""``. Versions are immutable (G1), so a tree is
    cached for the life of the filesystem instance.
    """

    is_directory: bool
    sizes: Mapping[str, int | None]

    def kind(self, inner: str) -> str | None:
        """``"file"``, ``"directory"`` or ``None`` (no such path in the version)."""
        if inner in self.sizes:
            return "file"
        if self.is_directory and (not inner or any(p.startswith(inner + "/") for p in self.sizes)):
            return "directory"
        return None

    def children(self, inner: str) -> dict[str, str]:
        """The entries right below folder ``inner``: relative path -> kind."""
        prefix = f"{inner}/" if inner else ""
        out: dict[str, str] = {}
        for path in self.sizes:
            if not path.startswith(prefix):
                continue
            head, sep, _ = path[len(prefix) :].partition("/")
            out[prefix + head] = "directory" if sep else "file"
        return out


def _read_only(path: str) -> NoReturn:
    raise ReadOnlyFilesystemError(
        f"{PROTOCOL}://{path} is read-only: published versions never change. Publish a new "
        "version with AssetStore.update(PATH, NAME) or `modelkit-assets update PATH NAME`."
    )


class AssetsFileSystem(AbstractFileSystem):  # type: ignore[misc]  # fsspec is untyped
    """Read-only fsspec filesystem over the assets of one store, served from the verified
    local cache.

    Parameters
    ----------
    store
        Store URL or ``AssetStore``; the configured store by default.
    assets_dir
        The local cache; ``MODELKIT_ASSETS_DIR`` or the user cache dir by default.
    store_options
        fsspec options of the store (credentials...); never printed.
    offline
        Resolve and read from the cache alone (default: ``MODELKIT_ASSETS_OFFLINE``).
    versioning
        The versioning system (default: ``MODELKIT_ASSETS_VERSIONING_SYSTEM``).
    require_signature, trusted_keys
        Open only versions signed by a trusted key (default:
        ``MODELKIT_ASSETS_REQUIRE_SIGNATURE``, ``MODELKIT_ASSETS_TRUSTED_KEYS``).
    manager
        An ``AssetsManager`` to use instead of the options above.

    Raises
    ------
    ConfigurationError
        For an unknown option (the store's own options go in ``store_options``).
    """

    protocol = PROTOCOL
    root_marker = ""
    # instances hold settings read from the environment and are cheap: no instance cache,
    # so a changed environment or option is always honoured
    cachable = False

    def __init__(
        self,
        store: str | os.PathLike[str] | AssetStore | None = None,
        assets_dir: str | os.PathLike[str] | None = None,
        *,
        store_options: Mapping[str, Any] | None = None,
        offline: bool | None = None,
        versioning: str | None = None,
        require_signature: bool | None = None,
        trusted_keys: Sequence[str | os.PathLike[str]] | None = None,
        manager: AssetsManager | None = None,
        **kwargs: Any,
    ) -> None:
        # pandas retries a PermissionError (a refused credential, our read-only refusal)
        # with anon=True: accepted and ignored, so the retry fails with the same error the
        # user must see (it never turns into anonymous access to the store)
        kwargs.pop("anon", None)
        unknown = sorted(set(kwargs) - _FSSPEC_OPTIONS)
        if unknown:
            raise ConfigurationError(
                f"Unknown option(s) {', '.join(unknown)} for {PROTOCOL}://; it takes store, "
                "store_options (the store's own fsspec options), assets_dir, offline, versioning, "
                "require_signature, trusted_keys and manager."
            )
        super().__init__(**kwargs)
        if manager is None:
            from modelkit_assets.manager import AssetsManager

            options = None
            if isinstance(store, str | os.PathLike):
                options = dict(store_options or {})
            elif store is None and store_options is not None:
                from modelkit_assets.store import AssetStore

                store = AssetStore(None, store_options, versioning=versioning, options_origin="store_options")
            manager = AssetsManager(
                store,
                assets_dir,
                storage_options=options,
                offline=offline,
                versioning=versioning,
                require_signature=require_signature,
                trusted_keys=trusted_keys,
            )
        elif any(v is not None for v in (store, assets_dir, store_options, require_signature, trusted_keys)):
            raise ConfigurationError(f"Give {PROTOCOL}:// either a manager or store options, not both.")
        self.manager = manager
        self._trees: dict[tuple[str, str], _Tree] = {}

    def __repr__(self) -> str:
        return f"AssetsFileSystem({self.manager!r})"

    # -- paths --------------------------------------------------------------------
    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]
        stripped: str = super()._strip_protocol(path)
        return stripped.strip("/")

    def _resolve(self, path: AssetPath) -> str:
        return self.manager.resolve(path.spec)

    def _tree(self, name: str, version: str) -> _Tree:
        """The files of ``name:version``: from the cache if it is there, else from the
        manifest in the store (no data is downloaded)."""
        key = (name, version)
        tree = self._trees.get(key)
        if tree is None:
            tree = self._cached_tree(name, version) or self._store_tree(name, version)
            self._trees[key] = tree
        return tree

    def _cached_tree(self, name: str, version: str) -> _Tree | None:
        path = self.manager.cache.cached_path(name, version)
        if path is None:
            return None
        if not path.is_dir():
            return _Tree(False, {"": path.stat().st_size})
        sizes: dict[str, int | None] = {}
        for folder, _, files in os.walk(path):
            rel = Path(folder).relative_to(path).as_posix()
            for file in files:
                inner = file if rel == "." else f"{rel}/{file}"
                if inner != SUCCESS_NAME:
                    sizes[inner] = os.stat(os.path.join(folder, file)).st_size
        return _Tree(True, sizes)

    def _store_tree(self, name: str, version: str) -> _Tree:
        store = None if self.manager.offline else self.manager.store
        if store is None:
            raise AssetNotFoundError(
                f"{name}:{version} is not in the assets dir {self.manager.assets_dir}; "
                + (
                    "offline mode is on: unset MODELKIT_ASSETS_OFFLINE to read it from the store."
                    if self.manager.offline
                    else "no store is configured: set MODELKIT_ASSETS_STORE to read it there."
                )
            )
        meta = store.meta(name, version)
        if meta.is_directory:
            return _Tree(True, {path: entry.size for path, entry in meta.files.items()})
        entry = next(iter(meta.files.values()), None)
        return _Tree(False, {"": entry.size if entry else None})

    def _entry(self, name: str, kind: str, size: int | None, asset: str, version: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": kind,
            "size": size if kind == "file" else 0,
            "asset": asset,
            "version": version,
        }

    def _version_entries(self, path: AssetPath, display: str, *, listing: bool) -> list[dict[str, Any]]:
        """``info`` (``listing=False``) or ``ls`` of a path inside one version."""
        version = self._resolve(path)
        tree = self._tree(path.name, version)
        kind = tree.kind(path.inner)
        if kind is None:
            raise SubPartNotFoundError(
                f"{path.name}:{version} has no {path.inner!r}; list its files with "
                f"fsspec's ls('{PROTOCOL}://{path.name}:{version}')."
            )
        if not listing or kind == "file":
            return [self._entry(display, kind, tree.sizes.get(path.inner), path.name, version)]
        # entries of a version-less path carry the resolved version: see the module docstring
        base = (
            f"{path.name}@{path.alias}"
            if path.alias is not None
            else f"{path.name}:{path.version if path.pinned else version}"
        )
        return [
            self._entry(f"{base}/{inner}", child_kind, tree.sizes.get(inner), path.name, version)
            for inner, child_kind in sorted(tree.children(path.inner).items())
        ]

    def _names_under(self, prefix: str) -> dict[str, list[str]]:
        """Every asset below ``prefix`` (``""``: all) and its versions, latest first: from
        the store, or from the cache when offline or when the store is unreachable."""
        store = None if self.manager.offline else self.manager.store
        if store is not None:
            try:
                return {
                    name: versions
                    for name, versions in store.list(prefix)
                    if not prefix or name.startswith(prefix + "/")
                }
            except StoreUnreachableError:
                logger.warning(
                    "The store %s is unreachable: listing the assets in the cache %s.",
                    store.display_url,
                    self.manager.assets_dir,
                )
        return self._cached_names(prefix)

    def _cached_names(self, prefix: str) -> dict[str, list[str]]:
        from modelkit_assets.offline import cached_assets

        return cached_assets(self.manager, prefix)

    def _namespace_entries(self, prefix: str) -> list[dict[str, Any]]:
        """Entries right below a prefix of names (``[]`` if no asset is below it)."""
        children: dict[str, list[str] | None] = {}
        for name, versions in self._names_under(prefix).items():
            rest = name[len(prefix) + 1 :] if prefix else name
            head = rest.split("/", 1)[0]
            child = f"{prefix}/{head}" if prefix else head
            if head == rest:
                children[child] = versions
            else:
                children.setdefault(child, None)
        entries = []
        for child, child_versions in sorted(children.items()):
            if child_versions:
                tree = self._tree(child, child_versions[0])
                kind = "directory" if tree.is_directory else "file"
                entries.append(self._entry(child, kind, tree.sizes.get(""), child, child_versions[0]))
            else:
                entries.append({"name": child, "type": "directory", "size": 0})
        return entries

    def _lookup(self, path: str, *, listing: bool) -> list[dict[str, Any]]:
        parsed = parse_path(path)
        display = path.strip("/")
        if not parsed.name:
            return self._namespace_entries("") if listing else [{"name": "", "type": "directory", "size": 0}]
        if parsed.pinned:
            return self._version_entries(parsed, display, listing=listing)
        try:
            return self._version_entries(parsed, display, listing=listing)
        except AssetNotFoundError as err:
            if isinstance(err, SubPartNotFoundError):
                raise
            entries = self._namespace_entries(parsed.name)
            if not entries:
                raise
        if listing:
            return entries
        return [{"name": display, "type": "directory", "size": 0}]

    # -- reading ------------------------------------------------------------------
    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """Entries of a folder, or the file itself (fsspec's convention).

        Raises
        ------
        FileNotFoundError
            (``AssetNotFoundError`` and its subclasses) if nothing is at ``path``.
        """
        entries = self._lookup(self._strip_protocol(path), listing=True)
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """``name``, ``type``, ``size``, and for assets the ``asset`` and its resolved
        ``version``.

        Raises
        ------
        FileNotFoundError
            (``AssetNotFoundError`` and its subclasses) if nothing is at ``path``.
        """
        return self._lookup(self._strip_protocol(path), listing=False)[0]

    def exists(self, path: str, **kwargs: Any) -> bool:
        """Whether something is at ``path``; unlike fsspec's default, store errors are
        raised rather than read as "no"."""
        try:
            self.info(path)
        except (FileNotFoundError, InvalidSpecError):
            return False
        return True

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> BinaryIO:
        """Fetch the version into the verified cache, then open the cached file.

        Raises
        ------
        ReadOnlyFilesystemError
            For any mode but ``rb``.
        IsADirectoryError, FileNotFoundError
        """
        path = self._strip_protocol(path)
        if mode != "rb":
            _read_only(path)
        parsed = parse_path(path)
        if not parsed.name:
            raise IsADirectoryError(f"{PROTOCOL}:// is the list of assets, not a file; open a path in it.")
        version = self._resolve(parsed)
        # a big file of a version not yet cached is read by verified parts (lazy.py)
        part = self.manager.open_part(parsed.name, version, parsed.inner or "")
        if part is not None:
            return part
        local = self.manager.fetch(AssetSpec(parsed.name, version))
        target = local.joinpath(*parsed.inner.split("/")) if parsed.inner else local
        if target.is_dir():
            raise IsADirectoryError(
                f"{PROTOCOL}://{path} is a folder of {parsed.name}:{version}; open a file in it."
            )
        if parsed.inner == SUCCESS_NAME or not target.is_file():
            raise SubPartNotFoundError(
                f"{parsed.name}:{version} has no {parsed.inner!r}; list its files with "
                f"fsspec's ls('{PROTOCOL}://{parsed.name}:{version}')."
            )
        return open(target, "rb")  # the caller closes it

    def local_path(self, path: str) -> Path:
        """The verified cached copy of ``path`` (fetched first if needed): hand it to code
        that wants a real file name."""
        path = self._strip_protocol(path)
        parsed = parse_path(path)
        if not parsed.name:
            raise IsADirectoryError(f"{PROTOCOL}:// is the list of assets, not a file; open a path in it.")
        version = self._resolve(parsed)
        self.manager.fetch(AssetSpec(parsed.name, version))  # whole: the caller wants a real file
        with self.open(
            f"{parsed.name}:{version}" + (f"/{parsed.inner}" if parsed.inner else ""), "rb"
        ) as handle:
            return Path(handle.name)

    # -- writing: never -----------------------------------------------------------
    def pipe_file(self, path: str, value: bytes, mode: str = "overwrite", **kwargs: Any) -> NoReturn:
        _read_only(self._strip_protocol(path))

    def put_file(self, lpath: str, rpath: str, *args: Any, **kwargs: Any) -> NoReturn:
        _read_only(self._strip_protocol(rpath))

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> NoReturn:
        _read_only(self._strip_protocol(path2))

    def mv(self, path1: str, path2: str, *args: Any, **kwargs: Any) -> NoReturn:
        _read_only(self._strip_protocol(path1))

    def rm_file(self, path: str) -> NoReturn:
        _read_only(self._strip_protocol(path))

    def _rm(self, path: str) -> NoReturn:
        _read_only(self._strip_protocol(path))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> NoReturn:
        _read_only(self._strip_protocol(path if isinstance(path, str) else path[0]))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> NoReturn:
        _read_only(self._strip_protocol(path))

    def makedirs(self, path: str, exist_ok: bool = False) -> NoReturn:
        _read_only(self._strip_protocol(path))

    def rmdir(self, path: str) -> NoReturn:
        _read_only(self._strip_protocol(path))

    def touch(self, path: str, truncate: bool = True, **kwargs: Any) -> NoReturn:
        _read_only(self._strip_protocol(path))
