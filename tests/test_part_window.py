"""Multipart uploads and ranged downloads on S3 keep a sliding window of parts.

s3fs sends a file's parts in batches and waits for the slowest part of each batch before
reading the next; here a new part starts as soon as any part of the window is done. The
S3 calls are observed on moto's real server, with one part held back on purpose.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import AssetStore
from modelkit_assets.integrity import BLOCK_SIZE
from modelkit_assets.transfer import Tuning, download, upload

pytestmark = pytest.mark.cloud
MIB = 2**20


class _Calls:
    """Wraps a filesystem's ``_call_s3``: records when each part or range starts and
    ends, and holds one of them back for ``stall_s``."""

    def __init__(self, fs: Any, method: str, stall: int, stall_s: float) -> None:
        self.events: list[tuple[float, str, int]] = []
        self.in_flight = 0
        self.peak = 0
        real = fs._call_s3

        async def call(name: str, *args: Any, **kwargs: Any) -> Any:
            if name != method:
                return await real(name, *args, **kwargs)
            number = kwargs.get("PartNumber") or int(
                str(kwargs.get("Range", "bytes=0-")).split("=")[1].split("-")[0]
            )
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.events.append((time.monotonic(), "start", number))
            try:
                if number == stall:
                    await asyncio.sleep(stall_s)
                return await real(name, *args, **kwargs)
            finally:
                self.in_flight -= 1
                self.events.append((time.monotonic(), "end", number))

        self.call = call

    def started_before_end_of(self, number: int) -> list[int]:
        end = next(t for t, kind, n in self.events if kind == "end" and n == number)
        return [n for t, kind, n in self.events if kind == "start" and t < end and n != number]


def _store(s3_store_factory: Any) -> AssetStore:
    url, options = s3_store_factory()
    return AssetStore(url, options)


def test_upload_parts_slide_past_a_slow_part(
    s3_store_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(s3_store_factory)
    data = os.urandom(8 * 5 * MIB + 1234)  # 9 parts of 5 MiB
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    calls = _Calls(store.fs, "upload_part", stall=1, stall_s=1.5)
    monkeypatch.setattr(store.fs, "_call_s3", calls.call)
    tuning = Tuning(part_size=5 * MIB, part_concurrency=3, memory_budget=64 * MIB)
    key = store.layout.data("win", "0.0")
    (entry,) = upload(store.fs, [(str(source), key)], tuning=tuning)
    assert calls.peak <= 3  # never more parts in flight than the window
    # with batches of 3, parts 4.. would wait for part 1; a window sends all 8 others meanwhile
    assert sorted(calls.started_before_end_of(1)) == list(range(2, 10))
    assert store.fs.cat_file(key) == data
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert len(entry.blocks or ()) == -(-len(data) // BLOCK_SIZE)


def test_ranged_download_keeps_a_bounded_window_in_order(
    s3_store_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(s3_store_factory)
    data = os.urandom(6 * 5 * MIB + 99)
    key = store.layout.data("ranged", "0.0")
    store.fs.pipe_file(key, data)
    calls = _Calls(store.fs, "get_object", stall=5 * MIB, stall_s=1.0)  # the second range
    monkeypatch.setattr(store.fs, "_call_s3", calls.call)
    tuning = Tuning(part_size=5 * MIB, download_part_concurrency=3)
    target = tmp_path / "back.bin"
    (entry,) = download(store.fs, [(key, str(target))], tuning=tuning)
    assert target.read_bytes() == data
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert calls.peak <= 3
    # while the second range is held back, the others in the window still run ...
    overlapped = calls.started_before_end_of(5 * MIB)
    assert {10 * MIB, 15 * MIB} <= set(overlapped)
    # ... but no further than the window: ranges are written in order, memory stays bounded
    assert 20 * MIB not in overlapped


def test_a_failed_multipart_upload_is_aborted(
    s3_store_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store(s3_store_factory)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(12 * MIB))
    real = store.fs._call_s3

    async def failing(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "upload_part" and kwargs.get("PartNumber") == 2:
            raise PermissionError("refused on purpose")
        return await real(name, *args, **kwargs)

    monkeypatch.setattr(store.fs, "_call_s3", failing)
    key = store.layout.data("aborted", "0.0")
    with pytest.raises(PermissionError):
        upload(store.fs, [(str(source), key)], tuning=Tuning(part_size=5 * MIB, part_concurrency=2))
    monkeypatch.undo()
    bucket = store.remote.root.split("/")[0]
    pending = store.fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", [])
    assert pending == []
    assert not store.fs.exists(key)
