"""Asset specs: ``name[:version][[sub/part]]`` or ``name@alias[[sub/part]]``, parsed and
formatted without any I/O.

The rules (DESIGN.md, G5) are checked here once, so that no name, version or sub-part
that reaches the store or the cache can point outside of them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from modelkit_assets.errors import (
    InvalidNameError,
    InvalidSpecError,
    InvalidSubPartError,
    InvalidVersionError,
)

MAX_NAME_LENGTH = 512
MAX_SEGMENT_LENGTH = 200
MAX_VERSION_LENGTH = 128
MAX_PATH_LENGTH = 1024

_NAME_SEGMENT_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
_ALNUM_RE = re.compile(r"[A-Za-z0-9]")
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ALIAS_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
MAX_ALIAS_LENGTH = 64
_SPEC_RE = re.compile(
    r"(?P<name>[^:@\[\]]*)(?:@(?P<alias>[^:\[\]]*))?(?::(?P<version>[^\[\]]*))?(?:\[(?P<sub_part>.*)\])?",
    re.S,
)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid asset name.

    Raises
    ------
    InvalidNameError
        If a segment is empty, starts with ``.``, holds a character outside
        ``[A-Za-z0-9._-]``, or the name is too long.
    """
    if not name:
        raise InvalidNameError("Asset name is empty: give a name such as `nlp/tokenizer`.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(f"Asset name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}.")
    for segment in name.split("/"):
        if not segment:
            raise InvalidNameError(
                f"Asset name {name!r} has an empty segment (leading, trailing or double `/`)."
            )
        if len(segment) > MAX_SEGMENT_LENGTH:
            raise InvalidNameError(
                f"Asset name segment is {len(segment)} characters long; the limit is {MAX_SEGMENT_LENGTH}."
            )
        if not _NAME_SEGMENT_RE.fullmatch(segment):
            raise InvalidNameError(
                f"Asset name {name!r} is not valid: each `/`-separated segment uses only "
                "A-Z, a-z, 0-9, `.`, `_` and `-`, and does not start with `.`."
            )
    if not (_ALNUM_RE.match(name[0]) and _ALNUM_RE.match(name[-1])):
        # modelkit 0.1.3 refuses such names: it could never fetch what we published
        raise InvalidNameError(
            f"Asset name {name!r} is not valid: it must start and end with a letter or a digit."
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` if it is a valid alias name (``prod``, ``champion``, ``staging-eu``).

    Raises
    ------
    InvalidSpecError
        If it is empty, too long, or not a letter followed by ``[A-Za-z0-9_-]``.
    """
    if not alias or len(alias) > MAX_ALIAS_LENGTH or not _ALIAS_RE.fullmatch(alias):
        raise InvalidSpecError(
            f"Alias {alias!r} is not valid: start with a letter, then use A-Z, a-z, 0-9, `_` and `-` "
            f"(at most {MAX_ALIAS_LENGTH} characters), e.g. `prod`."
        )
    return alias


def check_version_syntax(version: str) -> str:
    """Return ``version`` if its characters are acceptable to any versioning system.

    Raises
    ------
    InvalidVersionError
        If the version is empty, too long or uses other characters than ``[A-Za-z0-9._-]``.
    """
    if not version:
        raise InvalidVersionError("Version is empty: drop the `:` or give a version such as `1.2`.")
    if len(version) > MAX_VERSION_LENGTH:
        raise InvalidVersionError(
            f"Version is {len(version)} characters long; the limit is {MAX_VERSION_LENGTH}."
        )
    if not _VERSION_RE.fullmatch(version):
        raise InvalidVersionError(
            f"Version {version!r} is not valid: use A-Z, a-z, 0-9, `.`, `_` and `-`, "
            "starting with a letter or digit (e.g. `1.2`)."
        )
    return version


def check_relative_path(path: str, *, what: str = "path") -> str:
    """Return ``path`` if it is a safe relative ``/``-separated path inside a version.

    Used for sub-parts, manifest entries and source files alike.

    Raises
    ------
    InvalidSubPartError
        If the path is absolute, empty, holds ``..``, ``.``, an empty segment, ``\\``,
        NUL or another control character, or is not in Unicode NFC form.
    """
    if not path:
        raise InvalidSubPartError(f"The {what} is empty.")
    if len(path) > MAX_PATH_LENGTH:
        raise InvalidSubPartError(
            f"The {what} is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}."
        )
    if path.startswith("/"):
        raise InvalidSubPartError(f"The {what} {path!r} is absolute; give a path inside the asset.")
    if "\\" in path:
        raise InvalidSubPartError(f"The {what} {path!r} contains `\\`; separate folders with `/`.")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in path):
        raise InvalidSubPartError(f"The {what} {path!r} contains a control character.")
    if unicodedata.normalize("NFC", path) != path:
        raise InvalidSubPartError(f"The {what} {path!r} is not in Unicode NFC form; rename it so that it is.")
    for segment in path.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidSubPartError(
                f"The {what} {path!r} contains an empty, `.` or `..` segment; it must stay inside the asset."
            )
    return path


@dataclass(frozen=True)
class AssetSpec:
    """A reference to an asset: ``name[:version][[sub/part]]`` or ``name@alias[[sub/part]]``.

    ``version`` may be partial (``1`` for the latest ``1.*``) or missing (the latest);
    ``alias`` names the version an alias of the asset points to (aliases.py), resolved
    in the store. Validation of the version against a versioning system happens where
    the system is known (``AssetStore``, ``AssetsManager``); here only its characters are
    checked.
    """

    name: str
    version: str | None = None
    sub_part: str | None = None
    alias: str | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.version is not None:
            check_version_syntax(self.version)
        if self.alias is not None:
            check_alias(self.alias)
            if self.version is not None:
                raise InvalidSpecError(
                    f"{self.name}@{self.alias}:{self.version} names both an alias and a version; give one."
                )
        if self.sub_part is not None:
            check_relative_path(self.sub_part, what="sub-part")

    @classmethod
    def parse(cls, text: str) -> AssetSpec:
        """Parse ``name[:version][[sub/part]]``.

        Raises
        ------
        InvalidSpecError
            With a message that names the part that is wrong.
        """
        if not isinstance(text, str):
            raise InvalidSpecError(f"An asset spec is a string, not {type(text).__name__}.")
        match = _SPEC_RE.fullmatch(text)
        if match is None:
            raise InvalidSpecError(
                f"Asset spec {text!r} is not valid: write `name[:version][[sub/part]]`, "
                "e.g. `nlp/tokenizer:1.2[vocab.txt]`."
            )
        sub_part = match["sub_part"]
        if sub_part is not None:
            sub_part = sub_part.rstrip("/") if sub_part.rstrip("/") else sub_part
        return cls(name=match["name"], version=match["version"], sub_part=sub_part, alias=match["alias"])

    def with_version(self, version: str) -> AssetSpec:
        """Return the same spec pinned to ``version`` (an alias resolved)."""
        return AssetSpec(self.name, version, self.sub_part)

    def __str__(self) -> str:
        text = self.name
        if self.alias is not None:
            text += f"@{self.alias}"
        if self.version is not None:
            text += f":{self.version}"
        if self.sub_part is not None:
            text += f"[{self.sub_part}]"
        return text
