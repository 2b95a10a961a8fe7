"""Other processes publishing into a store that a long-lived ``AssetStore`` keeps using:
no listing or metadata read may be served from a stale cache (s3fs, gcsfs and adlfs keep
listings cache by default). Runs on every backend a child process can reach (not memory).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from modelkit_assets import AssetsManager, AssetStore

_CHILD = """
import sys
from modelkit_assets import AssetStore
store = AssetStore.from_env()
action, path, name = sys.argv[1:4]
print(store.new(path, name) if action == "new" else store.update(path, name))
"""


def publish_in_child(url: str, options: dict[str, object], action: str, path: Path, name: str) -> str:
    """Publish from a fresh process configured only through the environment (the
    options, which may hold credentials, travel in the environment, not in argv)."""
    env = {
        **os.environ,
        "MODELKIT_ASSETS_STORE": url,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options),
    }
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, action, str(path), name],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_long_lived_store_sees_versions_of_another_process(
    shared_store: tuple[str, dict[str, object]], sample_file: Path, sample_dir: Path, tmp_path: Path
) -> None:
    url, options = shared_store
    store = AssetStore(url, options)
    manager = AssetsManager(store, tmp_path / "assets")
    store.new(sample_file, "a")
    # warm every cache the backend may keep: listings, infos, the resolved latest version
    assert store.versions("a") == ["0.0"]
    assert store.exists("a", "0.0") and not store.exists("a", "0.1")
    assert list(store.list()) == [("a", ["0.0"])]
    assert manager.fetch("a") == manager.assets_dir / "a" / "0.0"

    assert publish_in_child(url, options, "update", sample_dir, "a") == "0.1"
    assert publish_in_child(url, options, "new", sample_file, "b/c") == "0.0"

    assert store.versions("a") == ["0.1", "0.0"]
    assert store.exists("a", "0.1")
    assert store.meta("a", "0.1").is_directory
    assert list(store.list()) == [("a", ["0.1", "0.0"]), ("b/c", ["0.0"])]
    assert store.read_index("a") == ["0.1", "0.0"]
    latest = manager.fetch("a")
    assert latest == manager.assets_dir / "a" / "0.1"
    assert (latest / "vocab.txt").read_bytes() == (sample_dir / "vocab.txt").read_bytes()

    # and the other way round: our next update follows the child's version
    assert store.update(sample_file, "a") == "0.2"
