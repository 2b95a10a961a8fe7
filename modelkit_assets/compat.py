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
- Names follow modelkit-assets' stricter rules (G5): no absolute path, no ``\\``, no
  segment starting with ``.``; modelkit's fallback for an unversioned spec with no store
  only serves paths inside the assets dir (not the working directory, not absolute paths).
- ``MODELKIT_ASSETS_TIMEOUT_S`` defaults to 600 s (modelkit's 10 s is too short for big
  assets); ``filter_versions`` compares majors as numbers (``1`` does not match ``10.3``);
  ``SimpleDateAssetsVersioningSystem.increment_version`` never returns a taken version.

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

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

from modelkit_assets import errors
from modelkit_assets.backend import protocol_of, redact_url
from modelkit_assets.manager import AssetsManager as _Manager
from modelkit_assets.manifest import AssetMeta
from modelkit_assets.settings import Settings, _modelkit_provider_store, get_settings
from modelkit_assets.spec import AssetSpec as _Spec
from modelkit_assets.spec import check_name, check_relative_path, check_version_syntax
from modelkit_assets.store import AssetStore
from modelkit_assets.versioning import VersioningSystem, get_versioning

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
]


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
def _modelkit_errors(not_found: type[errors.AssetsError] = ObjectDoesNotExistError) -> Iterator[None]:
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


# -- versioning (modelkit.assets.versioning) -----------------------------------------
class AssetsVersioningSystem:
    """modelkit's versioning interface (class methods only) over a modelkit-assets
    ``VersioningSystem``: subclasses name the system in ``system_name``.
    """

    system_name: ClassVar[str] = ""

    @classmethod
    def system(cls) -> VersioningSystem:
        """The modelkit-assets system doing the work."""
        with _modelkit_errors():
            return get_versioning(cls.system_name)

    @classmethod
    def get_initial_version(cls) -> str:
        return cls.system().initial(())

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        """Raise ``InvalidVersionError`` unless ``version`` is a (partial) version."""
        with _modelkit_errors():
            cls.system().check(version)

    @classmethod
    def is_version_complete(cls, version: str) -> bool:
        with _modelkit_errors():
            return cls.system().is_complete(version)

    @classmethod
    def sort_versions(cls, version_list: Iterable[str]) -> list[str]:
        """Latest first; an invalid version raises ``InvalidVersionError`` (as modelkit)."""
        system = cls.system()
        with _modelkit_errors():
            return sorted(version_list, key=system.sort_key, reverse=True)

    @classmethod
    def increment_version(
        cls, version_list: list[str] | None = None, params: dict[str, Any] | None = None
    ) -> str:
        """The version ``update`` publishes after ``version_list``."""
        params = params or {}
        major = params.get("major")
        with _modelkit_errors(not_found=MajorVersionDoesNotExistError):
            return cls.system().next(
                version_list or [],
                major=str(major) if major is not None else None,
                bump_major=bool(params.get("bump_major")),
            )

    @classmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        """``{"display": text for the update prompt, "params": for increment_version}``."""
        version_list = list(kwargs.get("version_list") or [])
        display = [f"Found a total of {len(version_list)} versions ", f"{version_list}"]
        if version_list:
            display.append(f"Last version is {version_list[0]}")
        return {"display": "\n".join(display), "params": {}}

    @classmethod
    def get_latest_partial_version(cls, version: str, versions: list[str]) -> str:
        """The latest of ``versions`` that ``version`` (partial) designates."""
        with _modelkit_errors():
            found = cls.system().latest(versions, version)
        if found is None:
            raise MajorVersionDoesNotExistError(
                f"No version matches {version!r} among {', '.join(versions[:5]) or 'no versions'}."
            )
        return found

    def is_version_valid(self, version: str) -> bool:
        try:
            self.check_version_valid(version)
        except errors.InvalidVersionError:
            return False
        return True


