"""Re-hashing what is already there: cached versions on disk, and stored objects.

Every problem is collected, not just the first, so one run tells the whole story: a
missing file, a wrong size, a wrong sha256, a file the manifest does not list, a
version whose manifest cannot be found, or a local manifest copy that differs from the
store's. With ``--remote``, each stored version's signatures are checked too: one that
does not match the manifest is always a problem; an unsigned or untrusted version is
one when signatures are required.

The manifest of a cached version is its copy in ``.cache/manifests`` (kept by every
fetch), else the store's ``.meta``. Files are read with ``O_NOATIME`` where the
kernel allows it, so that checking does not count as a use for ``prune``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelkit_assets.backends import store_errors
from modelkit_assets.cache import AssetCache
from modelkit_assets.errors import AssetNotFoundError, ConfigurationError, InvalidMetaError
from modelkit_assets.integrity import measure_local, measure_object, mismatches
from modelkit_assets.manifest import AssetMeta, FileEntry

if TYPE_CHECKING:
    from modelkit_assets.signing import TrustedKey
    from modelkit_assets.store import AssetStore

HASH_WORKERS = 8


@dataclass(frozen=True)
class Problem:
    """One thing that does not match a manifest."""

    where: str  # "cache" or "store"
    name: str
    version: str
    path: str | None
    # missing, size, sha256, unexpected, no-manifest, manifest-differs, unreadable,
    # bad-signature, unsigned, untrusted
    kind: str
    detail: str

    @property
    def label(self) -> str:
        return f"{self.name}:{self.version}" + (f"[{self.path}]" if self.path else "")

    def __str__(self) -> str:
        return f"{self.where}: {self.label}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "where": self.where,
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "kind": self.kind,
            "detail": self.detail,
        }


@dataclass
class VerifyReport:
    """What was checked and every problem found."""

    checked: list[tuple[str, str, str]] = field(default_factory=list)  # (where, name, version)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    #: each stored version's signatures: name, version, key, algorithm, valid, trusted
    signatures: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": [{"where": w, "name": n, "version": v} for w, n, v in self.checked],
            "files": self.files,
            "bytes": self.bytes,
            "problems": [p.to_dict() for p in self.problems],
            "signatures": self.signatures,
        }


def compare(
    where: str, name: str, version: str, path: str | None, entry: FileEntry, size: int, sha256: str | None
) -> list[Problem]:
    """Problems of one file whose ``size`` and ``sha256`` (``None``: not read) were measured."""
    found = mismatches(entry, size, sha256)
    return [Problem(where, name, version, path, kind, detail) for kind, detail in found]


def check_files(
    jobs: Sequence[tuple[str | None, FileEntry, Any]],
    measure: Any,
    where: str,
    name: str,
    version: str,
    report: VerifyReport,
) -> None:
    """Measure every ``(path, entry, target)`` job concurrently and record problems."""

    def one(job: tuple[str | None, FileEntry, Any]) -> tuple[str | None, FileEntry, Any]:
        path, entry, target = job
        try:
            return path, entry, measure(target)
        except FileNotFoundError:
            return path, entry, None
        except OSError as err:
            return path, entry, err

    with ThreadPoolExecutor(max_workers=max(1, min(HASH_WORKERS, len(jobs)))) as pool:
        for path, entry, outcome in pool.map(one, jobs):
            if outcome is None:
                report.problems.append(Problem(where, name, version, path, "missing", "missing"))
            elif isinstance(outcome, OSError):
                report.problems.append(
                    Problem(
                        where, name, version, path, "unreadable", f"cannot be read ({type(outcome).__name__})"
                    )
                )
            else:
                size, sha = outcome
                report.files += 1
                report.bytes += size if sha is not None else 0  # bytes actually hashed
                report.problems.extend(compare(where, name, version, path, entry, size, sha))


def verify_cached(
    cache: AssetCache,
    name: str,
    version: str,
    report: VerifyReport,
    *,
    store: AssetStore | None = None,
    compare_store: bool = False,
) -> None:
    """Re-hash one cached version against its manifest, adding problems to ``report``."""
    report.checked.append(("cache", name, version))
    local = cache.read_manifest(name, version)
    remote: AssetMeta | None = None
    if store is not None and (local is None or compare_store):
        try:
            remote = store.meta(name, version)
        except (AssetNotFoundError, InvalidMetaError) as err:
            report.problems.append(Problem("store", name, version, None, "no-manifest", str(err)))
    if local is not None and remote is not None and local.digest() != remote.digest():
        report.problems.append(
            Problem(
                "cache",
                name,
                version,
                None,
                "manifest-differs",
                "the manifest kept in the cache differs from the store's",
            )
        )
    meta = remote if local is None else local
    if meta is None:
        report.problems.append(
            Problem(
                "cache",
                name,
                version,
                None,
                "no-manifest",
                "no manifest in the cache, and no store to read it from (none is configured, or "
                "offline mode is on); fetch it again from the store to keep its manifest",
            )
        )
        return
    files, unexpected = cache.files_of(meta)
    for rel in unexpected:
        report.problems.append(Problem("cache", name, version, rel, "unexpected", "not in the manifest"))
    jobs: list[tuple[str | None, FileEntry, Any]] = list(files)
    check_files(jobs, measure_local, "cache", name, version, report)


def verify_stored(
    store: AssetStore,
    name: str,
    version: str,
    report: VerifyReport,
    *,
    trusted: Sequence[TrustedKey] = (),
    require_signature: bool = False,
) -> None:
    """Stream every object of one stored version through sha256 against its ``.meta``,
    and check its signatures (``check_signatures``)."""
    report.checked.append(("store", name, version))
    try:
        meta = store.meta(name, version)
    except (AssetNotFoundError, InvalidMetaError) as err:
        report.problems.append(Problem("store", name, version, None, "no-manifest", str(err)))
        return
    check_signatures(store, meta, report, trusted=trusted, require_signature=require_signature)
    fs, layout = store.fs, store.layout
    with store_errors(store.display_url, f"verify {name}:{version}"):
        if meta.is_directory:
            jobs: list[tuple[str | None, FileEntry, Any]] = [
                (p, e, (layout.data(name, version, p), e.size)) for p, e in meta.files.items()
            ]
            prefix = layout.data(name, version)
            fs.invalidate_cache(prefix)
            try:
                present = fs.find(prefix)
            except FileNotFoundError:
                present = []
            listed = {layout.relative(layout.data(name, version, p)) for p in meta.files}
            for key in present:
                rel = layout.relative(key)
                if rel not in listed:
                    inner = rel[len(layout.relative(prefix)) + 1 :]
                    report.problems.append(
                        Problem("store", name, version, inner, "unexpected", "not in the manifest")
                    )
        else:
            entry = meta.file_entry
            jobs = [(None, entry, (layout.data(name, version), entry.size))]
        check_files(jobs, lambda target: measure_object(fs, *target), "store", name, version, report)


def check_signatures(
    store: AssetStore,
    meta: AssetMeta,
    report: VerifyReport,
    *,
    trusted: Sequence[TrustedKey] = (),
    require_signature: bool = False,
) -> None:
    """Record a stored version's signatures in ``report``: a signature that does not
    match the manifest is a problem; so is no valid signature by a trusted key, when
    signatures are required."""
    from modelkit_assets.signing import short, statement

    name, version = meta.name, meta.version
    data = statement(meta) if meta.verifiable else None
    fingerprints = {t.fingerprint for t in trusted}
    valid_trusted = False
    signatures = store.signatures.all(name, version)
    for sig in signatures:
        try:
            valid: bool | None = data is not None and sig.self_consistent(data)
        except ConfigurationError:  # cryptography is not installed: cannot tell
            valid = None
        is_trusted = sig.fingerprint in fingerprints
        valid_trusted = valid_trusted or bool(valid and is_trusted)
        report.signatures.append(
            {
                "name": name,
                "version": version,
                "key": sig.fingerprint,
                "algorithm": sig.algorithm,
                "signed_at": sig.signed_at,
                "valid": valid,
                "trusted": is_trusted,
            }
        )
        if valid is False:
            report.problems.append(
                Problem(
                    "store",
                    name,
                    version,
                    None,
                    "bad-signature",
                    f"the signature by {short(sig.fingerprint)} does not match the manifest (changed "
                    "after signing?)",
                )
            )
    if require_signature and not valid_trusted:
        kind, detail = (
            ("untrusted", "signed only by keys not in MODELKIT_ASSETS_TRUSTED_KEYS")
            if signatures
            else ("unsigned", "not signed, and signatures are required")
        )
        report.problems.append(Problem("store", name, version, None, kind, detail))


def verify(
    cache: AssetCache | None,
    targets: Iterable[tuple[str, str]],
    *,
    store: AssetStore | None = None,
    remote: bool = False,
    remote_targets: Iterable[tuple[str, str]] = (),
    trusted: Sequence[TrustedKey] = (),
    require_signature: bool = False,
) -> VerifyReport:
    """Verify cached ``targets`` ((name, version) pairs) and, with ``remote``, the stored
    objects and signatures of ``remote_targets``. See ``select_targets`` to build both
    lists from specs."""
    report = VerifyReport()
    if cache is not None:
        for name, version in targets:
            verify_cached(cache, name, version, report, store=store, compare_store=remote)
    if remote and store is not None:
        for name, version in remote_targets:
            verify_stored(store, name, version, report, trusted=trusted, require_signature=require_signature)
    return report


def select_targets(
    specs: Sequence[str],
    *,
    cache: AssetCache,
    versioning: Any,
    store: AssetStore | None = None,
    remote: bool = False,
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(cached, stored) (name, version) pairs to verify for ``specs`` (empty: every
    version). A complete version names one version; a partial one, or none, every
    version that matches it (not only the latest: verify checks what is there).

    Raises
    ------
    AssetNotFoundError
        When a spec matches nothing in the cache (nor, with ``remote``, in the store).
    """
    from modelkit_assets.maintenance.inventory import scan_cache
    from modelkit_assets.spec import AssetSpec

    cached_all = [(v.name, v.version) for v in scan_cache(cache.assets_dir, versioning)]
    if not specs:
        stored_all: list[tuple[str, str]] = []
        if remote and store is not None:
            stored_all = [(n, v) for n, versions in store.list() for v in versions]
        return cached_all, stored_all
    cached: list[tuple[str, str]] = []
    stored: list[tuple[str, str]] = []
    for text in specs:
        spec = AssetSpec.parse(text)
        if spec.version is not None:
            versioning.check(spec.version)

        def wanted(version: str, spec: AssetSpec = spec) -> bool:
            if spec.version is None:
                return True
            return bool(version == spec.version or versioning.matches(spec.version, version))

        mine = [(n, v) for n, v in cached_all if n == spec.name and wanted(v)]
        theirs: list[tuple[str, str]] = []
        if remote and store is not None:
            theirs = [(spec.name, v) for v in store.versions(spec.name) if wanted(v)]
        if not mine and not theirs:
            where = f"the assets dir {cache.assets_dir}" + (
                f" nor in {store.display_url}" if remote and store else ""
            )
            raise AssetNotFoundError(
                f"No version of {spec} is in {where}; fetch it first, or add --remote to check the store."
            )
        cached.extend(x for x in mine if x not in cached)
        stored.extend(x for x in theirs if x not in stored)
    return cached, stored
