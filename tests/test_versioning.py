"""Versioning systems: modelkit's semantics for ``major_minor`` and ``simple_date``, the
entry point plugins, and properties of the order (pure, except the store examples)."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkit_assets import AssetsManager, AssetStore
from modelkit_assets.errors import (
    InvalidVersionError,
    UnknownVersioningSystemError,
    VersionNotFoundError,
)
from modelkit_assets.versioning import (
    ENTRY_POINT_GROUP,
    MajorMinor,
    SimpleDate,
    _plugins,
    available,
    get_versioning,
)

MM = MajorMinor()


# -- major_minor: every example of the issue --------------------------------------------
def test_new_gives_0_0() -> None:
    assert MM.initial([]) == "0.0"
    assert MM.next([]) == "0.0"


def test_update_bumps_the_minor_of_the_latest_major() -> None:
    assert MM.next(["0.1", "1.1"]) == "1.2"


def test_bump_major_starts_the_next_major() -> None:
    assert MM.next(["0.1", "1.0"], bump_major=True) == "2.0"


def test_update_of_a_given_major_bumps_its_minor() -> None:
    assert MM.next(["0.1", "1.0"], major="0") == "0.2"


def test_partial_version_resolves_to_the_latest_of_its_major() -> None:
    versions = ["0.1", "1.0", "1.3", "1.10", "1.9", "2.0"]
    assert MM.latest(versions, "1") == "1.10"
    assert MM.latest(versions, "0") == "0.1"
    assert MM.latest(versions, "1.3") == "1.3"
    assert MM.latest(versions, "3") is None
    assert MM.latest(versions) == "2.0"


def test_order_is_numeric() -> None:
    assert MM.sort(["1.9", "1.10", "0.100", "10.0", "2.0"]) == ["10.0", "2.0", "1.10", "1.9", "0.100"]
    assert MM.sort_key("1.10") > MM.sort_key("1.9")


def test_sort_drops_what_is_not_a_complete_version() -> None:
    assert MM.sort(["1.0", "1", "latest", "01.2", "1.0"]) == ["1.0"]


def test_update_of_a_missing_major_says_to_bump() -> None:
    with pytest.raises(VersionNotFoundError, match="--bump-major"):
        MM.next(["0.1", "1.0"], major="3")


def test_update_takes_a_major_not_a_full_version() -> None:
    with pytest.raises(InvalidVersionError, match="takes a major"):
        MM.next(["0.1"], major="0.1")


def test_following_skips_a_taken_candidate() -> None:
    assert MM.following("1.2") == "1.3"
    assert MM.following("1.2", bump_major=True) == "2.0"


@pytest.mark.parametrize(
    "bad", ["", "01", "1.", ".1", "1.2.3", "a", "-1", "1.-1", "1.02", "1e3", " 1.0", "\u0661.\u0662"]
)
def test_major_minor_rejects(bad: str) -> None:
    with pytest.raises(InvalidVersionError, match="major_minor") as info:
        MM.check(bad)
    assert repr(bad) in str(info.value)
    assert not MM.is_valid(bad)


def test_partial_and_complete() -> None:
    assert MM.check("1") == "1"
    assert not MM.is_complete("1")
    assert MM.is_complete("1.0")
    assert MM.matches("1", "1.4") and not MM.matches("1", "11.4")
    assert MM.groups(["0.1", "1.0", "1.1", "0.0"]) == {"1": ["1.1", "1.0"], "0": ["0.1", "0.0"]}


# -- the examples on a real store (memory and local disk) --------------------------------
def test_examples_on_a_store(store: AssetStore, sample_file: Path) -> None:
    assert store.new(sample_file, "a") == "0.0"
    assert store.update(sample_file, "a") == "0.1"
    assert store.update(sample_file, "a", bump_major=True) == "1.0"
    assert store.update(sample_file, "a") == "1.1"
    assert store.update(sample_file, "a") == "1.2"  # update on 0.1, 1.1 (and 0.0, 1.0)
    assert store.update(sample_file, "a:0") == "0.2"
    assert store.update(sample_file, "a", bump_major=True) == "2.0"
    assert store.update(sample_file, "a:1") == "1.3"
    assert store.resolve("a:1") == "1.3"
    assert store.resolve("a") == "2.0"
    with pytest.raises(VersionNotFoundError, match="--bump-major"):
        store.update(sample_file, "a:7")


def test_1_10_is_later_than_1_9_on_a_store(
    store: AssetStore, manager: AssetsManager, sample_file: Path
) -> None:
    store.new(sample_file, "a")
    store.update(sample_file, "a", bump_major=True)
    for _ in range(10):
        store.update(sample_file, "a")
    assert store.versions("a")[:3] == ["1.10", "1.9", "1.8"]
    assert store.resolve("a:1") == "1.10"
    assert manager.fetch_info("a:1").version == "1.10"


# -- simple_date ----------------------------------------------------------------------
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, 654321, tzinfo=dt.UTC)


def fixed(moment: dt.datetime = T0) -> SimpleDate:
    return SimpleDate(clock=lambda: moment)


def test_simple_date_new_is_the_utc_second() -> None:
    assert fixed().initial([]) == "2024-05-01T12-00-00Z"


def test_simple_date_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")  # UTC+14: the date differs from UTC's
    time.tzset()
    try:
        assert time.localtime().tm_gmtoff == 14 * 3600
        before = dt.datetime.now(dt.UTC).replace(microsecond=0)
        version = SimpleDate().initial([])
        after = dt.datetime.now(dt.UTC)
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    moment = dt.datetime.strptime(version, "%Y-%m-%dT%H-%M-%SZ").replace(tzinfo=dt.UTC)
    assert before <= moment <= after


def test_two_publishes_in_one_second_take_the_next_free_second() -> None:
    system = fixed()
    first = system.initial([])
    second = system.next([first])
    third = system.next([first, second])
    assert (first, second, third) == ("2024-05-01T12-00-00Z", "2024-05-01T12-00-01Z", "2024-05-01T12-00-02Z")


def test_simple_date_never_goes_back_when_the_clock_does() -> None:
    assert fixed().next(["2030-01-01T00-00-00Z"]) == "2030-01-01T00-00-01Z"


def test_simple_date_has_no_major() -> None:
    with pytest.raises(InvalidVersionError, match="no major"):
        fixed().next(["2024-05-01T12-00-00Z"], major="2024")


@pytest.mark.parametrize("bad", ["2024-05-01", "2024-05-01T12:00:00Z", "2024-5-01T00-00-00Z", "0.0", ""])
def test_simple_date_rejects(bad: str) -> None:
    with pytest.raises(InvalidVersionError, match=repr(bad)):
        SimpleDate().check(bad)


@pytest.mark.parametrize("odd", ["2024-13-01T00-00-00Z", "2024-02-30T00-00-00Z", "0000-00-00T00-00-00Z"])
def test_simple_date_reads_what_modelkit_accepts_but_never_makes_it(odd: str) -> None:
    """modelkit checks the form only, so its stores may hold such versions: we list,
    sort and fetch them; what we publish is always a real time, and nothing follows an
    unreal latest version (the error says so)."""
    assert SimpleDate().check(odd) == odd
    assert SimpleDate().is_valid(odd)
    assert SimpleDate().sort(["2024-05-01T12-00-00Z", odd]) == sorted(["2024-05-01T12-00-00Z", odd])[::-1]
    with pytest.raises(InvalidVersionError, match="not a real date"):
        SimpleDate().following(odd)


def test_simple_date_on_a_store_in_one_second(
    store_url: tuple[str, dict[str, object]], sample_file: Path
) -> None:
    url, options = store_url
    store = AssetStore(url, options, versioning=fixed())
    published = [store.new(sample_file, "d")] + [store.update(sample_file, "d") for _ in range(3)]
    assert published == [f"2024-05-01T12-00-0{i}Z" for i in range(4)]
    assert store.versions("d") == published[::-1]
    assert store.resolve("d") == published[-1]


# -- plugins --------------------------------------------------------------------------
PLUGIN = '''
from modelkit_assets.versioning.base import VersioningSystem
from modelkit_assets.errors import InvalidVersionError


class Counter(VersioningSystem):
    """Versions 1, 2, 3, ..."""

    name = "counter"

    def check(self, version):
        if not version.isdigit() or version.startswith("0"):
            raise InvalidVersionError(f"Version {version!r} is not a counter version.")
        return version

    def sort_key(self, version):
        return int(version)

    def initial(self, taken):
        return "1"

    def next(self, versions, *, major=None, bump_major=False):
        ordered = self.sort(versions)
        return str(int(ordered[0]) + 1) if ordered else "1"

    def following(self, version, *, bump_major=False):
        return str(int(version) + 1)


NOT_A_SYSTEM = 42
'''


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A tiny installed distribution declaring entry points, put on ``sys.path``."""
    site = tmp_path / "site"
    dist_info = site / "fake_versioning-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (site / "fake_versioning.py").write_text(PLUGIN)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-versioning\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""\
            [{ENTRY_POINT_GROUP}]
            counter = fake_versioning:Counter
            broken = fake_versioning_missing:Nope
            not_a_system = fake_versioning:NOT_A_SYSTEM
            """
        )
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    _plugins.cache_clear()
    yield
    _plugins.cache_clear()
    sys.modules.pop("fake_versioning", None)


@pytest.mark.usefixtures("plugin")
def test_plugin_is_found_through_its_entry_point(tmp_path: Path, sample_file: Path) -> None:
    assert {"counter", "broken", "major_minor", "simple_date"} <= set(available())
    system = get_versioning("counter")
    assert type(system).__name__ == "Counter"
    store = AssetStore(f"memory://plugin{tmp_path.name}", versioning="counter")
    assert store.new(sample_file, "p") == "1"
    assert store.update(sample_file, "p") == "2"
    assert store.versions("p") == ["2", "1"]
    manager = AssetsManager(store, tmp_path / "assets")
    assert manager.fetch("p:2").read_bytes() == sample_file.read_bytes()


@pytest.mark.usefixtures("plugin")
def test_a_broken_plugin_fails_only_when_chosen() -> None:
    assert get_versioning("counter").name == "counter"
    with pytest.raises(UnknownVersioningSystemError, match=r"'broken'.*failed to load"):
        get_versioning("broken")
    with pytest.raises(UnknownVersioningSystemError, match="not a subclass"):
        get_versioning("not_a_system")


def test_unknown_system_lists_the_choices() -> None:
    with pytest.raises(UnknownVersioningSystemError, match="major_minor, simple_date"):
        get_versioning("semver")


def test_default_is_major_minor() -> None:
    assert get_versioning().name == "major_minor"
    assert get_versioning(None).name == get_versioning("major_minor").name


# -- properties -----------------------------------------------------------------------
mm_versions = st.builds(lambda a, b: f"{a}.{b}", st.integers(0, 30), st.integers(0, 30))
mm_sets = st.lists(mm_versions, min_size=1, max_size=15)


def _tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


@given(mm_sets)
def test_sort_is_the_numeric_total_order(versions: list[str]) -> None:
    ordered = MM.sort(versions)
    assert [_tuple(v) for v in ordered] == sorted({_tuple(v) for v in versions}, reverse=True)


@given(mm_sets, st.booleans())
def test_update_always_gives_a_new_later_version(versions: list[str], bump_major: bool) -> None:
    following = MM.next(versions, bump_major=bump_major)
    assert following not in versions
    assert MM.sort_key(following) > max(MM.sort_key(v) for v in versions)
    assert MM.sort([*versions, following])[0] == following
    if bump_major:
        assert following.endswith(".0")


@given(mm_sets, st.data())
def test_update_of_a_major_stays_in_it_and_is_its_latest(versions: list[str], data: st.DataObject) -> None:
    major = data.draw(st.sampled_from(sorted({v.split(".")[0] for v in versions})))
    following = MM.next(versions, major=major)
    assert following not in versions
    assert following.split(".")[0] == major
    assert MM.latest([*versions, following], major) == following


@given(mm_versions, st.booleans())
def test_following_is_later(version: str, bump_major: bool) -> None:
    assert MM.sort_key(MM.following(version, bump_major=bump_major)) > MM.sort_key(version)


moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(dt.UTC)
)


@given(st.lists(moments, max_size=10), moments)
def test_simple_date_update_is_new_later_and_not_before_now(
    taken: list[dt.datetime], now: dt.datetime
) -> None:
    system = fixed(now)
    versions = [m.strftime("%Y-%m-%dT%H-%M-%SZ") for m in taken]
    following = system.next(versions)
    assert following not in versions
    assert system.sort([*versions, following])[0] == following
    assert following >= now.strftime("%Y-%m-%dT%H-%M-%SZ")
    assert system.following(following) > following


@given(st.text(max_size=20))
def test_checks_raise_only_invalid_version_errors(text: str) -> None:
    for system in (MM, SimpleDate()):
        try:
            system.check(text)
        except InvalidVersionError:
            continue
        assert system.sort_key(text) is not None
