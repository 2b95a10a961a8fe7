"""Two-way compatibility with the real modelkit 0.1.3, run in its own virtualenv.

modelkit (from PyPI, ``pip install modelkit==0.1.3``) runs in a subprocess with its
``local`` storage provider on the same store folder and, where said, the same assets dir:

- it lists and fetches (files, folders, sub-parts, partial versions) what we publish;
- we list, resolve and fetch what it publishes (its ``.meta`` has no hashes: we warn and
  still check the file list);
- the two tools alternate publishes on one asset without losing a version;
- a version fetched by one tool is a cache hit for the other (the store copy is deleted
  first, so a download could not succeed);
- ``compat``'s versioning and spec parsing give modelkit's answers.

The virtualenv is built once and kept in ``~/.cache/modelkit-assets-tests/mk013-venv``
(``MODELKIT_ASSETS_TEST_CACHE`` moves it). If pip cannot install modelkit, the tests are
skipped with pip's reason, or fail when ``MODELKIT_ASSETS_REQUIRE_SERVERS=1`` (CI).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import filelock
import pytest

from modelkit_assets import AssetsManager, AssetStore, IntegrityError
from modelkit_assets import compat as mk_compat

pytestmark = pytest.mark.interop

MODELKIT_VERSION = "0.1.3"
#: read at import: the autouse ``clean_environ`` fixture clears MODELKIT_* for each test
REQUIRE = os.environ.get("MODELKIT_ASSETS_REQUIRE_SERVERS", "").strip().lower() in ("1", "true", "yes")
CACHE_ROOT = os.environ.get("MODELKIT_ASSETS_TEST_CACHE")
PREFIX = "team-assets"

# Runs inside modelkit's virtualenv: argv = [output json, operations json]. Each
# operation is [op, *args]; results are {"ok": value} or {"error": class, "message": ...}.
DRIVER = r"""
import json, sys
out_path, ops = sys.argv[1], json.loads(sys.argv[2])
from modelkit.assets.manager import AssetsManager
from modelkit.assets.remote import StorageProvider
from modelkit.assets.settings import AssetSpec
from modelkit.assets.versioning.major_minor import MajorMinorAssetsVersioningSystem as MM

def update(path, spec_text, bump_major):
    # modelkit/assets/cli.py update_(), without the prompt
    provider = StorageProvider()
    spec = AssetSpec.from_string(spec_text)
    version_list = provider.get_versions_info(spec.name)
    params = spec.versioning.get_update_cli_params(
        version=spec.version, version_list=version_list, bump_major=bump_major
    )
    version = spec.versioning.increment_version(spec.sort_versions(version_list), params["params"])
    provider.update(path, name=spec.name, version=version)
    return version

def new(path, spec_text):
    # modelkit/assets/cli.py new_(), without the prompt
    spec = AssetSpec.from_string(spec_text)
    version = spec.versioning.get_initial_version()
    StorageProvider().new(path, spec.name, version)
    return version

def fetch(spec):
    info = AssetsManager().fetch_asset(spec, return_info=True)
    return {"path": info["path"], "version": info.get("version"), "from_cache": info.get("from_cache")}

def meta(name, version):
    data = StorageProvider().get_asset_meta(name, version)
    data["push_date"] = data["push_date"].isoformat()
    return data

def parse(text):
    spec = AssetSpec.from_string(text)
    return [spec.name, spec.version, spec.sub_part]

OPS = {
    "list": lambda: [[n, v] for n, v in StorageProvider().iterate_assets()],
    "versions": lambda name: StorageProvider().get_versions_info(name),
    "meta": meta,
    "fetch": fetch,
    "new": new,
    "update": update,
    "parse": parse,
    "mm": lambda method, *args: getattr(MM, method)(*args),
}
results = []
for op, *args in ops:
    try:
        results.append({"ok": OPS[op](*args)})
    except Exception as err:
        results.append({"error": type(err).__name__, "message": str(err)})
with open(out_path, "w") as handle:
    json.dump(results, handle)
