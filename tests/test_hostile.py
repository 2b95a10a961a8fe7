"""G5 and G3 against the hostile corpus (tests/hostile_corpus.py): every case raises its
own error with a message that says what is wrong, and writes nothing anywhere: not in the
store, not in the assets dir, not next to them. Also: integrity attacks on a published
version (altered meta, extra object), and a folder of 100,000 files.

Validation happens before any backend is involved, so the corpus runs on memory:// and
the local disk; tests/test_bad_input.py runs representatives on every backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from pathlib import Path

import pytest
from helpers_snapshot import put_object, store_objects, tree
from hostile_corpus import CORPUS, NAMES, Case
from hypothesis import given, settings
from hypothesis import strategies as st

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import IntegrityError, InvalidMetaError, InvalidSpecError, InvalidSubPartError
from modelkit_assets.manifest import AssetMeta
from modelkit_assets.spec import check_relative_path

IN_PROCESS = pytest.mark.parametrize("backend", ["memory", "local"])


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` by ``lstat`` type, with file hashes; never opens a FIFO,
    a device or a socket (reading a FIFO would block), never follows a link."""
    found: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for entry in dirnames + filenames:
            full = os.path.join(dirpath, entry)
            mode = os.lstat(full).st_mode
            if stat.S_ISREG(mode):
                found[full] = hashlib.sha256(Path(full).read_bytes()).hexdigest()
            elif stat.S_ISLNK(mode):
                found[full] = "link -> " + os.readlink(full)
            else:
                found[full] = f"mode {stat.S_IFMT(mode):o}"
    return found


def test_the_corpus_has_at_least_50_cases_of_every_kind() -> None:
    kinds = {case.kind for case in CORPUS.values()}
    assert len(CORPUS) >= 50 and kinds == {"name", "spec", "meta", "source"}, len(CORPUS)


def _act(case: Case, store: AssetStore, manager: AssetsManager, tmp_path: Path) -> None:
    if case.kind == "name":
        source = tmp_path / "plain.bin"
        store.new(source, case.payload)
    elif case.kind == "spec":
        manager.fetch(case.payload)
    elif case.kind == "meta":
        manager.fetch("evil:0.0")
    else:
        store.new(tmp_path / "hostile", "src")


@IN_PROCESS
@pytest.mark.parametrize("label", sorted(CORPUS))
def test_hostile_input_is_refused_and_writes_nothing(
    store: AssetStore, manager: AssetsManager, tmp_path: Path, sample_dir: Path, label: str
) -> None:
    case = CORPUS[label]
    (tmp_path / "plain.bin").write_bytes(b"plain")
    store.new(sample_dir, "ok")
    manager.fetch("ok:0.0")  # the cache-hit path is attacked too
    if case.kind == "meta":
        put_object(store, store.layout.meta("evil", "0.0"), case.payload)
    if case.kind == "source":
        hostile = tmp_path / "hostile"
        hostile.mkdir()
        (hostile / "f.txt").write_text("f")
        case.payload(hostile)
    # the whole test folder (store root on local disk, assets dir, sources) and the store
    before_tree, before_store = snapshot(tmp_path), store_objects(store)
    started = time.monotonic()
    with pytest.raises(case.error) as info:
        _act(case, store, manager, tmp_path)
    assert type(info.value) is case.error, info.value
    message = str(info.value)
    assert case.message in message and "\n" not in message.replace(repr("\n")[1:-1], ""), message
    assert time.monotonic() - started < 5  # no pathological slowness on huge inputs
    assert snapshot(tmp_path) == before_tree
    assert store_objects(store) == before_store


@pytest.mark.parametrize("label", sorted(NAMES))
def test_hostile_names_are_refused_by_every_reading_entry_point(
    store: AssetStore, manager: AssetsManager, label: str
) -> None:
    name = NAMES[label].payload
    for action in (
        lambda: store.versions(name),
        lambda: store.meta(name, "0.0"),
        lambda: manager.fetch(f"{name}:0.0"),
    ):
        # fetch parses a spec first: a name with `:` or `[` may fail as a version or a spec
        with pytest.raises(InvalidSpecError):
            action()


# -- integrity attacks on a published version (every backend) -----------------------------
def _cache_state(assets: Path) -> dict[str, str]:
    """The assets dir but its bookkeeping folder (``.cache``: locks, staging), which a
    refused fetch may create; the staging folder is checked on its own."""
    return {k: v for k, v in tree(assets).items() if k.split(os.sep, 1)[0] != ".cache"}