class MajorMinorAssetsVersioningSystem(AssetsVersioningSystem):
    """``X.Y`` versions (modelkit's default): ``0.0`` first, ``update`` bumps the minor of
    the latest (or given) major, ``bump_major`` starts the next major."""

    system_name = "major_minor"

    @classmethod
    def check_version_valid(cls, version: str) -> None:
        if version:  # modelkit accepts an empty version here
            super().check_version_valid(version)

    @classmethod
    def get_update_cli_params(cls, **kwargs: Any) -> dict[str, Any]:
        version_list = list(kwargs.get("version_list") or [])
        version = kwargs.get("version")
        current_major = None
        if version:
            cls.check_version_valid(version)
            current_major = version.split(".")[0]
        majors = sorted({v.split(".")[0] for v in cls.sort_versions(version_list)}, key=int)
        display = [
            f"Found a total of {len(version_list)} versions ",
            f"({len(majors)} major versions) ",
        ]
        display += [f" - major `{m}` = " + ", ".join(cls.filter_versions(version_list, m)) for m in majors]
        return {
            "display": "\n".join(display),
            "params": {"bump_major": bool(kwargs.get("bump_major")), "major": current_major},
        }

    @classmethod
    def filter_versions(cls, version_list: Iterable[str], major: str) -> list[str]:
        """The versions of ``major``, in their given order.

        Raises
        ------
        InvalidMajorVersionError
            If ``major`` is not an integer.
        """
        major = str(major)
        if not re.fullmatch(r"[0-9]+", major):
            raise InvalidMajorVersionError(f"Major version {major!r} is not valid: give an integer.")
        system = cls.system()
        return [v for v in version_list if system.is_valid(v) and system.matches(str(int(major)), v)]

    @classmethod
    def latest_version(cls, version_list: Iterable[str], major: str | None = None) -> str:
        """The latest version (of ``major``).

        Raises
        ------
        MajorVersionDoesNotExistError
            If ``major`` has no version.
        """
        versions = list(version_list)
        if major:
            versions = cls.filter_versions(versions, major)
            if not versions:
                raise MajorVersionDoesNotExistError(f"Major version {major} does not exist.")
        if not versions:
            raise MajorVersionDoesNotExistError("There is no version to choose from.")
        return cls.sort_versions(versions)[0]


class SimpleDateAssetsVersioningSystem(AssetsVersioningSystem):
    """UTC timestamps ``YYYY-MM-DDThh-mm-ssZ``; ``update`` takes the next free second."""

    system_name = "simple_date"


_SYSTEMS: dict[str, type[AssetsVersioningSystem]] = {
    "major_minor": MajorMinorAssetsVersioningSystem,
    "simple_date": SimpleDateAssetsVersioningSystem,
}


@cache
def _versioning_class(name: str) -> type[AssetsVersioningSystem]:
    """modelkit's class for a system, including third-party (entry point) systems."""
    found = _SYSTEMS.get(name)
    if found is not None:
        return found
    with _modelkit_errors():
        get_versioning(name)  # unknown names fail here, with the list of known ones
    return type(f"{name}AssetsVersioningSystem", (AssetsVersioningSystem,), {"system_name": name})


# -- specs (modelkit.assets.settings) ------------------------------------------------
_SPEC_RE = re.compile(r"(?P<name>[^:\[\]]*)(?::(?P<version>[^\[\]]*))?(?:\[(?P<sub_part>.*)\])?", re.S)


