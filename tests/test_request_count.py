"""Round trips of a small publish, counted in the S3 server's own request log.

An ``update`` of one small file makes at most 7 requests (list, claim, commit check,
upload, exclusive commit, index write, index check). Marker requests before and after
delimit the update in moto's log, so lines written late are still counted.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import servers

from modelkit_assets import AssetStore

pytestmark = pytest.mark.cloud


def _mark(store: AssetStore) -> str:
    """A request with a unique key, to find in the log."""
    key = f"marker-{uuid.uuid4().hex}"
    store.fs.exists(f"{store.remote.root}/{key}")
    return key


def _requests_between(log: Path, start: str, end: str) -> list[str]:
    deadline = time.monotonic() + 30
    while True:
        lines = [line for line in log.read_text(errors="replace").splitlines() if "HTTP/1.1" in line]
        first = [i for i, line in enumerate(lines) if start in line]
        last = [i for i, line in enumerate(lines) if end in line]
        if first and last:
            return [line for line in lines[first[-1] + 1 : last[0]] if "marker-" not in line]
        assert time.monotonic() < deadline, "the markers never reached the server's log"
        time.sleep(0.05)


def test_an_update_of_one_small_file_makes_at_most_7_requests(
    s3_server: servers.Server, s3_store_factory: object, tmp_path: Path
) -> None:
    url, options = s3_store_factory()  # type: ignore[operator]
    source = tmp_path / "vocab.txt"
    source.write_text("one")
    AssetStore(url, options).new(source, "small/file")
    source.write_text("two")
    store = AssetStore(url, options)  # a fresh process's view: nothing cached
    start = _mark(store)
    assert store.update(source, "small/file") == "0.1"
    end = _mark(store)
    made = _requests_between(s3_server.log, start, end)
    assert len(made) <= 7, made
    assert sum("PUT" in line for line in made) == 4, made  # claim, data, commit, index
    assert AssetStore(url, options).versions("small/file") == ["0.1", "0.0"]
    assert store.read_index("small/file") == ["0.1", "0.0"]
