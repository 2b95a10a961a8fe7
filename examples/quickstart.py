"""Quickstart on the embedded local store: publish examples/data/iris, fetch it back.

Run it twice: the first run publishes ``examples/iris:0.0``, later runs publish the next
version. Set MODELKIT_ASSETS_STORE to any fsspec URL to use another store.
"""

from pathlib import Path

from modelkit_assets import AssetExistsError, AssetsManager, AssetStore

DATA = Path(__file__).parent / "data" / "iris"


def main() -> None:
    store = AssetStore.from_env()
    print(f"store: {store.display_url}")
    try:
        version = store.new(DATA, "examples/iris", description="quickstart sample")
    except AssetExistsError:
        version = store.update(DATA, "examples/iris", description="quickstart sample")
    print(f"published examples/iris:{version}")
    print("versions:", ", ".join(store.versions("examples/iris")))

    assets = AssetsManager(store)
    path = assets.fetch(f"examples/iris:{version}[iris.csv]")
    print(f"fetched into {path}")
    print(path.read_text().splitlines()[1])


if __name__ == "__main__":
    main()
