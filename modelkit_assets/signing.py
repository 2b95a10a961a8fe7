"""Publisher signatures: keys, the signed statement, signing and checking (``[sign]`` extra).

Why: a ``.meta`` proves that a fetch got the bytes it lists, but anyone who can write to
the bucket can write a matching ``.meta``. A signature by a key the consumer trusts proves
that a publisher holding that key vouched for exactly these files.

What is signed is a canonical JSON statement of the version (``statement``): the name,
the version, whether it is a folder, and every file's path, size and sha256 (and its block
hashes with their block size when the manifest has them). Informational fields (date,
author, description) are not covered. The signature object (``Signature``) names its key
by fingerprint (sha256 of the DER public key) and carries the public key, so anyone can
check that it is well formed; trust comes only from the consumer's own key files, never
from the key inside the object.

Keys are PEM files: Ed25519 or EC P-256 private keys to sign (optionally encrypted), the
matching public keys to trust. ``cryptography`` is imported only to sign or check; the
trusted keys' fingerprints are read without it, so a verified cache hit stays cheap.
Private key material is never kept in a repr, a message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkit_assets.errors import ConfigurationError, SignatureError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey, EllipticCurvePublicKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    from modelkit_assets.manifest import AssetMeta

    PrivateKey = Ed25519PrivateKey | EllipticCurvePrivateKey
    PublicKey = Ed25519PublicKey | EllipticCurvePublicKey

STATEMENT_FORMAT = "modelkit-assets-signed-version/1"
SIGNATURE_FORMAT = "modelkit-assets-signature/1"
ED25519 = "ed25519"
ECDSA_P256 = "ecdsa-p256-sha256"
ALGORITHMS = (ED25519, ECDSA_P256)
INSTALL_HINT = "install the signing extra: pip install 'modelkit-assets[sign]'"
#: signature objects larger than this are not read (a real one is under 1 KiB)
MAX_SIGNATURE_BYTES = 64 * 1024

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.DOTALL)


def _crypto() -> Any:
    try:
        import cryptography.hazmat.primitives.serialization as serialization
    except ImportError:
        raise ConfigurationError(
            f"Signing and checking signatures need cryptography; {INSTALL_HINT}."
        ) from None
    return serialization


def fingerprint_of(der: bytes) -> str:
    """``sha256:<hex>`` of a DER SubjectPublicKeyInfo: how keys are named everywhere."""
    return "sha256:" + hashlib.sha256(der).hexdigest()


def short(fingerprint: str) -> str:
    """A fingerprint shortened for tables and messages (``sha256:0123456789ab``)."""
    return fingerprint[: len("sha256:") + 12]


def statement(meta: AssetMeta) -> bytes:
    """The canonical bytes a signature covers (see the module docstring).

    Raises
    ------
    SignatureError
        If the manifest has no sha256 for some file (a modelkit-made version): there is
        nothing to vouch for.
    """
    if not meta.verifiable:
        raise SignatureError(
            f"{meta.name}:{meta.version} has no sha256 for its files (published by modelkit?): it "
            "cannot be signed; publish it again with modelkit-assets."
        )
    has_blocks = any(e.blocks is not None for e in meta.files.values())
    body = {
        "format": STATEMENT_FORMAT,
        "name": meta.name,
        "version": meta.version,
        "is_directory": meta.is_directory,
        "block_size": meta.block_size if has_blocks else None,
        "files": {
            path: {
                "size": entry.size,
                "sha256": entry.sha256,
                "blocks": list(entry.blocks) if entry.blocks is not None else None,
            }
            for path, entry in sorted(meta.files.items())
        },
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


# -- keys -------------------------------------------------------------------------
def _pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """Each PEM block of ``data`` as (label, DER); undecodable bodies are skipped."""
    blocks = []
    for match in _PEM.finditer(data):
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except (binascii.Error, ValueError):
            continue
        blocks.append((match.group(1).decode("ascii"), der))
    return blocks


#: algorithm identifiers in a DER SubjectPublicKeyInfo: Ed25519; EC public key + P-256
_ED25519_OID = bytes.fromhex("06032b6570")
_EC_OID, _P256_OID = bytes.fromhex("06072a8648ce3d0201"), bytes.fromhex("06082a8648ce3d030107")


def _supported_der(der: bytes) -> bool:
    """Whether a public key is Ed25519 or EC P-256, read from its algorithm identifier
    (no ``cryptography`` needed: trusted keys are read on every verified cache hit)."""
    head = der[:32]
    return _ED25519_OID in head or (_EC_OID in head and _P256_OID in head)


def _algorithm(key: Any) -> str | None:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return ED25519
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) and isinstance(
        key.curve, ec.SECP256R1
    ):
        return ECDSA_P256
    return None


def _public_der(key: PublicKey) -> bytes:
    serialization = _crypto()
    return bytes(
        key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


@dataclass(frozen=True)
class SigningKey:
    """A loaded private key (Ed25519 or EC P-256). Its ``repr`` names only the
    fingerprint and where it came from: the key itself never leaves this object."""

    algorithm: str
    fingerprint: str
    public_pem: str
    origin: str
    _key: PrivateKey = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return f"SigningKey({self.algorithm}, {self.fingerprint}, from {self.origin})"

    def sign(self, data: bytes) -> bytes:
        if self.algorithm == ED25519:
            return bytes(self._key.sign(data))  # type: ignore[call-arg]
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return bytes(self._key.sign(data, ec.ECDSA(hashes.SHA256())))  # type: ignore[call-arg]


def load_signing_key(path: str | os.PathLike[str], passphrase: str | None = None) -> SigningKey:
    """Read a PEM private key (PKCS#8 or the traditional formats, optionally encrypted).

    Raises
    ------
    ConfigurationError
        If the file is missing, not a private key, encrypted without (or with a wrong)
        passphrase, or of another type than Ed25519 / EC P-256. The message names the
        file, never its content.
    """
    text = os.fspath(path)
    if "-----BEGIN" in text or "\n" in text or len(text) > 4096:
        raise ConfigurationError(
            "The signing key was given as its content, not as the path of a PEM file; write it to a "
            "file (readable by you only) and give that path."
        )
    where = f"The signing key {path}"
    try:
        data = Path(path).expanduser().read_bytes()
    except OSError as err:
        raise ConfigurationError(
            f"{where} cannot be read ({err.strerror or type(err).__name__}); give the path of a PEM "
            "private key (--sign-key or MODELKIT_ASSETS_SIGNING_KEY)."
        ) from None
    labels = [label for label, _ in _pem_blocks(data)]
    if labels and all(label == "PUBLIC KEY" for label in labels):
        raise ConfigurationError(
            f"{where} is a public key; signing needs the private key (the public one goes in the "
            "consumers' MODELKIT_ASSETS_TRUSTED_KEYS)."
        )
    serialization = _crypto()
    try:
        password = passphrase.encode() if passphrase else None
    except UnicodeEncodeError:
        raise ConfigurationError(
            "MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE is not valid text (UTF-8); set it again."
        ) from None
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except TypeError:
        problem = (
            "is encrypted: set MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE"
            if password is None
            else "is not encrypted, but a passphrase was given: unset MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE"
        )
        raise ConfigurationError(f"{where} {problem}.") from None
    except (ValueError, Exception) as err:  # cryptography raises ValueError or its own errors
        if password is not None and "password" in str(err).lower():
            raise ConfigurationError(
                f"{where} cannot be decrypted: check MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE."
            ) from None
        raise ConfigurationError(
            f"{where} is not a PEM private key; create one with `modelkit-assets keygen KEY.pem` "
            "(Ed25519) or `openssl genpkey -algorithm ed25519 -out KEY.pem`."
        ) from None
    algorithm = _algorithm(key)
    if algorithm is None:
        raise ConfigurationError(
            f"{where} is a {type(key).__name__.lstrip('_')}; signing takes Ed25519 or EC P-256 keys."
        )
    der = _public_der(key.public_key())
    pem = base64.encodebytes(der).decode("ascii").replace("\n", "")
    public_pem = (
        "-----BEGIN PUBLIC KEY-----\n"
        + "\n".join(pem[i : i + 64] for i in range(0, len(pem), 64))
        + "\n-----END PUBLIC KEY-----\n"
    )
    return SigningKey(algorithm, fingerprint_of(der), public_pem, str(path), key)


def generate_key(path: str | os.PathLike[str], algorithm: str = ED25519) -> tuple[Path, Path]:
    """Write a new private key (mode 0600, created exclusively) and its public key beside
    it (``.pub.pem``); return both paths.

    Raises
    ------
    FileExistsError
        If either file exists: a key is never overwritten.
    """
    serialization = _crypto()
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    private_path = Path(path).expanduser()
    public_path = private_path.with_name(private_path.name.removesuffix(".pem") + ".pub.pem")
    key: PrivateKey = (
        ed25519.Ed25519PrivateKey.generate()
        if algorithm == ED25519
        else ec.generate_private_key(ec.SECP256R1())
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for target in (private_path, public_path):
        if target.exists():
            raise FileExistsError(f"{target} exists; a key is never overwritten: choose another path.")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    with open(public_path, "xb") as f:
        f.write(public)
    return private_path, public_path


@dataclass(frozen=True)
class TrustedKey:
    """A public key a consumer trusts: its fingerprint, and where it was read."""

    fingerprint: str
    der: bytes = field(repr=False)
    origin: str = ""

    def public_key(self) -> PublicKey:
        serialization = _crypto()
        try:
            key = serialization.load_der_public_key(self.der)
        except (ValueError, Exception):
            raise ConfigurationError(f"The trusted key in {self.origin} is not a valid public key.") from None
        if _algorithm(key) is None:
            raise ConfigurationError(
                f"The trusted key in {self.origin} is a {type(key).__name__.lstrip('_')}; trusted keys "
                "are Ed25519 or EC P-256 public keys."
            )
        return key  # type: ignore[no-any-return]


def load_trusted_keys(paths: Iterable[str | os.PathLike[str] | TrustedKey]) -> tuple[TrustedKey, ...]:
    """Read the public keys of PEM files (each may hold several), without ``cryptography``.

    Raises
    ------
    ConfigurationError
        If a file is missing, holds a private key, or holds no public key.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]  # one file, not its characters
    keys: dict[str, TrustedKey] = {}
    for raw in paths:
        if isinstance(raw, TrustedKey):
            keys.setdefault(raw.fingerprint, raw)
            continue
        path = Path(raw).expanduser()
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ConfigurationError(
                f"The trusted key file {raw} cannot be read ({err.strerror or type(err).__name__}); fix "
                "MODELKIT_ASSETS_TRUSTED_KEYS (PEM public keys separated by the path separator)."
            ) from None
        blocks = _pem_blocks(data)
        if any("PRIVATE" in label for label, _ in blocks):
            raise ConfigurationError(
                f"The trusted key file {raw} holds a private key; trust the public key instead "
                "(`openssl pkey -in KEY.pem -pubout`), and keep the private key to the publisher."
            )
        public = [der for label, der in blocks if label == "PUBLIC KEY"]
        if not public:
            raise ConfigurationError(
                f"The trusted key file {raw} holds no PEM public key (-----BEGIN PUBLIC KEY-----)."
            )
        for der in public:
            if not _supported_der(der):
                raise ConfigurationError(
                    f"The trusted key file {raw} holds a public key of another type than Ed25519 or EC "
                    "P-256 (the two that sign versions)."
                )
            fp = fingerprint_of(der)
            keys.setdefault(fp, TrustedKey(fp, der, str(raw)))
    return tuple(keys.values())


