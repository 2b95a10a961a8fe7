"""`repair`, `lock`/`sync`, `copy` and `bundle` on every backend."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import file_permissions_apply
from helpers_snapshot import count_reads

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.backends import create_exclusive, ensure_parent
from modelkit_assets.errors import (
    IntegrityError,
    LockfileError,
    LockMismatchError,
    VersionExistsError,
    VersionNotFoundError,
)
from modelkit_assets.maintenance import copy as copy_module
from modelkit_assets.maintenance.bundle import BUNDLE_INDEX, bundle
from modelkit_assets.maintenance.copy import copy
from modelkit_assets.maintenance.lockfile import Lockfile, lock, sync
from modelkit_assets.maintenance.repair import asset_names, repair, repair_asset
from modelkit_assets.maintenance.verify import select_targets, verify


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _put(store: AssetStore, key: str, data: bytes) -> None:
    ensure_parent(store.fs, key)
    store.fs.pipe_file(key, data)


def _crashed_publish(store: AssetStore, name: str, version: str, *, directory: bool) -> None:
    """What a publisher killed after uploading leaves: a claim of a dead process and data."""
    body = json.dumps(
        {
            "writer": "dead",
            "host": socket.gethostname(),
            "pid": _dead_pid(),
            "created": dt.datetime.now(dt.UTC).isoformat(),
        }
    ).encode()
    create_exclusive(store.fs, store.layout.claim(name, version, 0), body)
    if directory:
        _put(store, store.layout.data(name, version, "a.txt"), b"partial")
        _put(store, store.layout.data(name, version, "b/c.txt"), b"partial too")
    else:
        _put(store, store.layout.data(name, version), b"partial")


@pytest.fixture
def quick_ttl(store: AssetStore) -> AssetStore:
    """The same store with a claim TTL of 0.5 s: data older than that may be orphaned."""
    return AssetStore(store.url, store.storage_options, claim_ttl_s=0.5, filesystem=store.fs)


# -- repair ----------------------------------------------------------------------------
def test_repair_rebuilds_missing_and_wrong_indexes(store: AssetStore, sample_file: Path) -> None:
    store.new(sample_file, "a")
    store.update(sample_file, "a")
    store.new(sample_file, "group/b")
    store.fs.rm(store.layout.versions_index("a"))
    store.fs.pipe_file(store.layout.versions_index("group/b"), b'{"versions": ["9.9", "0.0"]}')
    reports = {r.name: r for r in repair(store)}
    assert set(reports) == {"a", "group/b"}
    assert reports["a"].index_before is None and reports["a"].index_rebuilt
    assert reports["group/b"].index_before == ["9.9", "0.0"] and reports["group/b"].index_rebuilt
    assert store.read_index("a") == ["0.1", "0.0"]
    assert store.read_index("group/b") == ["0.0"]
    assert all(r.clean for r in repair(store))


def test_repair_dry_run_writes_nothing(store: AssetStore, sample_file: Path) -> None:
    store.new(sample_file, "a")
    store.fs.rm(store.layout.versions_index("a"))
    (report,) = repair(store, ["a"], dry_run=True)
    assert report.index_rebuilt and store.read_index("a") is None


def test_repair_reports_orphans_and_stale_claims_and_deletes_only_on_request(
    store: AssetStore, quick_ttl: AssetStore, sample_file: Path
) -> None:
    store.new(sample_file, "a")
    _crashed_publish(store, "a", "0.1", directory=True)
    _crashed_publish(store, "never/committed", "0.0", directory=False)
    # past the TTL (and the stores' one-second timestamps) without waiting for it
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=quick_ttl.claim_ttl_s + 2)
    assert "never/committed" in asset_names(quick_ttl)
    report = repair_asset(quick_ttl, "a", now=later)
    assert [o.version for o in report.orphans] == ["0.1"]
    assert report.orphans[0].objects == 2 and report.orphans[0].size == len(b"partial") + len(b"partial too")
    assert {(c.version, c.state) for c in report.claims} == {
        (".new", "leftover"),
        ("0.0", "leftover"),
        ("0.1", "stale"),
    }
    assert store.fs.exists(store.layout.data("a", "0.1", "a.txt"))  # nothing deleted
    report = repair_asset(quick_ttl, "a", delete_orphans=True, now=later)
    assert report.deleted_orphans == ["0.1"]
    assert sorted(report.deleted_claims) == [".new", "0.0", "0.1"]
    store.fs.invalidate_cache()
    assert not store.fs.exists(store.layout.data("a", "0.1", "a.txt"))
    assert store.versions("a") == ["0.0"]
    assert (
        AssetsManager(store, Path(os.environ.get("TMPDIR", "/tmp")) / uuid.uuid4().hex)
        .fetch("a:0.0")
        .exists()
    )
    again = repair_asset(quick_ttl, "a", now=later)
    assert again.clean and again.claims == []
    (orphan_only,) = repair(quick_ttl, ["never/committed"], delete_orphans=True, now=later)
    assert [o.version for o in orphan_only.orphans] == ["0.0"] and orphan_only.deleted_orphans == ["0.0"]
    assert store.update(sample_file, "a") == "0.1"  # the orphan's number is free again


def test_repair_leaves_a_live_publish_alone(store: AssetStore, sample_file: Path) -> None:
    store.new(sample_file, "a")
    body = json.dumps(
        {"writer": "me", "host": "elsewhere", "pid": 1, "created": dt.datetime.now(dt.UTC).isoformat()}
    ).encode()
    create_exclusive(store.fs, store.layout.claim("a", "0.1", 0), body)
    _put(store, store.layout.data("a", "0.1"), b"uploading")
    report = repair_asset(store, "a", delete_orphans=True)
    assert report.orphans == [] and report.in_progress == ["0.1"]
    assert ("0.1", "live") in {(c.version, c.state) for c in report.claims}
    store.fs.invalidate_cache()
    assert store.fs.exists(store.layout.data("a", "0.1"))


# -- lock / sync -----------------------------------------------------------------------
def test_lock_then_sync_installs_exactly_the_locked_versions(
    store: AssetStore, sample_file: Path, sample_dir: Path, tmp_path: Path
) -> None:
    store.new(sample_dir, "nlp/tokenizer")
    store.new(sample_file, "models/clf")
    store.update(sample_file, "models/clf")
    locked = lock(store, ["nlp/tokenizer:0[vocab.txt]", "models/clf"])
    path = tmp_path / "assets.lock"
    locked.write(path)
    data = json.loads(path.read_text())
    assert data["lockfile_version"] == 1 and data["versioning"] == "major_minor"
    assert [(a["name"], a["version"]) for a in data["assets"]] == [
        ("nlp/tokenizer", "0.0"),
        ("models/clf", "0.1"),
    ]
    assert data["assets"][0]["digest"] == "sha256:" + store.meta("nlp/tokenizer", "0.0").digest()
    assert Lockfile.read(path) == locked

    store.update(sample_file, "models/clf")  # a newer version appears: sync keeps 0.1
    manager = AssetsManager(store, tmp_path / "ci-assets")
    synced = sync(Lockfile.read(path), manager)
    assert [(s.locked.pinned, s.from_cache) for s in synced] == [
        ("nlp/tokenizer:0.0", False),
        ("models/clf:0.1", False),
    ]
    assert manager.cache.cached_path("models/clf", "0.2") is None
    again = sync(Lockfile.read(path), manager)
    assert all(s.from_cache for s in again)
    with pytest.raises(LockMismatchError, match=r"models/clf now resolves to 0\.2, locked 0\.1"):
        sync(Lockfile.read(path), AssetsManager(store, tmp_path / "frozen"), frozen=True)
    assert not (tmp_path / "frozen").exists()  # nothing fetched


def test_sync_fails_on_a_digest_that_differs_and_names_every_entry(
    store: AssetStore, sample_file: Path, tmp_path: Path
) -> None:
    store.new(sample_file, "a")
    store.new(sample_file, "b")
    path = tmp_path / "assets.lock"
    lock(store, ["a", "b"]).write(path)
    data = json.loads(path.read_text())
    data["assets"][0]["digest"] = "sha256:" + "0" * 64
    data["assets"][1]["version"] = "7.7"
    path.write_text(json.dumps(data))
    with pytest.raises(LockMismatchError) as info:
        sync(Lockfile.read(path), AssetsManager(store, tmp_path / "assets"))
    message = str(info.value)
    assert message.startswith("2 of 2 assets differ from the lockfile")
    assert "a:0.0 has manifest digest sha256:" in message and "b:7.7" in message


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "not readable JSON"),
        ('{"lockfile_version": 9}', "version-1"),
        ('{"lockfile_version": 1, "assets": [{"name": "../x"}]}', "invalid entry #1"),
    ],
)
def test_malformed_lockfiles_are_refused(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "assets.lock"
    path.write_text(content)
    with pytest.raises(LockfileError, match=match):
        Lockfile.read(path)


# -- copy ------------------------------------------------------------------------------
@pytest.fixture
def second_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> AssetStore:
    """Another empty store on the same backend (same filesystem object: server-side copy)."""
    if backend == "memory":
        return AssetStore(f"memory://dst{uuid.uuid4().hex[:12]}")
    if backend == "local":
        return AssetStore((tmp_path / "prod").as_uri())
    url, options = request.getfixturevalue(f"{backend}_store_factory")()
    return AssetStore(url, options)


def _raw_meta(store: AssetStore, name: str, version: str) -> bytes:
    return bytes(store.fs.cat_file(store.layout.meta(name, version)))


def test_copy_keeps_versions_and_metadata_server_side(
    store: AssetStore, second_store: AssetStore, sample_file: Path, sample_dir: Path, tmp_path: Path
) -> None:
    store.new(sample_dir, "nlp/tokenizer", description="dev build")
    store.update(sample_dir, "nlp/tokenizer", bump_major=True)
    results = copy(store, second_store, "nlp/tokenizer:0")
    assert [(r.version, r.status, r.server_side) for r in results] == [("0.0", "copied", True)]
    assert second_store.versions("nlp/tokenizer") == ["0.0"]
    assert second_store.read_index("nlp/tokenizer") == ["0.0"]
    assert _raw_meta(second_store, "nlp/tokenizer", "0.0") == _raw_meta(store, "nlp/tokenizer", "0.0")
    assert second_store.meta("nlp/tokenizer", "0.0").description == "dev build"
    again = copy(store, second_store, "nlp/tokenizer", all_versions=True)
    assert [(r.version, r.status) for r in again] == [("0.0", "present"), ("1.0", "copied")]
    path = AssetsManager(second_store, tmp_path / "prod-assets").fetch("nlp/tokenizer:1.0")
    assert (path / "sub" / "merges.txt").read_bytes() == (sample_dir / "sub" / "merges.txt").read_bytes()
    _, stored = select_targets(
        [],
        cache=AssetsManager(second_store, tmp_path / "prod-assets").cache,
        versioning=second_store.versioning,
        store=second_store,
        remote=True,
    )
    assert verify(None, [], store=second_store, remote=True, remote_targets=stored).ok


def test_copy_streams_between_backends_and_never_overwrites(
    store: AssetStore, sample_file: Path, sample_dir: Path, tmp_path: Path
) -> None:
    other = (
        AssetStore((tmp_path / "other").as_uri())
        if store.url.startswith("memory")
        else AssetStore(f"memory://x{uuid.uuid4().hex[:12]}")
    )
    store.new(sample_file, "models/clf")
    (result,) = copy(store, other, "models/clf")
    assert (result.status, result.server_side) == ("copied", False)
    assert _raw_meta(other, "models/clf", "0.0") == _raw_meta(store, "models/clf", "0.0")
    third = AssetStore(f"memory://y{uuid.uuid4().hex[:12]}")
    third.new(sample_dir, "models/clf")  # same number, other content
    with pytest.raises(VersionExistsError, match="never overwritten"):
        copy(store, third, "models/clf:0.0")
    assert third.meta("models/clf", "0.0").is_directory
    with pytest.raises(VersionNotFoundError):
        copy(store, other, "models/clf:3.0")


def test_copy_that_arrives_corrupt_commits_nothing(
    store: AssetStore, sample_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = (
        AssetStore(f"memory://z{uuid.uuid4().hex[:12]}")
        if not store.url.startswith("memory")
        else AssetStore((tmp_path / "other").as_uri())
    )
    store.new(sample_file, "models/clf")
    real_upload = copy_module.upload

    def corrupting(fs, pairs, **kwargs):  # type: ignore[no-untyped-def]
        real_upload(fs, pairs, **kwargs)
        fs.pipe_file(pairs[0][1], b"bit rot on the way")

    monkeypatch.setattr(copy_module, "upload", corrupting)
    with pytest.raises(IntegrityError, match="nothing was committed"):
        copy(store, other, "models/clf")
    assert not other.exists("models/clf")


def test_a_copy_of_an_object_larger_than_its_manifest_is_checked_unread(
    store: AssetStore, second_store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Server-side copy moves a 64 MiB object under a 4-byte manifest entry; the check of
    the copy refuses it by its size, without reading it, and commits nothing."""
    (tmp_path / "a.txt").write_bytes(b"abcd")
    store.new(tmp_path / "a.txt", "big")
    key = store.layout.data("big", "0.0")
    ensure_parent(store.fs, key)
    store.fs.pipe_file(key, os.urandom(64 * 2**20))
    store.fs.invalidate_cache()
    read = count_reads(monkeypatch, second_store.fs)
    with pytest.raises(IntegrityError, match="nothing was committed"):
        copy(store, second_store, "big:0.0")
    assert not second_store.exists("big")
    assert read[0] <= 2**20


