"""Local disk failures are said as such, never blamed on the store, never retried: a full
assets dir or TMPDIR, a read-only one, an assets dir that is a file or under a file.

The full and read-only disks are real: a 1 MiB (or read-only) tmpfs mounted in a private
mount namespace (``unshare -m``, gone with the child process), as in
test_readonly_and_locks.py. The child runs the CLI in-process (so a ``memory://`` store
published there is the one it fetches from) and reports its exit code, stderr, the retries
logged and every file left in the mounted folder.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import fsspec
import pytest
import servers
from typer.testing import CliRunner

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.cli.app import app
from modelkit_assets.errors import CacheNotWritableError, LocalDiskError, StoreError
from modelkit_assets.retry import is_transient

BIG = 2 * 2**20  # twice the tmpfs
#: the lock file of one content of the content store (empty: a flock target)
BLOB_LOCK = re.compile(r"\.cache/\.blob-locks/[0-9a-f]{2}/[0-9a-f]{64}\.lock")

CHILD = textwrap.dedent(
    """
    import json, logging, os, sys
    from typer.testing import CliRunner
    from modelkit_assets import AssetStore
    from modelkit_assets.cli.app import app

    spec = json.loads(sys.argv[1])
    retries = []

    class Count(logging.Handler):
        def emit(self, record):
            retries.append(record.getMessage())

    logger = logging.getLogger("modelkit_assets.retry")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(Count())
    for path, name in spec.get("publish", []):
        AssetStore(spec["env"]["MODELKIT_ASSETS_STORE"], spec.get("options") or {}).new(path, name)
    if spec.get("source"):
        fs = __import__("fsspec").filesystem("memory")
        fs.pipe(spec["source"], os.urandom(spec["size"]))
    result = CliRunner().invoke(app, spec["argv"], env=spec["env"])
    left = sorted(
        os.path.relpath(os.path.join(root, f), spec["watch"])
        for root, _, files in os.walk(spec["watch"])
        for f in files
    )
    sizes = {path: os.path.getsize(os.path.join(spec["watch"], path)) for path in left}
    mro = []
    if spec.get("api"):  # the same call through the library: which error class
        os.environ.update(spec["env"])
        from modelkit_assets import AssetsManager
        from modelkit_assets.settings import get_settings
        get_settings.cache_clear()
        try:
            AssetsManager().fetch(spec["api"])
        except Exception as err:
            mro = [cls.__name__ for cls in type(err).__mro__]
    report = {
        "code": result.exit_code, "stderr": result.stderr, "retries": retries, "left": left, "sizes": sizes,
        "mro": mro,
    }
    print(json.dumps(report))
    """
)


def _can_mount() -> bool:
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True
    )
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs root and unshare -m to mount a tmpfs")


def _run_on_tmpfs(folder: Path, mount_options: str, spec: dict[str, object]) -> dict[str, object]:
    folder.mkdir(parents=True, exist_ok=True)
    mount = f"mount -t tmpfs -o {mount_options} tmpfs {folder}"
    argv = ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", sys.executable, "-c", CHILD]
    done = subprocess.run([*argv, json.dumps(spec)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _error_line(report: dict[str, object]) -> str:
    assert report["code"] == 1, report
    lines = [line for line in str(report["stderr"]).splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and str(report["stderr"]).strip().endswith(lines[0]), report
    assert report["retries"] == [], report  # one attempt: a disk does not empty itself
    return lines[0]


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "big.bin"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(BIG))
    return path


def _child_env(url: str, options: dict[str, object], assets: Path) -> dict[str, str]:
    return {
        "MODELKIT_ASSETS_STORE": url,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(options),
        "MODELKIT_ASSETS_DIR": str(assets),
        "MODELKIT_ASSETS_RETRIES": "5",
    }


@needs_mount
@pytest.mark.parametrize(
    ("mount_options", "reason", "cls"),
    [("size=1m", "no space left on the device", LocalDiskError), ("ro", "read-only", CacheNotWritableError)],
    ids=["full", "read-only"],
)
def test_fetch_into_a_full_or_read_only_assets_dir(
    store_url: tuple[str, dict[str, object]],
    backend: str,
    big_file: Path,
    tmp_path: Path,
    mount_options: str,
    reason: str,
    cls: type[Exception],
) -> None:
    url, options = store_url
    publish = []
    if backend == "memory":
        publish = [(str(big_file), "m/big")]  # the child's own memory store
    else:
        AssetStore(url, options).new(big_file, "m/big")
    assets = tmp_path / "assets"
    spec = {
        "env": _child_env(url, options, assets),
        "options": options,
        "publish": publish,
        "argv": ["fetch", "m/big:0.0"],
        "api": "m/big:0.0",
        "watch": str(assets),
    }
    report = _run_on_tmpfs(assets, mount_options, spec)
    line = _error_line(report)
    assert f"m/big:0.0 is not in the assets dir {assets}" in line, line
    assert reason in line and "MODELKIT_ASSETS_DIR" in line, line
    assert "store" not in line.lower().replace("modelkit_assets_store", ""), line  # not blamed on it
    # nothing half-written: at most empty lock files, the asset's and its contents'
    left = set(report["left"]) - {".cache/m/big.lock"}  # type: ignore[arg-type]
    assert all(BLOB_LOCK.fullmatch(path) for path in left), report["left"]
    assert not any(report["sizes"].values()), report["sizes"]  # type: ignore[attr-defined]
    assert cls.__name__ in report["mro"] and "StoreError" not in report["mro"], report["mro"]  # type: ignore[operator]


@needs_mount
@pytest.mark.parametrize(
    "backend", ["memory", *(pytest.param(b, marks=pytest.mark.cloud) for b in ("s3", "gcs", "azure"))]
)
def test_remote_source_copy_with_a_full_tmpdir(
    store_url: tuple[str, dict[str, object]], backend: str, big_file: Path, tmp_path: Path
) -> None:
    """``new s3://.../big.bin`` copies the source into TMPDIR first: a full TMPDIR says so."""
    url, options = store_url
    source = f"{url}/src/big.bin"
    if backend != "memory":
        fsspec.filesystem(servers.PROTOCOLS[backend], **options).put_file(str(big_file), source)
    store = f"{url}/store"  # same store kind: the source is read with the store's options
    tmp = tmp_path / "tmp"
    env = {**_child_env(store, options, tmp_path / "assets"), "TMPDIR": str(tmp)}
    spec = {
        "env": env,
        "argv": ["new", source, "m/big", "--yes"],
        "watch": str(tmp),
        # a memory source lives in the child: it is written there
        "source": source.split("://", 1)[1] if backend == "memory" else "",
        "size": BIG,
    }
    report = _run_on_tmpfs(tmp, "size=1m", spec)
    line = _error_line(report)
    assert "no space left on the device" in line and f"TMPDIR points at {tmp}" in line, line
    assert source in line, line
    assert report["left"] == [], report  # the partial copy is gone
    if backend != "memory":
        assert list(AssetStore(store, options).list()) == []


