"""Transfers: bounded concurrency and memory, server-side copies on update, pool sizing."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import AssetsManager, AssetStore, integrity, transfer
from modelkit_assets import store as store_module
from modelkit_assets.backends import open_filesystem
from modelkit_assets.backends.s3 import multipart_part_size, parts_in_flight
from modelkit_assets.errors import IntegrityError
from modelkit_assets.manifest import FileEntry
from modelkit_assets.transfer import Job, Tuning, job_cost, unchanged_files

MIB = 2**20


class _FakeS3:
    """Only what ``job_cost`` looks at: the protocol."""

    protocol = ("s3", "s3a")


class _FakeOther:
    protocol = "memory"


def test_job_cost_follows_the_memory_table() -> None:
    tuning = Tuning(part_size=8 * MIB, part_concurrency=4)
    s3, other = _FakeS3(), _FakeOther()
    # a body is held twice while it is sent (read, then the transport's unsent buffer)
    assert job_cost(s3, "put", 1000, tuning) == 2000  # one put_object holds the file
    assert job_cost(s3, "put", 16 * MIB, tuning) == 64 * MIB  # multipart: 4 parts of 8 MiB
    assert job_cost(s3, "put", None, tuning) == 64 * MIB
    assert job_cost(other, "put", 100 * MIB, tuning) == 8 * MIB
    # one streamed GET by default: a batch filling while the previous one is hashed and written
    assert job_cost(s3, "get", 100 * MIB, tuning) == 2 * MIB
    ranged = Tuning(part_size=8 * MIB, download_part_concurrency=4)
    assert job_cost(s3, "get", 100 * MIB, ranged) == 32 * MIB
    assert job_cost(s3, "get", 1000, ranged) == 1000


def test_s3_parts_in_flight_fit_the_memory_budget() -> None:
    """Each part is held twice while sent: one file's window never exceeds the budget."""
    tuning = Tuning(part_size=8 * MIB, part_concurrency=10, memory_budget=96 * MIB)
    assert parts_in_flight(8 * MIB, tuning) == 6
    assert job_cost(_FakeS3(), "put", 2**30, tuning) == 96 * MIB
    assert parts_in_flight(64 * MIB, Tuning(part_size=8 * MIB, memory_budget=16 * MIB)) == 1


def test_s3_parts_grow_only_when_a_file_needs_more_than_10000() -> None:
    assert multipart_part_size(5 * 2**30, 8 * MIB) == 8 * MIB
    assert multipart_part_size(10_000 * 8 * MIB, 8 * MIB) == 8 * MIB
    grown = multipart_part_size(100 * 2**30, 8 * MIB)
    assert grown == 11 * MIB and grown * 10_000 >= 100 * 2**30


def test_tuning_rejects_non_positive_values() -> None:
    with pytest.raises(ValueError, match="positive"):
        Tuning(concurrency=0)


def _run(jobs: list[Job], costs: list[int], tuning: Tuning, fail_on: str | None = None) -> dict[str, Any]:
    """Run ``_run_bounded`` with jobs that sleep, recording the peaks it allowed."""
    from fsspec.callbacks import NoOpCallback

    state = {"running": 0, "cost": 0, "peak_running": 0, "peak_cost": 0, "done": 0}
    cost_of = {job.src: cost for job, cost in zip(jobs, costs, strict=True)}

    async def run(job: Job, child: Any) -> None:
        state["running"] += 1
        state["cost"] += min(cost_of[job.src], tuning.memory_budget)
        state["peak_running"] = max(state["peak_running"], state["running"])
        state["peak_cost"] = max(state["peak_cost"], state["cost"])
        try:
            await asyncio.sleep(0.002)
            if job.src == fail_on:
                raise FileNotFoundError(job.src)
            await asyncio.sleep(0.002)
            state["done"] += 1
        finally:
            state["running"] -= 1
            state["cost"] -= min(cost_of[job.src], tuning.memory_budget)

    asyncio.run(transfer._run_bounded(jobs, costs, run, NoOpCallback(), tuning))
    return state


def test_bounded_runner_respects_concurrency_and_memory_budget() -> None:
    jobs = [Job(f"f{i}", f"d{i}") for i in range(60)]
    costs = [10 if i % 3 else 40 for i in range(60)]
    state = _run(jobs, costs, Tuning(concurrency=8, memory_budget=100))
    assert state["done"] == 60
    assert state["peak_running"] <= 8
    assert state["peak_cost"] <= 100
    assert state["peak_running"] > 1  # it did run concurrently


def test_bounded_runner_runs_a_job_bigger_than_the_budget_alone() -> None:
    jobs = [Job("huge", "d"), Job("small", "e")]
    state = _run(jobs, [10_000, 10], Tuning(concurrency=4, memory_budget=100))
    assert state["done"] == 2
    assert state["peak_cost"] <= 100


