"""``AssetSpec``: parsing, formatting and the naming rules of G5 (pure: no store)."""

from __future__ import annotations

import contextlib
import string
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkit_assets.errors import (
    InvalidNameError,
    InvalidSpecError,
    InvalidSubPartError,
    InvalidVersionError,
)
from modelkit_assets.spec import (
    MAX_NAME_LENGTH,
    MAX_PATH_LENGTH,
    MAX_SEGMENT_LENGTH,
    MAX_VERSION_LENGTH,
    AssetSpec,
    check_relative_path,
)


@pytest.mark.parametrize(
    ("text", "name", "version", "sub_part"),
    [
        ("a", "a", None, None),
        ("nlp/tokenizer", "nlp/tokenizer", None, None),
        ("nlp/tokenizer:1", "nlp/tokenizer", "1", None),
        ("nlp/tokenizer:1.2", "nlp/tokenizer", "1.2", None),
        ("nlp/tokenizer:1.2[vocab.txt]", "nlp/tokenizer", "1.2", "vocab.txt"),
        ("nlp/tokenizer[sub/merges.txt]", "nlp/tokenizer", None, "sub/merges.txt"),
        ("a_b-c.d/E9", "a_b-c.d/E9", None, None),
        ("d:2024-05-01T12-00-00Z", "d", "2024-05-01T12-00-00Z", None),
        ("a:1.0[dir with space/f]", "a", "1.0", "dir with space/f"),
        ("a[x]y]", "a", None, "x]y"),
    ],
)
def test_parse_and_format(text: str, name: str, version: str | None, sub_part: str | None) -> None:
    spec = AssetSpec.parse(text)
    assert (spec.name, spec.version, spec.sub_part) == (name, version, sub_part)
    assert str(spec) == text
    assert AssetSpec.parse(str(spec)) == spec


def test_trailing_slash_of_a_sub_part_is_dropped() -> None:
    assert AssetSpec.parse("a:1.0[sub/]").sub_part == "sub"


def test_with_version_pins_and_keeps_the_rest() -> None:
    spec = AssetSpec.parse("a:1[x/y]").with_version("1.3")
    assert str(spec) == "a:1.3[x/y]"


@pytest.mark.parametrize(
    ("text", "error", "match"),
    [
        ("", InvalidNameError, "empty"),
        (":1.0", InvalidNameError, "empty"),
        ("/abs", InvalidNameError, "empty segment"),
        ("a/", InvalidNameError, "empty segment"),
        ("a//b", InvalidNameError, "empty segment"),
        ("../etc", InvalidNameError, "does not start with `.`"),
        ("a/../b", InvalidNameError, "does not start with `.`"),
        ("a/./b", InvalidNameError, "does not start with `.`"),
        (".hidden", InvalidNameError, "does not start with `.`"),
        ("a/.claims", InvalidNameError, "does not start with `.`"),
        ("a\\b", InvalidNameError, "segment uses only"),
        ("a\x00b", InvalidNameError, "segment uses only"),
        ("a b", InvalidNameError, "segment uses only"),
        ("caf\u00e9", InvalidNameError, "segment uses only"),
        ("a\nb", InvalidNameError, "segment uses only"),
        ("x" * (MAX_NAME_LENGTH + 1), InvalidNameError, "limit"),
        ("x" * (MAX_SEGMENT_LENGTH + 1), InvalidNameError, "segment is"),
        # modelkit 0.1.3 refuses these (it could not fetch what we published)
        ("_", InvalidNameError, "start and end with a letter or a digit"),
        ("a_", InvalidNameError, "start and end with a letter or a digit"),
        ("_a", InvalidNameError, "start and end with a letter or a digit"),
        ("a/b-", InvalidNameError, "start and end with a letter or a digit"),
        ("a:", InvalidVersionError, "Version is empty"),
        ("a::1", InvalidVersionError, "not valid"),
        ("a:1/2", InvalidVersionError, "not valid"),
        ("a:../1", InvalidVersionError, "not valid"),
        ("a:.1", InvalidVersionError, "starting with a letter or digit"),
        ("a:1 2", InvalidVersionError, "not valid"),
        ("a:1\x00", InvalidVersionError, "not valid"),
        ("a:" + "1" * (MAX_VERSION_LENGTH + 1), InvalidVersionError, "limit"),
        ("a[]", InvalidSubPartError, "empty"),
        ("a[/]", InvalidSubPartError, "absolute"),
        ("a[/etc/passwd]", InvalidSubPartError, "absolute"),
        ("a[../x]", InvalidSubPartError, "`..`"),
        ("a[x/../../y]", InvalidSubPartError, "`..`"),
        ("a[x/./y]", InvalidSubPartError, "`.`"),
        ("a[x//y]", InvalidSubPartError, "empty"),
        ("a[..]", InvalidSubPartError, "`..`"),
        ("a[x\\y]", InvalidSubPartError, "`\\\\`"),
        ("a[x\x00y]", InvalidSubPartError, "control character"),
        ("a[x\ny]", InvalidSubPartError, "control character"),
        ("a[x\u200by]", InvalidSubPartError, "control character"),
        ("a[cafe\u0301]", InvalidSubPartError, "NFC"),
        ("a[" + "x" * (MAX_PATH_LENGTH + 1) + "]", InvalidSubPartError, "limit"),
        ("a[x", InvalidSpecError, "name\\[:version\\]"),
        ("a]x", InvalidSpecError, "name\\[:version\\]"),
        ("a[x]y", InvalidSpecError, "name\\[:version\\]"),
        ("a:1[x]:2", InvalidSpecError, "name\\[:version\\]"),
        ("a[x][y", InvalidSpecError, "name\\[:version\\]"),
    ],
)
def test_bad_specs_raise_the_specific_error(text: str, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match) as info:
        AssetSpec.parse(text)
    # the parse error is never the generic class when a specific part is at fault
    assert type(info.value) is error
    assert isinstance(info.value, InvalidSpecError)
    assert isinstance(info.value, ValueError)


