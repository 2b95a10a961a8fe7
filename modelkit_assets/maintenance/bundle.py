"""A self-contained assets dir for a Docker image or an air-gapped machine.

``bundle`` fetches every spec into a fresh (or existing) folder through the normal,
verified fetch path, then removes what only a writer needs (the per-asset and
per-content lock files and the staging area) and records what it holds in
``.cache/bundle.json`` (the lockfile format)::

    {dir}/
    ├── nlp/tokenizer/1.0/...  .SUCCESS        modelkit's layout, markers included
    ├── models/clf/0.3 + .0.3.SUCCESS
    └── .cache/
        ├── .blobs/...                         each content once (the versions link to it)
        ├── manifests/...                      for `verify` with no store
        └── bundle.json                        the bundled versions and their digests

An ``AssetsManager`` pointed at it with no store (``MODELKIT_ASSETS_STORE=none`` or
offline) serves it read-only: a pinned spec is a marker ``stat``; a partial spec
resolves to the latest bundled version by listing the asset's folder. Neither writes
anything, takes a lock, or creates a file (tested by comparing the tree before and after).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelkit_assets.cache import AssetCache
from modelkit_assets.layout import CACHE_DIR
from modelkit_assets.maintenance.lockfile import LockedAsset, Lockfile
from modelkit_assets.spec import AssetSpec

if TYPE_CHECKING:
    from modelkit_assets.manager import FetchResult
    from modelkit_assets.store import AssetStore

BUNDLE_INDEX = "bundle.json"


@dataclass(frozen=True)
class BundleResult:
    """The bundled versions (a lockfile) and the folder they are in."""

    directory: Path
    lockfile: Lockfile
    size: int


def _dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def bundle(
    store: AssetStore,
    specs: Sequence[str],
    directory: str | os.PathLike[str],
    *,
    concurrency: int = 4,
    require_signature: bool | None = None,
    trusted_keys: Sequence[str | os.PathLike[str]] | None = None,
) -> BundleResult:
    """Fetch ``specs`` from ``store`` into ``directory`` and leave it ready to serve
    read-only (see the module docstring). With ``require_signature`` (default: the
    settings') only versions a trusted key signed are bundled, and the bundle records the
    key that verified each, so it serves them under ``--require-signature`` too.

    Raises
    ------
    AssetNotFoundError, VersionNotFoundError, IntegrityError, StoreError
        For the first spec that cannot be bundled (already bundled ones stay).
    """
    from modelkit_assets.manager import AssetsManager

    target = Path(directory).expanduser().resolve()
    target.mkdir(parents=True, exist_ok=True)
    manager = AssetsManager(store, target, require_signature=require_signature, trusted_keys=trusted_keys)
    parsed = [AssetSpec.parse(s) for s in specs]

    def one(spec: AssetSpec) -> tuple[AssetSpec, FetchResult]:
        return spec, manager.fetch_info(AssetSpec(spec.name, spec.version))

    with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(parsed)))) as pool:
        fetched = list(pool.map(one, parsed))
    assets = []
    for spec, result in fetched:
        meta = result.meta or manager.cache.read_manifest(result.name, result.version)
        if meta is None:  # bundled earlier by a tool that kept no manifest
            meta = store.meta(result.name, result.version)
            manager.cache.save_manifest(meta)
        assets.append(LockedAsset.from_meta(str(spec), meta))
    lockfile = Lockfile(tuple(assets), store.versioning.name, store.display_url)
    _tidy(manager.cache, {spec.name for spec in parsed})
    lockfile.write(target / CACHE_DIR / BUNDLE_INDEX)
    size = sum(_dir_size(result.path) for _, result in fetched)
    return BundleResult(target, lockfile, size)


def _tidy(cache: AssetCache, names: set[str]) -> None:
    """Remove the writers' leftovers: lock files (and their empty folders) and staging."""
    shutil.rmtree(cache.blobs.locks_root, ignore_errors=True)
    layout = cache.layout
    top = layout.assets_dir / CACHE_DIR
    for name in names:
        lock = layout.lock(name)
        lock.unlink(missing_ok=True)
        folder = lock.parent
        while folder != top and folder.is_relative_to(top):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty
            folder = folder.parent
    shutil.rmtree(layout.staging_root(), ignore_errors=True)
