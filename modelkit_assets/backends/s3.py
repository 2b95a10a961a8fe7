"""S3 and S3-compatible servers (s3fs): ``s3://bucket/prefix``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from modelkit_assets.backends.base import STREAM_BUFFER, CloudBackend
from modelkit_assets.errors import ConfigurationError

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from modelkit_assets.transfer import Tuning


class S3Backend(CloudBackend):
    protocols = ("s3", "s3a")
    extra = "s3"
    # s3fs hands its **kwargs to aiobotocore's session, which checks them at the first request
    forwards_options_to = "aiobotocore.session:AioSession"
    missing_bucket_markers = ("NoSuchBucket",)

    def credentials_from_url(
        self, url: str, clean_url: str, userinfo: str, options: dict[str, Any]
    ) -> tuple[str, dict[str, Any]]:
        """``key:secret@`` become the ``key``/``secret`` options (unless given)."""
        from urllib.parse import unquote

        key, _, secret = userinfo.partition(":")
        options = dict(options)
        options.setdefault("key", unquote(key))
        if secret:
            options.setdefault("secret", unquote(secret))
        return clean_url, options

    def prepare_options(
        self, options: dict[str, Any], *, pool_size: int | None, origin: str
    ) -> dict[str, Any]:
        """No listings cache; botocore's pool sized to the transfer concurrency (it
        defaults to 10, which would queue the other requests); one botocore retry, since
        retry.py retries each request with a bounded total (botocore's own 5 attempts
        with legacy backoff would multiply with ours). A ``config_kwargs`` given wins."""
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
        config.setdefault("retries", {"total_max_attempts": 2, "mode": "standard"})
        options["config_kwargs"] = config
        return options

    def limit_retries(self, fs: AbstractFileSystem, options: Mapping[str, Any]) -> None:
        if "retries" not in options:
            fs.retries = 2

    def object_exists(self, fs: AbstractFileSystem, key: str) -> bool:
        """One HEAD: s3fs's ``exists`` follows a missing key with a listing of it as a
        folder (a second request, on the common path of a commit check)."""
        bucket, path, _ = fs.split_path(key)
        try:
            fs.call_s3("head_object", Bucket=bucket, Key=path)
        except FileNotFoundError:
            return False
        return True

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        # s3fs's own exists answers False when refused: ask the bucket itself
        fs.call_s3("list_objects_v2", Bucket=bucket, MaxKeys=1)
        return True

    def file_kwargs(self, direction: str, tuning: Tuning) -> dict[str, Any]:
        """s3fs defaults to 50 MiB parts, 10 at a time, read whole into memory (a 200 MB
        upload peaked at 463 MB RSS)."""
        parts = tuning.part_concurrency if direction == "put" else tuning.download_part_concurrency
        return {"chunksize": tuning.part_size, "max_concurrency": parts}

    def job_cost(self, direction: str, size: int | None, tuning: Tuning) -> int:
        parts = tuning.part_concurrency if direction == "put" else tuning.download_part_concurrency
        multipart = tuning.part_size * parts
        if direction == "put":
            if size is None:
                return multipart
            return size if size < 2 * tuning.part_size else multipart
        if parts == 1 or (size is not None and size <= tuning.part_size):
            return STREAM_BUFFER if size is None else min(size, STREAM_BUFFER)
        return multipart
