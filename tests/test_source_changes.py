"""A source edited during a publish never gets a manifest that its bytes do not match."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from modelkit_assets import AssetStore
from modelkit_assets.errors import AssetNotFoundError, InvalidSourceError


class _EditDuringUpload:
    """An fsspec-style callback that rewrites one source file as the upload starts."""

    def __init__(self, victim: Path) -> None:
        self.victim = victim
        self.done = False

    def __getattr__(self, name: str) -> Any:
        from fsspec.callbacks import NoOpCallback

        return getattr(NoOpCallback(), name)

    def set_size(self, size: int) -> None:
        if not self.done:
            self.done = True
            self.victim.write_bytes(b"edited during the upload")
            stat = self.victim.stat()
            # make sure the clock moved even on coarse-grained filesystems
            os.utime(self.victim, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_file_edited_during_upload_is_not_committed(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("a")
    (source / "b.txt").write_text("b")
    store = AssetStore((tmp_path / "store").as_uri())
    plan = store.plan_new(source, "edited")
    with pytest.raises(InvalidSourceError, match=r"changed while edited:0\.0 was being published"):
        store.publish(plan, callback=_EditDuringUpload(source / "b.txt"))  # type: ignore[arg-type]
    with pytest.raises(AssetNotFoundError):
        store.versions("edited")
    # nothing half-published stays behind, and publishing again works
    assert store.new(source, "edited") == "0.0"
    assert store.meta("edited", "0.0").files["b.txt"].size == len(b"edited during the upload")
