"""`verify`: cached versions and stored objects re-hashed, every mismatch reported."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers_snapshot import count_reads

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.backends import ensure_parent
from modelkit_assets.errors import AssetNotFoundError
from modelkit_assets.maintenance.verify import select_targets, verify


def _publish(store: AssetStore, sample_file: Path, sample_dir: Path) -> None:
    store.new(sample_dir, "nlp/tokenizer")
    store.new(sample_file, "models/clf")
    store.update(sample_file, "models/clf")


def _run(manager: AssetsManager, specs: list[str], *, remote: bool = False, store: AssetStore | None = None):  # type: ignore[no-untyped-def]
    cached, stored = select_targets(
        specs, cache=manager.cache, versioning=manager.versioning, store=store, remote=remote
    )
    return verify(manager.cache, cached, store=store, remote=remote, remote_targets=stored)


def test_clean_cache_and_store_verify(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    _publish(store, sample_file, sample_dir)
    manager.fetch("nlp/tokenizer:0.0")
    manager.fetch("models/clf:0.1")
    report = _run(manager, [], remote=True, store=store)
    assert report.ok, report.problems
    assert sorted(report.checked) == [
        ("cache", "models/clf", "0.1"),
        ("cache", "nlp/tokenizer", "0.0"),
        ("store", "models/clf", "0.0"),
        ("store", "models/clf", "0.1"),
        ("store", "nlp/tokenizer", "0.0"),
    ]
    assert report.files == 4 + 1 + 4 + 1 + 1


def test_every_cache_problem_is_reported(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    _publish(store, sample_file, sample_dir)
    root = manager.fetch("nlp/tokenizer:0.0")
    merges = root / "sub" / "merges.txt"
    data = bytearray(merges.read_bytes())
    data[0] ^= 0xFF  # same size, other bytes
    merges.write_bytes(bytes(data))
    (root / "vocab.txt").unlink()
    (root / "config.json").write_text("longer than it was")
    (root / "intruder.txt").write_text("x")
    report = _run(manager, ["nlp/tokenizer"])
    found = sorted((p.path, p.kind) for p in report.problems)
    assert found == [
        ("config.json", "sha256"),
        ("config.json", "size"),
        ("intruder.txt", "unexpected"),
        ("sub/merges.txt", "sha256"),
        ("vocab.txt", "missing"),
    ]
    assert all(p.where == "cache" and p.version == "0.0" for p in report.problems)
    merges_problem = next(p for p in report.problems if p.path == "sub/merges.txt")
    assert str(merges_problem).startswith("cache: nlp/tokenizer:0.0[sub/merges.txt]: sha256 ")


def test_cache_verify_works_without_a_store(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path, tmp_path: Path
) -> None:
    _publish(store, sample_file, sample_dir)
    path = manager.fetch("models/clf:0.1")
    offline = AssetsManager(store, tmp_path / "assets", offline=True)
    report = _run(offline, ["models/clf:0.1"])  # the manifest copy in .cache/manifests
    assert report.ok and report.files == 1
    path.write_bytes(b"tampered")
    report = _run(offline, ["models/clf:0.1"])
    assert {p.kind for p in report.problems} == {"size", "sha256"}


def test_a_cached_version_without_manifest_is_reported(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    _publish(store, sample_file, sample_dir)
    manager.fetch("models/clf:0.0")
    manager.cache.layout.manifest("models/clf", "0.0").unlink()
    assert not _run(manager, ["models/clf:0.0"]).ok  # no manifest, no store given
    assert _run(manager, ["models/clf:0.0"], store=store).ok  # the store's .meta is used


def test_remote_verify_reports_corrupt_missing_and_extra_objects(
    store: AssetStore, sample_file: Path, sample_dir: Path, manager: AssetsManager
) -> None:
    _publish(store, sample_file, sample_dir)
    fs, layout = store.fs, store.layout
    fs.pipe_file(layout.data("models/clf", "0.1"), b"not the model")
    fs.rm(layout.data("nlp/tokenizer", "0.0", "vocab.txt"))
    ensure_parent(fs, layout.data("nlp/tokenizer", "0.0", "stray.bin"))
    fs.pipe_file(layout.data("nlp/tokenizer", "0.0", "stray.bin"), b"stray")
    report = _run(manager, [], remote=True, store=store)
    found = sorted((p.where, p.name, p.version, p.path, p.kind) for p in report.problems)
    assert found == [
        ("store", "models/clf", "0.1", None, "sha256"),
        ("store", "models/clf", "0.1", None, "size"),
        ("store", "nlp/tokenizer", "0.0", "stray.bin", "unexpected"),
        ("store", "nlp/tokenizer", "0.0", "vocab.txt", "missing"),
    ]


def test_remote_verify_never_reads_an_object_larger_than_its_manifest(
    store: AssetStore, manager: AssetsManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 64 MiB object under a 4-byte manifest entry is reported by its size, unread."""
    (tmp_path / "a.txt").write_bytes(b"abcd")
    store.new(tmp_path / "a.txt", "big")
    key = store.layout.data("big", "0.0")
    ensure_parent(store.fs, key)
    store.fs.pipe_file(key, os.urandom(64 * 2**20))
    store.fs.invalidate_cache()
    read = count_reads(monkeypatch, store.fs)
    report = _run(manager, ["big:0.0"], remote=True, store=store)
    problems = [(p.where, p.name, p.version, p.kind, p.detail) for p in report.problems]
    assert problems == [("store", "big", "0.0", "size", f"{64 * 2**20} bytes where the manifest says 4")]
    assert read[0] <= 2**20


def test_remote_verify_flags_a_cache_manifest_that_differs(
    store: AssetStore, manager: AssetsManager, sample_file: Path, sample_dir: Path
) -> None:
    _publish(store, sample_file, sample_dir)
    manager.fetch("models/clf:0.0")
    copy = manager.cache.layout.manifest("models/clf", "0.0")
    copy.write_text(copy.read_text().replace('"size": 4096', '"size": 4095'))
    report = _run(manager, ["models/clf:0.0"], remote=True, store=store)
    assert "manifest-differs" in {p.kind for p in report.problems}


def test_unknown_spec_is_an_error(manager: AssetsManager) -> None:
    with pytest.raises(AssetNotFoundError, match="fetch it first"):
        _run(manager, ["nothing:1.0"])
