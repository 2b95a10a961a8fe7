"""The only place remote keys and local cache paths are built (pure: no I/O).

Remote layout, relative to the store root (modelkit 0.1.3's, plus hidden claims)::

    {root}/{name}.versions              {"versions": [...]}, latest first: an index for modelkit
    {root}/{name}/{version}             a file asset's bytes
    {root}/{name}/{version}/{path}      a directory asset: one object per file
    {root}/{name}/{version}.meta        the commit: JSON manifest, created exclusively, last
    {root}/{name}/.claims/{version}/{n:06d}  who is publishing {version} (attempt n); invisible
                                        to modelkit, whose listings only read ``.versions``
    {root}/{name}/.claims/.new/{n:06d}  who is creating {name} (``new``); see claims.py
    {root}/{name}/.signatures/{version}/{key hex}.sig
                                        a publisher's signature of {version} (signing.py),
                                        created exclusively before the commit; invisible to
                                        modelkit like the claims
    {root}/{name}/.aliases/{alias}/{n:06d}
                                        move n of an alias (aliases.py): created exclusively,
                                        the highest n is the alias's value
    {root}/{name}/.retired-{version}/tombstone
                                        {version} is retired (retention.py): its number is never
                                        used again; one dot-folder per version, so the listing
                                        of {name}/ that finds the metas finds them too

Local assets dir (modelkit's layout, so both tools can share it)::

    {dir}/{name}/{version}              a file asset, or a directory asset's folder
    {dir}/{name}/.{version}.SUCCESS     marker of a complete file asset
    {dir}/{name}/{version}/.SUCCESS     marker of a complete directory asset
    {dir}/.cache/{name}.lock            one lock per asset (modelkit's path)
    {dir}/.cache/staging/{name with / as __}@{version}-{uuid}/
                                        downloads in progress, renamed into place once verified
    {dir}/.cache/manifests/{name}/{version}.meta   copy of the version's manifest (verify, sync)
    {dir}/.cache/leases/{name}/{version}.lease     shared lock of processes using the version (prune)
    {dir}/.cache/signers/{name}/{version}/{key hex}@{inode}-{ctime_ns}
                                        the trusted key that verified the installed version
                                        (empty file; names the install it vouches for)
    {dir}/.cache/.blobs/{sha[:2]}/{sha256}   each verified file content once (blobs.py): the
                                        versions' files are read-only hard links to it
    {dir}/.cache/.blob-locks/{sha[:2]}/{sha256}.lock   held while a fetch downloads it
    {dir}/.cache/.blocks/{sha256}/{index:08d}          verified blocks kept by lazy reads
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

META_SUFFIX = ".meta"
VERSIONS_SUFFIX = ".versions"
CLAIMS_DIR = ".claims"
SIGNATURES_DIR = ".signatures"
ALIASES_DIR = ".aliases"
RETIRED_PREFIX = ".retired-"
TOMBSTONE_NAME = "tombstone"
SIGNATURE_SUFFIX = ".sig"
SUCCESS_NAME = ".SUCCESS"
CACHE_DIR = ".cache"
STAGING_DIR = "staging"
MANIFESTS_DIR = "manifests"
LEASES_DIR = "leases"
LEASE_SUFFIX = ".lease"
SIGNERS_DIR = "signers"


def committed_versions(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The versions committed in a listing of ``{root}/{name}/``: one per ``{version}.meta``
    object, in listing order (sort them with the versioning system)."""
    return [
        e["name"].rstrip("/").rsplit("/", 1)[-1][: -len(META_SUFFIX)]
        for e in entries
        if e["type"] == "file" and e["name"].endswith(META_SUFFIX)
    ]


