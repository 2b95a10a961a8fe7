"""Snapshots of everything a store root and an assets dir hold, to prove that a refused
operation wrote nothing anywhere (DESIGN.md G3, G5)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from modelkit_assets import AssetStore
from modelkit_assets.backends import ensure_parent


def store_objects(store: AssetStore) -> dict[str, str]:
    """Every object under the store root, with the sha256 of its bytes."""
    root = store.layout.root
    store.fs.invalidate_cache()
    try:
        keys = store.fs.find(root)
    except FileNotFoundError:
        return {}
    return {store.layout.relative(k): hashlib.sha256(store.fs.cat_file(k)).hexdigest() for k in sorted(keys)}


def tree(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (folders as ``/``), with file hashes."""
    if not folder.exists():
        return {}
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            found[os.path.relpath(os.path.join(dirpath, name), folder)] = "/"
        for name in filenames:
            full = os.path.join(dirpath, name)
            found[os.path.relpath(full, folder)] = hashlib.sha256(Path(full).read_bytes()).hexdigest()
    return found


def put_object(store: AssetStore, key: str, data: bytes) -> None:
    """Write one object by hand, as a broken, hostile or foreign writer would."""
    ensure_parent(store.fs, key)
    store.fs.pipe_file(key, data)


def count_reads(monkeypatch: Any, fs: Any) -> list[int]:
    """Count the bytes read through ``fs.open`` from now on: ``[total]``, kept up to date."""
    read = [0]
    real_open = fs.open

    class Counting:
        def __init__(self, handle: Any) -> None:
            self.handle = handle

        def __getattr__(self, attr: str) -> Any:
            return getattr(self.handle, attr)

        def read(self, length: int = -1) -> bytes:
            data: bytes = self.handle.read(length)
            read[0] += len(data)
            return data

        def __enter__(self) -> Counting:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()

    monkeypatch.setattr(fs, "open", lambda *args, **kwargs: Counting(real_open(*args, **kwargs)))
    return read
