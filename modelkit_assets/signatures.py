"""Signature objects in the store: ``{name}/.signatures/{version}/{key hex}.sig``.

Hidden from modelkit 0.1.3 (it only reads ``.versions``, metas and data keys) and from
our own listings (dot-folders are never descended into), like the claims. One object
per signing key, created exclusively: a version can carry signatures by several keys
(key rotation), and none is ever overwritten, except by the writer that holds the claim
of a version not yet committed (a dead writer's attempt it resumes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from modelkit_assets.backends import basename
from modelkit_assets.errors import (
    AssetsError,
    OfflineError,
    SignatureError,
    StorePermissionError,
    StoreUnreachableError,
)
from modelkit_assets.layout import SIGNATURE_SUFFIX
from modelkit_assets.signing import (
    MAX_SIGNATURE_BYTES,
    Signature,
    SigningKey,
    TrustedKey,
    check,
    sign,
    statement,
)

if TYPE_CHECKING:
    from modelkit_assets.manifest import AssetMeta
    from modelkit_assets.remote import Remote

logger = logging.getLogger(__name__)


class Signatures:
    """The signature objects of one store."""

    def __init__(self, remote: Remote) -> None:
        self.remote = remote

    def read(self, name: str, version: str, fingerprint: str) -> Signature | None:
        """``fingerprint``'s signature of ``name:version`` (``None`` when there is none)."""
        key = self.remote.layout.signature(name, version, fingerprint)
        try:
            raw = self.remote.read(
                key, f"read the signature of {name}:{version}", limit=MAX_SIGNATURE_BYTES + 1
            )
        except FileNotFoundError:
            return None
        if len(raw) > MAX_SIGNATURE_BYTES:
            raise SignatureError(f"The signature object of {name}:{version} is oversized; remove it.")
        return Signature.from_json(raw, f"of {name}:{version} by {fingerprint}")

    def all(self, name: str, version: str) -> list[Signature]:
        """Every signature of ``name:version`` (one listing, then one read each); malformed
        objects are skipped with a warning."""
        layout = self.remote.layout
        found = []
        for entry in self.remote.list(layout.signatures_dir(name, version), f"list the signatures of {name}"):
            base = basename(entry["name"])
            if entry["type"] != "file" or not base.endswith(SIGNATURE_SUFFIX):
                continue
            sig = self._read_or_skip(name, version, "sha256:" + base.removesuffix(SIGNATURE_SUFFIX))
            if sig is not None:
                found.append(sig)
        return found

    def signed_versions(self, name: str) -> dict[str, int]:
        """How many signature objects each version of ``name`` has (one recursive listing;
        versions without any are absent)."""
        layout = self.remote.layout
        top = layout.signatures_dir(name)

        def find() -> list[str]:
            self.remote.fs.invalidate_cache(top)
            try:
                return list(self.remote.fs.find(top))
            except FileNotFoundError:
                return []

        counts: dict[str, int] = {}
        root = layout.relative(top)
        for key in self.remote.request(f"list the signatures of {name}", find):
            parts = layout.relative(key)[len(root) + 1 :].split("/")
            if len(parts) == 2 and parts[1].endswith(SIGNATURE_SUFFIX):
                counts[parts[0]] = counts.get(parts[0], 0) + 1
        return counts

    def verify(self, meta: AssetMeta, trusted: Sequence[TrustedKey]) -> tuple[TrustedKey, Signature]:
        """The trusted key whose signature of ``meta`` verifies, and that signature: one
        read per trusted key, and a listing only to explain a refusal.

        Raises
        ------
        SignatureError
            If none does (see ``signing.check``).
        """
        name, version = meta.name, meta.version
        label = f"{name}:{version}"
        mine = [
            s for s in (self._read_or_skip(name, version, t.fingerprint) for t in trusted) if s is not None
        ]
        return check(meta, mine or self.all(name, version), trusted, label)

    def _read_or_skip(self, name: str, version: str, fingerprint: str) -> Signature | None:
        """``read``, with a malformed object skipped (and said): it must not hide another
        trusted key's valid signature."""
        try:
            return self.read(name, version, fingerprint)
        except (StoreUnreachableError, StorePermissionError, OfflineError):
            raise  # the store is not answering: no decision can be made
        except (AssetsError, OSError, UnicodeError) as err:  # malformed, oversized, a folder...
            logger.warning("Skipped the signature object of %s:%s by %s: %s", name, version, fingerprint, err)
            return None

    def add(self, meta: AssetMeta, key: SigningKey, *, claimed: bool = False) -> bool:
        """Write ``key``'s signature of ``meta``; ``False`` if that key had already signed
        exactly this manifest (nothing written).

        ``claimed``: the caller holds the claim of a version it has not committed, so an
        object left there by a dead writer's attempt is its to replace.

        Raises
        ------
        SignatureError
            If a signature by this key exists that does not match ``meta``.
        """
        layout = self.remote.layout
        target = layout.signature(meta.name, meta.version, key.fingerprint)
        data = sign(meta, key).to_json()
        action = f"sign {meta.name}:{meta.version}"
        try:
            self.remote.create_exclusive(target, data, action)
            return True
        except FileExistsError:
            if claimed:
                self.remote.replace(target, data, action)
                return True
        existing = self._read_or_skip(meta.name, meta.version, key.fingerprint)
        if existing is None or existing.fingerprint != key.fingerprint:
            # not a signature by this key (malformed, or another key's planted at its name):
            # nothing of this key's is lost by putting its real signature there
            self.remote.replace(target, data, action)
            return True
        if existing.self_consistent(statement(meta)):
            return False
        raise SignatureError(
            f"{meta.name}:{meta.version} already has a signature by {key.fingerprint} that does not match "
            f"its manifest; nothing was overwritten. Check the version with `modelkit-assets verify "
            f"--remote {meta.name}:{meta.version}`."
        )

    def remove(self, name: str, version: str, fingerprint: str | None = None) -> None:
        """Remove ``fingerprint``'s signature of a version (all of them when ``None``)."""
        layout = self.remote.layout
        key = (
            layout.signature(name, version, fingerprint)
            if fingerprint
            else layout.signatures_dir(name, version)
        )
        self.remote.remove(key, f"remove the signature of {name}:{version}")