def test_messages_name_the_offending_value() -> None:
    with pytest.raises(InvalidNameError, match=r"'a\\\\b'"):
        AssetSpec.parse("a\\b")
    with pytest.raises(InvalidVersionError, match="'x/y'"):
        AssetSpec.parse("a:x/y")
    with pytest.raises(InvalidSubPartError, match=r"'\.\./x'"):
        AssetSpec.parse("a[../x]")


@pytest.mark.parametrize("value", [None, 1, b"a:1.0", ["a"]])
def test_parse_rejects_non_strings(value: object) -> None:
    with pytest.raises(InvalidSpecError, match="is a string"):
        AssetSpec.parse(value)  # type: ignore[arg-type]


def test_constructor_checks_as_much_as_parse() -> None:
    with pytest.raises(InvalidNameError):
        AssetSpec("../x")
    with pytest.raises(InvalidVersionError):
        AssetSpec("a", "../1")
    with pytest.raises(InvalidSubPartError):
        AssetSpec("a", "1.0", "/etc/passwd")


@pytest.mark.parametrize("path", ["a", "a/b/c.txt", "x y/z", "é/ü.bin", "a]b", "a:b", "-x", "a..b"])
def test_relative_paths_accepted(path: str) -> None:
    assert check_relative_path(path) == path


# -- properties -------------------------------------------------------------------------

_SEGMENT_CHARS = string.ascii_letters + string.digits + "._-"
segments = st.text(_SEGMENT_CHARS, min_size=1, max_size=12).filter(lambda s: not s.startswith("."))
names = (
    st.lists(segments, min_size=1, max_size=4)
    .map("/".join)
    .filter(lambda n: n[0].isalnum() and n[-1].isalnum())  # modelkit's rule too
)
versions = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 10**6), st.integers(0, 10**6)),
    st.integers(0, 10**6).map(str),
    st.text(_SEGMENT_CHARS, min_size=1, max_size=20).filter(lambda s: s[0] not in "._-"),
)
_PATH_CHARS = st.characters(
    blacklist_categories=("Cc", "Cf", "Cs", "Zl", "Zp", "Co", "Cn"), blacklist_characters="/\\"
)
path_segments = (
    st.text(_PATH_CHARS, min_size=1, max_size=10)
    .map(lambda s: unicodedata.normalize("NFC", s))
    .filter(lambda s: s not in (".", ".."))
)
sub_parts = st.lists(path_segments, min_size=1, max_size=4).map("/".join)


@given(names, st.none() | versions, st.none() | sub_parts)
def test_format_then_parse_round_trips(name: str, version: str | None, sub_part: str | None) -> None:
    spec = AssetSpec(name, version, sub_part)
    assert AssetSpec.parse(str(spec)) == spec


@given(st.text(max_size=60))
def test_any_text_parses_or_raises_an_invalid_spec_error(text: str) -> None:
    try:
        spec = AssetSpec.parse(text)
    except InvalidSpecError:
        return
    # what parses is safe: no segment can climb out, nothing is absolute
    assert ".." not in spec.name.split("/")
    assert not spec.name.startswith("/")
    if spec.sub_part is not None:
        assert not spec.sub_part.startswith("/")
        assert ".." not in spec.sub_part.split("/")
    assert AssetSpec.parse(str(spec)) == spec


@given(st.text(alphabet=st.sampled_from("ab./\\:[]\x00 .."), max_size=30))
def test_spec_like_text_parses_or_raises_an_invalid_spec_error(text: str) -> None:
    with contextlib.suppress(InvalidSpecError):
        AssetSpec.parse(text)