def retired_versions(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The versions retired in a listing of ``{root}/{name}/``: one ``.retired-{version}/``
    folder each."""
    found = []
    for e in entries:
        base = e["name"].rstrip("/").rsplit("/", 1)[-1]
        if e["type"] == "directory" and base.startswith(RETIRED_PREFIX):
            found.append(base[len(RETIRED_PREFIX) :])
    return found


def join(*parts: str) -> str:
    """Join key parts with ``/``, ignoring empty parts (a store at the bucket root)."""
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


class RemoteLayout:
    """Keys of one store root (``root`` is the fsspec path without protocol)."""

    def __init__(self, root: str) -> None:
        self.root = root.rstrip("/") if root not in ("", "/") else root

    def _key(self, *parts: str) -> str:
        key = join(self.root, *parts)
        # keep an absolute root absolute (local disk, memory)
        return "/" + key if self.root.startswith("/") else key

    def asset_dir(self, name: str) -> str:
        return self._key(name)

    def versions_index(self, name: str) -> str:
        return self._key(name + VERSIONS_SUFFIX)

    def data(self, name: str, version: str, path: str | None = None) -> str:
        return self._key(name, version, path or "")

    def meta(self, name: str, version: str) -> str:
        return self._key(name, version + META_SUFFIX)

    def claims_dir(self, name: str, version: str | None = None) -> str:
        return self._key(name, CLAIMS_DIR, version or "")

    def claim(self, name: str, version: str, attempt: int) -> str:
        return self._key(name, CLAIMS_DIR, version, f"{attempt:06d}")

    def signatures_dir(self, name: str, version: str | None = None) -> str:
        return self._key(name, SIGNATURES_DIR, version or "")

    def signature(self, name: str, version: str, fingerprint: str) -> str:
        """The object of ``fingerprint``'s (``sha256:<hex>``) signature of a version."""
        return self._key(
            name, SIGNATURES_DIR, version, fingerprint.removeprefix("sha256:") + SIGNATURE_SUFFIX
        )

    def aliases_dir(self, name: str, alias: str | None = None) -> str:
        return self._key(name, ALIASES_DIR, alias or "")

    def alias_move(self, name: str, alias: str, seq: int) -> str:
        return self._key(name, ALIASES_DIR, alias, f"{seq:06d}")

    def tombstone(self, name: str, version: str) -> str:
        return self._key(name, RETIRED_PREFIX + version, TOMBSTONE_NAME)

    def relative(self, key: str) -> str:
        """``key`` relative to the root (keys outside the root are returned unchanged)."""
        key = key.rstrip("/")
        root = self.root.strip("/")
        stripped = key.lstrip("/")
        if not root:
            return stripped
        if stripped.startswith(root + "/"):
            return stripped[len(root) + 1 :]
        return key


class CacheLayout:
    """Paths of one local assets dir."""

    def __init__(self, assets_dir: str | os.PathLike[str]) -> None:
        self.assets_dir = Path(assets_dir)

    def asset_dir(self, name: str) -> Path:
        return self.assets_dir.joinpath(*name.split("/"))

    def version_path(self, name: str, version: str) -> Path:
        return self.asset_dir(name) / version

    def file_marker(self, name: str, version: str) -> Path:
        return self.asset_dir(name) / f".{version}{SUCCESS_NAME}"

    def dir_marker(self, name: str, version: str) -> Path:
        return self.version_path(name, version) / SUCCESS_NAME

    def lock(self, name: str) -> Path:
        parts = name.split("/")
        return self.assets_dir.joinpath(CACHE_DIR, *parts[:-1], parts[-1] + ".lock")

    def staging_root(self) -> Path:
        return self.assets_dir / CACHE_DIR / STAGING_DIR

    def manifest(self, name: str, version: str) -> Path:
        return self.assets_dir.joinpath(CACHE_DIR, MANIFESTS_DIR, *name.split("/"), version + META_SUFFIX)

    def lease(self, name: str, version: str) -> Path:
        return self.assets_dir.joinpath(CACHE_DIR, LEASES_DIR, *name.split("/"), version + LEASE_SUFFIX)

    def alias_seen(self, name: str, alias: str) -> Path:
        """The last value of ``name@alias`` read from the store (offline resolution)."""
        return self.assets_dir.joinpath(CACHE_DIR, ALIASES_DIR.lstrip("."), *name.split("/"), alias + ".json")

    def signers(self, name: str, version: str) -> Path:
        return self.assets_dir.joinpath(CACHE_DIR, SIGNERS_DIR, *name.split("/"), version)

    def local_path(self, name: str, version: str, sub_part: str | None = None) -> Path:
        path = self.version_path(name, version)
        return path.joinpath(*sub_part.split("/")) if sub_part else path