def test_bounded_runner_raises_the_backend_error_not_a_group() -> None:
    jobs = [Job(f"f{i}", f"d{i}") for i in range(20)]
    with pytest.raises(FileNotFoundError, match="f3"):
        _run(jobs, [1] * 20, Tuning(concurrency=4), fail_on="f3")


def test_unchanged_files_needs_equal_size_and_hash() -> None:
    new = {
        "a": FileEntry(1, "1" * 64),
        "b": FileEntry(2, "2" * 64),
        "c": FileEntry(3, "3" * 64),
        "d": FileEntry(4, None),
    }
    old = {"a": FileEntry(1, "1" * 64), "b": FileEntry(2, "f" * 64), "d": FileEntry(4, None)}
    assert unchanged_files(new, old) == {"a"}
    assert unchanged_files(new, None) == set()


def test_s3_pool_is_sized_to_the_concurrency_unless_the_user_set_it() -> None:
    fs, _ = open_filesystem("s3://bucket/prefix", {"endpoint_url": "http://127.0.0.1:9"}, pool_size=48)
    assert fs.config_kwargs["max_pool_connections"] == 48
    options = {"endpoint_url": "http://127.0.0.1:9", "config_kwargs": {"max_pool_connections": 5}}
    fs, _ = open_filesystem("s3://bucket/other", options, pool_size=48)
    assert fs.config_kwargs["max_pool_connections"] == 5


class _Spy:
    """Records the pairs handed to the store's upload and copy helpers, then runs them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.uploaded: list[str] = []
        self.copied: list[str] = []
        real_upload, real_copy = store_module.upload, store_module.copy_objects

        def upload(fs: Any, pairs: Any, **kwargs: Any) -> Any:
            self.uploaded.extend(remote for _, remote in pairs)
            return real_upload(fs, pairs, **kwargs)

        def copy_objects(fs: Any, pairs: Any, **kwargs: Any) -> None:
            self.copied.extend(dst for _, dst in pairs)
            real_copy(fs, pairs, **kwargs)

        monkeypatch.setattr(store_module, "upload", upload)
        monkeypatch.setattr(store_module, "copy_objects", copy_objects)


def test_update_copies_unchanged_files_inside_the_store(
    store: AssetStore, sample_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.new(sample_dir, "nlp/tok")
    (sample_dir / "vocab.txt").write_text("changed\n")
    (sample_dir / "added.txt").write_text("new file\n")
    spy = _Spy(monkeypatch)
    assert store.update(sample_dir, "nlp/tok") == "0.1"
    names = lambda keys: sorted(k.split("/0.1/", 1)[1] for k in keys)  # noqa: E731
    assert names(spy.uploaded) == ["added.txt", "vocab.txt"]
    assert names(spy.copied) == ["config.json", "sub/deeper/empty.bin", "sub/merges.txt"]
    meta = store.meta("nlp/tok", "0.1")
    assert sorted(meta.files) == [
        "added.txt",
        "config.json",
        "sub/deeper/empty.bin",
        "sub/merges.txt",
        "vocab.txt",
    ]
    fetched = AssetsManager(store, tmp_path / "cache").fetch("nlp/tok:0.1")
    for path in meta.files:
        assert (fetched / path).read_bytes() == (sample_dir / path).read_bytes()


def test_a_copied_file_is_still_verified_on_fetch(
    store: AssetStore, sample_dir: Path, tmp_path: Path
) -> None:
    store.new(sample_dir, "nlp/tok")
    (sample_dir / "vocab.txt").write_text("changed\n")
    # the previous version's object was damaged in the store after it was published
    store.fs.pipe_file(store.layout.data("nlp/tok", "0.0", "sub/merges.txt"), os.urandom(10000))
    store.update(sample_dir, "nlp/tok")
    with pytest.raises(IntegrityError, match=r"merges\.txt"):
        AssetsManager(store, tmp_path / "cache").fetch("nlp/tok:0.1")


def test_large_file_round_trip_in_many_parts(store: AssetStore, tmp_path: Path) -> None:
    """A file of several parts goes up in parts, comes back intact, and verifies."""
    tuning = Tuning(part_size=5 * MIB, part_concurrency=2, memory_budget=16 * MIB)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 * MIB + 123))
    remote = store.layout.data("big", "0.0")
    transfer.upload(store.fs, [(str(source), remote)], tuning=tuning)
    back = tmp_path / "back" / "big.bin"
    ranged = Tuning(part_size=5 * MIB, download_part_concurrency=2)
    entry = FileEntry(source.stat().st_size, integrity.sha256_file(source))
    transfer.download(store.fs, [(remote, str(back))], entries=[entry], tuning=ranged)
    assert back.read_bytes() == source.read_bytes()
