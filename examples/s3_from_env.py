"""Publish and fetch on S3, configured only through the environment.

Nothing in this file names a bucket, an endpoint or a credential: the store URL comes
from ``MODELKIT_ASSETS_STORE`` and the credentials go straight from the environment to
s3fs/botocore, so the same code runs on a laptop, in CI and in production::

    export MODELKIT_ASSETS_STORE=s3://my-bucket/assets       # the bucket must exist
    export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...     # or a profile, or an IAM role
    export AWS_ENDPOINT_URL=http://127.0.0.1:9000              # only for S3-compatible servers
    python examples/s3_from_env.py

modelkit's variables work too (``MODELKIT_STORAGE_PROVIDER=s3``,
``MODELKIT_STORAGE_BUCKET=my-bucket``, ``MODELKIT_STORAGE_PREFIX=assets``,
``S3_ENDPOINT=...``). Run it twice: the second run publishes the next version.
"""

import sys
from pathlib import Path

from modelkit_assets import AssetExistsError, AssetsManager, AssetStore
from modelkit_assets.settings import get_settings

DATA = Path(__file__).parent / "data" / "iris"
NAME = "examples/iris-s3"


def main() -> int:
    settings = get_settings()
    if settings.store_url is None or not settings.store_url.startswith("s3://"):
        print(
            "Set MODELKIT_ASSETS_STORE=s3://bucket/prefix (or MODELKIT_STORAGE_PROVIDER=s3 and "
            "MODELKIT_STORAGE_BUCKET) and the AWS_* credentials first.",
            file=sys.stderr,
        )
        return 2
    store = AssetStore.from_env()
    print(f"store: {store.display_url}")  # never the credentials
    try:
        version = store.new(DATA, NAME, description="s3 example")
    except AssetExistsError:
        version = store.update(DATA, NAME, description="s3 example")
    print(f"published {NAME}:{version}")
    print("versions:", ", ".join(store.versions(NAME)))

    assets = AssetsManager(store)  # the assets dir: MODELKIT_ASSETS_DIR or the user cache
    result = assets.fetch_info(f"{NAME}:{version}[iris.csv]")
    print(f"fetched {NAME}:{result.version} into {result.path} (from cache: {result.from_cache})")
    print(result.path.read_text().splitlines()[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