class AssetSpec:
    """modelkit's mutable spec: ``name``, ``version`` (may be partial or ``None``),
    ``sub_part`` and the ``versioning`` system they are read with.

    Raises
    ------
    InvalidNameError, InvalidVersionError, InvalidAssetSpecError,
    UnknownAssetsVersioningSystemError
    """

    versioning: AssetsVersioningSystem

    def __init__(
        self,
        name: str,
        versioning: str | None = None,
        version: str | None = None,
        sub_part: str | None = None,
    ) -> None:
        system = versioning or get_settings().versioning
        self.versioning = _versioning_class(system)()
        self.check_name_valid(name)
        self.name = name
        if version:
            self.check_version_valid(version)
            self.versioning.check_version_valid(version)
        self.version = version or None
        if sub_part is not None:
            # modelkit drops empty segments (a leading or trailing `/`)
            sub_part = sub_part.strip("/")
            with _modelkit_errors():
                check_relative_path(sub_part, what="sub-part")
        self.sub_part = sub_part

    @staticmethod
    def from_string(input_string: str, versioning: str | None = None) -> AssetSpec:
        """Parse ``name[:version][[sub/part]]``."""
        match = _SPEC_RE.fullmatch(input_string) if isinstance(input_string, str) else None
        if match is None:
            raise InvalidAssetSpecError(
                f"Invalid asset spec {input_string!r}: write `name[:version][[sub/part]]`."
            )
        if match["version"] == "":
            raise InvalidAssetSpecError(
                f"Invalid asset spec {input_string!r}: the version after `:` is empty."
            )
        return AssetSpec(
            name=match["name"], versioning=versioning, version=match["version"], sub_part=match["sub_part"]
        )

    @classmethod
    def check_name_valid(cls, name: str) -> None:
        with _modelkit_errors():
            check_name(name)

    @classmethod
    def check_version_valid(cls, name: str) -> None:
        """Check the characters of a version (any versioning system)."""
        if name:
            with _modelkit_errors():
                check_version_syntax(name)

    def is_version_complete(self) -> bool:
        return bool(self.version) and self.versioning.is_version_complete(str(self.version))

    def sort_versions(self, version_list: Iterable[str]) -> list[str]:
        return self.versioning.sort_versions(version_list)

    def set_latest_version(self, all_versions: list[str]) -> None:
        """Pin ``version`` to the latest of ``all_versions`` it designates."""
        if not self.version:
            self.version = all_versions[0]
        else:
            self.version = self.versioning.get_latest_partial_version(self.version, all_versions)

    def get_local_versions(self, local_name: str | os.PathLike[str]) -> list[str]:
        """The complete versions found as entries of the folder ``local_name``."""
        if not os.path.isdir(local_name):
            return []
        system = self.versioning.system()
        return self.sort_versions(d for d in os.listdir(local_name) if system.is_valid(d))

    def to_spec(self) -> _Spec:
        """The modelkit-assets ``AssetSpec``."""
        with _modelkit_errors():
            return _Spec(self.name, self.version, self.sub_part)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AssetSpec):
            return False
        return (self.name, self.version, self.sub_part) == (other.name, other.version, other.sub_part)

    __hash__ = None  # type: ignore[assignment]  # mutable, as modelkit's

    def __str__(self) -> str:
        return str(_Spec(self.name, self.version, self.sub_part))

    def __repr__(self) -> str:
        return f"AssetSpec({str(self)!r}, versioning={self.versioning.system_name!r})"


# -- storage (modelkit.assets.remote) ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StoreDriver:
    """Stands for modelkit's driver: which bucket (or folder) and which backend."""

    bucket: str
    protocol: str

    def __repr__(self) -> str:
        return f"<StoreDriver {self.protocol} bucket={self.bucket}>"


_PROVIDERS = ("gcs", "s3", "az", "local")


def _meta_dict(meta: AssetMeta) -> dict[str, Any]:
    """A ``.meta`` as modelkit returns it: the JSON object, ``push_date`` a datetime."""
    data: dict[str, Any] = {k: v for k, v in meta.to_dict().items() if v is not None}
    if not any(e.size is not None or e.sha256 is not None for e in meta.files.values()):
        data.pop("files", None)  # published by modelkit: it had no per-file entries
    data.update(meta.extra)
    data["push_date"] = meta.push_date
    return data


