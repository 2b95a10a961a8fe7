"""G3 and G4 when a process dies: a publisher or a fetcher killed with SIGKILL in the middle
of its transfer leaves nothing that resolves, lists, fetches or looks installed, and
running the same command again succeeds.

The worker (tests/helpers_worker.py) freezes inside its progress callback once a few files
are transferred; the test waits until the store (or the staging folder) really holds some
of its data, then kills it. The kill point is thus known: data written, nothing committed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_snapshot import put_object, tree
from helpers_worker import digests, kill_when, result, start

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import AssetNotFoundError, VersionNotFoundError

Store = tuple[str, dict[str, object]]


def make_folder(root: Path, files: int = 24, size: int = 50_000) -> Path:
    for i in range(files):
        (root / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (root / f"d{i % 3}" / f"f{i}.bin").write_bytes(os.urandom(size))
    return root


def data_objects(store: AssetStore, name: str, version: str) -> list[str]:
    """Keys under a version's data prefix, relative to it."""
    prefix = store.layout.data(name, version)
    store.fs.invalidate_cache()
    try:
        keys = store.fs.find(prefix)
    except FileNotFoundError:
        return []
    return sorted(store.layout.relative(k)[len(store.layout.relative(prefix)) + 1 :] for k in keys)


@pytest.mark.parametrize("command", ["new", "update"])
def test_killed_publisher_leaves_no_version_and_a_rerun_succeeds(
    shared_store: Store, tmp_path: Path, command: str
) -> None:
    url, options = shared_store
    store = AssetStore(url, options)
    name = "crash/model"
    if command == "update":
        store.new(make_folder(tmp_path / "base", files=3), name)
    version = "0.0" if command == "new" else "0.1"
    source = make_folder(tmp_path / "src")
    publish = {"url": url, "options": options, "action": command, "name": name, "path": str(source)}

    proc = start({**publish, "block_after": 3, "ready": str(tmp_path / "ready")})
    kill_when(proc, tmp_path / "ready", lambda: len(data_objects(store, name, version)) >= 3)

    # data of the dead writer is in the store, yet no version resolves, lists or fetches
    assert data_objects(store, name, version)
    assert not store.fs.exists(store.layout.meta(name, version))
    manager = AssetsManager(store, tmp_path / "assets")
    if command == "new":
        with pytest.raises(AssetNotFoundError):
            store.versions(name)
        with pytest.raises(AssetNotFoundError):
            manager.fetch(name)
        assert name not in dict(store.list())
        assert store.read_index(name) is None
    else:
        assert store.versions(name) == ["0.0"]
        assert store.resolve(name) == "0.0"
        assert dict(store.list())[name] == ["0.0"]
        assert store.read_index(name) == ["0.0"]
        assert manager.fetch_info(name).version == "0.0"
    with pytest.raises(VersionNotFoundError):
        manager.fetch(f"{name}:{version}")
    assert not (manager.assets_dir / "crash" / "model" / version).exists()

    # a leftover the rerun must not publish: stray objects never become part of a version
    put_object(store, store.layout.data(name, version, "stale-leftover.bin"), b"left by a dead writer")

    # the same command again: the dead writer's claim (same host, process gone) is resumed
    rerun = result(start(publish))
    assert rerun == ({"version": version} if command == "new" else {"versions": [version]})
    expected = ["0.0"] if command == "new" else ["0.1", "0.0"]
    assert store.versions(name) == expected
    assert store.read_index(name) == expected
    assert dict(store.list())[name] == expected
    meta = store.meta(name, version)
    assert data_objects(store, name, version) == sorted(meta.files)
    assert digests(manager.fetch(f"{name}:{version}")) == digests(source)


def test_killed_fetch_leaves_nothing_installed_and_the_next_fetch_completes(
    shared_store: Store, tmp_path: Path
) -> None:
    url, options = shared_store
    store = AssetStore(url, options)
    source = make_folder(tmp_path / "src")
    store.new(source, "big")
    assets = tmp_path / "assets"
    staging = assets / ".cache" / "staging"

    def staged_files() -> int:
        return sum(len(files) for _, _, files in os.walk(staging)) if staging.exists() else 0

    proc = start(
        {
            "url": url,
            "options": options,
            "action": "fetch",
            "spec": "big:0.0",
            "assets_dir": str(assets),
            "block_after": 3,
            "ready": str(tmp_path / "ready"),
        }
    )
    kill_when(proc, tmp_path / "ready", lambda: staged_files() >= 3)

    manager = AssetsManager(store, assets, timeout=10)  # the dead fetcher's lock is free
    assert staged_files() >= 3  # what it downloaded is still in staging ...
    assert manager.cache.cached_path("big", "0.0") is None  # ... and nowhere else
    assert not (assets / "big" / "0.0").exists()
    assert not (assets / "big" / ".0.0.SUCCESS").exists()

    fetched = manager.fetch_info("big:0.0")
    assert not fetched.from_cache
    assert digests(fetched.path) == digests(source)
    assert (fetched.path / ".SUCCESS").exists()
    assert staged_files() == 0  # the leftovers of the killed fetch were removed


def test_killed_forced_refetch_keeps_the_installed_version(shared_store: Store, tmp_path: Path) -> None:
    url, options = shared_store
    store = AssetStore(url, options)
    source = make_folder(tmp_path / "src")
    store.new(source, "big")
    assets = tmp_path / "assets"
    manager = AssetsManager(store, assets, timeout=10)
    installed = manager.fetch("big:0.0")
    before = tree(assets / "big")

    proc = start(
        {
            "url": url,
            "options": options,
            "action": "fetch",
            "spec": "big:0.0",
            "force": True,
            "assets_dir": str(assets),
            "block_after": 3,
            "ready": str(tmp_path / "ready"),
        }
    )
    kill_when(proc, tmp_path / "ready", lambda: True)

    assert tree(assets / "big") == before
    assert manager.fetch_info("big:0.0").from_cache
    assert digests(installed) == digests(source)


class StaleListingStore(AssetStore):
    """A store whose listings miss the commit of ``hidden`` a few times: what a writer
    sees when another one commits between its listing and its claim (a race made
    deterministic), or on a store whose listings lag behind its writes."""

    hidden = ""
    misses = 0

    def _listing(self, name: str) -> list[dict[str, object]]:
        entries = super()._listing(name)
        if self.misses > 0:
            self.misses -= 1
            entries = [e for e in entries if not str(e["name"]).endswith(f"/{self.hidden}.meta")]
        return entries


def test_resuming_a_dead_writers_claim_never_touches_its_committed_version(
    shared_store: Store, tmp_path: Path
) -> None:
    """The writer of 0.1 committed and exited; a writer that had not seen that commit finds
    the claim of a dead process on 0.1. It must move on to 0.2 without deleting 0.1's data
    (G1), not clean the prefix as for a crashed upload."""
    url, options = shared_store
    source = make_folder(tmp_path / "src", files=3)
    job = {"url": url, "options": options, "path": str(source), "name": "a"}
    assert result(start({**job, "action": "new"})) == {"version": "0.0"}
    assert result(start({**job, "action": "update"})) == {"versions": ["0.1"]}

    store = StaleListingStore(url, options)
    store.hidden, store.misses = "0.1", 2
    assert store.update(source, "a") == "0.2"

    manager = AssetsManager(store, tmp_path / "assets")
    for version in ("0.0", "0.1", "0.2"):
        assert digests(manager.fetch(f"a:{version}")) == digests(source)