@needs_mount
def test_publish_into_a_full_local_store(big_file: Path, tmp_path: Path) -> None:
    """A file:// store on a full disk: the store's own disk, said as such, not retried."""
    folder = tmp_path / "store"
    spec = {
        "env": _child_env(folder.as_uri(), {}, tmp_path / "assets"),
        "argv": ["new", str(big_file), "m/big", "--yes"],
        "watch": str(folder),
    }
    report = _run_on_tmpfs(folder, "size=1m", spec)
    line = _error_line(report)
    assert "no space left on the device" in line and "MODELKIT_ASSETS_STORE" in line, line
    assert folder.as_uri() in line and "retry" not in line.lower(), line
    assert not any(name.endswith(".meta") for name in report["left"]), report  # type: ignore[attr-defined]


# -- an assets dir that is a file, or under a file (no mount needed) ------------------------------
@pytest.mark.parametrize("where", ["file", "under-a-file", "file-inside"])
def test_an_assets_dir_that_is_not_a_folder(
    store: AssetStore, sample_file: Path, tmp_path: Path, where: str
) -> None:
    store.new(sample_file, "m/clf")
    if where == "file-inside":  # the asset's folder in the assets dir is a file
        assets = tmp_path / "assets"
        blocker = assets / "m"
        assets.mkdir()
    else:
        blocker = tmp_path / "not-a-folder"
        assets = blocker if where == "file" else blocker / "assets"
    blocker.write_bytes(b"x")
    with pytest.raises(LocalDiskError) as info:
        AssetsManager(store, assets).fetch("m/clf:0.0")
    message = str(info.value)
    assert f"{blocker} is a file, not a folder" in message and "MODELKIT_ASSETS_DIR" in message, message
    assert not isinstance(info.value, StoreError)
    assert blocker.read_bytes() == b"x"
    env = {
        "MODELKIT_ASSETS_STORE": store.url,
        "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(store.storage_options),
        "MODELKIT_ASSETS_DIR": str(assets),
    }
    result = CliRunner().invoke(app, ["fetch", "m/clf:0.0"], env=env)
    assert result.exit_code == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(lines) == 1 and result.stderr.strip().endswith(lines[0]), result.stderr
    assert "is a file, not a folder" in lines[0] and "Unexpected" not in lines[0], lines


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG])
def test_a_disk_error_is_never_transient(code: int) -> None:
    err = OSError(code, os.strerror(code))
    assert not is_transient(err) and not is_transient(err, transfer=True)
    assert is_transient(OSError(errno.ECONNRESET, "reset"))  # a network one still is


def test_error_classes() -> None:
    assert issubclass(LocalDiskError, OSError) and not issubclass(LocalDiskError, StoreError)
    assert issubclass(CacheNotWritableError, LocalDiskError)
    assert issubclass(CacheNotWritableError, PermissionError)