class StorageProvider:
    """modelkit's remote store of versioned assets, over an ``AssetStore``.

    Parameters
    ----------
    timeout_s
        Kept as ``timeout`` (fsspec backends apply their own network timeouts).
    prefix
        Folder inside the bucket (``MODELKIT_STORAGE_PREFIX``, ``modelkit-assets``).
    force_download
        Default of ``AssetsManager.fetch_asset`` (``MODELKIT_STORAGE_FORCE_DOWNLOAD``).
    provider
        ``gcs``, ``s3``, ``az`` or ``local`` (``MODELKIT_STORAGE_PROVIDER``). With none,
        ``MODELKIT_ASSETS_STORE`` is used when set; otherwise ``NoConfiguredProviderError``.
    client
        An fsspec filesystem to use instead of opening one (modelkit takes a cloud SDK
        client here).
    **driver_settings
        modelkit's: ``bucket`` (``MODELKIT_STORAGE_BUCKET``), ``aws_access_key_id``,
        ``aws_secret_access_key``, ``aws_session_token``, ``aws_default_region``,
        ``s3_endpoint`` (``S3_ENDPOINT``), ``aws_kms_key_id`` (``AWS_KMS_KEY_ID``),
        ``service_account_path``, ``connection_string``; others are ignored, as modelkit
        does. They go to fsspec and are never printed.

    Raises
    ------
    NoConfiguredProviderError, UnknownDriverError, DriverNotInstalledError,
    ConfigurationError, StoreNotFoundError
    """

    force_download: bool
    prefix: str
    timeout: int
    store: AssetStore
    driver: StoreDriver

    def __init__(
        self,
        timeout_s: int | None = None,
        prefix: str | None = None,
        force_download: bool | None = None,
        provider: str | None = None,
        client: Any | None = None,
        **driver_settings: Any,
    ) -> None:
        settings = get_settings()
        env = os.environ
        provider = provider or env.get("MODELKIT_STORAGE_PROVIDER")
        prefix = prefix or env.get("MODELKIT_STORAGE_PREFIX") or "modelkit-assets"
        options: dict[str, Any] = {}
        if provider:
            if provider not in _PROVIDERS:
                raise UnknownDriverError(
                    f"Unknown storage provider {provider!r}: use one of {', '.join(_PROVIDERS)}."
                )
            bucket = driver_settings.get("bucket") or env.get("MODELKIT_STORAGE_BUCKET")
            if not bucket:
                raise errors.ConfigurationError(
                    f"The {provider} storage provider needs a bucket: pass bucket= or set "
                    "MODELKIT_STORAGE_BUCKET."
                )
            if provider == "local" and not os.path.isdir(bucket):
                raise errors.StoreNotFoundError(
                    f"The local storage bucket {bucket} is not a folder; create it or fix "
                    "MODELKIT_STORAGE_BUCKET."
                )
            modelkit_env = {
                "MODELKIT_STORAGE_PROVIDER": provider,
                "MODELKIT_STORAGE_BUCKET": str(bucket),
                "MODELKIT_STORAGE_PREFIX": prefix,
                "S3_ENDPOINT": driver_settings.get("s3_endpoint") or env.get("S3_ENDPOINT") or "",
                "AZURE_STORAGE_CONNECTION_STRING": driver_settings.get("connection_string")
                or env.get("AZURE_STORAGE_CONNECTION_STRING")
                or "",
            }
            url, options = _modelkit_provider_store(provider, str(bucket), prefix, modelkit_env)
            options.update(_driver_options(provider, driver_settings))
            self.driver = StoreDriver(str(bucket), provider)
        elif settings.store_url is not None and not settings.embedded:
            url, options = settings.store_url, dict(settings.storage_options)
            self.driver = StoreDriver(redact_url(url), protocol_of(url))
        else:
            raise NoConfiguredProviderError(
                "No storage provider is configured: set MODELKIT_STORAGE_PROVIDER and "
                "MODELKIT_STORAGE_BUCKET (or MODELKIT_ASSETS_STORE to an fsspec URL)."
            )
        if client is not None and not _is_filesystem(client):
            raise TypeError(
                f"client must be an fsspec filesystem, not {type(client).__name__}; pass credentials "
                "as driver settings or through the SDK's environment variables instead."
            )
        with _modelkit_errors():
            store = AssetStore(
                url, options, versioning=settings.versioning, settings=settings, filesystem=client
            )
        self._setup(store, prefix, timeout_s, force_download, settings)

    def _setup(
        self,
        store: AssetStore,
        prefix: str,
        timeout_s: int | None,
        force_download: bool | None,
        settings: Settings,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.timeout = int(timeout_s or os.environ.get("MODELKIT_STORAGE_TIMEOUT_S") or 300)
        self.force_download = bool(force_download) or settings.force_download

    @classmethod
    def from_store(
        cls, store: AssetStore, *, force_download: bool | None = None, timeout_s: int | None = None
    ) -> StorageProvider:
        """Wrap an existing ``AssetStore`` (any fsspec URL: memory://, file://, s3://...)."""
        provider = cls.__new__(cls)
        provider.driver = StoreDriver(store.display_url, protocol_of(store.url))
        provider._setup(store, "", timeout_s, force_download, get_settings())
        return provider

    def __repr__(self) -> str:
        return f"StorageProvider({self.store.display_url!r})"

    def _store_for(self, system: str) -> AssetStore:
        """The same store read with another versioning system."""
        if system == self.store.versioning.name:
            return self.store
        return _store_with_versioning(self.store, system)

    # -- keys (relative to the bucket, as modelkit builds them) --------------------
    def get_object_name(self, name: str, version: str) -> str:
        return "/".join(p for p in (self.prefix, name, version) if p)

    def get_meta_object_name(self, name: str, version: str) -> str:
        return self.get_object_name(name, version) + ".meta"

    def get_versions_object_name(self, name: str) -> str:
        return "/".join(p for p in (self.prefix, name + ".versions") if p)

    # -- reading -------------------------------------------------------------------
    def get_versions_info(self, name: str) -> list[str]:
        """The committed versions of ``name``, latest first.

        Raises
        ------
        ObjectDoesNotExistError
            If the asset has no version.
        """
        with _modelkit_errors():
            return self.store.versions(name)

    def get_asset_meta(self, name: str, version: str) -> dict[str, Any]:
        """The version's ``.meta`` as a dict (``push_date`` parsed to a datetime).

        Raises
        ------
        ObjectDoesNotExistError
        """
        with _modelkit_errors():
            return _meta_dict(self.store.meta(name, version))

    def iterate_assets(self) -> Iterator[tuple[str, list[str]]]:
        """Every asset and its versions (latest first), sorted by name."""
        with _modelkit_errors():
            yield from self.store.list()

    # -- publishing ----------------------------------------------------------------
    def new(self, asset_path: str, name: str, version: str, dry_run: bool = False) -> str:
        """Publish the first version of ``name``: exactly ``version``; returns it.

        Raises
        ------
        AssetAlreadyExistsError
            If the asset exists (use ``update``), or a concurrent writer took the version.
        """
        with _modelkit_errors(not_found=AssetDoesNotExistError):
            store = self._store_for(_system_of(self.store, version))
            plan = store.plan_new(asset_path, name, version=version)
            if not dry_run:
                store.publish(plan)
        return version

    def update(self, asset_path: str, name: str, version: str, dry_run: bool = False) -> str:
        """Publish ``version`` of the existing asset ``name``; returns it.

        Raises
        ------
        AssetDoesNotExistError
            If the asset was never created (use ``new``).
        AssetAlreadyExistsError
            If the version exists: published versions are never overwritten.
        """
        with _modelkit_errors(not_found=AssetDoesNotExistError):
            store = self._store_for(_system_of(self.store, version))
            plan = store.plan_update(asset_path, _Spec(name), version=version)
            if not dry_run:
                store.publish(plan)
        return version

    def push(self, asset_path: str, name: str, version: str, dry_run: bool = False) -> str:
        """Publish ``version`` whether or not the asset exists yet."""
        with _modelkit_errors():
            exists = self._store_for(_system_of(self.store, version)).exists(name)
        if exists:
            return self.update(asset_path, name, version, dry_run=dry_run)
        return self.new(asset_path, name, version, dry_run=dry_run)

    # -- fetching ------------------------------------------------------------------
    def download(self, name: str, version: str, destination: str | os.PathLike[str]) -> dict[str, Any]:
        """Download ``name:version`` to ``{destination}/{name}/{version}``, verified
        against its manifest; return ``{"path", "meta"}``.

        This is modelkit's raw download (no lock, no marker, no atomic install): use
        ``AssetsManager.fetch_asset`` to fill an assets dir.

        Raises
        ------
        ObjectDoesNotExistError, IntegrityError
        """
        with _modelkit_errors():
            store = self._store_for(_system_of(self.store, version))
            meta = store.meta(name, version)
            path = Path(destination).joinpath(*name.split("/"), version)
            path.parent.mkdir(parents=True, exist_ok=True)
            if meta.is_directory:
                path.mkdir(exist_ok=True)
            store.download_version(meta, str(path))
        return {"path": str(path), "meta": _meta_dict(meta)}


def _is_filesystem(client: Any) -> bool:
    from fsspec import AbstractFileSystem

    return isinstance(client, AbstractFileSystem)


def _driver_options(provider: str, settings: dict[str, Any]) -> dict[str, Any]:
    """fsspec storage options for modelkit's driver settings (environment credentials
    are read by the SDKs themselves)."""
    options: dict[str, Any] = {}
    if provider == "s3":
        for ours, theirs in (
            ("key", "aws_access_key_id"),
            ("secret", "aws_secret_access_key"),
            ("token", "aws_session_token"),
        ):
            if settings.get(theirs):
                options[ours] = settings[theirs]
        if settings.get("aws_default_region"):
            options["client_kwargs"] = {"region_name": settings["aws_default_region"]}
        kms = settings.get("aws_kms_key_id") or os.environ.get("AWS_KMS_KEY_ID")
        if kms:
            options["s3_additional_kwargs"] = {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms}
    elif provider == "gcs" and settings.get("service_account_path"):
        options["token"] = settings["service_account_path"]
    return options


def _system_of(store: AssetStore, version: str) -> str:
    """The versioning system a version to publish belongs to: the store's when it fits,
    else the environment's (modelkit picks it per spec, not per store)."""
    if store.versioning.is_valid(version):
        return store.versioning.name
    return get_settings().versioning


def _store_with_versioning(store: AssetStore, system: str) -> AssetStore:
    return AssetStore(
        store.url,
        store.storage_options,
        versioning=system,
        concurrency=store.concurrency,
        claim_ttl_s=store.claim_ttl_s,
        filesystem=store.fs,
    )


# -- fetching (modelkit.assets.manager) ----------------------------------------------
class AssetsManager:
    """modelkit's ``AssetsManager``: ``fetch_asset(spec)`` returns a local path.

    Parameters
    ----------
    assets_dir
        An existing folder (``MODELKIT_ASSETS_DIR``, else the working directory, as
        modelkit).
    timeout
        Seconds to wait for another process's download of the same asset
        (``MODELKIT_ASSETS_TIMEOUT_S``, 600 by default).
    storage_provider
        The store; ``None`` builds one from the environment, and without one the assets
        dir is served alone.

    Raises
    ------
    FileNotFoundError
        If ``assets_dir`` is not a folder.
    StorageDriverError
        If the assets dir is the store's own folder.
    """

    assets_dir: str
    timeout: int
    storage_provider: StorageProvider | None

    def __init__(
        self,
        assets_dir: str | os.PathLike[str] | None = None,
        timeout: int | None = None,
        storage_provider: StorageProvider | None = None,
    ) -> None:
        settings = get_settings()
        self.assets_dir = str(assets_dir or os.environ.get("MODELKIT_ASSETS_DIR") or os.getcwd())
        if not os.path.isdir(self.assets_dir):
            raise FileNotFoundError(f"Assets directory {self.assets_dir} does not exist; create it first.")
        self.timeout = int(timeout or settings.timeout_s)
        if storage_provider is None:
            with contextlib.suppress(NoConfiguredProviderError):
                storage_provider = StorageProvider()
        self.storage_provider = storage_provider
        if storage_provider is not None:
            store = storage_provider.store
            if protocol_of(store.url) == "file" and _same_dir(store.layout.root, self.assets_dir):
                raise StorageDriverError(
                    f"The assets dir {self.assets_dir} is the store's own folder; point "
                    "MODELKIT_ASSETS_DIR elsewhere, or drop the storage provider to serve it as is."
                )
        # no provider: serve the assets dir alone, never the embedded store
        self._settings = settings if storage_provider else dataclasses.replace(settings, store_url=None)
        self._managers: dict[str, _Manager] = {}

    def _manager(self, system: str) -> _Manager:
        manager = self._managers.get(system)
        if manager is None:
            store = self.storage_provider._store_for(system) if self.storage_provider else None
            manager = _Manager(
                store, self.assets_dir, timeout=self.timeout, versioning=system, settings=self._settings
            )
            self._managers[system] = manager
        return manager

    def fetch_asset(
        self, spec: AssetSpec | str, return_info: bool = False, force_download: bool | None = None
    ) -> Any:
        """The local path of ``spec``, downloading and verifying it if needed.

        With ``return_info`` returns modelkit's dict: ``path``, ``version``,
        ``from_cache`` and, after a download, ``meta``. A partial ``AssetSpec`` passed in
        is pinned to the version found, as modelkit does.

        Raises
        ------
        ObjectDoesNotExistError
            The asset or version is not in the store.
        LocalAssetDoesNotExistError, AssetDoesNotExistError
            No store is configured and the assets dir does not have it.
        AssetFetchError
            The sub-part does not exist.
        StorageDriverError
            ``force_download`` without a store.
        IntegrityError, CacheLockTimeoutError, StoreError
        """
        if isinstance(spec, str):
            spec = AssetSpec.from_string(spec)
        if force_download is None and self.storage_provider is not None:
            force_download = self.storage_provider.force_download
        if force_download and self.storage_provider is None:
            raise StorageDriverError(
                f"Cannot force the download of {spec}: no storage provider is configured."
            )
        manager = self._manager(spec.versioning.system_name)
        not_found = ObjectDoesNotExistError if self.storage_provider else LocalAssetDoesNotExistError
        try:
            with _modelkit_errors(not_found=not_found):
                result = manager.fetch_info(spec.to_spec(), force=bool(force_download))
        except LocalAssetDoesNotExistError:
            if spec.version or self.storage_provider is not None:
                raise
            info: dict[str, Any] = {"path": self._unversioned(spec)}
        else:
            spec.version = result.version
            info = {"path": str(result.path), "version": result.version, "from_cache": result.from_cache}
            if result.meta is not None:
                info["meta"] = _meta_dict(result.meta)
        return info if return_info else info["path"]

    def _unversioned(self, spec: AssetSpec) -> str:
        """modelkit's pre-downloaded mode: ``{assets_dir}/{name}[/{sub_part}]`` as is."""
        path = Path(self.assets_dir).joinpath(*spec.name.split("/"))
        if spec.sub_part:
            path = path.joinpath(*spec.sub_part.split("/"))
        if not path.exists():
            raise AssetDoesNotExistError(
                f"Asset {spec} has no version in the assets dir {self.assets_dir} and is not a "
                "path inside it; configure a store (MODELKIT_STORAGE_PROVIDER) or fetch it first."
            )
        return str(path)

    def __repr__(self) -> str:
        return f"AssetsManager(assets_dir={self.assets_dir!r}, storage_provider={self.storage_provider!r})"


def _same_dir(root: str, assets_dir: str) -> bool:
    try:
        return os.path.samefile(root, assets_dir)
    except OSError:
        return False
