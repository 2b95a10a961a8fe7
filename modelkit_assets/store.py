"""``AssetStore``: publish, list and describe versioned assets in any fsspec store.

Publishing a version (G1-G3)::

    1. list {name}/                   committed versions = the ``.meta`` objects (truth)
    2. claim the next version         exclusive create of .claims/{version}/{attempt};
                                      taken -> try the following version
    3. upload the data                only the claim's owner writes into {name}/{version}
    4. sign (with a signing key)      exclusive create of .signatures/{version}/{key}.sig
       commit                         exclusive create of {name}/{version}.meta
    5. refresh {name}.versions        rebuilt from the committed metas, for modelkit

A crash before the commit leaves no version, and a version is signed from the moment it
exists (a consumer requiring signatures never sees it unsigned); the claim of a dead writer (same host and its
process gone, or older than the claim TTL) is resumed by the next publisher. The claim
protocol lives in claims.py; every request goes through the store's ``Remote``
(remote.py: the filesystem, its retries and error translation).
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import json
import os
import uuid
from collections.abc import Collection, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelkit_assets._version import __version__
from modelkit_assets.aliases import Aliases, AliasMove
from modelkit_assets.backends import backend_for, basename, redact_url
from modelkit_assets.claims import NEW_KEY, Claim, Claims, Lease, who_am_i
from modelkit_assets.errors import (
    AliasConflictError,
    AssetExistsError,
    AssetNotFoundError,
    ConfigurationError,
    IntegrityError,
    InvalidMetaError,
    InvalidNameError,
    InvalidSourceError,
    InvalidSpecError,
    InvalidVersionError,
    VersionExistsError,
    VersionNotFoundError,
)
from modelkit_assets.integrity import BLOCK_SIZE, hash_local
from modelkit_assets.layout import (
    META_SUFFIX,
    VERSIONS_SUFFIX,
    RemoteLayout,
    committed_versions,
    retired_versions,
)
from modelkit_assets.manifest import AssetMeta, FileEntry
from modelkit_assets.remote import Remote
from modelkit_assets.retry import RetryPolicy
from modelkit_assets.settings import (
    DEFAULT_CLAIM_LEASE_S,
    DEFAULT_CLAIM_TTL_S,
    DEFAULT_CONCURRENCY,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_DEADLINE_S,
)
from modelkit_assets.signatures import Signatures
from modelkit_assets.source import Source, SourceFile, scan_source
from modelkit_assets.spec import AssetSpec, check_name
from modelkit_assets.transfer import copy_objects, download, unchanged_files, upload
from modelkit_assets.versioning import VersioningSystem, get_versioning

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem
    from fsspec.callbacks import Callback

    from modelkit_assets.settings import Settings
    from modelkit_assets.signing import SigningKey

#: the built-in systems: a name segment valid in any of them is a version, not a name
_BUILTIN_SYSTEMS = (get_versioning("major_minor"), get_versioning("simple_date"))


@dataclass(frozen=True)
class PublishPlan:
    """What a publish will do, computed without writing anything (for ``--dry-run``)."""

    name: str
    version: str
    existing: tuple[str, ...]
    source: Source
    bump_major: bool
    major: str | None
    is_new: bool
    #: publish exactly ``version`` or fail (modelkit's ``new``/``update`` take an explicit version)
    pinned: bool = False
    #: retired versions: hidden, but their numbers are never given again
    retired: tuple[str, ...] = ()

    @property
    def used(self) -> list[str]:
        """Every version number taken: committed or retired."""
        return [*self.existing, *self.retired]


class AssetStore:
    """A store of versioned assets at an fsspec URL.

    Parameters
    ----------
    url
        Any fsspec URL (``s3://bucket/prefix``, ``gs://``, ``az://``, ``file://``,
        ``memory://``, a local path); ``None`` reads the settings.
    storage_options
        Passed to fsspec; never printed.
    versioning
        ``major_minor`` (default), ``simple_date`` or a registered system.
    offline
        ``True`` (default: ``MODELKIT_ASSETS_OFFLINE``): every operation that would reach
        the store raises ``OfflineError`` instead, before any connection is attempted.
    """

    def __init__(
        self,
        url: str | os.PathLike[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
        *,
        versioning: str | VersioningSystem | None = None,
        concurrency: int | None = None,
        claim_ttl_s: float | None = None,
        settings: Settings | None = None,
        filesystem: AbstractFileSystem | None = None,
        retry: RetryPolicy | None = None,
        offline: bool | None = None,
        options_origin: str | None = None,
    ) -> None:
        from modelkit_assets.settings import get_settings

        if url is None:
            settings = settings if settings is not None else get_settings()
            if settings.store_url is None:
                raise ConfigurationError(
                    "No store is configured (MODELKIT_ASSETS_STORE=none); set MODELKIT_ASSETS_STORE "
                    "to an fsspec URL such as s3://bucket/prefix."
                )
            url = settings.store_url
            if storage_options is None:
                storage_options = settings.storage_options
                options_origin = options_origin or "MODELKIT_ASSETS_STORAGE_OPTIONS"
        elif settings is None and any(
            v is None for v in (versioning, concurrency, claim_ttl_s, retry, offline)
        ):
            settings = get_settings()
        self.versioning = get_versioning(
            versioning if versioning is not None else settings.versioning if settings else None
        )
        self.concurrency = concurrency or (settings.concurrency if settings else DEFAULT_CONCURRENCY)
        attempts, deadline_s = (
            (settings.retries, settings.retry_deadline_s)
            if settings
            else (DEFAULT_RETRIES, DEFAULT_RETRY_DEADLINE_S)
        )
        #: where the store is and how each request to it is made (remote.py)
        self.remote = Remote(
            url,
            storage_options,
            pool_size=self.concurrency,
            filesystem=filesystem,
            retry=retry,
            attempts=attempts,
            deadline_s=deadline_s,
            offline=bool(offline if offline is not None else settings.offline if settings else False),
            options_origin=options_origin,
        )
        self.url = self.remote.url
        #: who owns which version while it is published (claims.py)
        self.claims = Claims(
            self.remote,
            self.versioning,
            claim_ttl_s or (settings.claim_ttl_s if settings else DEFAULT_CLAIM_TTL_S),
            settings.claim_lease_s if settings else DEFAULT_CLAIM_LEASE_S,
        )
        #: publishers' signatures of versions (signatures.py)
        self.signatures = Signatures(self.remote)
        #: movable names of versions, with their history (aliases.py)
        self.aliases = Aliases(self.remote)
        #: the key ``publish`` signs with when given none (MODELKIT_ASSETS_SIGNING_KEY)
        self._default_key = (
            (settings.signing_key, settings.signing_key_passphrase) if settings else (None, None)
        )

    @classmethod
    def from_env(cls) -> AssetStore:
        """The store configured by the environment (DESIGN.md's table)."""
        return cls()

    # -- plumbing (the Remote's) ------------------------------------------------------
    @property
    def display_url(self) -> str:
        """The URL without credentials (G7)."""
        return self.remote.display_url

    @property
    def storage_options(self) -> Mapping[str, Any]:
        """The fsspec options the store was opened with (secrets: never print them)."""
        return self.remote.storage_options

    @property
    def options_origin(self) -> str:
        """Where the storage options come from, named when the backend refuses them."""
        return self.remote.options_origin

    @property
    def offline(self) -> bool:
        """Whether the store is never contacted (``MODELKIT_ASSETS_OFFLINE``; remote.py)."""
        return self.remote.offline

    @property
    def claim_ttl_s(self) -> float:
        return self.claims.ttl_s

    def __repr__(self) -> str:
        return f"AssetStore({self.display_url!r}, versioning={self.versioning.name!r})"

    @property
    def fs(self) -> AbstractFileSystem:
        return self.remote.fs

    @property
    def layout(self) -> RemoteLayout:
        return self.remote.layout

    def _check_name(self, name: str) -> str:
        """``check_name``, plus the names the remote layout cannot tell apart (G1, G5).

        Asset ``a/1.0/b`` would live inside the data of ``a:1.0`` (its upload could
        overwrite a published file, and a published file could forge its commit), and
        ``a.versions`` or ``a/0.0.meta`` would collide with the index or a commit of
        ``a``. Such names are refused for reading and writing alike.

        Raises
        ------
        InvalidNameError
        """
        check_name(name)
        segments = name.split("/")
        for segment in segments[1:]:
            if any(system.is_valid(segment) for system in (self.versioning, *_BUILTIN_SYSTEMS)):
                raise InvalidNameError(
                    f"Asset name {name!r} has a segment {segment!r} that is a version: its files would "
                    "mix with that version of the parent asset; rename the segment (e.g. `v1.0`)."
                )
        for segment in segments:
            if segment.endswith((META_SUFFIX, VERSIONS_SUFFIX)):
                raise InvalidNameError(
                    f"Asset name {name!r} has a segment ending in `{META_SUFFIX}` or `{VERSIONS_SUFFIX}`, "
                    "which the store layout reserves; rename it."
                )
        return name

    @property
    def retry(self) -> RetryPolicy:
        """How each request is retried: ``retry=`` or the settings' ``MODELKIT_ASSETS_RETRIES``
        and ``MODELKIT_ASSETS_RETRY_DEADLINE_S``; never on a local disk or memory."""
        return self.remote.retry

    def _where(self, name: str, version: str | None = None) -> str:
        return f"{name}:{version}" if version else name

    # -- reading ------------------------------------------------------------------
    def _listing(self, name: str) -> list[dict[str, Any]]:
        return self.remote.list(self.layout.asset_dir(name), f"list {name}")

    def _committed(self, entries: list[dict[str, Any]]) -> list[str]:
        """The versions a listing of ``{name}/`` shows committed and not retired."""
        retired = set(retired_versions(entries))
        return self.versioning.sort(v for v in committed_versions(entries) if v not in retired)

    def retired(self, name: str) -> list[str]:
        """Versions of ``name`` retired (retention.py), latest first: hidden, and never
        published again (one listing)."""
        return self.versioning.sort(retired_versions(self._listing(name)))

    def is_committed(self, name: str, version: str) -> bool:
        """Whether ``{version}.meta`` exists, asked of the server (one request)."""
        return self.claims.is_committed(name, version)

    def versions(self, name: str) -> list[str]:
        """Committed versions of ``name``, latest first (one listing request).

        Raises
        ------
        AssetNotFoundError
            If the asset has no committed version in this versioning system.
        """
        self._check_name(name)
        entries = self._listing(name)
        versions = self._committed(entries)
        if not versions:
            raise self._not_found(name, entries)
        return versions

    def _not_found(self, name: str, entries: list[dict[str, Any]]) -> AssetNotFoundError:
        others = committed_versions(entries)
        if others:
            return AssetNotFoundError(
                f"Asset {name} has versions in {self.display_url} ({', '.join(sorted(others)[:3])}) but "
                f"none in the {self.versioning.name} system; set MODELKIT_ASSETS_VERSIONING_SYSTEM."
            )
        return AssetNotFoundError(
            f"Asset {name} does not exist in {self.display_url}; check the name with "
            f"`modelkit-assets list`, or publish it with `modelkit-assets new PATH {name}`."
        )

    def resolve(self, spec: AssetSpec | str) -> str:
        """The complete version a (partial) spec points to.

        Raises
        ------
        AssetNotFoundError, VersionNotFoundError
        """
        spec = AssetSpec.parse(spec) if isinstance(spec, str) else spec
        if spec.alias is not None:
            return self.resolve_alias(spec.name, spec.alias)
        if spec.version is not None:
            self.versioning.check(spec.version)
        versions = self.versions(spec.name)
        found = self.versioning.latest(versions, spec.version)
        if found is None:
            raise VersionNotFoundError(
                f"Asset {spec.name} has no version matching {spec.version} in {self.display_url} "
                f"(latest: {', '.join(versions[:5])}); pick one of those, or see all with "
                f"`modelkit-assets versions {spec.name}`."
            )
        return found

    # -- aliases (aliases.py) ----------------------------------------------------------
    def resolve_alias(self, name: str, alias: str) -> str:
        """The version ``name@alias`` points to (one listing and one read).

        Raises
        ------
        VersionNotFoundError
            If the alias is not set (never, or removed).
        """
        self._check_name(name)
        move = self.aliases.current(name, alias)
        if move is None or move.version is None:
            raise VersionNotFoundError(
                f"{name}@{alias} is not set in {self.display_url}; see the aliases of {name} with "
                f"`modelkit-assets alias list {name}`."
            )
        return move.version

    def set_alias(
        self, name: str, alias: str, version: str, *, expect: str | None = None, check_expect: bool = False
    ) -> AliasMove:
        """Point ``name@alias`` at ``version`` (a partial version: its latest); with
        ``check_expect``, only if the alias points to ``expect`` (``None``: unset).

        Raises
        ------
        VersionNotFoundError
            If the version is not committed (or is retired).
        AliasConflictError
            If the alias moved meanwhile (``check_expect``) or the version was retired
            while the move was written (the move is then undone).
        """
        resolved = self.resolve(AssetSpec(name, version))
        move = self.aliases.move(name, alias, resolved, expect=expect, check_expect=check_expect)
        # a retire racing this move writes its tombstone first, then looks for aliases: one
        # of the two always sees the other, and neither leaves an alias on a retired version
        if resolved in self.retired(name):
            with contextlib.suppress(AliasConflictError):  # moved since: that move stands
                self.aliases.move(name, alias, move.previous, expect=resolved, check_expect=True)
            raise AliasConflictError(
                f"{name}:{resolved} was retired while {name}@{alias} was being moved to it; the move "
                "was undone."
            )
        return move

    def remove_alias(
        self, name: str, alias: str, *, expect: str | None = None, check_expect: bool = False
    ) -> AliasMove:
        """Unset ``name@alias`` (its history stays).

        Raises
        ------
        VersionNotFoundError
            If it is not set.
        AliasConflictError
            With ``check_expect``, if it does not point to ``expect``.
        """
        self.resolve_alias(name, alias)
        return self.aliases.move(name, alias, None, expect=expect, check_expect=check_expect)

    def meta(self, name: str, version: str) -> AssetMeta:
        """The validated metadata of a committed version.

        Raises
        ------
        VersionNotFoundError, InvalidMetaError
        """
        self._check_name(name)
        self.versioning.check(version)
        key = self.layout.meta(name, version)
        try:
            raw = self.remote.read(key, f"read {name}:{version}")
        except FileNotFoundError:
            retired = version in self.retired(name)
            raise VersionNotFoundError(
                f"Version {version} of {name} "
                + ("was retired" if retired else "does not exist")
                + f" in {self.display_url}; see `modelkit-assets versions {name}`."
            ) from None
        return AssetMeta.from_json(raw, name, version)

    def exists(self, name: str, version: str | None = None) -> bool:
        """Whether the asset (or one of its versions) is committed."""
        try:
            versions = self.versions(name)
        except AssetNotFoundError:
            return False
        return version is None or version in versions

    # -- publishing ---------------------------------------------------------------
    def plan_new(self, path: str | os.PathLike[str], name: str, *, version: str | None = None) -> PublishPlan:
        """What ``new`` would publish (reads the store, writes nothing).

        ``version`` pins the first version instead of the system's initial one (what
        modelkit's ``StorageProvider.new`` does); the publish then fails rather than
        moving to another version.

        Raises
        ------
        AssetExistsError, InvalidVersionError, InvalidSourceError
        """
        self._check_name(name)
        if version is not None:
            self._check_pinned(name, version)
        entries = self._listing(name)
        existing = self._committed(entries)
        if existing or retired_versions(entries):
            latest = f"latest {existing[0]}" if existing else "every version retired"
            raise AssetExistsError(
                f"Asset {name} already exists in {self.display_url} ({latest}); "
                f"publish a new version with `modelkit-assets update PATH {name}`."
            )
        source = scan_source(path, storage_options=self._source_options(path))
        first = version if version is not None else self.versioning.initial(())
        return PublishPlan(name, first, (), source, False, None, True, pinned=version is not None)

    def plan_update(
        self,
        path: str | os.PathLike[str],
        spec: str | AssetSpec,
        *,
        bump_major: bool = False,
        version: str | None = None,
    ) -> PublishPlan:
        """What ``update`` would publish (reads the store, writes nothing).

        ``version`` pins the version to publish (modelkit's ``StorageProvider.update``);
        ``spec`` is then the bare name.

        Raises
        ------
        VersioningOptionError
            For ``NAME:MAJOR`` or ``bump_major`` with a system without majors (or both).
        AssetNotFoundError, VersionExistsError, InvalidVersionError, InvalidSourceError
        """
        spec = AssetSpec.parse(spec) if isinstance(spec, str) else spec
        if spec.sub_part:
            raise InvalidSpecError(f"`update` takes NAME or NAME:MAJOR, not a sub-part ({spec}).")
        if version is None:
            self.versioning.check_update(major=spec.version, bump_major=bump_major)
        if spec.version is not None:
            self.versioning.check(spec.version)
        self._check_name(spec.name)
        entries = self._listing(spec.name)
        existing = self._committed(entries)
        retired = tuple(self.versioning.sort(retired_versions(entries)))
        if not existing and not retired:
            raise self._not_found(spec.name, entries)
        if version is not None:
            self._check_pinned(spec.name, version)
            if version in existing or version in retired:
                raise VersionExistsError(
                    f"Version {version} of {spec.name} already exists in {self.display_url}"
                    + (" (retired: its number is never used again)" if version in retired else "")
                    + "; published versions are never overwritten: pick another version."
                )
            source = scan_source(path, storage_options=self._source_options(path))
            return PublishPlan(
                spec.name, version, tuple(existing), source, False, None, False, pinned=True, retired=retired
            )
        version = self.versioning.next(
            self.versioning.sort([*existing, *retired]), major=spec.version, bump_major=bump_major
        )
        source = scan_source(path, storage_options=self._source_options(path))
        return PublishPlan(
            spec.name, version, tuple(existing), source, bump_major, spec.version, False, retired=retired
        )

    def _source_options(self, path: str | os.PathLike[str]) -> Mapping[str, Any]:
        """Storage options for a remote source: the store's own when the source is on the
        same kind of storage (same endpoint and credentials, the usual case), otherwise
        none, so the SDK's environment variables apply."""
        text = os.fspath(path)
        if "://" in text and text.split("://", 1)[0].lower() == self.remote.protocol:
            return self.storage_options
        return {}

    def signing_key(self, key: SigningKey | str | os.PathLike[str] | None = None) -> SigningKey | None:
        """``key`` loaded (a path is read as a PEM private key), or the configured one
        (``MODELKIT_ASSETS_SIGNING_KEY``), or ``None``: publishes are then unsigned.

        Raises
        ------
        ConfigurationError
            If the key cannot be used (the message never shows its content).
        """
        from modelkit_assets.signing import SigningKey, load_signing_key

        if isinstance(key, SigningKey):
            return key
        path, passphrase = (key, self._default_key[1]) if key is not None else self._default_key
        return load_signing_key(path, passphrase) if path is not None else None

    def _check_pinned(self, name: str, version: str) -> None:
        self.versioning.check(version)
        if not self.versioning.is_complete(version):
            raise InvalidVersionError(
                f"Cannot publish {name}:{version}: {version!r} is a partial version; give a "
                f"complete {self.versioning.name} version."
            )

    def new(
        self,
        path: str | os.PathLike[str],
        name: str,
        *,
        description: str | None = None,
        dry_run: bool = False,
        callback: Callback | None = None,
        sign_key: SigningKey | str | os.PathLike[str] | None = None,
    ) -> str:
        """Publish ``path`` as the first version of ``name``; return the version.
        ``sign_key`` (or ``MODELKIT_ASSETS_SIGNING_KEY``) signs it."""
        plan = self.plan_new(path, name)
        return (
            plan.version
            if dry_run
            else self.publish(plan, description=description, callback=callback, sign_key=sign_key).version
        )

    def update(
        self,
        path: str | os.PathLike[str],
        spec: str,
        *,
        bump_major: bool = False,
        description: str | None = None,
        dry_run: bool = False,
        callback: Callback | None = None,
        sign_key: SigningKey | str | os.PathLike[str] | None = None,
    ) -> str:
        """Publish ``path`` as the next version of ``spec`` (``name`` or ``name:MAJOR``);
        ``sign_key`` (or ``MODELKIT_ASSETS_SIGNING_KEY``) signs it."""
        plan = self.plan_update(path, spec, bump_major=bump_major)
        return (
            plan.version
            if dry_run
            else self.publish(plan, description=description, callback=callback, sign_key=sign_key).version
        )

    def publish(
        self,
        plan: PublishPlan,
        *,
        description: str | None = None,
        callback: Callback | None = None,
        sign_key: SigningKey | str | os.PathLike[str] | None = None,
    ) -> AssetMeta:
        """Carry out a plan: claim, upload, sign, commit, refresh the index (G1-G3).

        The version actually published may follow ``plan.version`` when a concurrent
        writer took it first; the returned metadata says which. A pinned plan publishes
        exactly ``plan.version`` or raises ``VersionExistsError``.

        Raises
        ------
        AssetExistsError, VersionExistsError, PublishConflictError, StoreError
        ConfigurationError
            If the signing key cannot be used (checked before anything is written).
        """
        key = self.signing_key(sign_key)
        writer = uuid.uuid4().hex
        name = plan.name
        new_claim = None
        leases: list[Lease] = []
        try:
            if plan.is_new:
                # a dead creator on another host is watched for a few leases, then taken over
                new_claim = self.claims.acquire(name, NEW_KEY, writer, wait=True)
                if new_claim is None:
                    raise AssetExistsError(
                        f"Asset {name} is being created in {self.display_url} by another writer; "
                        f"use `modelkit-assets update PATH {name}` once it is published."
                    )
                leases.append(self.claims.hold(name, new_claim))
                entries = self._listing(name)
                committed = self._committed(entries)
                if committed or retired_versions(entries):
                    raise AssetExistsError(
                        f"Asset {name} already exists in {self.display_url}; "
                        f"use `modelkit-assets update PATH {name}`."
                    )
                candidate = self.versioning.initial(committed)
                used = committed
            else:
                # the plan's listing, not a new one: a version committed since then is found by
                # the claim protocol (its claim or its meta), which then tries the next version
                committed = list(plan.existing)
                used = self.versioning.sort(plan.used)  # a retired number is never given again
                candidate = self.versioning.next(used, major=plan.major, bump_major=plan.bump_major)
            # where the store records a checksum with each object, a dead writer's uploads
            # are kept when they prove intact: a rerun re-sends only the rest (resume)
            keep = backend_for(self.fs).records_checksums
            # creating the asset, with its `new` claim: a claim on its first version is a
            # previous creator's, watched like the `new` claim (not skipped to 0.1), and taken
            # at once when that creator was just found dead on the `new` claim
            dead = frozenset([new_claim.taken_from] if new_claim is not None and new_claim.taken_from else [])
            if plan.pinned:
                claim = self.claims.claim_pinned(
                    name, plan.version, used, writer, keep_data=keep, wait=plan.is_new, dead=dead
                )
            else:
                claim = self.claims.claim_version(
                    name,
                    candidate,
                    used,
                    writer,
                    bump_major=plan.bump_major,
                    keep_data=keep,
                    wait=plan.is_new,
                    dead=dead,
                )
            lease = self.claims.hold(name, claim)
            leases.append(lease)
            previous = None if plan.is_new else self.versioning.latest(committed, plan.major)
            try:
                kept = self._intact_leftovers(plan.source, name, claim.version) if claim.resumed else {}
                files = self._upload_data(plan.source, name, claim, callback, previous=previous, kept=kept)
                moved = plan.source.changed() + [
                    f.path for f in plan.source.files if files[f.path].size != f.size
                ]
                if moved:
                    raise InvalidSourceError(
                        f"{len(moved)} file(s) of {plan.source.root} changed while {name}:{claim.version} "
                        f"was being published ({', '.join(moved[:3])}); nothing was committed. "
                        "Publish again once they are no longer written."
                    )
                for held in leases:  # a writer presumed dead stops here (fencing)
                    held.check()
            except BaseException:
                self.claims.withdraw(name, claim, new_claim, leases)
                raise
            # the manifest holds what was measured while uploading: exactly the bytes stored
            meta = AssetMeta(
                name=name,
                version=claim.version,
                push_date=dt.datetime.now(dt.UTC),
                is_directory=plan.source.is_directory,
                files={f.path: files[f.path] for f in plan.source.files},
                size=plan.source.size,
                pushed_by=who_am_i(),
                tool_version=f"modelkit-assets {__version__}",
                description=description,
                source=redact_url(plan.source.root),
                publish_id=writer,
                block_size=BLOCK_SIZE,
            )
            if key is not None:
                # before the commit: the version exists signed or not at all. A dead writer's
                # signature of this claimed, uncommitted version is ours to replace
                try:
                    self.signatures.add(meta, key, claimed=True)
                except BaseException:
                    self.claims.withdraw(name, claim, new_claim, leases)
                    raise
            try:
                for held in leases:
                    held.check()
                self._commit(meta)
            except VersionExistsError:
                if key is not None:  # the version someone else committed is not what we signed
                    self.signatures.remove(name, claim.version, key.fingerprint)
                raise
        finally:
            for held in leases:
                held.stop()
        # what this writer knows is committed: the listing it planned on, and its version
        self.refresh_index(name, known=self.versioning.sort([*committed, claim.version]))
        return meta

    def _upload_data(
        self,
        source: Source,
        name: str,
        claim: Claim,
        callback: Callback | None,
        *,
        previous: str | None = None,
        kept: Mapping[str, FileEntry] | None = None,
    ) -> dict[str, FileEntry]:
        """Upload (or copy inside the store) every file of ``source`` into the claimed
        version, except those ``kept`` (already stored intact); return each file's entry
        as measured in that single read."""
        files: dict[str, FileEntry] = dict(kept or {})
        # a folder's files that did not change since the previous version are copied
        same = self._unchanged(source, name, previous, skip=files) if previous and source.is_directory else {}
        if previous and same:
            copies = [
                (self.layout.data(name, previous, path), self.layout.data(name, claim.version, path))
                for path in same
            ]
            try:
                with self.remote.errors(f"copy unchanged files into {name}:{claim.version}"):
                    copy_objects(self.fs, copies, concurrency=self.concurrency, retry=self.retry)
                files.update(same)
            except (NotImplementedError, FileNotFoundError):
                pass  # no server-side copy here, or the previous object is gone: upload them
        rest = [f for f in source.files if f.path not in files]
        pairs = [
            (f.local, self.layout.data(name, claim.version, f.path if source.is_directory else None))
            for f in rest
        ]
        with self.remote.errors(f"upload {name}:{claim.version}"):
            sent = upload(
                self.fs,
                pairs,
                callback=callback,
                concurrency=self.concurrency,
                retry=self.retry,
                resume=claim.resumed,
            )
        files.update((f.path, entry) for f, entry in zip(rest, sent, strict=True))
        return files

    def _intact_leftovers(self, source: Source, name: str, version: str) -> dict[str, FileEntry]:
        """Resuming a dead writer's version: the objects it stored that hold exactly a
        file of ``source``, with that file's entry; every other object it left is removed.

        Intact means the checksum the store recorded when it wrote the object matches the
        file (read once here): never a name or a size alone.
        """
        backend = backend_for(self.fs)
        prefix = self.layout.data(name, version)
        found = self.remote.request(
            f"list what {name}:{version}'s last writer stored", lambda: self.fs.find(prefix, detail=True)
        )
        stored = {key: info.get("size") for key, info in found.items()}
        keys = {
            f.path: self.layout.data(name, version, f.path) if source.is_directory else prefix
            for f in source.files
        }
        candidates = [f for f in source.files if stored.get(keys[f.path]) == f.size]

        def check(f: SourceFile) -> FileEntry | None:
            recorded = self.remote.request(
                f"check {name}:{version}[{f.path}]", lambda: backend.stored_checksum(self.fs, keys[f.path])
            )
            if recorded is None:
                return None
            local = hash_local(f.local)
            return local if recorded in backend.checksums_of(local) else None

        kept: dict[str, FileEntry] = {}
        if candidates:
            with ThreadPoolExecutor(max_workers=min(self.concurrency, len(candidates))) as pool:
                for f, entry in zip(candidates, pool.map(check, candidates), strict=True):
                    if entry is not None:
                        kept[f.path] = entry
        keep_keys = {keys[path] for path in kept}
        stale = [key for key in stored if key not in keep_keys]
        if stale:
            self.remote.request(f"clean {name}:{version}", lambda: self.fs.rm(stale))
        return kept

    def _unchanged(
        self, source: Source, name: str, previous: str, *, skip: Mapping[str, FileEntry]
    ) -> dict[str, FileEntry]:
        """Files of ``source`` identical to those of ``previous``, with their entries:
        they are copied inside the store instead of uploaded.

        Only files whose size matches a hashed file of ``previous`` at the same path are
        read here (once, for the comparison); every other file is hashed as it uploads.
        The new manifest still lists and hashes every file, so fetch verifies copies like
        uploads.
        """
        try:
            old = self.meta(name, previous)
        except (VersionNotFoundError, InvalidMetaError):
            return {}
        if not old.is_directory:
            return {}
        candidates = [
            f
            for f in source.files
            if f.path not in skip
            and (entry := old.files.get(f.path)) is not None
            and entry.sha256 is not None
            and entry.size == f.size
        ]
        if not candidates:
            return {}
        with ThreadPoolExecutor(max_workers=min(8, len(candidates))) as pool:
            measured = dict(
                zip(
                    (f.path for f in candidates),
                    pool.map(lambda f: hash_local(f.local), candidates),
                    strict=True,
                )
            )
        same = unchanged_files(measured, old.files)
        return {path: measured[path] for path in same}

    def _commit(self, meta: AssetMeta) -> None:
        key = self.layout.meta(meta.name, meta.version)
        action = f"commit {meta.name}:{meta.version}"
        try:
            self.remote.create_exclusive(key, meta.to_json(), action)
        except FileExistsError:
            # our own create whose answer was lost and retried is still ours
            try:
                raw = self.remote.read(key, action)
                existing = AssetMeta.from_json(raw, meta.name, meta.version)
            except (InvalidMetaError, FileNotFoundError):
                existing = None
            if existing is None or existing.publish_id != meta.publish_id:
                raise VersionExistsError(
                    f"Version {meta.version} of {meta.name} was committed by another writer in "
                    f"{self.display_url}; nothing was overwritten. Rerun the command to publish "
                    "the next version."
                ) from None

    def refresh_index(self, name: str, *, known: list[str] | None = None) -> list[str]:
        """Rewrite ``{name}.versions`` from the committed metas until it is stable.

        Concurrent writers each re-check after writing, so the last write always holds
        every committed version. ``known`` (the versions a publisher knows are committed)
        is written first instead of listing: the check after the write corrects it.
        """
        key = self.layout.versions_index(name)
        versions: list[str] = []
        for _ in range(10):
            versions = known if known is not None else self._committed(self._listing(name))
            known = None
            data = json.dumps({"versions": versions}).encode()
            self.remote.replace(key, data, f"update the index of {name}")
            if self._committed(self._listing(name)) == versions:
                break
        return versions

    def read_index(self, name: str) -> list[str] | None:
        """The versions in ``{name}.versions`` (``None`` when it is missing or unreadable)."""
        key = self.layout.versions_index(name)
        try:
            data = json.loads(self.remote.read(key, f"read the index of {name}"))
        except (FileNotFoundError, ValueError):
            return None
        versions = data.get("versions") if isinstance(data, dict) else None
        return [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else None

    # -- fetching -----------------------------------------------------------------
    def download_version(
        self,
        meta: AssetMeta,
        destination: str,
        *,
        callback: Callback | None = None,
        skip: Collection[str | None] = (),
    ) -> None:
        """Download a version to ``destination`` (a file, or a folder for a directory
        asset) and verify every file against the manifest (G4). ``skip``: files already
        in place (their paths in the manifest; ``None`` for a file asset's own file).

        Raises
        ------
        IntegrityError
            Naming the first file that does not match.
        """
        name, version = meta.name, meta.version
        if meta.is_directory:
            pairs, entries, labels = [], [], []
            for path, entry in meta.files.items():
                if path in skip:
                    continue
                local = os.path.join(destination, *path.split("/"))
                pairs.append((self.layout.data(name, version, path), local))
                entries.append(entry)
                labels.append(f"{name}:{version}[{path}]")
        elif None in skip:
            return
        else:
            # a file asset published by modelkit has no entry at all in its meta
            pairs = [(self.layout.data(name, version), destination)]
            entries = [meta.file_entry]
            labels = [f"{name}:{version}"]

        def fetch_and_verify() -> None:
            # the destination's disk failures are the caller's to report (localdisk.py);
            # every file is hashed as it is written and checked before this returns
            with self.remote.errors(f"download {name}:{version}", local=destination):
                try:
                    download(
                        self.fs,
                        pairs,
                        callback=callback,
                        concurrency=self.concurrency,
                        entries=entries,
                        labels=labels,
                        block_size=meta.block_size,
                        retry=self.retry,
                    )
                except FileNotFoundError as err:
                    raise IntegrityError(
                        f"A file of {name}:{version} listed in its manifest is missing from "
                        f"{self.display_url}; the download was discarded. Republish the asset."
                    ) from err

        # each file is retried on transport errors; a body that still arrived short or
        # altered is downloaded once more before the version is refused (never installed)
        self.retry.call(
            fetch_and_verify, what=f"download {name}:{version}", transfer=True, only=IntegrityError
        )

    # -- listing (last: the method name shadows the builtin in annotations) ---------
    def list(self, prefix: str = "") -> Iterator[tuple[str, builtins.list[str]]]:
        """Every asset (under ``prefix``) and its committed versions, latest first.

        Versions come from the ``.meta`` objects (``walk``), so a stale index never hides one.
        """
        results: dict[str, builtins.list[str]] = {}
        for rel, entries in self.walk(prefix):
            versions = self._committed(entries)
            if rel and versions:
                results[rel] = versions
        for name in sorted(results):
            yield name, results[name]

    def walk(self, prefix: str = "") -> Iterator[tuple[str, builtins.list[dict[str, Any]]]]:
        """Each folder of the asset-name tree under ``prefix`` and its listing.

        The tree is walked one level at a time with concurrent delimited listings; hidden
        folders (claims) and the data folders of versions are not descended into.
        """
        prefix = prefix.strip("/")
        level = [prefix] if prefix else [""]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            while level:
                listings = builtins.list(pool.map(self._list_names_dir, level))
                level = []
                for rel, entries in listings:
                    yield rel, entries
                    versions = set(committed_versions(entries))
                    for entry in entries:
                        if entry["type"] != "directory":
                            continue
                        child = basename(entry["name"])
                        if (
                            child.startswith(".")
                            or child in versions
                            or (rel and self.versioning.is_valid(child))
                        ):
                            continue
                        level.append(f"{rel}/{child}" if rel else child)

    def _list_names_dir(self, rel: str) -> tuple[str, builtins.list[dict[str, Any]]]:
        path = self.layout.asset_dir(rel) if rel else self.layout.root
        return rel, self.remote.list(path, "list assets")
