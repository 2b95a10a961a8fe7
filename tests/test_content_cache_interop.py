"""modelkit 0.1.3 and the content-addressed assets dir (read-only hard links to blobs).

The real modelkit (the virtualenv of ``test_modelkit_interop.py``) runs in a subprocess on
the same local store and the same assets dir as we do:

- it serves the versions we installed from the cache (the store's data is gone, so it
  cannot download them), reads the right bytes, and changes nothing (same inodes, modes
  and link counts); a version it downloads itself is a cache hit for us; ``verify`` checks
  it against the store's manifest and ``cache list``/``prune`` count and remove it (plain
  files, no blob) while the blobs of our versions are removed with their last version;
- ``force_download`` of a version we installed works: modelkit removes the version
  (``rmtree``/``unlink``: the names, never the bytes) before downloading it again, so
  another version sharing the files keeps its inode and bytes. Run as root (which ignores
  the read-only mode: the probe opens a shared file for writing) and as an ordinary owner
  (root without ``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH`` and ``CAP_FOWNER``: the same
  probe is refused), the outcome is the same.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import test_modelkit_interop as interop
from helpers_worker import digests
from test_modelkit_interop import PREFIX, modelkit_python  # noqa: F401 - the virtualenv fixture

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.blobs import BlobStore
from modelkit_assets.cache import AssetCache
from modelkit_assets.maintenance.inventory import scan_cache
from modelkit_assets.maintenance.prune import PrunePolicy, prune
from modelkit_assets.maintenance.verify import verify
from modelkit_assets.versioning import get_versioning

pytestmark = pytest.mark.interop

MAJOR_MINOR = get_versioning("major_minor")
PR_CAPBSET_DROP = 24
#: what lets root ignore file modes and ownership
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3

# Runs inside modelkit's virtualenv: argv = [output json, operations json]; each result is
# {"ok": value} or {"error": class, "message": ...}.
DRIVER = r"""
import hashlib, json, os, sys
out_path, ops = sys.argv[1], json.loads(sys.argv[2])
from modelkit.assets.manager import AssetsManager

def digests(path):
    # what modelkit's process reads at the path it returned
    if os.path.isfile(path):
        files = {"": path}
    else:
        files = {}
        for folder, _dirs, names in os.walk(path):
            for name in names:
                full = os.path.join(folder, name)
                rel = os.path.relpath(full, path).replace(os.sep, "/")
                if name != ".SUCCESS":
                    files[rel] = full
    found = {}
    for rel, full in sorted(files.items()):
        with open(full, "rb") as handle:
            found[rel] = hashlib.sha256(handle.read()).hexdigest()
    return found

def fetch(spec, force=False):
    info = AssetsManager().fetch_asset(spec, return_info=True, force_download=force)
    return {"path": info["path"], "version": info["version"], "from_cache": info["from_cache"],
            "digests": digests(info["path"])}

def open_for_writing(path):
    # opened, never written: does this process's view of the file's mode let it write?
    with open(path, "r+b"):
        return "writable"

OPS = {"fetch": fetch, "open_for_writing": open_for_writing}
results = []
for op, *args in ops:
    try:
        results.append({"ok": OPS[op](*args)})
    except Exception as err:
        results.append({"error": type(err).__name__, "message": str(err)})
with open(out_path, "w") as handle:
    json.dump(results, handle)
"""


def _as_plain_owner() -> Callable[[], None] | None:
    """A ``preexec_fn`` that drops, before modelkit's process starts, the capabilities that
    let root ignore file modes (from the bounding set: ``exec`` cannot give them back), so
    it runs as an ordinary owner of its files; ``None`` for a user that has none."""
    if os.geteuid() != 0:
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def drop() -> None:
        for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
            if prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")

    return drop


class Modelkit(interop.Modelkit):
    """modelkit 0.1.3 on one local store and one assets dir, running this file's driver."""

    driver = DRIVER


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    path = tmp_path / "bucket"
    path.mkdir()
    return path


@pytest.fixture
def store(bucket: Path) -> AssetStore:
    return AssetStore((bucket / PREFIX).as_uri())