def test_a_failed_copy_withdraws_its_claim_so_a_retry_copies(
    store: AssetStore, sample_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = (
        AssetStore(f"memory://z{uuid.uuid4().hex[:12]}")
        if not store.url.startswith("memory")
        else AssetStore((tmp_path / "other").as_uri())
    )
    store.new(sample_file, "models/clf")
    real_upload = copy_module.upload

    def corrupting(fs, pairs, **kwargs):  # type: ignore[no-untyped-def]
        real_upload(fs, pairs, **kwargs)
        fs.pipe_file(pairs[0][1], b"bit rot on the way")

    monkeypatch.setattr(copy_module, "upload", corrupting)
    with pytest.raises(IntegrityError):
        copy(store, other, "models/clf")
    monkeypatch.setattr(copy_module, "upload", real_upload)
    # same process, so the claim's writer looks alive: it must have been withdrawn
    (result,) = copy(store, other, "models/clf")
    assert result.status == "copied"
    assert other.versions("models/clf") == ["0.0"]


# -- bundle ----------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_bundle_serves_read_only_without_writing(
    store: AssetStore, sample_file: Path, sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.new(sample_dir, "nlp/tokenizer")
    store.new(sample_file, "models/clf")
    store.update(sample_file, "models/clf")
    result = bundle(store, ["nlp/tokenizer:0", "models/clf:0.0", "models/clf"], tmp_path / "image" / "assets")
    root = result.directory
    assert [a.pinned for a in result.lockfile.assets] == [
        "nlp/tokenizer:0.0",
        "models/clf:0.0",
        "models/clf:0.1",
    ]
    assert Lockfile.read(root / ".cache" / BUNDLE_INDEX) == result.lockfile
    assert (root / "nlp" / "tokenizer" / "0.0" / ".SUCCESS").exists()
    assert (root / "models" / "clf" / ".0.1.SUCCESS").exists()
    assert not list(root.rglob("*.lock")) and not (root / ".cache" / "staging").exists()

    monkeypatch.setenv("MODELKIT_ASSETS_STORE", "none")
    from modelkit_assets.settings import get_settings

    get_settings.cache_clear()
    before = _tree(root)
    os.chmod(root, 0o555)
    try:
        with file_permissions_apply():  # as root too, the read-only mode must bite
            served = AssetsManager(assets_dir=root)
            assert served.store is None
            assert served.fetch("models/clf:0.0").read_bytes() == sample_file.read_bytes()
            assert served.fetch("models/clf") == root / "models" / "clf" / "0.1"
            assert served.fetch("nlp/tokenizer:0[vocab.txt]").read_text() == "a\nb\nc\n"
            assert served.fetch_info("nlp/tokenizer").from_cache
            with pytest.raises(Exception, match="no store is configured"):
                served.fetch("models/clf:5.0")
    finally:
        os.chmod(root, 0o755)
    assert _tree(root) == before  # no lock file, no staging folder, nothing touched
    cached, _ = select_targets([], cache=served.cache, versioning=served.versioning)
    assert verify(served.cache, cached).ok  # verifiable offline from the bundled manifests


def test_configured_store_is_seen_by_every_sync_thread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """sync fetches from threads: none of them may read "no store" while another creates it."""
    import threading

    from modelkit_assets.settings import get_settings

    monkeypatch.setenv("MODELKIT_ASSETS_STORE", f"memory://race{uuid.uuid4().hex[:8]}")
    get_settings.cache_clear()
    for _ in range(30):  # the old race showed in about one round in five
        manager = AssetsManager(assets_dir=tmp_path / "assets")
        barrier = threading.Barrier(16)
        seen: list[object] = []

        def look(
            manager: AssetsManager = manager, barrier: threading.Barrier = barrier, seen: list[object] = seen
        ) -> None:
            barrier.wait()
            seen.append(manager.store)

        threads = [threading.Thread(target=look) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert None not in seen
