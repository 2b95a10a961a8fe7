"""Read an asset in pandas through the ``modelkit-assets://`` fsspec protocol.

Any library that takes an fsspec URL (pandas, PyArrow, Dask, xarray, PyTorch data
loaders...) can read a published asset by ``name:version/path``; a partial version
(``:0``) resolves to the latest ``0.*``. Bytes come from the verified local cache: the
first read downloads and checks the version, later reads cost no network call.

The store and the assets dir come from the environment (``MODELKIT_ASSETS_STORE``,
``MODELKIT_ASSETS_DIR``; the embedded local store by default) or from
``storage_options``. The example publishes ``examples/iris`` first if the store does not
have it yet, so it runs on its own::

    python examples/pandas_protocol.py
"""

from pathlib import Path

import fsspec
import pandas as pd

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import AssetNotFoundError

DATA = Path(__file__).parent / "data" / "iris"


def main() -> None:
    store = AssetStore.from_env()
    try:
        latest = store.versions("examples/iris")[0]
    except AssetNotFoundError:
        latest = store.new(DATA, "examples/iris", description="iris sample for the pandas example")
    print(f"store: {store.display_url}, examples/iris latest: {latest}")

    # configured by the environment, like any fsspec URL
    frame = pd.read_csv("modelkit-assets://examples/iris:0/iris.csv")
    print(frame.groupby("species")["petal_length"].mean().round(2).to_string())

    # or by storage options, e.g. in a notebook talking to several stores
    options = {"store": store.url, "assets_dir": str(AssetsManager().assets_dir)}
    pinned = pd.read_csv(f"modelkit-assets://examples/iris:{latest}/iris.csv", storage_options=options)
    assert pinned.equals(frame)

    # the filesystem itself: ls / info / find / cat, read-only
    fs = fsspec.filesystem("modelkit-assets", **options)
    print("ls:", fs.ls("examples/iris:0", detail=False))
    info = fs.info("examples/iris:0/iris.csv")
    print(f"info: {info['size']} bytes, version {info['version']}")
    print("find:", fs.find("examples"))


if __name__ == "__main__":
    main()