# -- signature objects ----------------------------------------------------------------
@dataclass(frozen=True)
class Signature:
    """One signature object: who signed (fingerprint, public key) and the signature of
    the version's ``statement``."""

    algorithm: str
    fingerprint: str
    public_pem: str
    signature: bytes = field(repr=False)
    signed_at: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "format": SIGNATURE_FORMAT,
                "algorithm": self.algorithm,
                "key": self.fingerprint,
                "public_key": self.public_pem,
                "signature": base64.b64encode(self.signature).decode("ascii"),
                "signed_at": self.signed_at,
            },
            indent=1,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> Signature:
        """Parse a signature object.

        Raises
        ------
        SignatureError
            If it is not one (malformed, unknown format or algorithm).
        """
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != SIGNATURE_FORMAT:
                raise ValueError("format")
            algorithm, key, pem, sig = (data[k] for k in ("algorithm", "key", "public_key", "signature"))
            if algorithm not in ALGORITHMS or not all(isinstance(v, str) for v in (key, pem, sig)):
                raise ValueError("fields")
            if not re.fullmatch(r"sha256:[0-9a-f]{64}", key):
                raise ValueError("key")
            signed_at = data.get("signed_at")
            return cls(
                algorithm,
                key,
                pem,
                base64.b64decode(sig, validate=True),
                signed_at if isinstance(signed_at, str) else None,
            )
        except (ValueError, KeyError, TypeError, binascii.Error, RecursionError):
            raise SignatureError(
                f"The signature object {where} is malformed; remove it or sign again."
            ) from None

    def verifies_with(self, key: PublicKey, data: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            if self.algorithm == ED25519:
                key.verify(self.signature, data)  # type: ignore[call-arg]
            else:
                from cryptography.hazmat.primitives import hashes
                from cryptography.hazmat.primitives.asymmetric import ec

                key.verify(self.signature, data, ec.ECDSA(hashes.SHA256()))  # type: ignore[call-arg]
        except (InvalidSignature, TypeError, ValueError):
            return False
        return True

    def self_consistent(self, data: bytes) -> bool:
        """Whether it verifies with the public key it carries, whose fingerprint it names:
        well formed, and made over ``data``. Says nothing about trust."""
        _crypto()  # without cryptography nothing can be told: the caller says "not checked"
        blocks = [der for label, der in _pem_blocks(self.public_pem.encode()) if label == "PUBLIC KEY"]
        if len(blocks) != 1 or fingerprint_of(blocks[0]) != self.fingerprint:
            return False
        try:
            key = TrustedKey(self.fingerprint, blocks[0], "the signature").public_key()
        except ConfigurationError:
            return False
        return _algorithm(key) == self.algorithm and self.verifies_with(key, data)


def sign(meta: AssetMeta, key: SigningKey) -> Signature:
    """Sign ``meta``'s statement with ``key``."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    return Signature(key.algorithm, key.fingerprint, key.public_pem, key.sign(statement(meta)), now)


def check(
    meta: AssetMeta, signatures: Sequence[Signature], trusted: Sequence[TrustedKey], label: str
) -> tuple[TrustedKey, Signature]:
    """The trusted key whose signature of ``meta`` verifies, and that signature.

    Raises
    ------
    SignatureError
        One line saying why the version is refused: unsigned, signed only by untrusted
        keys, or a signature by a trusted key that does not match the manifest (the
        ``.meta`` or a file was changed after signing).
    """
    data = statement(meta)
    by_key = {t.fingerprint: t for t in trusted}
    mismatched = []
    for sig in signatures:
        key = by_key.get(sig.fingerprint)
        if key is None:
            continue
        public = key.public_key()
        if _algorithm(public) == sig.algorithm and sig.verifies_with(public, data):
            return key, sig
        mismatched.append(sig.fingerprint)
    if mismatched:
        raise SignatureError(
            f"{label}: the signature by trusted key {short(mismatched[0])} does not match the version's "
            "manifest (its .meta or files were changed after signing); nothing was installed. Do not use "
            "this version; ask its publisher."
        )
    if signatures:
        signers = ", ".join(short(s.fingerprint) for s in signatures)
        raise SignatureError(
            f"{label} is signed only by key(s) not in MODELKIT_ASSETS_TRUSTED_KEYS ({signers}); nothing "
            "was installed. Add the publisher's public key to the trusted keys if you trust it."
        )
    raise SignatureError(
        f"{label} is not signed, and signatures are required; nothing was installed. Ask its publisher "
        "to sign it (`modelkit-assets sign SPEC --sign-key KEY.pem`)."
    )
