"""A training script that publishes its model as a new asset version at the end of a run.

The pattern: pin the data you train on (record its resolved version), train into a
scratch folder, and publish only once the run succeeded, so a crashed or interrupted run
publishes nothing. Each run gets its own version (concurrent runs never overwrite each
other), and the model's description names the data version it was trained on::

    python examples/train_and_publish.py              # -> examples/iris-centroids:0.0, 0.1, ...
    python examples/train_and_publish.py --bump-major # a new major: 1.0

The "model" is a nearest-centroid classifier in plain Python, to keep the example free of
ML dependencies; swap in your own training loop.
"""

import argparse
import csv
import json
import math
import tempfile
from collections import defaultdict
from pathlib import Path

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import AssetNotFoundError

DATA = Path(__file__).parent / "data" / "iris"
DATASET = "examples/iris"
MODEL = "examples/iris-centroids"


def train(rows: list[dict[str, str]]) -> tuple[dict[str, list[float]], list[str]]:
    """Centroid of every species, over the numeric columns."""
    features = [k for k in rows[0] if k != "species"]
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(features))
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row["species"]] += 1
        for i, feature in enumerate(features):
            sums[row["species"]][i] += float(row[feature])
    centroids = {s: [v / counts[s] for v in total] for s, total in sums.items()}
    return centroids, features


def predict(centroids: dict[str, list[float]], features: list[str], row: dict[str, str]) -> str:
    point = [float(row[f]) for f in features]
    return min(centroids, key=lambda s: math.dist(point, centroids[s]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--bump-major", action="store_true", help="start a new major version")
    args = parser.parse_args()

    store = AssetStore.from_env()
    assets = AssetsManager(store)
    try:
        store.versions(DATASET)
    except AssetNotFoundError:  # bootstrap, so that the example runs on its own
        store.new(DATA, DATASET, description="iris sample")
    data = assets.fetch_info(f"{DATASET}:0[iris.csv]")  # pin: record what we train on
    print(f"training on {DATASET}:{data.version}")
    with data.path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))

    centroids, features = train(rows)
    accuracy = sum(predict(centroids, features, r) == r["species"] for r in rows) / len(rows)
    print(f"training accuracy: {accuracy:.3f}")

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "model"
        out.mkdir()
        (out / "model.json").write_text(json.dumps({"features": features, "centroids": centroids}, indent=1))
        (out / "metrics.json").write_text(
            json.dumps({"accuracy": accuracy, "dataset": f"{DATASET}:{data.version}"}, indent=1)
        )
        description = f"trained on {DATASET}:{data.version}, accuracy {accuracy:.3f}"
        # publish last: only a run that got here leaves a version behind
        if store.exists(MODEL):
            version = store.update(out, MODEL, bump_major=args.bump_major, description=description)
        else:
            version = store.new(out, MODEL, description=description)
    print(f"published {MODEL}:{version}")

    # anyone can now load exactly this model
    model = json.loads(assets.fetch(f"{MODEL}:{version}[model.json]").read_text())
    print(f"reloaded {MODEL}:{version}: {sorted(model['centroids'])}")


if __name__ == "__main__":
    main()
