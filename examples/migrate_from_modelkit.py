"""Migrating code written for ``modelkit.assets``: change the imports, keep the code.

``modelkit_assets.compat`` keeps modelkit 0.1.3's names, signatures, return values and
environment variables (``MODELKIT_STORAGE_PROVIDER``, ``MODELKIT_STORAGE_BUCKET``,
``MODELKIT_STORAGE_PREFIX``, ``MODELKIT_ASSETS_DIR``...), and the store layout is the same,
so modelkit and modelkit-assets can share a bucket and an assets dir during the move.
Underneath, versions are committed exclusively and fetches are verified (DESIGN.md G1-G4).

The diff of a migration is the import block below. Run it with modelkit's variables::

    MODELKIT_STORAGE_PROVIDER=local MODELKIT_STORAGE_BUCKET=/tmp/bucket \\
    MODELKIT_ASSETS_DIR=/tmp/assets python examples/migrate_from_modelkit.py

With none of them set it uses a temporary local bucket and assets dir.
"""

import os
import tempfile
from pathlib import Path

# before:
#   from modelkit.assets.errors import ObjectDoesNotExistError
#   from modelkit.assets.manager import AssetsManager
#   from modelkit.assets.remote import StorageProvider
#   from modelkit.assets.settings import AssetSpec
#   from modelkit.assets.versioning.major_minor import MajorMinorAssetsVersioningSystem
from modelkit_assets.compat import (
    AssetsManager,
    AssetSpec,
    MajorMinorAssetsVersioningSystem,
    ObjectDoesNotExistError,
    StorageProvider,
)

DATA = Path(__file__).parent / "data" / "iris"
NAME = "examples/iris-modelkit"


# -- modelkit code, unchanged --------------------------------------------------------------
def publish(provider: StorageProvider, asset_path: str, name: str) -> str:
    """modelkit's way: compute the next version, then push exactly that version."""
    try:
        versions = provider.get_versions_info(name)
    except ObjectDoesNotExistError:
        return provider.new(asset_path, name, MajorMinorAssetsVersioningSystem.get_initial_version())
    version = MajorMinorAssetsVersioningSystem.increment_version(versions)
    return provider.update(asset_path, name, version)


def run() -> None:
    provider = StorageProvider()  # from MODELKIT_STORAGE_* (or MODELKIT_ASSETS_STORE)
    version = publish(provider, str(DATA), NAME)
    print(f"published {NAME}:{version}")
    for name, versions in provider.iterate_assets():
        print(f"{name}: {', '.join(versions)}")

    manager = AssetsManager(storage_provider=provider)  # MODELKIT_ASSETS_DIR
    info = manager.fetch_asset(f"{NAME}:0[iris.csv]", return_info=True)
    print(f"fetched {NAME}:{info['version']} -> {info['path']} (from cache: {info['from_cache']})")

    spec = AssetSpec.from_string(f"{NAME}:0[iris.csv]")
    print(f"spec: name={spec.name} version={spec.version} sub_part={spec.sub_part}")
    again = manager.fetch_asset(spec, return_info=True)  # the spec is pinned, as modelkit does
    print(f"pinned spec: {spec.name}:{spec.version}, from cache: {again['from_cache']}")


# -----------------------------------------------------------------------------------------
def main() -> None:
    if os.environ.get("MODELKIT_STORAGE_PROVIDER") or os.environ.get("MODELKIT_ASSETS_STORE"):
        run()
        return
    with tempfile.TemporaryDirectory() as scratch:
        bucket, assets_dir = Path(scratch, "bucket"), Path(scratch, "assets")
        bucket.mkdir()
        assets_dir.mkdir()
        os.environ.update(
            MODELKIT_STORAGE_PROVIDER="local",
            MODELKIT_STORAGE_BUCKET=str(bucket),
            MODELKIT_ASSETS_DIR=str(assets_dir),
        )
        print(f"no store configured: using a temporary local bucket {bucket}")
        run()


if __name__ == "__main__":
    main()