def test_an_altered_meta_hash_is_detected_and_named(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    store.new(sample_dir, "signed")
    key = store.layout.meta("signed", "0.0")
    data = json.loads(store.fs.cat_file(key))
    data["files"]["vocab.txt"]["sha256"] = hashlib.sha256(b"forged").hexdigest()
    put_object(store, key, json.dumps(data).encode())
    before = _cache_state(manager.assets_dir)
    with pytest.raises(IntegrityError, match=r"signed:0\.0\[vocab\.txt\]"):
        manager.fetch("signed:0.0")
    assert _cache_state(manager.assets_dir) == before
    assert not list((manager.assets_dir / ".cache" / "staging").glob("*"))


def test_an_altered_meta_size_is_detected_and_named(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    store.new(sample_dir, "sized")
    key = store.layout.meta("sized", "0.0")
    meta = AssetMeta.from_json(store.fs.cat_file(key), "sized", "0.0")
    data = json.loads(meta.to_json())
    data["files"]["config.json"]["size"] += 1
    put_object(store, key, json.dumps(data).encode())
    with pytest.raises(IntegrityError, match=r"sized:0\.0\[config\.json\]"):
        manager.fetch("sized:0.0")
    assert not (manager.assets_dir / "sized" / "0.0").exists()


def test_an_extra_object_in_a_version_never_reaches_the_cache(
    store: AssetStore, manager: AssetsManager, sample_dir: Path
) -> None:
    """An object planted under a published version is not in its manifest: fetch installs
    exactly the manifest's files (the planted one never enters the cache)."""
    store.new(sample_dir, "planted")
    put_object(store, store.layout.data("planted", "0.0", "evil.sh"), b"#!/bin/sh\nrm -rf /\n")
    put_object(store, store.layout.data("planted", "0.0", "sub/evil.sh"), b"boom")
    path = manager.fetch("planted:0.0")
    files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert files == sorted([*store.meta("planted", "0.0").contents, ".SUCCESS"])


# -- a huge folder --------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["local"])
def test_a_folder_of_100k_files_publishes(store: AssetStore, tmp_path: Path) -> None:
    """Scanning, hashing, checking and uploading 100,000 files stays linear (~25 s here);
    fetching them back (another ~20 s) is left to the benchmarks to keep CI short."""
    root = tmp_path / "many"
    for i in range(100):
        folder = root / f"d{i:03d}"
        folder.mkdir(parents=True)
        for j in range(1000):
            (folder / f"{j}").write_bytes(b"")
    started = time.monotonic()
    assert store.new(root, "many") == "0.0"
    elapsed = time.monotonic() - started
    meta = store.meta("many", "0.0")
    assert len(meta.files) == 100_000 and meta.contents[0] == "d000/0"
    assert dict(store.list()) == {"many": ["0.0"]}
    assert elapsed < 60, elapsed


# -- properties (test_spec.py and test_versioning.py hold the parser's and the order's) ------
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "push_date": st.sampled_from(["2024-05-01T12:00:00+00:00", "yesterday", 3]) | _JSON,
        "is_directory": st.booleans() | _JSON,
        "contents": st.lists(st.text(max_size=12), max_size=5) | _JSON,
        "files": st.dictionaries(
            st.text(max_size=12),
            st.fixed_dictionaries({}, optional={"size": _JSON, "sha256": _JSON}) | _JSON,
            max_size=4,
        )
        | _JSON,
        "size": _JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(_FIELDS.map(lambda d: json.dumps(d).encode()), st.binary(max_size=200)))
def test_any_meta_bytes_load_or_raise_invalid_meta_error(raw: bytes) -> None:
    """No stored .meta can crash a reader with anything but InvalidMetaError, and every
    accepted one lists only safe paths."""
    try:
        meta = AssetMeta.from_json(raw, "n", "0.0")
    except InvalidMetaError:
        return
    for path in meta.contents:
        check_relative_path(path, what="path")
        assert not path.startswith("/") and ".." not in path.split("/")


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40))
def test_an_accepted_sub_part_never_leaves_its_version(text: str) -> None:
    """Whatever a sub-part is, once accepted, joined to a version folder it stays inside."""
    try:
        check_relative_path(text, what="sub-part")
    except InvalidSubPartError:
        return
    base = Path("/assets/name/1.0")
    joined = os.path.normpath(base.joinpath(*text.split("/")))
    assert joined.startswith(str(base) + os.sep), (text, joined)
