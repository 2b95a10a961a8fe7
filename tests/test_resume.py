"""Resuming a killed publish: the rerun re-sends only what is not already stored intact.

A publisher is SIGKILLed after 8 of 10 files reached S3; its rerun (same host, so the dead
writer's claim is stale at once) takes the same version over and keeps every object whose
checksum, recorded by S3 when it stored the object, matches the local file. Nothing is
trusted by name or size: a file edited between the runs (same size) is sent again, and an
object the source no longer has is removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.backends.s3 import S3Backend

pytestmark = pytest.mark.cloud
MIB = 2**20

KILLED_PUBLISHER = """
import json, os, signal, sys
from modelkit_assets import AssetStore
from modelkit_assets.backends.s3 import S3Backend

url, options, log, kill_after, source = sys.argv[1:6]
real = S3Backend.aput
done = []

async def aput(self, fs, local, key, *args, **kwargs):
    await real(self, fs, local, key, *args, **kwargs)
    done.append(key)
    with open(log, "a") as handle:
        handle.write(key + "\\n")
    if len(done) == int(kill_after):
        os.kill(os.getpid(), signal.SIGKILL)

S3Backend.aput = aput
AssetStore(url, json.loads(options)).new(source, "resume/model")
"""


def _killed_publish(
    url: str, options: dict[str, Any], source: Path, kill_after: int, tmp_path: Path
) -> list[str]:
    """Publish ``source`` in a child process SIGKILLed once ``kill_after`` files are
    stored; the keys it saw stored."""
    log = tmp_path / "stored.txt"
    script = tmp_path / "killed_publisher.py"
    script.write_text(KILLED_PUBLISHER)
    env = {**os.environ, "MODELKIT_ASSETS_CONCURRENCY": "2"}
    done = subprocess.run(
        [sys.executable, str(script), url, json.dumps(options), str(log), str(kill_after), str(source)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    return log.read_text().split()


def test_a_rerun_after_a_kill_at_80_percent_sends_only_the_rest(
    s3_store_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, options = s3_store_factory()
    source = tmp_path / "model"
    source.mkdir()
    sizes = {f"shard-{i}.bin": 2 * MIB for i in range(9)} | {"big.bin": 20 * MIB}  # big: 3 parts
    for name, size in sizes.items():
        (source / name).write_bytes(os.urandom(size))
    stored = _killed_publish(url, options, source, 8, tmp_path)
    assert len(stored) == 8
    store = AssetStore(url, options)
    assert not store.exists("resume/model")  # nothing was committed
    prefix = store.layout.data("resume/model", "0.0")
    before = set(store.fs.find(prefix))
    assert set(stored) <= before

    # between the runs: one stored file edited (same size), and a stray object appears
    edited = Path(stored[0]).name
    (source / edited).write_bytes(os.urandom(sizes[edited]))
    store.fs.pipe_file(f"{prefix}/stray.bin", b"left by nobody")

    sent: list[str] = []
    real = S3Backend.aput

    async def spy(self: S3Backend, fs: Any, local: str, key: str, *args: Any, **kwargs: Any) -> None:
        sent.append(Path(key).name)
        await real(self, fs, local, key, *args, **kwargs)

    monkeypatch.setattr(S3Backend, "aput", spy)
    assert store.new(source, "resume/model") == "0.0"  # the same version, taken over
    kept = {Path(key).name for key in before} - {edited}
    assert sorted(sent) == sorted(set(sizes) - kept)
    moved = sum(sizes[name] for name in sent)
    assert moved <= 0.25 * sum(sizes.values()) + sizes[edited]  # 80% were stored: <= 25% again
    assert not store.fs.exists(f"{prefix}/stray.bin")
    assert sorted(Path(k).name for k in store.fs.find(prefix)) == sorted(sizes)
    fetched = AssetsManager(store, tmp_path / "cache").fetch("resume/model:0.0")
    for name in sizes:
        assert (fetched / name).read_bytes() == (source / name).read_bytes()
    meta = store.meta("resume/model", "0.0")
    assert meta.files[edited].sha256 == hashlib.sha256((source / edited).read_bytes()).hexdigest()


def test_an_object_with_a_wrong_checksum_is_never_kept(s3_store_factory: Any, tmp_path: Path) -> None:
    """A leftover with the right name and size whose recorded checksum does not match the
    file (written by anything but this writer's upload) is sent again."""
    url, options = s3_store_factory()
    store = AssetStore(url, options)
    source = tmp_path / "one.bin"
    source.write_bytes(os.urandom(MIB))
    _killed_publish(url, options, source, 1, tmp_path)  # killed right after its only file
    key = store.layout.data("resume/model", "0.0")
    assert store.fs.exists(key)
    source.write_bytes(os.urandom(MIB))  # same size, other bytes
    assert store.new(source, "resume/model") == "0.0"
    assert store.fs.cat_file(key) == source.read_bytes()


def test_s3_records_the_checksums_a_resume_relies_on(s3_store_factory: Any, tmp_path: Path) -> None:
    """What ``aput`` sends, S3 keeps: the whole file's sha256 for one PUT, the composite
    of the block hashes for a multipart upload; ``checksums_of`` predicts both."""
    url, options = s3_store_factory()
    store = AssetStore(url, options)
    backend = S3Backend()
    for name, size in (("small.bin", 3 * MIB), ("big.bin", 17 * MIB)):
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        store.new(path, f"ck/{name.split('.')[0]}")
        meta = store.meta(f"ck/{name.split('.')[0]}", "0.0")
        recorded = backend.stored_checksum(store.fs, store.layout.data(f"ck/{name.split('.')[0]}", "0.0"))
        assert recorded is not None and recorded in backend.checksums_of(meta.file_entry)


KILLED_FETCHER = """
import json, os, signal, sys
from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.integrity import StreamHasher

url, options, assets, total = sys.argv[1:5]
real = StreamHasher.update

def update(self, data):
    if self.size + len(data) >= 0.8 * int(total):  # die with 80% of the file written
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, data)

StreamHasher.update = update
AssetsManager(AssetStore(url, json.loads(options)), assets).fetch("resume/big:0.0")
"""


def test_a_fetch_killed_at_80_percent_resumes_from_its_verified_blocks(
    shared_store: tuple[str, dict[str, object]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rerun keeps the killed fetch's staged blocks that match the manifest's block
    hashes and downloads only the rest (at most 25% of the file here)."""
    import modelkit_assets.transfer as transfer

    url, options = shared_store
    store = AssetStore(url, options)
    data = os.urandom(10 * 8 * MIB + 12345)  # 11 blocks, the last one partial
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store.new(source, "resume/big")
    assets = tmp_path / "assets"
    script = tmp_path / "killed_fetcher.py"
    script.write_text(KILLED_FETCHER)
    done = subprocess.run(
        [sys.executable, str(script), url, json.dumps(options), str(assets), str(len(data))],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    staged = list((assets / ".cache" / "staging").rglob("0.0"))
    written = staged[0].stat().st_size if staged else 0
    assert written >= 0.7 * len(data)  # what the killed fetch wrote

    resumed_at: list[int] = []
    real = transfer._resume_point

    def spy(job: Any, hasher: Any) -> int:
        resumed_at.append(real(job, hasher))
        return resumed_at[-1]

    monkeypatch.setattr(transfer, "_resume_point", spy)
    path = AssetsManager(store, assets).fetch("resume/big:0.0")
    assert path.read_bytes() == data
    assert len(resumed_at) == 1
    # every whole block it wrote is kept: what is left to move is the 20% it had not
    # received, the write batch in flight when it died (S3: 4 MiB) and the unfinished block
    assert resumed_at[0] == written // (8 * MIB) * (8 * MIB)
    assert len(data) - resumed_at[0] <= 0.2 * len(data) + 4 * MIB + 8 * MIB
    assert list((assets / ".cache" / "staging").iterdir()) == []  # nothing left behind


def test_a_staged_block_that_does_not_match_is_downloaded_again(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A leftover whose second block was damaged keeps only its first block."""
    import modelkit_assets.transfer as transfer

    data = os.urandom(3 * 8 * MIB)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    store.new(source, "resume/big")
    assets = tmp_path / "assets"
    leftover = assets / ".cache" / "staging" / "resume__big@0.0-deadbeef"
    leftover.mkdir(parents=True)
    damaged = bytearray(data[: 2 * 8 * MIB + 100])
    damaged[8 * MIB + 7] ^= 0xFF
    (leftover / "0.0").write_bytes(bytes(damaged))
    resumed_at: list[int] = []
    real = transfer._resume_point
    monkeypatch.setattr(
        transfer, "_resume_point", lambda job, h: resumed_at.append(real(job, h)) or resumed_at[-1]
    )
    assert AssetsManager(store, assets).fetch("resume/big:0.0").read_bytes() == data
    assert resumed_at == [8 * MIB]


KILLED_MULTIPART = """
import json, os, signal, sys
import s3fs
from modelkit_assets import AssetStore

url, options, source, kill_after = sys.argv[1:5]
real = s3fs.S3FileSystem._call_s3
done = []

async def call(self, method, *args, **kwargs):
    answer = await real(self, method, *args, **kwargs)
    if method == "upload_part":
        done.append(kwargs["PartNumber"])
        if len(done) == int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
    return answer

s3fs.S3FileSystem._call_s3 = call
AssetStore(url, json.loads(options)).new(source, "resume/multi")
"""


def test_a_killed_multipart_upload_is_continued_part_by_part(
    s3_store_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One big file killed after 3 of its 6 parts: the rerun continues the multipart
    upload the dead writer left open and sends only the parts S3 does not hold."""
    url, options = s3_store_factory()
    source = tmp_path / "weights.bin"
    data = os.urandom(6 * 8 * MIB - 1000)
    source.write_bytes(data)
    script = tmp_path / "killed_multipart.py"
    script.write_text(KILLED_MULTIPART)
    done = subprocess.run(
        [sys.executable, str(script), url, json.dumps(options), str(source), "3"],
        capture_output=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr.decode()[-2000:]
    store = AssetStore(url, options)
    bucket, key, _ = store.fs.split_path(store.layout.data("resume/multi", "0.0"))
    (upload,) = store.fs.call_s3("list_multipart_uploads", Bucket=bucket, Prefix=key)["Uploads"]
    held = store.fs.call_s3("list_parts", Bucket=bucket, Key=key, UploadId=upload["UploadId"])["Parts"]
    assert len(held) >= 3

    sent: list[int] = []
    found: set[int] = set()  # the parts the rerun found stored (a part the dead writer had
    real = store.fs._call_s3  # fully sent may land on the server after it died)

    async def spy(method: str, *args: Any, **kwargs: Any) -> Any:
        if method == "upload_part":
            sent.append(kwargs["PartNumber"])
        answer = await real(method, *args, **kwargs)
        if method == "list_parts":
            found.update(p["PartNumber"] for p in answer.get("Parts", []))
        return answer

    monkeypatch.setattr(store.fs, "_call_s3", spy)
    assert store.new(source, "resume/multi") == "0.0"
    assert found >= {p["PartNumber"] for p in held}
    assert sorted(sent) == sorted(set(range(1, 7)) - found) and len(sent) <= 3
    monkeypatch.undo()
    assert store.fs.cat_file(store.layout.data("resume/multi", "0.0")) == data
    assert store.fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []) == []
