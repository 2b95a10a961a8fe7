"""Every script in examples/ runs, as a user would run it (a subprocess), against a
temporary store and assets dir, and does what its docstring says."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import AssetStore

EXAMPLES = Path(__file__).parent.parent / "examples"
IRIS_CSV = EXAMPLES / "data" / "iris" / "iris.csv"
Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run(tmp_path: Path) -> Run:
    """Run ``examples/<script>`` with the test's clean environment plus ``env``."""

    def run_example(script: str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / script), *args],
            env={**os.environ, **(env or {})},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and result.returncode != 0:
            pytest.fail(f"{script} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    return run_example


@pytest.fixture
def local_env(tmp_path: Path) -> dict[str, str]:
    return {
        "MODELKIT_ASSETS_STORE": (tmp_path / "store").as_uri(),
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }


def _iris_rows() -> list[dict[str, str]]:
    with IRIS_CSV.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_example_is_tested() -> None:
    tested = {
        "quickstart.py",
        "s3_from_env.py",
        "pandas_protocol.py",
        "train_and_publish.py",
        "migrate_from_modelkit.py",
        "fleet.py",
    }
    assert {p.name for p in EXAMPLES.glob("*.py")} == tested


def test_quickstart_on_the_embedded_store(run: Run) -> None:
    """The README's main command: nothing configured, run twice."""
    first = run("quickstart.py")
    embedded = Path(os.environ["XDG_DATA_HOME"]) / "modelkit-assets" / "store"
    assert f"store: {embedded.as_uri()}" in first.stdout
    assert "published examples/iris:0.0" in first.stdout
    assert first.stdout.rstrip().endswith(",".join(_iris_rows()[0].values()))
    second = run("quickstart.py")
    assert "published examples/iris:0.1" in second.stdout
    assert "versions: 0.1, 0.0" in second.stdout
    assert AssetStore(embedded).versions("examples/iris") == ["0.1", "0.0"]
    cache = Path(os.environ["XDG_CACHE_HOME"]) / "modelkit-assets" / "assets" / "examples" / "iris"
    assert (cache / "0.1" / "iris.csv").read_bytes() == IRIS_CSV.read_bytes()


def test_quickstart_on_a_configured_store(run: Run, local_env: dict[str, str], tmp_path: Path) -> None:
    result = run("quickstart.py", env=local_env)
    assert f"store: {local_env['MODELKIT_ASSETS_STORE']}" in result.stdout
    assert f"fetched into {tmp_path / 'assets' / 'examples' / 'iris' / '0.0' / 'iris.csv'}" in result.stdout
    assert AssetStore(tmp_path / "store").versions("examples/iris") == ["0.0"]


def test_pandas_through_the_protocol(run: Run, local_env: dict[str, str], tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    result = run("pandas_protocol.py", env=local_env)
    petal: dict[str, list[float]] = defaultdict(list)
    for row in _iris_rows():
        petal[row["species"]].append(float(row["petal_length"]))
    for species, values in petal.items():
        assert any(
            line.split() == [species, f"{sum(values) / len(values):.2f}"]
            for line in result.stdout.splitlines()
        ), species
    assert "ls: ['examples/iris:0/README.txt', 'examples/iris:0/iris.csv']" in result.stdout
    assert f"info: {IRIS_CSV.stat().st_size} bytes, version 0.0" in result.stdout
    # read through the verified cache of the configured assets dir
    assert (tmp_path / "assets" / "examples" / "iris" / "0.0" / ".SUCCESS").exists()


def test_training_publishes_a_version_per_run(run: Run, local_env: dict[str, str], tmp_path: Path) -> None:
    outputs = [
        run("train_and_publish.py", env=local_env).stdout,
        run("train_and_publish.py", env=local_env).stdout,
        run("train_and_publish.py", "--bump-major", env=local_env).stdout,
    ]
    for output, version in zip(outputs, ["0.0", "0.1", "1.0"], strict=True):
        assert "training on examples/iris:0.0" in output
        assert f"published examples/iris-centroids:{version}" in output
    store = AssetStore(tmp_path / "store")
    assert store.versions("examples/iris-centroids") == ["1.0", "0.1", "0.0"]
    meta = store.meta("examples/iris-centroids", "1.0")
    assert meta.is_directory and meta.contents == ["metrics.json", "model.json"]
    assert meta.description is not None and meta.description.startswith("trained on examples/iris:0.0")
    model = json.loads(
        (tmp_path / "assets" / "examples" / "iris-centroids" / "1.0" / "model.json").read_text()
    )
    setosa = [r for r in _iris_rows() if r["species"] == "setosa"]
    expected = [sum(float(r[f]) for r in setosa) / len(setosa) for f in model["features"]]
    assert model["centroids"]["setosa"] == pytest.approx(expected)


@pytest.mark.cloud
def test_s3_configured_from_the_environment(
    run: Run, s3_store_factory: Callable[[], tuple[str, dict[str, object]]], tmp_path: Path
) -> None:
    url, options = s3_store_factory()
    secret = str(options["secret"])
    aws = {
        "AWS_ENDPOINT_URL": str(options["endpoint_url"]),
        "AWS_ACCESS_KEY_ID": str(options["key"]),
        "AWS_SECRET_ACCESS_KEY": secret,
        "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"),
    }
    first = run("s3_from_env.py", env={**aws, "MODELKIT_ASSETS_STORE": url})
    assert f"store: {url}" in first.stdout and "published examples/iris-s3:0.0" in first.stdout
    assert "(from cache: False)" in first.stdout
    # modelkit's variables describe the same store
    bucket, prefix = url.removeprefix("s3://").split("/", 1)
    modelkit = {
        "MODELKIT_STORAGE_PROVIDER": "s3",
        "MODELKIT_STORAGE_BUCKET": bucket,
        "MODELKIT_STORAGE_PREFIX": prefix,
        "S3_ENDPOINT": str(options["endpoint_url"]),
    }
    second = run("s3_from_env.py", env={**aws, **modelkit})
    assert "published examples/iris-s3:0.1" in second.stdout
    assert "versions: 0.1, 0.0" in second.stdout
    for result in (first, second):
        assert secret not in result.stdout + result.stderr
    assert AssetStore(url, options).versions("examples/iris-s3") == ["0.1", "0.0"]


def test_s3_example_says_what_to_configure(run: Run) -> None:
    result = run("s3_from_env.py", check=False)
    assert result.returncode == 2
    assert "MODELKIT_ASSETS_STORE=s3://" in result.stderr


def test_migrating_from_modelkit(run: Run, tmp_path: Path) -> None:
    standalone = run("migrate_from_modelkit.py")
    assert "no store configured: using a temporary local bucket" in standalone.stdout
    assert "published examples/iris-modelkit:0.0" in standalone.stdout

    bucket, assets = tmp_path / "bucket", tmp_path / "assets"
    bucket.mkdir()
    assets.mkdir()
    env = {
        "MODELKIT_STORAGE_PROVIDER": "local",
        "MODELKIT_STORAGE_BUCKET": str(bucket),
        "MODELKIT_ASSETS_DIR": str(assets),
    }
    first = run("migrate_from_modelkit.py", env=env).stdout
    second = run("migrate_from_modelkit.py", env=env).stdout
    assert "published examples/iris-modelkit:0.0" in first
    assert "fetched examples/iris-modelkit:0.0" in first and "(from cache: False)" in first
    assert "pinned spec: examples/iris-modelkit:0.0, from cache: True" in first
    assert "published examples/iris-modelkit:0.1" in second
    assert "examples/iris-modelkit: 0.1, 0.0" in second
    assert "spec: name=examples/iris-modelkit version=0 sub_part=iris.csv" in second
    assert AssetStore(bucket / "modelkit-assets").versions("examples/iris-modelkit") == ["0.1", "0.0"]
    assert (assets / "examples" / "iris-modelkit" / "0.1" / "iris.csv").read_bytes() == IRIS_CSV.read_bytes()
