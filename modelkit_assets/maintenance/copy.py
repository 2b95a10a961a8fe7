"""Copying versions between stores (dev to prod), unchanged and verified end to end.

For each version::

    1. read the source's ``.meta`` (raw bytes: every field is kept, push_date,
       pushed_by, publish_id, description, modelkit's own)
    2. already committed at the destination?  same manifest digest -> nothing to do;
                                              different -> VersionExistsError (G1)
    3. claim the version at the destination (the publishers' claim protocol, G3)
    4. move the data: server-side (CopyObject, rewrite, cp) when both stores live on
       the same filesystem object; otherwise download into a temporary folder (verified
       against the manifest) and upload
    5. re-read every destination object and hash it against the manifest
    6. carry the source's signatures that match the manifest (each created exclusively),
       then commit: exclusive create of the destination ``.meta`` with the source's bytes
    7. refresh the destination's ``{name}.versions``

A crash before 6 leaves an uncommitted, claimed version that nothing lists and that the
next copy (or ``repair``) takes over once the claim is stale.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkit_assets.errors import (
    ConfigurationError,
    IntegrityError,
    InvalidSubPartError,
    InvalidVersionError,
    PublishConflictError,
    VersionExistsError,
)
from modelkit_assets.integrity import measure_object
from modelkit_assets.localdisk import local_writes
from modelkit_assets.maintenance.verify import VerifyReport, check_files
from modelkit_assets.manifest import AssetMeta, FileEntry
from modelkit_assets.signing import Signature, statement
from modelkit_assets.spec import AssetSpec
from modelkit_assets.transfer import copy_objects, upload

if TYPE_CHECKING:
    from fsspec.callbacks import Callback

    from modelkit_assets.store import AssetStore


@dataclass(frozen=True)
class CopyResult:
    """What happened to one version."""

    name: str
    version: str
    status: str  # "copied" or "present" (already at the destination, same manifest)
    server_side: bool
    files: int
    size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "server_side": self.server_side,
            "files": self.files,
            "size": self.size,
        }


def _read_meta(store: AssetStore, name: str, version: str) -> tuple[bytes, AssetMeta]:
    store.meta(name, version)  # raises VersionNotFoundError with the usual message
    raw = store.remote.read(store.layout.meta(name, version), f"read {name}:{version}")
    return raw, AssetMeta.from_json(raw, name, version)


def _check_present(dst: AssetStore, meta: AssetMeta) -> bool:
    """True if the destination already holds this exact version; raise if it holds
    another version under the same number."""
    if not dst.is_committed(meta.name, meta.version):
        return False
    existing = dst.meta(meta.name, meta.version)
    if existing.digest() != meta.digest():
        raise VersionExistsError(
            f"{meta.name}:{meta.version} already exists in {dst.display_url} with different content; "
            "published versions are never overwritten. Publish it there under a new version instead."
        )
    return True


def _pairs(store: AssetStore, meta: AssetMeta) -> list[tuple[str, str | None, FileEntry]]:
    """(key, path inside the version, entry) of every file of a version."""
    if meta.is_directory:
        return [(store.layout.data(meta.name, meta.version, p), p, e) for p, e in meta.files.items()]
    entry = meta.file_entry
    return [(store.layout.data(meta.name, meta.version), None, entry)]


def _valid_signatures(src: AssetStore, meta: AssetMeta) -> list[Signature]:
    """The source's signatures of ``meta`` that match it (a broken one is not carried)."""
    if not meta.verifiable:
        return []
    data = statement(meta)
    found = src.signatures.all(meta.name, meta.version)
    try:
        return [s for s in found if s.self_consistent(data)]
    except ConfigurationError:  # no cryptography here: carried as they are, checked on fetch
        return found


def _carry_signatures(
    dst: AssetStore, meta: AssetMeta, signatures: list[Signature], *, claimed: bool
) -> None:
    """Write ``signatures`` at the destination, each created exclusively (``claimed``: the
    version is ours, uncommitted, so a dead copier's leftover is replaced)."""
    for sig in signatures:
        key = dst.layout.signature(meta.name, meta.version, sig.fingerprint)
        action = f"copy the signatures of {meta.name}:{meta.version}"
        try:
            dst.remote.create_exclusive(key, sig.to_json(), action)
        except FileExistsError:
            if claimed:
                dst.remote.replace(key, sig.to_json(), action)


