"""Configuration, read once from the environment; explicit arguments override it.

| variable                              | meaning                               |
|---------------------------------------|---------------------------------------|
| MODELKIT_ASSETS_STORE                 | store URL (any fsspec URL; ``none``)  |
| MODELKIT_ASSETS_STORAGE_OPTIONS       | JSON of fsspec storage options        |
| MODELKIT_ASSETS_DIR                   | assets dir (local cache)              |
| MODELKIT_ASSETS_VERSIONING_SYSTEM     | ``major_minor`` / ``simple_date``     |
| MODELKIT_ASSETS_TIMEOUT_S             | cache lock timeout                    |
| MODELKIT_ASSETS_CONCURRENCY           | files moved at once                   |
| MODELKIT_ASSETS_CLAIM_TTL_S           | age of a stale claim without lease    |
| MODELKIT_ASSETS_CLAIM_LEASE_S         | a publisher's claim lease (60)        |
| MODELKIT_ASSETS_OFFLINE               | never touch the network               |
| MODELKIT_ASSETS_RETRIES               | tries per store request (5)           |
| MODELKIT_ASSETS_RETRY_DEADLINE_S      | no retry starts after this long (120) |
| MODELKIT_ASSETS_SIGNING_KEY           | PEM private key that signs publishes  |
| MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE| its passphrase, if encrypted          |
| MODELKIT_ASSETS_REQUIRE_SIGNATURE     | refuse versions no trusted key signed |
| MODELKIT_ASSETS_TRUSTED_KEYS          | PEM public keys (os.pathsep-separated)|
| MODELKIT_ASSETS_LAZY_READ_MIN_BYTES   | files read by parts from this size on |

modelkit's ``MODELKIT_STORAGE_PROVIDER``/``_BUCKET``/``_PREFIX``, ``S3_ENDPOINT`` and
``MODELKIT_STORAGE_FORCE_DOWNLOAD`` are honoured when ``MODELKIT_ASSETS_STORE`` is unset.
Credentials are left to fsspec and the cloud SDKs and are never stored here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from modelkit_assets.errors import ConfigurationError

APP_NAME = "modelkit-assets"
DEFAULT_TIMEOUT_S = 600.0
DEFAULT_CONCURRENCY = 32
DEFAULT_CLAIM_TTL_S = 6 * 3600.0
#: a publisher's claim lease: renewed every quarter of it; another writer takes a claim
#: over once it saw no renewal for STALE_LEASES leases on its own clock
DEFAULT_CLAIM_LEASE_S = 60.0
#: ``modelkit-assets://`` opens files of this size or more (not yet cached, with block hashes)
#: by verified parts instead of fetching their version whole: 32 MiB, four blocks
DEFAULT_LAZY_READ_MIN_BYTES = 32 * 1024 * 1024
DEFAULT_RETRIES = 5
DEFAULT_RETRY_DEADLINE_S = 120.0
#: retry backoff: the first delay and the cap (full jitter below them)
DEFAULT_RETRY_BASE_DELAY_S = 0.1
DEFAULT_RETRY_MAX_DELAY_S = 5.0
#: transfers: part size and parts in flight per file, bytes all running jobs may hold.
#: Measured on moto at 20 ms (benchmarks/): 1 GiB went up in 8.8 s with 8 parts in flight,
#: 8.1 s with 12 (240 MB peak RSS); 100 x 8 MiB went up as fast under a 96 MiB budget
#: as under 128 MiB, at 216 MB peak RSS instead of 265 MB
DEFAULT_PART_SIZE = 8 * 2**20
DEFAULT_PART_CONCURRENCY = 10
DEFAULT_MEMORY_BUDGET = 96 * 2**20
#: ranged GETs of one file in flight: 1 streams each download in one request (transfer.py)
DEFAULT_DOWNLOAD_PART_CONCURRENCY = 1
NO_STORE = "none"
_TRUE = {"1", "true", "yes", "on"}


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in _TRUE


_FALSE = {"", "0", "false", "no", "off"}


def _strict_flag(env: Mapping[str, str], key: str) -> bool:
    """A security switch: anything but a known yes or no is an error, never a silent no."""
    raw = (env.get(key) or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{key}={raw!r} is neither on nor off; set it to 1 (on) or 0 (off).")


def _key_path(env: Mapping[str, str], key: str) -> Path | None:
    """A key file's path; a key pasted into the variable itself is refused without
    repeating it (it would end up in messages and reprs)."""
    raw = (env.get(key) or "").strip()
    if not raw:
        return None
    if "-----BEGIN" in raw or "\n" in raw or len(raw) > 4096:
        raise ConfigurationError(
            f"{key} holds a key itself, not the path of a PEM file; write the key to a file "
            "(readable by you only) and set the variable to its path."
        )
    return Path(raw).expanduser()


def _number(env: Mapping[str, str], key: str, default: float) -> float:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{key}={raw!r} is not a number; set it to a number of seconds.") from None
    if value <= 0:
        raise ConfigurationError(f"{key} must be positive, not {raw!r}.")
    return value


def embedded_store_dir() -> Path:
    """Where the embedded local store lives when nothing is configured."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME)) / "store"


