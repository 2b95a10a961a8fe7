"""A shared local store and assets dir: every file and folder the tool writes gets the
permissions a plain write gets (``0o666``/``0o777`` less the umask), never a temporary
file's private ``0o600``, so other users of the machine can list *and* fetch."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.maintenance.bundle import bundle
from modelkit_assets.maintenance.copy import copy
from modelkit_assets.maintenance.lockfile import lock, sync
from modelkit_assets.maintenance.repair import repair


@pytest.fixture(params=[0o022, 0o002, 0o027])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    mask = int(request.param)
    previous = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(previous)


#: the assets dirs the test writes (below ``work``)
ASSETS_DIRS = ("assets", "synced", "bundle")


def is_cached_content(relative: Path) -> bool:
    """A cached file's bytes (a version's file, or the content store's blob): read-only, so
    an in-place edit cannot change every version sharing it."""
    if len(relative.parts) < 2 or relative.parts[0] not in ASSETS_DIRS:
        return False
    inner = relative.parts[1:]
    if inner[0] == ".cache":
        return len(inner) > 1 and inner[1] == ".blobs"
    return not relative.name.endswith(".SUCCESS")


def wrong_modes(root: Path, mask: int) -> list[str]:
    """Every file or folder under ``root`` whose mode is not what a plain write gets (less
    the write bits for cached contents)."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~mask
        if path.is_file() and is_cached_content(path.relative_to(root)):
            expected &= ~0o222
        if mode != expected:
            wrong.append(f"{path.relative_to(root)}: {oct(mode)} (expected {oct(expected)})")
    return wrong


@pytest.fixture
def sample_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(os.urandom(4096))
    return path


def test_everything_written_gets_the_umask(
    umask: int, tmp_path: Path, sample_dir: Path, sample_file: Path
) -> None:
    """new/update/fetch/copy/repair/lock/sync/bundle on local stores and assets dirs."""
    work = tmp_path / "work"
    work.mkdir()  # created under the test's umask, like everything below
    store = AssetStore(f"file://{work / 'store'}")
    store.new(sample_dir, "nlp/tok")
    store.update(sample_dir, "nlp/tok")
    store.new(sample_file, "clf")
    manager = AssetsManager(store, work / "assets")
    manager.fetch("nlp/tok:0.1")
    manager.fetch("clf:0.0")
    other = AssetStore(f"file://{work / 'copy'}")
    copy(store, other, "nlp/tok", all_versions=True)
    os.unlink(store.layout.versions_index("nlp/tok"))
    repair(store)
    locked = lock(store, ["nlp/tok:0.0", "clf"])
    locked.write(work / "assets.lock")
    sync(locked, AssetsManager(store, work / "synced"))
    bundle(store, ["nlp/tok:0.1"], work / "bundle")

    assert (work / "store" / "nlp" / "tok.versions").is_file()  # repair rebuilt it
    written = sorted(p.name for p in work.iterdir())
    assert written == ["assets", "assets.lock", "bundle", "copy", "store", "synced"]
    assert wrong_modes(work, umask) == []


def _nobody() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user `nobody` on this machine")


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root to switch users")
def test_another_user_can_list_and_fetch_a_store_published_by_root(
    sample_dir: Path, sample_file: Path, tmp_path: Path
) -> None:
    """A store folder shared with everyone (0755), published by root under umask 022:
    ``nobody`` lists and fetches it into an assets dir of its own."""
    nobody = _nobody()
    shared = Path(tempfile.mkdtemp(prefix="modelkit-assets-shared-"))  # outside root's 0700 tmp
    try:
        shared.chmod(0o755)
        previous = os.umask(0o022)
        try:
            store = AssetStore(f"file://{shared / 'store'}")
            store.new(sample_dir, "team/tok")
            store.new(sample_file, "team/clf")
            # load every module a fetch needs while root can still read the interpreter
            AssetsManager(store, tmp_path / "warm").fetch("team/tok:0.0")
        finally:
            os.umask(previous)
        assets = shared / "nobody-assets"
        assets.mkdir()
        os.chown(assets, nobody.pw_uid, nobody.pw_gid)
        vocab, model = (sample_dir / "vocab.txt").read_bytes(), sample_file.read_bytes()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: become nobody, then list and fetch
            code = 1
            try:
                os.close(read)
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                listed = dict(store.list())
                manager = AssetsManager(store, assets)
                tok = manager.fetch("team/tok:0.0")
                clf = manager.fetch("team/clf")
                ok = (
                    listed == {"team/clf": ["0.0"], "team/tok": ["0.0"]}
                    and (tok / "vocab.txt").read_bytes() == vocab
                    and clf.read_bytes() == model
                )
                os.write(write, b"ok" if ok else f"wrong content: {listed}".encode())
                code = 0
            except BaseException as err:
                os.write(write, f"{type(err).__name__}: {err}".encode()[:2000])
            finally:
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            said = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0 and said == "ok", said
    finally:
        shutil.rmtree(shared, ignore_errors=True)
