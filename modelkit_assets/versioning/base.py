"""The protocol every versioning system follows (pure: no I/O)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

from modelkit_assets.errors import InvalidVersionError, VersioningOptionError


class VersioningSystem(ABC):
    """How versions look, sort, resolve and follow each other.

    A third-party system subclasses this and registers the class under the entry point
    group ``modelkit_assets.versioning``.
    """

    #: the name users select it by (``MODELKIT_ASSETS_VERSIONING_SYSTEM``)
    name: str = ""
    #: whether versions belong to majors: ``update NAME:MAJOR`` and ``--bump-major`` mean
    #: something only then (a system that sets it handles both in ``next``)
    has_majors: bool = False

    def check_update(self, *, major: str | None = None, bump_major: bool = False) -> None:
        """Refuse ``update`` options that mean nothing for this system, before any I/O.

        Raises
        ------
        VersioningOptionError
            For ``major`` or ``bump_major`` without majors, for both at once, or for a
            complete version given as ``major``.
        InvalidVersionError
            For a ``major`` that is no version of this system at all.
        """
        if not self.has_majors and (major is not None or bump_major):
            given = "--bump-major" if bump_major else f"`:{major}` (a major)"
            raise VersioningOptionError(
                f"{given} means nothing with {self.name} versioning (its versions have no major); "
                "run `update PATH NAME`, or choose major_minor versioning."
            )
        if major is not None and self.check(major) and self.is_complete(major):
            raise VersioningOptionError(
                f"`update` takes a major (NAME:MAJOR), not a complete version (`:{major}`): versions "
                "are never overwritten; run `update PATH NAME:MAJOR` or `update PATH NAME`."
            )
        if major is not None and bump_major:
            raise VersioningOptionError(
                f"give `:{major}` (the next minor of major {major}) or --bump-major (a new major), not both."
            )

    @abstractmethod
    def check(self, version: str) -> str:
        """Return ``version`` if it is a complete or partial version of this system.

        Raises
        ------
        InvalidVersionError
            If it is not.
        """

    @abstractmethod
    def sort_key(self, version: str) -> Any:
        """A key that orders versions from oldest to newest."""

    @abstractmethod
    def initial(self, taken: Iterable[str]) -> str:
        """The first version of a new asset (``taken`` are versions that cannot be used)."""

    @abstractmethod
    def next(self, versions: Iterable[str], *, major: str | None = None, bump_major: bool = False) -> str:
        """The version ``update`` publishes after the committed ``versions``."""

    @abstractmethod
    def following(self, version: str, *, bump_major: bool = False) -> str:
        """The candidate after ``version`` when ``version`` is taken by a concurrent writer."""

    def is_valid(self, version: str) -> bool:
        """Whether ``version`` is a complete version of this system."""
        try:
            self.check(version)
        except InvalidVersionError:
            return False
        return self.is_complete(version)

    def is_complete(self, version: str) -> bool:
        """Whether ``version`` names one version (not a family such as a major)."""
        return True

    def matches(self, partial: str, version: str) -> bool:
        """Whether the complete ``version`` belongs to the ``partial`` one."""
        return partial == version

    def sort(self, versions: Iterable[str]) -> list[str]:
        """Valid versions, latest first; invalid ones are dropped."""
        return sorted((v for v in set(versions) if self.is_valid(v)), key=self.sort_key, reverse=True)

    def latest(self, versions: Iterable[str], partial: str | None = None) -> str | None:
        """The latest of ``versions`` that matches ``partial`` (any when ``None``)."""
        for version in self.sort(versions):
            if partial is None or self.matches(partial, version):
                return version
        return None

    def groups(self, versions: Iterable[str]) -> dict[str, list[str]]:
        """Versions grouped for display, latest group first."""
        ordered = self.sort(versions)
        return {"all": ordered} if ordered else {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
