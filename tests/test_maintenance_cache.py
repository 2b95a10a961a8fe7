"""`cache list` and `cache prune`: inventory, rules, and never removing a version in use."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from helpers_holder import HOLD_FILELOCK, holding

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.maintenance.inventory import CachedVersion, disk_size, scan_cache
from modelkit_assets.maintenance.prune import PrunePolicy, plan_prune, prune
from modelkit_assets.maintenance.usage import hold, leased
from modelkit_assets.versioning import get_versioning

MM = get_versioning("major_minor")
DAY = dt.timedelta(days=1)
NOW = dt.datetime(2026, 1, 31, tzinfo=dt.UTC)


def _cv(name: str, version: str, size: int, days_ago: float) -> CachedVersion:
    used = NOW - dt.timedelta(days=days_ago)
    return CachedVersion(name, version, Path("/x") / name / version, False, size, 1, used, used)


@pytest.fixture
def filled(tmp_path: Path, sample_file: Path, sample_dir: Path) -> AssetsManager:
    store = AssetStore(f"memory://cache{uuid.uuid4().hex}")
    store.new(sample_file, "models/clf")
    store.update(sample_file, "models/clf")
    store.update(sample_file, "models/clf", bump_major=True)
    store.new(sample_dir, "nlp/tokenizer")
    manager = AssetsManager(store, tmp_path / "assets")
    for spec in ("models/clf:0.0", "models/clf:0.1", "models/clf:1.0", "nlp/tokenizer:0.0"):
        manager.fetch(spec)
    return manager


def _age(manager: AssetsManager, name: str, version: str, days: float) -> None:
    """Make a version look unused (and installed) ``days`` ago."""
    stamp = time.time() - days * 86400
    layout = manager.cache.layout
    path = layout.version_path(name, version)
    targets = [p for p in path.rglob("*")] + [path] if path.is_dir() else [path]
    targets += [layout.file_marker(name, version), layout.dir_marker(name, version)]
    for target in targets:
        if target.exists():
            os.utime(target, (stamp, stamp))


def test_scan_lists_every_version_with_size(
    filled: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    found = scan_cache(filled.assets_dir, MM)
    assert [(v.name, v.version) for v in found] == [
        ("models/clf", "1.0"),
        ("models/clf", "0.1"),
        ("models/clf", "0.0"),
        ("nlp/tokenizer", "0.0"),
    ]
    assert found[0].size == sample_file.stat().st_size and found[0].files == 1 and not found[0].is_directory
    tokenizer = found[3]
    assert tokenizer.is_directory and tokenizer.files == 4
    assert tokenizer.size == sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file())
    assert scan_cache(filled.assets_dir, MM, name="nlp/tokenizer") == [tokenizer]


def test_scan_ignores_incomplete_versions_and_staging(filled: AssetsManager) -> None:
    folder = filled.assets_dir / "models" / "clf"
    (folder / "2.0").write_bytes(b"half a download, no marker")
    (filled.assets_dir / ".cache" / "staging" / "x@1.0-abc").mkdir(parents=True)
    assert "2.0" not in {v.version for v in scan_cache(filled.assets_dir, MM)}


def test_last_used_follows_file_access_time(filled: AssetsManager) -> None:
    _age(filled, "models/clf", "0.0", 10)
    before = {v.version: v for v in scan_cache(filled.assets_dir, MM, name="models/clf")}["0.0"]
    assert dt.datetime.now(dt.UTC) - before.last_used > 9 * DAY
    path = filled.cache.layout.version_path("models/clf", "0.0")
    os.utime(path, (time.time(), path.stat().st_mtime))  # what the kernel does when it is read
    after = {v.version: v for v in scan_cache(filled.assets_dir, MM, name="models/clf")}["0.0"]
    assert dt.datetime.now(dt.UTC) - after.last_used < dt.timedelta(minutes=1)
    assert after.installed == before.installed


def test_pinned_cache_hit_writes_nothing(filled: AssetsManager) -> None:
    path = filled.cache.layout.version_path("models/clf", "0.0")
    marker = filled.cache.layout.file_marker("models/clf", "0.0")
    stamps = (path.stat().st_mtime_ns, marker.stat().st_mtime_ns, marker.stat().st_atime_ns)
    for _ in range(3):
        filled.fetch("models/clf:0.0")
    assert (path.stat().st_mtime_ns, marker.stat().st_mtime_ns, marker.stat().st_atime_ns) == stamps


def test_plan_keep_newest_alone_removes_the_rest() -> None:
    versions = [_cv("a", "1.0", 10, 0), _cv("a", "0.1", 10, 0), _cv("a", "0.0", 10, 0), _cv("b", "0.0", 5, 0)]
    chosen = plan_prune(versions, PrunePolicy(keep_newest=1), MM, now=NOW)
    assert sorted((v.name, v.version) for v in chosen) == [("a", "0.0"), ("a", "0.1")]


def test_plan_older_than_respects_keep_newest() -> None:
    versions = [_cv("a", "1.0", 10, 40), _cv("a", "0.1", 10, 40), _cv("a", "0.0", 10, 1)]
    assert {v.version for v in plan_prune(versions, PrunePolicy(older_than=30 * DAY), MM, now=NOW)} == {
        "1.0",
        "0.1",
    }
    kept_newest = plan_prune(versions, PrunePolicy(older_than=30 * DAY, keep_newest=1), MM, now=NOW)
    assert [v.version for v in kept_newest] == ["0.1"]


def test_plan_max_size_removes_least_recently_used_first() -> None:
    versions = [_cv("a", "1.0", 100, 1), _cv("a", "0.1", 100, 5), _cv("b", "0.0", 100, 3)]
    chosen = plan_prune(versions, PrunePolicy(max_size=150), MM, now=NOW)
    assert [(v.name, v.version) for v in chosen] == [("a", "0.1"), ("b", "0.0")]
    assert plan_prune(versions, PrunePolicy(max_size=300), MM, now=NOW) == []


def test_policy_needs_a_rule() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PrunePolicy()


def test_dry_run_removes_nothing(filled: AssetsManager) -> None:
    before = sorted(p for p in filled.assets_dir.rglob("*"))
    result = prune(filled.assets_dir, PrunePolicy(keep_newest=0), MM, dry_run=True)
    assert len(result.removed) == 4 and result.dry_run
    assert sorted(p for p in filled.assets_dir.rglob("*")) == before


def test_prune_removes_marker_data_and_manifest_then_refetches(filled: AssetsManager) -> None:
    _age(filled, "models/clf", "0.0", 40)
    result = prune(filled.assets_dir, PrunePolicy(older_than=30 * DAY), MM)
    assert [(v.name, v.version) for v in result.removed] == [("models/clf", "0.0")]
    layout = filled.cache.layout
    assert not layout.version_path("models/clf", "0.0").exists()
    assert not layout.file_marker("models/clf", "0.0").exists()
    assert not layout.manifest("models/clf", "0.0").exists()
    assert filled.cache.cached_path("models/clf", "0.0") is None
    remaining = {v.spec for v in scan_cache(filled.assets_dir, MM)}
    assert remaining == {"models/clf:1.0", "models/clf:0.1", "nlp/tokenizer:0.0"}
    assert not any(layout.staging_root().iterdir())
    assert filled.fetch("models/clf:0.0").exists()


def test_prune_max_size_frees_until_under(filled: AssetsManager) -> None:
    # bytes on disk: the three models/clf versions share one content, counted once; least
    # recently used first, removing 0.0 and 0.1 frees nothing (1.0 still links the content),
    # removing 1.0 too frees it, and nlp/tokenizer stays
    versions = scan_cache(filled.assets_dir, MM)
    total, shared = disk_size(versions), sample_size(filled)
    assert total == sum(v.size for v in versions) - 2 * shared
    result = prune(filled.assets_dir, PrunePolicy(max_size=total - 1), MM)
    assert [v.spec for v in result.removed] == ["models/clf:0.0", "models/clf:0.1", "models/clf:1.0"]
    assert result.disk_freed == shared and result.disk_remaining == total - shared
    assert {v.spec for v in scan_cache(filled.assets_dir, MM)} == {"nlp/tokenizer:0.0"}


def sample_size(manager: AssetsManager) -> int:
    return manager.cache.layout.version_path("models/clf", "1.0").stat().st_size


def test_prune_skips_a_leased_version(filled: AssetsManager) -> None:
    with hold(filled.cache, "models/clf", "0.0"):
        assert leased(filled.cache, "models/clf", "0.0")
        # another process's probe sees the shared lock too
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from modelkit_assets.cache import AssetCache;"
                "from modelkit_assets.maintenance.usage import leased;"
                "sys.exit(0 if leased(AssetCache(sys.argv[1]), 'models/clf', '0.0') else 3)",
                str(filled.assets_dir),
            ],
            check=False,
        )
        assert probe.returncode == 0
        result = prune(filled.assets_dir, PrunePolicy(keep_newest=0), MM)
    assert [(v.spec, why) for v, why in result.skipped] == [("models/clf:0.0", "leased by a running process")]
    assert filled.cache.cached_path("models/clf", "0.0") is not None
    assert not leased(filled.cache, "models/clf", "0.0")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_prune_skips_a_version_another_process_has_open(filled: AssetsManager) -> None:
    target = filled.cache.layout.version_path("nlp/tokenizer", "0.0") / "vocab.txt"
    code = "import sys,time; f=open(sys.argv[1]); print('ready', flush=True); time.sleep(600)"
    with holding(code, str(target)):
        result = prune(filled.assets_dir, PrunePolicy(keep_newest=0), MM)
    assert [(v.spec, why) for v, why in result.skipped] == [("nlp/tokenizer:0.0", "open in another process")]
    assert {v.spec for v in result.removed} == {"models/clf:1.0", "models/clf:0.1", "models/clf:0.0"}
    assert filled.cache.cached_path("nlp/tokenizer", "0.0") is not None


def test_prune_skips_an_asset_being_fetched(filled: AssetsManager) -> None:
    lock = filled.cache.layout.lock("models/clf")
    with holding(HOLD_FILELOCK, str(lock)):
        result = prune(filled.assets_dir, PrunePolicy(keep_newest=0), MM)
    assert {v.spec for v, _ in result.skipped} == {"models/clf:1.0", "models/clf:0.1", "models/clf:0.0"}
    assert {why for _, why in result.skipped} == {"being fetched (cache lock held)"}
    assert {v.spec for v in result.removed} == {"nlp/tokenizer:0.0"}