"""


# -- the virtualenv ------------------------------------------------------------------
def _cache_root() -> Path:
    for root in (
        Path(CACHE_ROOT) if CACHE_ROOT else None,
        Path.home() / ".cache" / "modelkit-assets-tests",
        Path(tempfile.gettempdir()) / "modelkit-assets-tests",
    ):
        if root is None:
            continue
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK):
            return root
    raise OSError("no writable folder for the modelkit virtualenv")


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _build_venv(venv: Path) -> None:
    """Create the virtualenv and install modelkit from PyPI; a marker file says it is
    complete, so an interrupted build is redone."""
    marker = venv / f"modelkit-{MODELKIT_VERSION}.ok"
    if marker.is_file():
        return
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    python = str(_venv_python(venv))
    install = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            f"modelkit=={MODELKIT_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if install.returncode != 0:
        raise RuntimeError(
            f"pip install modelkit=={MODELKIT_VERSION} failed: {install.stderr.strip()[-800:]}"
        )
    check = subprocess.run(
        [
            python,
            "-c",
            "import importlib.metadata as m, modelkit.assets.manager; print(m.version('modelkit'))",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check.stdout.strip() != MODELKIT_VERSION:
        raise RuntimeError(f"modelkit {MODELKIT_VERSION} does not import: {check.stderr.strip()[-800:]}")
    marker.write_text(MODELKIT_VERSION)


@pytest.fixture(scope="session")
def modelkit_python() -> Path:
    """The Python of a virtualenv with modelkit 0.1.3 (built once, then reused)."""
    try:
        root = _cache_root()
        venv = root / "mk013-venv"
        with filelock.FileLock(str(root / "mk013-venv.lock"), timeout=600):
            _build_venv(venv)
    except (OSError, RuntimeError, subprocess.SubprocessError, filelock.Timeout) as err:
        reason = f"cannot set up modelkit {MODELKIT_VERSION}: {err}"
        if REQUIRE:
            pytest.fail(f"{reason} (MODELKIT_ASSETS_REQUIRE_SERVERS=1: this is a failure)")
        pytest.skip(reason)
    return _venv_python(venv)


# -- running modelkit ----------------------------------------------------------------
class Modelkit:
    """modelkit 0.1.3 configured (through its environment) on one store and assets dir."""

    #: the script run in modelkit's virtualenv: argv = [output json, operations json]
    driver = DRIVER

    def __init__(self, python: Path, bucket: Path, assets_dir: Path, workdir: Path) -> None:
        self.python = python
        self.bucket = bucket
        self.assets_dir = assets_dir
        self.workdir = workdir
        self.versioning = "major_minor"
        #: run in modelkit's process before it starts (e.g. to drop privileges)
        self.preexec: Callable[[], None] | None = None

    def run(self, *ops: list[Any]) -> list[Any]:
        """Run operations in one modelkit process; return their values (any error fails)."""
        results = self.try_run(*ops)
        for op, result in zip(ops, results, strict=True):
            assert "ok" in result, f"modelkit {op} failed: {result}"
        return [r["ok"] for r in results]

    def try_run(self, *ops: list[Any]) -> list[dict[str, Any]]:
        out = self.workdir / "modelkit-out.json"
        out.unlink(missing_ok=True)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.workdir),
            "MODELKIT_STORAGE_PROVIDER": "local",
            "MODELKIT_STORAGE_BUCKET": str(self.bucket),
            "MODELKIT_STORAGE_PREFIX": PREFIX,
            "MODELKIT_ASSETS_DIR": str(self.assets_dir),
            "MODELKIT_ASSETS_VERSIONING_SYSTEM": self.versioning,
        }
        proc = subprocess.run(
            [str(self.python), "-c", self.driver, str(out), json.dumps(ops)],
            env=env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=self.preexec,
        )
        assert proc.returncode == 0, f"modelkit driver crashed:\n{proc.stderr[-3000:]}"
        results: list[dict[str, Any]] = json.loads(out.read_text())
        return results


@pytest.fixture
def bucket(tmp_path: Path) -> Path:
    path = tmp_path / "bucket"
    path.mkdir()
    return path


@pytest.fixture
def store(bucket: Path) -> AssetStore:
    """Our view of modelkit's local store: {bucket}/{prefix}."""
    return AssetStore((bucket / PREFIX).as_uri())


