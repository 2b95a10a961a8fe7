"""Azure Blob Storage (adlfs): ``az://container/prefix`` (also ``abfs://``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelkit_assets.backends.base import CloudBackend

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fsspec import AbstractFileSystem


class AzureBackend(CloudBackend):
    protocols = ("az", "abfs", "abfss")
    extra = "azure"
    # adlfs hands its **kwargs to azure-identity's DefaultAzureCredential, whose keywords
    # are not in its signature
    extra_option_names = frozenset(
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
    # and one exclude_*_credential switch per credential type
    extra_option_prefixes = ("exclude_",)
    missing_bucket_markers = ("ContainerNotFound",)

    def limit_retries(self, fs: AbstractFileSystem, options: Mapping[str, Any]) -> None:
        """One quick extra try: by default the Azure SDK waits 15 s, then 18 s, then 24 s."""
        service = getattr(fs, "service_client", None)
        policy = getattr(getattr(service, "_config", None), "retry_policy", None)
        if policy is None or not hasattr(policy, "total_retries") or not hasattr(policy, "initial_backoff"):
            return
        policy.total_retries = min(policy.total_retries, 1)
        policy.initial_backoff = min(policy.initial_backoff, 0.2)
        if hasattr(policy, "random_jitter_range"):
            policy.random_jitter_range = min(policy.random_jitter_range, 0.2)
        if hasattr(policy, "increment_base"):
            # the SDK adds increment_base ** n seconds to the initial backoff (3 s by default)
            policy.increment_base = min(policy.increment_base, 0.5)

    def bucket_exists(self, fs: AbstractFileSystem, bucket: str) -> bool | None:
        # adlfs's own exists warns and answers True for a missing container
        from fsspec.asyn import sync

        return bool(sync(fs.loop, fs.service_client.get_container_client(bucket).exists))