def copy_version(
    src: AssetStore, dst: AssetStore, name: str, version: str, *, callback: Callback | None = None
) -> CopyResult:
    """Copy one committed version from ``src`` to ``dst`` (see the module docstring).

    Raises
    ------
    VersionNotFoundError
        If ``src`` has no such version.
    VersionExistsError
        If ``dst`` has this version number with another content.
    PublishConflictError
        If a live writer is publishing this version in ``dst``.
    IntegrityError
        If the copied objects do not match the manifest (nothing is committed).
    """
    if not dst.versioning.is_valid(version):
        raise InvalidVersionError(
            f"{name}:{version} is not a {dst.versioning.name} version, the system of {dst.display_url}; "
            "set MODELKIT_ASSETS_VERSIONING_SYSTEM to match the source store."
        )
    raw, meta = _read_meta(src, name, version)
    sources = _pairs(src, meta)
    targets = _pairs(dst, meta)
    result = CopyResult(name, version, "present", False, len(meta.files), meta.size)
    if version in dst.retired(name):
        raise VersionExistsError(
            f"{name}:{version} was retired in {dst.display_url}: its number is never used again; "
            "nothing was copied."
        )
    signatures = _valid_signatures(src, meta)
    if _check_present(dst, meta):
        _carry_signatures(dst, meta, signatures, claimed=False)
        return result
    writer = f"copy-{uuid.uuid4().hex}"
    claim = dst.claims.acquire(name, version, writer)
    if claim is None:
        raise PublishConflictError(
            f"{name}:{version} is being published in {dst.display_url} by another writer; retry later."
        )
    if _check_present(dst, meta):  # a modelkit writer commits without claiming
        _carry_signatures(dst, meta, signatures, claimed=False)
        return result
    try:
        server_side = src.fs is dst.fs
        pairs = [(s, t) for (s, _, _), (t, _, _) in zip(sources, targets, strict=True)]
        with dst.remote.errors(f"copy {name}:{version}"):
            if server_side:
                try:
                    copy_objects(dst.fs, pairs, concurrency=dst.concurrency)
                except NotImplementedError:
                    server_side = False
            if not server_side:
                failed = f"{name}:{version} cannot be copied through the temporary folder"
                with (
                    local_writes(tempfile.gettempdir(), "TMPDIR", failed),
                    tempfile.TemporaryDirectory(prefix="modelkit-assets-copy-") as tmp,
                ):
                    local = os.path.join(tmp, "data")
                    if meta.is_directory:
                        os.mkdir(local)
                    src.download_version(meta, local, callback=callback)  # verified (G4)
                    if meta.is_directory:
                        uploads = [(os.path.join(local, *p.split("/")), t) for t, p, _ in targets if p]
                    else:
                        uploads = [(local, targets[0][0])]
                    with dst.remote.errors(f"copy {name}:{version}"):
                        upload(dst.fs, uploads, concurrency=dst.concurrency)
        report = VerifyReport()
        jobs = [(p, e, (t, e.size)) for t, p, e in targets]
        check_files(jobs, lambda target: measure_object(dst.fs, *target), "store", name, version, report)
        if report.problems:
            raise IntegrityError(
                f"The copy of {name}:{version} in {dst.display_url} does not match its manifest "
                f"({report.problems[0]}; {len(report.problems)} problem(s)); nothing was committed. Retry."
            )
    except BaseException:
        # remove the data, then the claim, so that a retry (even in this process) copies
        dst.claims.withdraw(name, claim)
        raise
    try:
        # signed before the commit, as a publish is: the copy is never seen unsigned
        _carry_signatures(dst, meta, signatures, claimed=True)
    except BaseException:
        dst.claims.withdraw(name, claim)
        raise
    try:
        dst.remote.create_exclusive(dst.layout.meta(name, version), raw, f"commit {name}:{version}")
    except FileExistsError:
        if not _check_present(dst, meta):
            raise
        return result
    dst.refresh_index(name)
    return CopyResult(name, version, "copied", server_side, len(meta.files), meta.size)


def copy(
    src: AssetStore,
    dst: AssetStore,
    spec: str,
    *,
    all_versions: bool = False,
    callback: Callback | None = None,
) -> list[CopyResult]:
    """Copy the version ``spec`` resolves to (with ``all_versions``: every version that
    matches it, oldest first) from ``src`` to ``dst``."""
    parsed = AssetSpec.parse(spec)
    if parsed.sub_part:
        raise InvalidSubPartError(f"`copy` copies whole versions; drop the sub-part of {spec}.")
    if all_versions:
        if parsed.version is not None:
            src.versioning.check(parsed.version)
        versions = [
            v
            for v in src.versions(parsed.name)
            if parsed.version is None or v == parsed.version or src.versioning.matches(parsed.version, v)
        ]
        versions.reverse()
    else:
        versions = [src.resolve(parsed)]
    return [copy_version(src, dst, parsed.name, v, callback=callback) for v in versions]
