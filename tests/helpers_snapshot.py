"""Snapshots of everything a store root and an assets dir hold, to prove that a refused
operation wrote nothing anywhere (DESIGN.md G3, G5)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from modelkit_assets import AssetStore
from modelkit_assets.backend import ensure_parent


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
