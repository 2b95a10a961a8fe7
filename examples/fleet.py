"""Warm a model on every worker of a Dask cluster: one download per machine.

A fleet (Dask workers here; pods, Ray actors or web server processes work the same)
starts together and every worker asks for the same model at once. When the workers of a
machine share one assets dir, as pods share a volume, the asset's cache lock lets one of
them download and verify the version while the others wait, then serves them the result
from the cache: each version is downloaded once per machine, whatever the number of
workers, and nothing central has to run.

The example publishes a small model (a few files, fresh weights each run) as a new
version of ``examples/fleet-model`` to the configured store (``MODELKIT_ASSETS_STORE``,
the embedded local store by default), starts a ``LocalCluster`` of 4 worker processes
sharing the assets dir (``MODELKIT_ASSETS_DIR``), warms the model on each worker, and
says which one downloaded it::

    pip install "dask[distributed]"
    python examples/fleet.py        # last line: 1 of 4 workers downloaded examples/fleet-model:0.0
"""

import json
import os
import tempfile
from pathlib import Path

import fsspec
from distributed import Client, LocalCluster, get_worker

from modelkit_assets import AssetExistsError, AssetsManager, AssetStore

NAME = "examples/fleet-model"
WORKERS = 4


def make_model(root: Path) -> Path:
    """A stand-in for a training run's output: a config, a vocabulary and 4 MiB of weights."""
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"layers": 2, "hidden": 512}))
    (root / "vocab.txt").write_text("\n".join(f"token{i}" for i in range(1000)))
    (root / "weights.bin").write_bytes(os.urandom(4 * 2**20))
    return root


def warm(spec: str, assets_dir: str) -> tuple[str, bool]:
    """On a worker: fetch the model into the shared assets dir, then load it.

    The store comes from the environment, as in every pod of a deployment; the load goes
    through the ``modelkit-assets://`` protocol and is served by the cache.
    """
    result = AssetsManager(assets_dir=assets_dir).fetch_info(spec)
    with fsspec.open(f"modelkit-assets://{spec}/config.json", "rt", assets_dir=assets_dir) as handle:
        json.load(handle)
    return str(get_worker().name), result.from_cache


def main() -> None:
    store = AssetStore.from_env()
    with tempfile.TemporaryDirectory() as scratch:
        model = make_model(Path(scratch) / "model")
        try:
            version = store.new(model, NAME, description="fleet example model")
        except AssetExistsError:
            version = store.update(model, NAME, description="fleet example model")
    spec = f"{NAME}:{version}"
    assets_dir = str(AssetsManager().assets_dir)  # one folder for every worker of the machine
    print(f"published {spec} to {store.display_url}; assets dir {assets_dir}")

    with (
        LocalCluster(
            n_workers=WORKERS, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        client.wait_for_workers(WORKERS)
        # one task pinned to each worker, all submitted at once: they fetch concurrently
        futures = [
            client.submit(warm, spec, assets_dir, workers=[address], pure=False)
            for address in client.scheduler_info()["workers"]
        ]
        outcomes: list[tuple[str, bool]] = client.gather(futures)

    for worker, from_cache in sorted(outcomes):
        print(f"worker {worker}: {'served from the cache' if from_cache else 'downloaded'}")
    downloads = sum(not from_cache for _, from_cache in outcomes)
    print(f"{downloads} of {len(outcomes)} workers downloaded {spec}")


if __name__ == "__main__":
    main()
