"""modelkit.assets.remote: ``StorageProvider``."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from modelkit_assets import errors
from modelkit_assets.backends import protocol_of, redact_url
from modelkit_assets.compat.errors import (
    AssetDoesNotExistError,
    NoConfiguredProviderError,
    UnknownDriverError,
    modelkit_errors,
)
from modelkit_assets.compat.settings import current_settings
from modelkit_assets.manifest import AssetMeta
from modelkit_assets.settings import (
    MODELKIT_DEFAULT_STORAGE_TIMEOUT_S,
    ModelkitEnvironment,
    Settings,
    modelkit_provider_store,
)
from modelkit_assets.spec import AssetSpec as _Spec
from modelkit_assets.store import AssetStore


# -- storage (modelkit.assets.remote) ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class StoreDriver:
    """Stands for modelkit's driver: which bucket (or folder) and which backend."""

    bucket: str
    protocol: str

    def __repr__(self) -> str:
        return f"<StoreDriver {self.protocol} bucket={self.bucket}>"


_PROVIDERS = ("gcs", "s3", "az", "local")


def meta_dict(meta: AssetMeta) -> dict[str, Any]:
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
        settings = current_settings()
        env = ModelkitEnvironment.read()
        provider = provider or env.provider
        prefix = prefix or env.prefix or "modelkit-assets"
        options: dict[str, Any] = {}
        if provider:
            if provider not in _PROVIDERS:
                raise UnknownDriverError(
                    f"Unknown storage provider {provider!r}: use one of {', '.join(_PROVIDERS)}."
                )
            bucket = driver_settings.get("bucket") or env.bucket
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
            url, options = modelkit_provider_store(
                provider,
                str(bucket),
                prefix,
                s3_endpoint=driver_settings.get("s3_endpoint") or env.s3_endpoint,
                azure_connection_string=(
                    driver_settings.get("connection_string") or env.azure_connection_string
                ),
            )
            options.update(_driver_options(provider, driver_settings))
            if provider == "gcs" and client is None and "token" not in options:
                _check_gcs_credentials()
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
        with modelkit_errors():
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
        self.timeout = int(
            timeout_s or ModelkitEnvironment.read().timeout_s or MODELKIT_DEFAULT_STORAGE_TIMEOUT_S
        )
        self.force_download = bool(force_download) or settings.force_download

    @classmethod
    def from_store(
        cls, store: AssetStore, *, force_download: bool | None = None, timeout_s: int | None = None
    ) -> StorageProvider:
        """Wrap an existing ``AssetStore`` (any fsspec URL: memory://, file://, s3://...)."""
        provider = cls.__new__(cls)
        provider.driver = StoreDriver(store.display_url, protocol_of(store.url))
        provider._setup(store, "", timeout_s, force_download, current_settings())
        return provider

    def __repr__(self) -> str:
        return f"StorageProvider({self.store.display_url!r})"

    def store_for(self, system: str) -> AssetStore:
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
        with modelkit_errors():
            return self.store.versions(name)

    def get_asset_meta(self, name: str, version: str) -> dict[str, Any]:
        """The version's ``.meta`` as a dict (``push_date`` parsed to a datetime).

        Raises
        ------
        ObjectDoesNotExistError
        """
        with modelkit_errors():
            return meta_dict(self.store.meta(name, version))

    def iterate_assets(self) -> Iterator[tuple[str, list[str]]]:
        """Every asset and its versions (latest first), sorted by name."""
        with modelkit_errors():
            yield from self.store.list()

    # -- publishing ----------------------------------------------------------------
    def new(self, asset_path: str, name: str, version: str, dry_run: bool = False) -> str:
        """Publish the first version of ``name``: exactly ``version``; returns it.

        Raises
        ------
        AssetAlreadyExistsError
            If the asset exists (use ``update``), or a concurrent writer took the version.
        """
        with modelkit_errors(not_found=AssetDoesNotExistError):
            store = self.store_for(_system_of(self.store, version))
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
        with modelkit_errors(not_found=AssetDoesNotExistError):
            store = self.store_for(_system_of(self.store, version))
            plan = store.plan_update(asset_path, _Spec(name), version=version)
            if not dry_run:
                store.publish(plan)
        return version

    def push(self, asset_path: str, name: str, version: str, dry_run: bool = False) -> str:
        """Publish ``version`` whether or not the asset exists yet."""
        with modelkit_errors():
            exists = self.store_for(_system_of(self.store, version)).exists(name)
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
        with modelkit_errors():
            store = self.store_for(_system_of(self.store, version))
            meta = store.meta(name, version)
            path = Path(destination).joinpath(*name.split("/"), version)
            path.parent.mkdir(parents=True, exist_ok=True)
            if meta.is_directory:
                path.mkdir(exist_ok=True)
            store.download_version(meta, str(path))
        return {"path": str(path), "meta": meta_dict(meta)}


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
        kms = settings.get("aws_kms_key_id") or ModelkitEnvironment.read().aws_kms_key_id
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
    return current_settings().versioning


def _store_with_versioning(store: AssetStore, system: str) -> AssetStore:
    return AssetStore(
        store.url,
        store.storage_options,
        versioning=system,
        concurrency=store.concurrency,
        claim_ttl_s=store.claim_ttl_s,
        filesystem=store.fs,
    )


def _check_gcs_credentials() -> None:
    """Fail as modelkit does when Google Cloud has no credentials, rather than let gcsfs
    fall back to anonymous access without a word (an emulator needs none).

    Raises
    ------
    google.auth.exceptions.DefaultCredentialsError
    """
    if ModelkitEnvironment.read().storage_emulator_host:
        return
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        google.auth.default()
    except DefaultCredentialsError as err:
        raise DefaultCredentialsError(  # type: ignore[no-untyped-call]
            "No Google Cloud credentials found for the gcs storage provider: set "
            "GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, or "
            "pass service_account_path=."
        ) from err