def default_assets_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME)) / "assets"


def _modelkit_store(env: Mapping[str, str]) -> tuple[str | None, dict[str, Any]]:
    """The store URL and options that modelkit's variables describe, if any."""
    provider = (env.get("MODELKIT_STORAGE_PROVIDER") or "").strip().lower()
    if not provider:
        return None, {}
    bucket = env.get("MODELKIT_STORAGE_BUCKET")
    prefix = env.get("MODELKIT_STORAGE_PREFIX") or "modelkit-assets"
    if not bucket:
        raise ConfigurationError(
            f"MODELKIT_STORAGE_PROVIDER={provider} needs MODELKIT_STORAGE_BUCKET (the bucket, "
            "container or local folder)."
        )
    return modelkit_provider_store(
        provider,
        bucket,
        prefix,
        s3_endpoint=env.get("S3_ENDPOINT"),
        azure_connection_string=env.get("AZURE_STORAGE_CONNECTION_STRING"),
    )


def modelkit_provider_store(
    provider: str,
    bucket: str,
    prefix: str,
    *,
    s3_endpoint: str | None = None,
    azure_connection_string: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """The store URL and options of modelkit's ``provider`` (``s3``, ``gcs``, ``az``,
    ``local``) for ``bucket`` and ``prefix``, with modelkit's endpoint settings."""
    options: dict[str, Any] = {}
    if provider == "s3":
        if s3_endpoint:
            options["endpoint_url"] = s3_endpoint
        return f"s3://{bucket}/{prefix}", options
    if provider == "gcs":
        return f"gs://{bucket}/{prefix}", options
    if provider == "az":
        if azure_connection_string:
            options["connection_string"] = azure_connection_string
        return f"az://{bucket}/{prefix}", options
    if provider == "local":
        return Path(bucket, prefix).resolve().as_uri(), options
    raise ConfigurationError(
        f"MODELKIT_STORAGE_PROVIDER={provider!r} is not one of gcs, s3, az, local; "
        "or set MODELKIT_ASSETS_STORE to any fsspec URL."
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of modelkit-assets (``repr`` hides storage options: G7)."""

    store_url: str | None
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    assets_dir: Path = field(default_factory=default_assets_dir)
    versioning: str = "major_minor"
    timeout_s: float = DEFAULT_TIMEOUT_S
    concurrency: int = DEFAULT_CONCURRENCY
    claim_ttl_s: float = DEFAULT_CLAIM_TTL_S
    claim_lease_s: float = DEFAULT_CLAIM_LEASE_S
    offline: bool = False
    force_download: bool = False
    embedded: bool = False
    retries: int = DEFAULT_RETRIES
    retry_deadline_s: float = DEFAULT_RETRY_DEADLINE_S
    #: signing (signing.py): the publisher's private key file and its passphrase (never shown)
    signing_key: Path | None = None
    signing_key_passphrase: str | None = field(default=None, repr=False)
    require_signature: bool = False
    trusted_keys: tuple[Path, ...] = ()
    lazy_read_min_bytes: int = DEFAULT_LAZY_READ_MIN_BYTES

    def __repr__(self) -> str:
        # the store URL may carry `user:password@` (G7): shown without it, options never
        from dataclasses import fields

        from modelkit_assets.urls import redact_url

        values = {f.name: getattr(self, f.name) for f in fields(self) if f.repr}
        if self.store_url is not None:
            values["store_url"] = redact_url(self.store_url)
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in values.items())})"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from ``env`` (``os.environ`` by default).

        Raises
        ------
        ConfigurationError
            If a variable is malformed.
        """
        env = os.environ if env is None else env
        options: dict[str, Any] = {}
        raw_options = env.get("MODELKIT_ASSETS_STORAGE_OPTIONS")
        if raw_options:
            try:
                options = json.loads(raw_options)
            except ValueError:
                raise ConfigurationError(
                    "MODELKIT_ASSETS_STORAGE_OPTIONS is not valid JSON; set it to a JSON object "
                    'such as {"anon": true}.'
                ) from None
            if not isinstance(options, dict):
                raise ConfigurationError("MODELKIT_ASSETS_STORAGE_OPTIONS must be a JSON object.")
        store = (env.get("MODELKIT_ASSETS_STORE") or "").strip() or None
        embedded = False
        if store is None:
            store, modelkit_options = _modelkit_store(env)
            options = {**modelkit_options, **options}
        if store is None:
            store, embedded = embedded_store_dir().as_uri(), True
        elif store.lower() == NO_STORE:
            store = None
        assets_dir = env.get("MODELKIT_ASSETS_DIR")
        return cls(
            store_url=store,
            storage_options=options,
            assets_dir=Path(assets_dir).expanduser() if assets_dir else default_assets_dir(),
            versioning=(env.get("MODELKIT_ASSETS_VERSIONING_SYSTEM") or "major_minor").strip(),
            timeout_s=_number(env, "MODELKIT_ASSETS_TIMEOUT_S", DEFAULT_TIMEOUT_S),
            concurrency=int(_number(env, "MODELKIT_ASSETS_CONCURRENCY", DEFAULT_CONCURRENCY)),
            claim_ttl_s=_number(env, "MODELKIT_ASSETS_CLAIM_TTL_S", DEFAULT_CLAIM_TTL_S),
            claim_lease_s=_number(env, "MODELKIT_ASSETS_CLAIM_LEASE_S", DEFAULT_CLAIM_LEASE_S),
            offline=_flag(env.get("MODELKIT_ASSETS_OFFLINE")),
            force_download=_flag(env.get("MODELKIT_STORAGE_FORCE_DOWNLOAD")),
            embedded=embedded,
            retries=int(_number(env, "MODELKIT_ASSETS_RETRIES", DEFAULT_RETRIES)),
            retry_deadline_s=_number(env, "MODELKIT_ASSETS_RETRY_DEADLINE_S", DEFAULT_RETRY_DEADLINE_S),
            signing_key=_key_path(env, "MODELKIT_ASSETS_SIGNING_KEY"),
            signing_key_passphrase=env.get("MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE") or None,
            require_signature=_strict_flag(env, "MODELKIT_ASSETS_REQUIRE_SIGNATURE"),
            trusted_keys=tuple(
                Path(p.strip()).expanduser()
                for p in (env.get("MODELKIT_ASSETS_TRUSTED_KEYS") or "").split(os.pathsep)
                if p.strip()
            ),
            lazy_read_min_bytes=int(
                _number(env, "MODELKIT_ASSETS_LAZY_READ_MIN_BYTES", DEFAULT_LAZY_READ_MIN_BYTES)
            ),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once; ``get_settings.cache_clear()`` re-reads."""
    return Settings.from_env()


def gcsfs_experimental_requested() -> bool:
    """Whether ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT`` (gcsfs's own variable) is set to true:
    only then do gs:// stores use gcsfs's experimental filesystem class (backends/gcs.py)."""
    return os.environ.get("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "").strip().lower() in ("true", "1")


#: set to 1 for tracebacks instead of one-line errors (the CLI)
DEBUG_VARIABLE = "MODELKIT_ASSETS_DEBUG"


def debug_enabled() -> bool:
    """Whether the user asked for tracebacks (``MODELKIT_ASSETS_DEBUG=1``), read each time."""
    return _flag(os.environ.get(DEBUG_VARIABLE))


def read_settings(*, ignore: Collection[str] = ()) -> Settings:
    """The settings as the environment says now (not the process-wide copy), without the
    variables in ``ignore``: modelkit's API reads the environment at each construction."""
    return Settings.from_env({k: v for k, v in os.environ.items() if k not in ignore})


#: modelkit 0.1.3's ``MODELKIT_STORAGE_TIMEOUT_S`` when unset (its remote's ``timeout``)
MODELKIT_DEFAULT_STORAGE_TIMEOUT_S = 300


@dataclass(frozen=True)
class ModelkitEnvironment:
    """The variables modelkit 0.1.3 reads itself, beyond those ``Settings`` maps, for
    ``modelkit_assets.compat`` (empty strings read as unset)."""

    provider: str | None
    bucket: str | None
    prefix: str | None
    s3_endpoint: str | None
    azure_connection_string: str | None
    timeout_s: str | None
    assets_dir: str | None
    aws_kms_key_id: str | None
    storage_emulator_host: str | None

    @classmethod
    def read(cls) -> ModelkitEnvironment:
        """The variables as they are now."""

        def get(key: str) -> str | None:
            return os.environ.get(key) or None

        return cls(
            provider=get("MODELKIT_STORAGE_PROVIDER"),
            bucket=get("MODELKIT_STORAGE_BUCKET"),
            prefix=get("MODELKIT_STORAGE_PREFIX"),
            s3_endpoint=get("S3_ENDPOINT"),
            azure_connection_string=get("AZURE_STORAGE_CONNECTION_STRING"),
            timeout_s=get("MODELKIT_STORAGE_TIMEOUT_S"),
            assets_dir=get("MODELKIT_ASSETS_DIR"),
            aws_kms_key_id=get("AWS_KMS_KEY_ID"),
            storage_emulator_host=get("STORAGE_EMULATOR_HOST"),
        )