@pytest.fixture
def modelkit(modelkit_python: Path, bucket: Path, tmp_path: Path) -> Modelkit:
    assets = tmp_path / "modelkit-assets-dir"
    assets.mkdir()
    work = tmp_path / "modelkit-work"
    work.mkdir()
    return Modelkit(modelkit_python, bucket, assets, work)


@pytest.fixture
def make_source(tmp_path: Path) -> Callable[[str, dict[str, bytes] | bytes], Path]:
    """Write a file (bytes) or a folder ({relative path: bytes}) to publish."""

    def make(label: str, content: dict[str, bytes] | bytes) -> Path:
        root = tmp_path / "sources" / label
        if isinstance(content, bytes):
            root.parent.mkdir(parents=True, exist_ok=True)
            root.write_bytes(content)
            return root
        for rel, data in content.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(data)
        return root

    return make


def _tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".SUCCESS"
    }


FOLDER_V0 = {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/deeper/c.bin": os.urandom(3000)}
FOLDER_V1 = {"a.txt": b"alpha-2", "sub/b.txt": b"beta-2", "z.json": b"{}"}


# -- modelkit reads what we publish -----------------------------------------------------
def test_modelkit_lists_and_fetches_what_we_publish(
    modelkit: Modelkit, store: AssetStore, make_source: Callable[..., Path]
) -> None:
    files = {v: os.urandom(1000) + v.encode() for v in ("0.0", "0.1", "1.0", "0.2")}
    assert store.new(make_source("f00", files["0.0"]), "x/file") == "0.0"
    assert store.update(make_source("f01", files["0.1"]), "x/file") == "0.1"
    assert store.update(make_source("f10", files["1.0"]), "x/file", bump_major=True) == "1.0"
    assert store.update(make_source("f02", files["0.2"]), "x/file:0") == "0.2"
    assert store.new(make_source("d0", FOLDER_V0), "x/dir") == "0.0"
    assert store.update(make_source("d1", FOLDER_V1), "x/dir") == "0.1"

    listed, file_versions, latest, in_major0, sub_part, folder, meta = modelkit.run(
        ["list"],
        ["versions", "x/file"],
        ["fetch", "x/file"],
        ["fetch", "x/file:0"],
        ["fetch", "x/dir:0.0[sub/deeper/c.bin]"],
        ["fetch", "x/dir"],
        ["meta", "x/dir", "0.1"],
    )
    assert listed == [["x/dir", ["0.1", "0.0"]], ["x/file", ["1.0", "0.2", "0.1", "0.0"]]]
    assert file_versions == ["1.0", "0.2", "0.1", "0.0"]
    assert latest["version"] == "1.0" and latest["from_cache"] is False
    assert Path(latest["path"]) == modelkit.assets_dir / "x" / "file" / "1.0"
    assert Path(latest["path"]).read_bytes() == files["1.0"]
    assert in_major0["version"] == "0.2" and Path(in_major0["path"]).read_bytes() == files["0.2"]
    assert Path(sub_part["path"]).read_bytes() == FOLDER_V0["sub/deeper/c.bin"]
    assert folder["version"] == "0.1" and _tree(Path(folder["path"])) == FOLDER_V1
    assert meta["is_directory"] is True and meta["contents"] == sorted(FOLDER_V1)


def test_modelkit_never_sees_unfinished_or_hidden_objects(
    modelkit: Modelkit, store: AssetStore, make_source: Callable[..., Path]
) -> None:
    """Claims live under `.claims/`; an uncommitted upload has no `.meta` and is absent
    from the index, so modelkit neither lists nor fetches it."""
    store.new(make_source("f", b"one"), "x/file")
    plan = store.plan_update(make_source("g", b"two"), "x/file")
    claim = store.claims.acquire("x/file", plan.version, "crashed-writer")  # a writer that died mid-upload
    assert claim is not None
    store._upload_data(plan.source, "x/file", claim, None)
    listed, fetched = modelkit.try_run(["list"], ["fetch", f"x/file:{plan.version}"])
    assert listed == {"ok": [["x/file", ["0.0"]]]}
    assert fetched["error"] == "ObjectDoesNotExistError"


def test_modelkit_lists_and_fetches_signed_versions_as_before(
    modelkit: Modelkit, store: AssetStore, make_source: Callable[..., Path], tmp_path: Path
) -> None:
    """Signatures live under `.signatures/`: modelkit lists and fetches a signed version
    exactly like an unsigned one, and a version it installed in a shared assets dir is
    served under require_signature only once its files re-hash to the signed manifest."""
    from modelkit_assets.signing import generate_key

    private, public = generate_key(tmp_path / "publisher.pem")
    store.new(make_source("s0", FOLDER_V0), "x/signed", sign_key=private)
    store.update(make_source("s1", FOLDER_V1), "x/signed", sign_key=private)
    store.new(make_source("sf", b"signed file"), "x/signed-file", sign_key=private)
    assert (modelkit.bucket / PREFIX / "x" / "signed" / ".signatures" / "0.1").is_dir()

    listed, versions, folder, part, single = modelkit.run(
        ["list"],
        ["versions", "x/signed"],
        ["fetch", "x/signed"],
        ["fetch", "x/signed:0.0[sub/b.txt]"],
        ["fetch", "x/signed-file:0.0"],
    )
    assert listed == [["x/signed", ["0.1", "0.0"]], ["x/signed-file", ["0.0"]]]
    assert versions == ["0.1", "0.0"]
    assert folder["version"] == "0.1" and _tree(Path(folder["path"])) == FOLDER_V1
    assert Path(part["path"]).read_bytes() == b"beta"
    assert Path(single["path"]).read_bytes() == b"signed file"

    # modelkit installed these unverified: served under require_signature after a re-hash
    ours = AssetsManager(store, modelkit.assets_dir, require_signature=True, trusted_keys=[public])
    hit = ours.fetch_info("x/signed:0.1")
    assert hit.from_cache and _tree(hit.path) == FOLDER_V1
    assert ours.fetch_info("x/signed-file:0.0").from_cache


# -- we read what modelkit publishes ----------------------------------------------------
def test_we_list_and_fetch_what_modelkit_publishes(
    modelkit: Modelkit,
    store: AssetStore,
    make_source: Callable[..., Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    files = {k: os.urandom(500) + k.encode() for k in ("a", "b", "c", "d", "e")}
    versions = modelkit.run(
        ["new", str(make_source("a", files["a"])), "m/file"],
        ["update", str(make_source("b", files["b"])), "m/file", False],
        ["update", str(make_source("c", files["c"])), "m/file", True],
        ["update", str(make_source("d", files["d"])), "m/file:0", False],
        ["update", str(make_source("e", files["e"])), "m/file", False],
        ["new", str(make_source("d0", FOLDER_V0)), "m/dir"],
        ["update", str(make_source("d1", FOLDER_V1)), "m/dir", False],
    )
    assert versions == ["0.0", "0.1", "1.0", "0.2", "1.1", "0.0", "0.1"]

    assert list(store.list()) == [("m/dir", ["0.1", "0.0"]), ("m/file", ["1.1", "1.0", "0.2", "0.1", "0.0"])]
    assert store.read_index("m/file") == ["1.1", "1.0", "0.2", "0.1", "0.0"]
    assert store.resolve("m/file:0") == "0.2"
    meta = store.meta("m/dir", "0.0")
    assert not meta.verifiable and meta.contents == sorted(FOLDER_V0)

    manager = AssetsManager(store, tmp_path / "our-assets")
    with caplog.at_level(logging.WARNING, logger="modelkit_assets"):
        assert manager.fetch("m/file").read_bytes() == files["e"]
    assert "without hashes" in caplog.text
    assert manager.fetch("m/file:0").read_bytes() == files["d"]
    assert manager.fetch("m/dir:0.0[sub/deeper/c.bin]").read_bytes() == FOLDER_V0["sub/deeper/c.bin"]
    assert _tree(manager.fetch("m/dir")) == FOLDER_V1

    # what can be checked is checked: a file listed in modelkit's `contents` must arrive
    (modelkit.bucket / PREFIX / "m" / "dir" / "0.0" / "a.txt").unlink()
    fresh = AssetsManager(store, tmp_path / "other-assets")
    with pytest.raises(IntegrityError, match=r"m/dir:0\.0"):
        fresh.fetch("m/dir:0.0")
    assert not (tmp_path / "other-assets" / "m" / "dir" / "0.0").exists()

    # and through modelkit's own API names
    provider = mk_compat.StorageProvider(provider="local", bucket=str(modelkit.bucket), prefix=PREFIX)
    assert provider.get_versions_info("m/file") == ["1.1", "1.0", "0.2", "0.1", "0.0"]
    assert provider.get_asset_meta("m/file", "0.0").keys() == {"push_date", "is_directory"}
    compat_dir = tmp_path / "compat-assets"
    compat_dir.mkdir()
    info = mk_compat.AssetsManager(str(compat_dir), storage_provider=provider).fetch_asset(
        "m/dir:0.1[z.json]", return_info=True
    )
    assert info["version"] == "0.1" and Path(info["path"]).read_bytes() == b"{}"
    assert info["meta"]["contents"] == sorted(FOLDER_V1)


def test_alternating_publishers_lose_no_version(
    modelkit: Modelkit, store: AssetStore, make_source: Callable[..., Path]
) -> None:
    compat_provider = mk_compat.StorageProvider(provider="local", bucket=str(modelkit.bucket), prefix=PREFIX)
    src = make_source("s", b"payload")
    assert modelkit.run(["new", str(src), "alt"]) == ["0.0"]
    assert store.update(src, "alt") == "0.1"
    assert modelkit.run(["update", str(src), "alt", False]) == ["0.2"]
    compat_provider.update(
        str(src),
        "alt",
        mk_compat.MajorMinorAssetsVersioningSystem.increment_version(
            compat_provider.get_versions_info("alt"), {"bump_major": True, "major": None}
        ),
    )
    assert modelkit.run(["update", str(src), "alt", False], ["versions", "alt"])[1] == [
        "1.1",
        "1.0",
        "0.2",
        "0.1",
        "0.0",
    ]
    assert store.versions("alt") == ["1.1", "1.0", "0.2", "0.1", "0.0"]
    # modelkit refuses to overwrite a version we published, and so do we for its versions
    results = modelkit.try_run(["new", str(src), "alt"])
    assert results[0]["error"] == "AssetAlreadyExistsError"
    with pytest.raises(mk_compat.AssetAlreadyExistsError):
        compat_provider.update(str(src), "alt", "0.2")


def test_simple_date_both_ways(
    modelkit: Modelkit, bucket: Path, make_source: Callable[..., Path], tmp_path: Path
) -> None:
    modelkit.versioning = "simple_date"
    store = AssetStore((bucket / PREFIX).as_uri(), versioning="simple_date")
    (first,) = modelkit.run(["new", str(make_source("a", b"first")), "dated"])
    second = store.update(make_source("b", b"second"), "dated")
    assert second > first
    versions, fetched = modelkit.run(["versions", "dated"], ["fetch", "dated"])
    assert versions == [second, first]
    assert fetched["version"] == second and Path(fetched["path"]).read_bytes() == b"second"
    assert AssetsManager(store, tmp_path / "ours").fetch(f"dated:{first}").read_bytes() == b"first"


# -- one assets dir for both tools -------------------------------------------------------
def test_one_assets_dir_serves_both_tools(
    modelkit: Modelkit, store: AssetStore, make_source: Callable[..., Path]
) -> None:
    for name in ("by-modelkit", "by-us"):
        store.new(make_source(f"{name}-f", name.encode()), f"{name}/file")
        store.new(make_source(f"{name}-d", FOLDER_V0), f"{name}/dir")
    ours = AssetsManager(store, modelkit.assets_dir)

    # modelkit downloads; we then find its copy although the store no longer has it
    fetched = modelkit.run(["fetch", "by-modelkit/file:0.0"], ["fetch", "by-modelkit/dir:0.0"])
    assert [f["from_cache"] for f in fetched] == [False, False]
    shutil.rmtree(modelkit.bucket / PREFIX / "by-modelkit" / "dir" / "0.0")
    (modelkit.bucket / PREFIX / "by-modelkit" / "file" / "0.0").unlink()
    hit = ours.fetch_info("by-modelkit/file:0.0")
    assert hit.from_cache and hit.path.read_bytes() == b"by-modelkit"
    hit = ours.fetch_info("by-modelkit/dir:0.0[sub/b.txt]")
    assert hit.from_cache and hit.path.read_bytes() == b"beta"

    # we download; modelkit then finds our copy although the store no longer has it
    assert not ours.fetch_info("by-us/file:0.0").from_cache
    assert not ours.fetch_info("by-us/dir:0.0").from_cache
    shutil.rmtree(modelkit.bucket / PREFIX / "by-us" / "dir" / "0.0")
    (modelkit.bucket / PREFIX / "by-us" / "file" / "0.0").unlink()
    file_hit, dir_hit, latest_hit = modelkit.run(
        ["fetch", "by-us/file:0.0"], ["fetch", "by-us/dir:0.0[sub/deeper/c.bin]"], ["fetch", "by-us/dir"]
    )
    assert file_hit["from_cache"] and Path(file_hit["path"]).read_bytes() == b"by-us"
    assert dir_hit["from_cache"] and Path(dir_hit["path"]).read_bytes() == FOLDER_V0["sub/deeper/c.bin"]
    assert latest_hit["from_cache"] and latest_hit["version"] == "0.0"


# -- compat gives modelkit's answers -----------------------------------------------------
MM_CALLS: list[list[Any]] = [
    ["get_initial_version"],
    ["increment_version", ["1.1", "0.1"], {"bump_major": False, "major": None}],
    ["increment_version", ["1.0", "0.1"], {"bump_major": True, "major": None}],
    ["increment_version", ["1.0", "0.1"], {"bump_major": False, "major": "0"}],
    ["increment_version", ["1.10", "1.9"], {"bump_major": False, "major": None}],
    ["sort_versions", ["1.9", "0.3", "1.10", "10.0", "2.1"]],
    ["is_version_complete", "1.2"],
    ["is_version_complete", "1"],
    ["latest_version", ["1.0", "1.2", "2.0"]],
    ["latest_version", ["1.0", "1.2", "2.0"], "1"],
    ["filter_versions", ["2.0", "1.2", "1.0"], "1"],
    ["check_version_valid", "1.2"],
    ["check_version_valid", "1.a"],
    ["latest_version", ["1.0"], "4"],
]
SPECS = ["a", "a/b:1.2", "a:1[x/y.txt]", "nlp/tok:0.1[vocab/v.txt]", "a:1.2.3", "a:x", "a:1.0[b]"]


def _ours(call: list[Any]) -> dict[str, Any]:
    method, *args = call
    try:
        return {"ok": getattr(mk_compat.MajorMinorAssetsVersioningSystem, method)(*args)}
    except Exception as err:
        return {"error": type(err).__name__}


def _our_parse(text: str) -> dict[str, Any]:
    try:
        spec = mk_compat.AssetSpec.from_string(text)
    except Exception as err:
        return {"error": type(err).__name__}
    return {"ok": [spec.name, spec.version, spec.sub_part]}


def test_compat_versioning_and_specs_match_modelkit(modelkit: Modelkit) -> None:
    ops = [["mm", *call] for call in MM_CALLS] + [["parse", text] for text in SPECS]
    theirs = modelkit.try_run(*ops)
    for call, result in zip(MM_CALLS + [["parse", s] for s in SPECS], theirs, strict=True):
        ours = _our_parse(call[1]) if call[0] == "parse" else _ours(call)
        expected = {"error": result["error"]} if "error" in result else result
        assert ours == expected, f"{call}: modelkit {result}, compat {ours}"


def test_compat_update_params_match_modelkit(modelkit: Modelkit, make_source: Callable[..., Path]) -> None:
    """The CLI's update computation (display, params, next version) agrees on a real store."""
    src = make_source("s", b"x")
    modelkit.run(
        ["new", str(src), "p"],
        ["update", str(src), "p", False],
        ["update", str(src), "p", True],
    )
    provider = mk_compat.StorageProvider(provider="local", bucket=str(modelkit.bucket), prefix=PREFIX)
    version_list = provider.get_versions_info("p")
    params = mk_compat.MajorMinorAssetsVersioningSystem.get_update_cli_params(
        version="0", version_list=version_list, bump_major=False
    )
    ours = mk_compat.MajorMinorAssetsVersioningSystem.increment_version(version_list, params["params"])
    (theirs,) = modelkit.run(["update", str(src), "p:0", False])
    assert ours == theirs == "0.2"
    assert "major `0` = 0.1, 0.0" in params["display"] and "major `1` = 1.0" in params["display"]


def test_modelkit_lists_and_fetches_aliased_assets_and_never_a_retired_version(
    modelkit: Modelkit, store: AssetStore, make_source: Callable[..., Path]
) -> None:
    """Aliases live under `.aliases/`, tombstones under `.retired-{version}/`: modelkit lists,
    resolves and fetches an asset that has both exactly like a plain asset published the
    same way, and no longer sees the retired version (gone from its index and the store)."""
    from modelkit_assets.maintenance.retention import retire_version

    contents = {v: os.urandom(300) + v.encode() for v in ("0.0", "0.1", "0.2", "1.0")}
    for name in ("x/aliased", "x/plain"):
        assert store.new(make_source(f"{name}-0.0", contents["0.0"]), name) == "0.0"
        assert store.update(make_source(f"{name}-0.1", contents["0.1"]), name) == "0.1"
        assert store.update(make_source(f"{name}-0.2", contents["0.2"]), name) == "0.2"
        assert store.update(make_source(f"{name}-1.0", contents["1.0"]), name, bump_major=True) == "1.0"
    store.set_alias("x/aliased", "prod", "0.1")
    store.set_alias("x/aliased", "staging", "1.0")
    store.set_alias("x/aliased", "old", "0.0")
    store.remove_alias("x/aliased", "old")
    assert retire_version(store, "x/aliased", "0.2")
    assert (modelkit.bucket / PREFIX / "x" / "aliased" / ".aliases" / "prod" / "000000").is_file()
    assert (modelkit.bucket / PREFIX / "x" / "aliased" / ".retired-0.2" / "tombstone").is_file()

    listed, aliased, plain, latest, major0, pinned, prod = modelkit.run(
        ["list"],
        ["versions", "x/aliased"],
        ["versions", "x/plain"],
        ["fetch", "x/aliased"],
        ["fetch", "x/aliased:0"],
        ["fetch", "x/aliased:0.0"],
        ["fetch", "x/aliased:0.1"],
    )
    assert listed == [["x/aliased", ["1.0", "0.1", "0.0"]], ["x/plain", ["1.0", "0.2", "0.1", "0.0"]]]
    assert plain == ["1.0", "0.2", "0.1", "0.0"]
    assert aliased == [v for v in plain if v != "0.2"]  # the plain listing, less the retired one
    assert latest["version"] == "1.0" and Path(latest["path"]).read_bytes() == contents["1.0"]
    # the latest of major 0 skips the retired 0.2, as for a plain asset that never had it
    assert major0["version"] == "0.1" and Path(major0["path"]).read_bytes() == contents["0.1"]
    assert Path(pinned["path"]).read_bytes() == contents["0.0"]
    assert prod["from_cache"] is True and Path(prod["path"]).read_bytes() == contents["0.1"]
    (retired,) = modelkit.try_run(["fetch", "x/aliased:0.2"])
    assert retired["error"] == "ObjectDoesNotExistError"
    assert not (modelkit.assets_dir / "x" / "aliased" / "0.2").exists()
    # what modelkit read changed nothing of ours
    assert store.resolve("x/aliased@prod") == "0.1" and store.resolve("x/aliased@staging") == "1.0"
    assert store.versions("x/aliased") == ["1.0", "0.1", "0.0"]