@pytest.fixture
def modelkit(modelkit_python: Path, bucket: Path, tmp_path: Path) -> Modelkit:  # noqa: F811
    assets = tmp_path / "assets"
    assets.mkdir()
    work = tmp_path / "modelkit-work"
    work.mkdir()
    return Modelkit(modelkit_python, bucket, assets, work)


def write_source(root: Path, content: dict[str, bytes] | bytes) -> Path:
    if isinstance(content, bytes):
        root.parent.mkdir(parents=True, exist_ok=True)
        root.write_bytes(content)
        return root
    for rel, data in content.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_digests(content: dict[str, bytes] | bytes) -> dict[str, str]:
    if isinstance(content, bytes):
        return {"": sha(content)}
    return {rel: sha(data) for rel, data in sorted(content.items())}


def state(path: Path) -> dict[str, tuple[int, int, int]]:
    """(inode, mode, link count) of every file of a cached version (marker excluded)."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    found = {}
    for file in files:
        if file.name != ".SUCCESS":
            st = file.stat()
            rel = "" if file == path else file.relative_to(path).as_posix()
            found[rel] = (st.st_ino, st.st_mode, st.st_nlink)
    return found


def blob_problems(assets: Path) -> list[str]:
    """Blobs whose bytes no longer hash to their name (an in-place write went through)."""
    return [
        str(blob.path) for blob in BlobStore(assets).blobs() if sha(blob.path.read_bytes()) != blob.sha256
    ]


def publish(store: AssetStore, tmp_path: Path, name: str, versions: list[dict[str, bytes] | bytes]) -> None:
    for i, content in enumerate(versions):
        source = write_source(tmp_path / "sources" / name / str(i), content)
        version = store.new(source, name) if i == 0 else store.update(source, name)
        assert version == f"0.{i}"


SHARED = os.urandom(2 * 2**20) + b"shared"
WEIGHTS = os.urandom(1_500_000) + b"weights"
MODEL = [
    {"weights.bin": SHARED, "config.json": b'{"v": 0}'},
    {"weights.bin": SHARED, "config.json": b'{"v": 1}', "extra.bin": os.urandom(5000)},
    {"weights.bin": SHARED, "config.json": b'{"v": 2}'},
]
FILES: list[dict[str, bytes] | bytes] = [WEIGHTS, WEIGHTS, WEIGHTS]


def test_modelkit_shares_an_assets_dir_of_hard_linked_read_only_files(
    modelkit: Modelkit, store: AssetStore, tmp_path: Path
) -> None:
    publish(store, tmp_path, "mk/model", list(MODEL))
    publish(store, tmp_path, "mk/file", FILES)
    assets = modelkit.assets_dir
    ours = AssetsManager(store, assets)
    for name in ("mk/model", "mk/file"):
        assert not ours.fetch_info(f"{name}:0.0").from_cache
        second = ours.fetch_info(f"{name}:0.1")
        assert not second.from_cache and second.reused_bytes == len(SHARED if name == "mk/model" else WEIGHTS)
    model = {v: assets / "mk" / "model" / v for v in ("0.0", "0.1", "0.2")}
    single = {v: assets / "mk" / "file" / v for v in ("0.0", "0.1", "0.2")}
    blob = os.stat(BlobStore(assets).path(sha(SHARED)))
    assert (model["0.0"] / "weights.bin").stat().st_ino == (model["0.1"] / "weights.bin").stat().st_ino
    assert (model["0.1"] / "weights.bin").stat().st_ino == blob.st_ino and blob.st_nlink == 3
    assert single["0.0"].stat().st_ino == single["0.1"].stat().st_ino
    before = {path: state(path) for path in (model["0.0"], model["0.1"], single["0.0"], single["0.1"])}
    assert all(not mode & 0o222 for files in before.values() for _ino, mode, _n in files.values())
    # the store keeps their manifests, not their data: modelkit cannot download them
    for name in ("model", "file"):
        for version in ("0.0", "0.1"):
            data = store_data(modelkit, name, version)
            if data.is_dir():
                shutil.rmtree(data)
            else:
                data.unlink()

    hits = modelkit.run(
        ["fetch", "mk/model:0.0"],
        ["fetch", "mk/model:0.1"],
        ["fetch", "mk/model:0.1[weights.bin]"],
        ["fetch", "mk/file:0.0"],
        ["fetch", "mk/file:0.1"],
    )
    assert [h["from_cache"] for h in hits] == [True] * 5, hits
    assert [Path(h["path"]) for h in hits] == [
        model["0.0"],
        model["0.1"],
        model["0.1"] / "weights.bin",
        single["0.0"],
        single["0.1"],
    ]
    assert [h["digests"] for h in hits] == [
        expected_digests(MODEL[0]),
        expected_digests(MODEL[1]),
        {"": sha(SHARED)},
        {"": sha(WEIGHTS)},
        {"": sha(WEIGHTS)},
    ]
    assert {path: state(path) for path in before} == before  # modelkit changed nothing

    # a version modelkit downloads (plain files: no blob, no manifest copy) is a hit for us
    fetched = modelkit.run(["fetch", "mk/model:0.2"], ["fetch", "mk/file:0.2"])
    assert [f["from_cache"] for f in fetched] == [False, False]
    assert [f["digests"] for f in fetched] == [expected_digests(MODEL[2]), {"": sha(WEIGHTS)}]
    assert all(n == 1 for _ino, _mode, n in state(model["0.2"]).values())
    assert state(single["0.2"])[""][2] == 1
    for spec, path in (("mk/model:0.2", model["0.2"]), ("mk/file:0.2", single["0.2"])):
        hit = ours.fetch_info(spec)
        assert hit.from_cache and hit.path == path
    hit = ours.fetch_info("mk/model:0.2[config.json]")
    assert hit.from_cache and hit.path.read_bytes() == MODEL[2]["config.json"]
    cache = AssetCache(assets)
    assert cache.read_manifest("mk/model", "0.2") is None

    # verify: our versions against the manifests we kept, modelkit's against the store's
    everything = [(n, v) for n in ("mk/model", "mk/file") for v in ("0.0", "0.1", "0.2")]
    report = verify(cache, everything, store=store)
    assert report.ok, [str(p) for p in report.problems]
    assert report.files == 2 + 3 + 2 + 3
    alone = verify(cache, [("mk/model", "0.2")])  # no store: nothing to check it against
    assert [p.kind for p in alone.problems] == ["no-manifest"]

    # cache list: our versions share their contents, modelkit's copies are its own
    listed = {v.spec: v for v in scan_cache(assets, MAJOR_MINOR)}
    assert {spec: v.shared for spec, v in listed.items()} == {
        "mk/model:0.2": 0,
        "mk/model:0.1": len(SHARED),
        "mk/model:0.0": len(SHARED),
        "mk/file:0.2": 0,
        "mk/file:0.1": len(WEIGHTS),
        "mk/file:0.0": len(WEIGHTS),
    }

    # prune our versions: their blobs go with them; modelkit's version stays whole
    ours_only = sum(len(b) for b in {SHARED, WEIGHTS, *MODEL[0].values(), *MODEL[1].values()})
    pruned = prune(assets, PrunePolicy(keep_newest=1), MAJOR_MINOR)
    assert sorted(v.spec for v in pruned.removed) == [
        "mk/file:0.0",
        "mk/file:0.1",
        "mk/model:0.0",
        "mk/model:0.1",
    ]
    assert pruned.skipped == [] and pruned.blobs_removed == 5
    assert pruned.disk_freed == ours_only
    assert BlobStore(assets).blobs() == []
    report = verify(cache, [("mk/model", "0.2"), ("mk/file", "0.2")], store=store)
    assert report.ok, [str(p) for p in report.problems]
    again = modelkit.run(["fetch", "mk/model:0.2"], ["fetch", "mk/file:0.2"])
    assert [a["from_cache"] for a in again] == [True, True]
    assert [a["digests"] for a in again] == [expected_digests(MODEL[2]), {"": sha(WEIGHTS)}]

    # and then modelkit's version too: plain files, no blob to remove
    pruned = prune(assets, PrunePolicy(keep_newest=0), MAJOR_MINOR)
    assert sorted(v.spec for v in pruned.removed) == ["mk/file:0.2", "mk/model:0.2"]
    assert pruned.blobs_removed == 0
    assert pruned.disk_freed == sum(len(b) for b in MODEL[2].values()) + len(WEIGHTS)
    assert scan_cache(assets, MAJOR_MINOR) == []


def store_data(modelkit: Modelkit, name: str, version: str) -> Path:
    return modelkit.bucket / PREFIX / "mk" / name / version


@pytest.mark.parametrize("user", ["root", "plain-owner"])
def test_modelkit_force_download_leaves_versions_sharing_the_files_intact(
    modelkit: Modelkit, store: AssetStore, tmp_path: Path, user: str
) -> None:
    if user == "plain-owner":
        modelkit.preexec = _as_plain_owner()
    publish(store, tmp_path, "mk/model", MODEL[:2])
    publish(store, tmp_path, "mk/file", FILES[:2])
    assets = modelkit.assets_dir
    ours = AssetsManager(store, assets)
    for spec in ("mk/model:0.0", "mk/model:0.1", "mk/file:0.0", "mk/file:0.1"):
        ours.fetch(spec)
    model = {v: assets / "mk" / "model" / v for v in ("0.0", "0.1")}
    single = {v: assets / "mk" / "file" / v for v in ("0.0", "0.1")}
    kept = {path: state(path) for path in (model["0.1"], single["0.1"])}
    shared_ino = kept[model["0.1"]]["weights.bin"][0]
    assert state(model["0.0"])["weights.bin"][0] == shared_ino
    assert state(single["0.0"]) == kept[single["0.1"]]

    probe, *forced = modelkit.try_run(
        ["open_for_writing", str(model["0.1"] / "weights.bin")],
        ["fetch", "mk/model:0.0", True],
        ["fetch", "mk/file:0.0", True],
    )
    # as root the read-only mode does not stop a writer; as a plain owner it does
    if user == "root" and os.geteuid() == 0:
        assert probe == {"ok": "writable"}
    else:
        assert probe.get("error") == "PermissionError", probe
    # the forced downloads work, and write new files: the shared ones are not touched
    assert [f.get("ok", f)["from_cache"] for f in forced] == [False, False], forced
    assert forced[0]["ok"]["digests"] == expected_digests(MODEL[0])
    assert forced[1]["ok"]["digests"] == {"": sha(WEIGHTS)}
    assert state(model["0.0"])["weights.bin"][0] != shared_ino
    assert state(single["0.0"])[""][0] != kept[single["0.1"]][""][0]
    for path, files in kept.items():
        # the same inodes and modes; each file is now its blob and this version's name
        # (0.0's name of the shared ones is gone)
        assert {k: (ino, mode) for k, (ino, mode, _n) in state(path).items()} == {
            k: (ino, mode) for k, (ino, mode, _n) in files.items()
        }
        assert {k: n for k, (_ino, _mode, n) in state(path).items()} == {k: 2 for k in files}
    assert digests(model["0.1"]) == expected_digests(MODEL[1])
    assert digests(single["0.1"]) == {"": sha(WEIGHTS)}
    assert blob_problems(assets) == []

    # our side: hits, verified, and nothing counted as shared with modelkit's new copies
    for spec in ("mk/model:0.0", "mk/file:0.0"):
        assert ours.fetch_info(spec).from_cache
    cache = AssetCache(assets)
    everything = [(n, v) for n in ("mk/model", "mk/file") for v in ("0.0", "0.1")]
    report = verify(cache, everything, store=store)
    assert report.ok, [str(p) for p in report.problems]
    assert all(v.shared == 0 for v in scan_cache(assets, MAJOR_MINOR))
    # prune of modelkit's copies frees them, and the blob only their old names used
    pruned = prune(assets, PrunePolicy(keep_newest=1), MAJOR_MINOR)
    assert sorted(v.spec for v in pruned.removed) == ["mk/file:0.0", "mk/model:0.0"]
    assert pruned.blobs_removed == 1  # config.json of 0.0: no version links to it now
    config = len(MODEL[0]["config.json"])
    assert pruned.disk_freed == len(SHARED) + config + len(WEIGHTS) + config
    assert digests(model["0.1"]) == expected_digests(MODEL[1]) and blob_problems(assets) == []
