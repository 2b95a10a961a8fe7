"""Signing a version already in the store (``modelkit-assets sign``).

For versions published unsigned, or signed by a key being rotated out. The stored objects
are re-hashed against the ``.meta`` first: a signature vouches for bytes, so a version
whose objects no longer match its manifest is never signed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkit_assets.errors import IntegrityError, InvalidSubPartError
from modelkit_assets.maintenance.verify import VerifyReport, verify_stored
from modelkit_assets.spec import AssetSpec

if TYPE_CHECKING:
    from modelkit_assets.signing import SigningKey
    from modelkit_assets.store import AssetStore


@dataclass(frozen=True)
class SignResult:
    """One version signed (or found already signed by the key)."""

    name: str
    version: str
    key: str
    algorithm: str
    written: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "key": self.key,
            "algorithm": self.algorithm,
            "signed": self.written,
        }


def sign_version(store: AssetStore, spec: str, key: SigningKey, *, check_data: bool = True) -> SignResult:
    """Sign the committed version ``spec`` resolves to with ``key``.

    Raises
    ------
    VersionNotFoundError, AssetNotFoundError
        If there is no such version.
    IntegrityError
        If ``check_data`` finds a stored object that does not match the manifest.
    SignatureError
        If the version has no hashes (modelkit-made) or this key's existing signature
        does not match the manifest.
    """
    parsed = AssetSpec.parse(spec)
    if parsed.sub_part:
        raise InvalidSubPartError(f"`sign` signs whole versions; drop the sub-part of {spec}.")
    version = store.resolve(parsed)
    meta = store.meta(parsed.name, version)
    if check_data:
        report = VerifyReport()
        verify_stored(store, parsed.name, version, report)
        data_problems = [p for p in report.problems if p.kind != "bad-signature"]
        if data_problems:
            raise IntegrityError(
                f"{parsed.name}:{version} in {store.display_url} does not match its manifest "
                f"({data_problems[0]}; {len(data_problems)} problem(s)); it was not signed. Republish it."
            )
    written = store.signatures.add(meta, key)
    return SignResult(parsed.name, version, key.fingerprint, key.algorithm, written)
