"""Faults between the library and the store (tests/faultproxy.py in front of moto,
fake-gcs-server and Azurite): 500s, 503 SlowDown, reset connections, bodies cut short and
long delays.

- at 10% of requests faulted, publish and fetch succeed through retry.py's bounded,
  jittered retries, and every fetched file verifies;
- at 100%, commands fail with one clear StoreError within a bounded time, leaving no
  ``.meta``, no claim of a failed upload, no cache marker and no staging folder;
- a create that succeeded on the server but whose answer was lost is our own success
  (claims and commits alike), not a conflict and not a second version.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import servers
from conftest import CLOUD_BACKENDS
from faultproxy import FAILING_KINDS, KINDS, FaultProxy
from helpers_snapshot import store_objects, tree
from helpers_worker import digests

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import StoreError, StoreUnreachableError
from modelkit_assets.retry import RetryPolicy

#: what the 100% runs allow: a bounded total, whatever each backend retries itself
TIGHT = RetryPolicy(attempts=3, base_delay_s=0.05, max_delay_s=0.5, deadline_s=8.0)
#: every backend's own retries are turned down to one extra try (``Backend.limit_retries``)
BOUND_S = {"s3": 30.0, "gcs": 30.0, "azure": 30.0}


@dataclass
class Proxied:
    backend: str
    url: str
    options: dict[str, object]  # through the proxy
    direct: dict[str, object]  # straight to the server, for snapshots and setup
    proxy: FaultProxy

    def store(self, retry: RetryPolicy | None = None) -> AssetStore:
        return AssetStore(self.url, self.options, retry=retry)

    def direct_store(self) -> AssetStore:
        return AssetStore(self.url, self.direct)


@pytest.fixture(params=[pytest.param(b, marks=pytest.mark.cloud) for b in CLOUD_BACKENDS])
def proxied(request: pytest.FixtureRequest) -> Iterator[Proxied]:
    backend = str(request.param)
    server = request.getfixturevalue(f"{backend}_server")
    url, direct = request.getfixturevalue(f"{backend}_store_factory")()
    with FaultProxy(server.url, flavour=backend, seed=20240601, delay_s=0.5) as proxy:
        proxy.mask = url.split("://", 1)[1].split("/", 1)[0]
        yield Proxied(backend, url, servers.storage_options(backend, proxy.url), direct, proxy)


def make_folder(root: Path, files: int = 12) -> Path:
    for i in range(files):
        sub = root / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i}.bin").write_bytes(os.urandom(2000 + 997 * i))
    return root


def test_publish_and_fetch_succeed_at_10_percent_faults(proxied: Proxied, tmp_path: Path) -> None:
    proxied.proxy.configure(rate=0.10, kinds=KINDS)
    store = proxied.store()  # the library's default policy
    first = make_folder(tmp_path / "v0")
    second = make_folder(tmp_path / "v1", files=8)
    single = tmp_path / "weights.bin"
    single.write_bytes(os.urandom(300_000))

    assert store.new(first, "noisy/model") == "0.0"
    assert store.update(second, "noisy/model") == "0.1"
    assert store.new(single, "noisy/weights") == "0.0"
    manager = AssetsManager(store, tmp_path / "assets")
    assert digests(manager.fetch("noisy/model:0.0")) == digests(first)
    assert digests(manager.fetch("noisy/model")) == digests(second)
    assert digests(manager.fetch("noisy/weights:0")) == digests(single)

    stats = proxied.proxy.stats
    assert stats.injected >= 5, stats.faults
    assert len(stats.faults) >= 3, stats.faults  # several kinds, not one
    # the store holds exactly the three versions and a correct index: no duplicate, no leftover
    direct = proxied.direct_store()
    assert direct.versions("noisy/model") == ["0.1", "0.0"]
    assert direct.read_index("noisy/model") == ["0.1", "0.0"]
    assert dict(direct.list()) == {"noisy/model": ["0.1", "0.0"], "noisy/weights": ["0.0"]}
    assert not list((tmp_path / "assets" / ".cache" / "staging").iterdir())


def _fails_within(action: Callable[[], object]) -> tuple[StoreError, float]:
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        action()
    return info.value, time.monotonic() - started


def test_100_percent_faults_fail_clearly_in_bounded_time_and_leave_nothing(
    proxied: Proxied, tmp_path: Path
) -> None:
    source = make_folder(tmp_path / "src", files=4)
    store = proxied.store(TIGHT)
    store.new(source, "dead/model")  # through a healthy proxy
    before = store_objects(proxied.direct_store())
    assets = tmp_path / "assets"
    manager = AssetsManager(store, assets)

    proxied.proxy.configure(rate=1.0, kinds=FAILING_KINDS)
    outcomes: dict[str, tuple[StoreError, float]] = {}

    def run(label: str, action: Callable[[], object]) -> None:
        outcomes[label] = _fails_within(action)

    # both at once: each backend's own retries take most of the time
    threads = [
        threading.Thread(target=run, args=("update", lambda: store.update(source, "dead/model"))),
        threading.Thread(target=run, args=("fetch", lambda: manager.fetch("dead/model:0.0"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert set(outcomes) == {"update", "fetch"}
    for label, (error, elapsed) in outcomes.items():
        message = str(error)
        assert elapsed < BOUND_S[proxied.backend], (label, elapsed)
        assert "\n" not in message and store.display_url in message, message
        # a transient failure that outlived the retries (never a permission or a missing bucket)
        assert type(error) in (StoreError, StoreUnreachableError), (label, error)
        assert "retry" in message.lower(), message
    assert len(proxied.proxy.stats.faults) >= 3, proxied.proxy.stats.faults
    assert store_objects(proxied.direct_store()) == before
    assert not any(p.name.endswith(".SUCCESS") or p.name == "0.0" for p in assets.rglob("*")), tree(assets)


def test_failed_transfers_leave_no_meta_claim_marker_or_staging(proxied: Proxied, tmp_path: Path) -> None:
    """Only the data objects fail (listings, claims, commits and meta reads work): the
    update stops before its commit and withdraws its claim; the fetch never installs."""
    source = make_folder(tmp_path / "src", files=4)
    store = proxied.store(TIGHT)
    store.new(source, "half/model")
    before = store_objects(proxied.direct_store())

    def data(method: str, path: str) -> bool:
        # uploads and server-side copies into 0.1 fail (their clean-up works), reads of 0.0's data fail
        path = urllib.parse.unquote(path)
        if method in ("PUT", "POST"):
            return "half/model/0.1/" in path
        return method == "GET" and "half/model/0.0/" in path.split("?", 1)[0]

    proxied.proxy.configure(rate=1.0, kinds=FAILING_KINDS, only=data)
    assets = tmp_path / "assets"
    errors: dict[str, BaseException] = {}

    def attempt(label: str, action: Callable[[], object]) -> None:
        try:
            action()
        except BaseException as err:
            errors[label] = err

    # together: gcsfs's own retries make each failure take ~30 s
    threads = [
        threading.Thread(target=attempt, args=("update", lambda: store.update(source, "half/model"))),
        threading.Thread(
            target=attempt, args=("fetch", lambda: AssetsManager(store, assets).fetch("half/model:0.0"))
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert isinstance(errors.get("update"), StoreError) and "half/model:0.1" in str(errors["update"])
    assert isinstance(errors.get("fetch"), StoreError) and "half/model:0.0" in str(errors["fetch"])
    assert store_objects(proxied.direct_store()) == before  # no data, no claim, no meta
    found = tree(assets)
    assert not [k for k in found if "SUCCESS" in k or k.startswith("half/model/0.0")], found
    assert not list((assets / ".cache" / "staging").iterdir())

    proxied.proxy.configure(rate=0.0)
    assert store.update(source, "half/model") == "0.1"  # nothing was left to skip or resume
    assert digests(AssetsManager(store, assets).fetch("half/model:0.1")) == digests(source)


class DropFirst:
    """Loses the answer of the first request matching each key fragment (after the server
    processed it)."""

    def __init__(self, method: str, *fragments: str) -> None:
        self.method, self.pending = method, list(fragments)
        self.lock = threading.Lock()

    def __call__(self, method: str, path: str, body: bytes) -> bool:
        # S3 and Azure name the key in the path, a GCS multipart upload in its body
        with self.lock:
            for fragment in self.pending:
                if method == self.method and (
                    fragment in urllib.parse.unquote(path) or fragment.encode() in body
                ):
                    self.pending.remove(fragment)
                    return True
        return False


def test_a_create_whose_answer_was_lost_is_our_own_success(proxied: Proxied, tmp_path: Path) -> None:
    source = make_folder(tmp_path / "src", files=3)
    store = proxied.store(TIGHT)
    # the claim of `new`, the claim of 0.0 and the commit of 0.0: each created, answer lost
    claim_new, claim_v0, commit = ".claims/.new/000000", ".claims/0.0/000000", "0.0.meta"
    # gcsfs creates with POST /upload/storage/v1/b/{bucket}/o?uploadType=multipart
    rule = DropFirst("POST" if proxied.backend == "gcs" else "PUT", claim_new, claim_v0, commit)
    proxied.proxy.drop_response = rule
    assert store.new(source, "lost/answer") == "0.0"
    assert len(proxied.proxy.stats.dropped) == 3, proxied.proxy.stats.seen
    direct = proxied.direct_store()
    assert direct.versions("lost/answer") == ["0.0"]
    assert direct.meta("lost/answer", "0.0").publish_id is not None
    assert digests(AssetsManager(direct, tmp_path / "assets").fetch("lost/answer:0.0")) == digests(source)
