"""Writer leases (claims.py): a publisher renews its claim while it works; a writer that
finds the claim silent for three leases on its own clock takes it over; a writer whose
claim was taken over, or that could not renew, stops before committing.

The killed-publisher tests run the publisher in another process that says it is on
another host, so that only the lease (never a pid check or a date) can tell it is dead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelkit_assets import AssetExistsError, AssetsManager, AssetStore, ClaimLostError
from modelkit_assets.claims import Lease
from modelkit_assets.settings import Settings

LEASE_S = 0.5

PUBLISHER = r"""
import json, socket, sys, time
socket.gethostname = lambda: "another-host"        # its claims name another host
from modelkit_assets import AssetStore
from modelkit_assets.store import AssetStore as S
url, options, source, ready = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], sys.argv[4]
hold_s = float(sys.argv[5])
original = S._upload_data
def slow(self, *args, **kwargs):
    open(ready, "w").close()                          # claimed, uploading
    time.sleep(hold_s)
    return original(self, *args, **kwargs)
S._upload_data = slow
AssetStore(url, options).new(source, "leased/model")
print("committed")
"""


def _settings(lease_s: float = LEASE_S) -> Settings:
    return dataclasses.replace(Settings.from_env({}), claim_lease_s=lease_s)


def _publisher(
    shared_store: tuple[str, dict[str, object]], source: Path, ready: Path, hold_s: float
) -> subprocess.Popen[str]:
    url, options = shared_store
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELKIT_")}
    env["MODELKIT_ASSETS_CLAIM_LEASE_S"] = str(LEASE_S)
    return subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, url, json.dumps(options), str(source), str(ready), str(hold_s)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the publisher never started uploading"
        time.sleep(0.02)


def test_a_killed_publisher_on_another_host_stops_blocking_new(
    shared_store: tuple[str, dict[str, object]], tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"first try")
    ready = tmp_path / "ready"
    process = _publisher(shared_store, source, ready, hold_s=600)
    try:
        _wait_for(ready, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    store = AssetStore(*shared_store, settings=_settings())
    claim = json.loads(store.remote.read(store.layout.claim("leased/model", ".new", 0)))
    assert claim["host"] == "another-host" and claim["lease_s"] == LEASE_S

    source.write_bytes(b"second try")
    started = time.monotonic()
    assert store.new(source, "leased/model") == "0.0"  # the first version, taken over
    waited = time.monotonic() - started
    # watched for three silent leases (its `new` claim, then its version's), never longer
    # than a few: the 6-hour TTL no longer applies
    assert 3 * LEASE_S <= waited < 30 * LEASE_S, waited
    fetched = AssetsManager(store, tmp_path / "assets").fetch("leased/model:0.0")
    assert fetched.read_bytes() == b"second try"


def test_a_live_publisher_on_another_host_keeps_new_refused(
    shared_store: tuple[str, dict[str, object]], tmp_path: Path
) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"theirs")
    ready = tmp_path / "ready"
    process = _publisher(shared_store, source, ready, hold_s=8 * LEASE_S)
    try:
        _wait_for(ready, process)
        store = AssetStore(*shared_store, settings=_settings())
        started = time.monotonic()
        with pytest.raises(AssetExistsError, match=r"being created .* by another writer"):
            store.new(tmp_path / "model.bin", "leased/model")
        # its heartbeat was seen: refused well before three leases of silence
        assert time.monotonic() - started < 3 * LEASE_S
        still_running = process.poll() is None
    finally:
        out, err = process.communicate(timeout=120)
    assert still_running, "the publisher must still be uploading when `new` was refused"
    assert process.returncode == 0 and out.strip() == "committed", err
    assert store.versions("leased/model") == ["0.0"]


def test_a_writer_presumed_dead_never_commits(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer A stops renewing (as if partitioned or paused); writer B watches A's claims
    go silent for three leases, takes them over and commits; A, resuming before its commit,
    stops with ClaimLostError and leaves B's version alone."""
    a = AssetStore(store.url, store.storage_options, settings=_settings(0.3))
    b = AssetStore(store.url, store.storage_options, settings=_settings(0.3))
    original_run = Lease._run

    def silent_for_a(self: Lease) -> None:
        if self.claims is a.claims:
            return  # A's heartbeats never reach the store
        original_run(self)

    monkeypatch.setattr(Lease, "_run", silent_for_a)
    b_done = threading.Event()
    original_upload = AssetStore._upload_data

    def upload_then_pause(self: AssetStore, *args: object, **kwargs: object) -> object:
        result = original_upload(self, *args, **kwargs)  # type: ignore[arg-type]
        if self is a:
            assert b_done.wait(60), "B never committed"
        return result

    monkeypatch.setattr(AssetStore, "_upload_data", upload_then_pause)
    (tmp_path / "a.bin").write_bytes(b"A's bytes")
    (tmp_path / "b.bin").write_bytes(b"B's bytes, a bit longer")
    outcome: dict[str, object] = {}

    def run_a() -> None:
        try:
            outcome["a"] = a.new(tmp_path / "a.bin", "m")
        except BaseException as err:
            outcome["a"] = err

    thread = threading.Thread(target=run_a)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not a.remote.exists(a.layout.claim("m", "0.0", 0)):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert b.new(tmp_path / "b.bin", "m") == "0.0"
    finally:
        b_done.set()
        thread.join(60)
    assert isinstance(outcome["a"], ClaimLostError), outcome
    assert "could not be renewed" in str(outcome["a"])
    assert store.versions("m") == ["0.0"]
    assert AssetsManager(store, tmp_path / "assets").fetch("m:0.0").read_bytes() == b"B's bytes, a bit longer"


def test_a_writer_whose_claim_was_taken_over_stops(
    store: AssetStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat finds a later attempt of its claim: the writer stops before
    committing and touches nothing of the new owner's."""
    a = AssetStore(store.url, store.storage_options, settings=_settings(0.2))
    (tmp_path / "seed.bin").write_bytes(b"0")
    store.new(tmp_path / "seed.bin", "m")
    original_upload = AssetStore._upload_data

    def upload_then_lose(
        self: AssetStore, source: object, name: str, claim: object, *args: object, **kw: object
    ) -> object:
        result = original_upload(self, source, name, claim, *args, **kw)  # type: ignore[arg-type]
        version = claim.version  # type: ignore[attr-defined]
        # another writer takes the version over (attempt 1), as after three silent leases
        self.remote.create_exclusive(self.layout.claim(name, version, 1), b'{"writer": "intruder"}')
        time.sleep(1.0)  # several heartbeats: one of them sees attempt 1
        return result

    monkeypatch.setattr(AssetStore, "_upload_data", upload_then_lose)
    (tmp_path / "update.bin").write_bytes(b"an update")
    with pytest.raises(ClaimLostError, match="taken over"):
        a.update(tmp_path / "update.bin", "m")
    assert not store.is_committed("m", "0.1")
    # the new owner's version is left as it is: nothing withdrawn
    assert store.remote.exists(store.layout.claim("m", "0.1", 1))
    assert store.fs.exists(store.layout.data("m", "0.1"))
