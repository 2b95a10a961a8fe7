"""Options that mean nothing for the versioning system in use are refused, not ignored.

``update --bump-major`` and ``update NAME:MAJOR`` only make sense for a system whose versions
belong to majors (``major_minor``); with ``simple_date`` (or a plugin without majors) they
used to be accepted silently. Both together contradict each other. The library raises
``VersioningOptionError`` before any I/O; the CLI reports a usage error (exit 2).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from modelkit_assets import AssetStore
from modelkit_assets.cli.app import app
from modelkit_assets.errors import InvalidVersionError, VersioningOptionError
from modelkit_assets.versioning import MajorMinor, SimpleDate, VersioningSystem


class Counter(VersioningSystem):
    """A plugin-like system without majors: 1, 2, 3..."""

    name = "counter"

    def check(self, version: str) -> str:
        int(version)
        return version

    def sort_key(self, version: str) -> Any:
        return int(version)

    def initial(self, taken: Iterable[str]) -> str:
        return "1"

    def next(self, versions: Iterable[str], *, major: str | None = None, bump_major: bool = False) -> str:
        return str(max((int(v) for v in versions), default=0) + 1)

    def following(self, version: str, *, bump_major: bool = False) -> str:
        return str(int(version) + 1)


@pytest.mark.parametrize("system", [SimpleDate(), Counter()])
@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"bump_major": True}, "--bump-major"),
        ({"major": "1"}, "`:1`"),
        ({"major": "1", "bump_major": True}, ""),
    ],
)
def test_systems_without_majors_refuse_major_options(
    system: VersioningSystem, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(
        VersioningOptionError, match=rf"{named}.* means nothing with {system.name} versioning"
    ):
        system.check_update(**options)
    system.check_update()  # plain update is fine


def test_major_minor_takes_one_major_option_at_a_time() -> None:
    mm = MajorMinor()
    mm.check_update(major="1")
    mm.check_update(bump_major=True)
    with pytest.raises(VersioningOptionError, match=r"give `:0` .* or --bump-major .*, not both"):
        mm.check_update(major="0", bump_major=True)
    with pytest.raises(VersioningOptionError, match=r"not a complete version \(`:1\.2`\)"):
        mm.check_update(major="1.2")
    with pytest.raises(InvalidVersionError):  # not a version at all: the version's own error
        mm.check_update(major="x")


def test_store_update_refuses_them_before_writing(
    store_url: tuple[str, dict[str, object]], sample_file: Path
) -> None:
    url, options = store_url
    dated = AssetStore(url, options, versioning="simple_date")
    first = dated.new(sample_file, "dated")
    for spec, bump in (("dated", True), ("dated:1", False), (f"dated:{first}", False)):
        with pytest.raises(VersioningOptionError, match="means nothing with simple_date"):
            dated.update(sample_file, spec, bump_major=bump)
        with pytest.raises(VersioningOptionError):
            dated.plan_update(sample_file, spec, bump_major=bump)
    assert dated.versions("dated") == [first]
    numbered = AssetStore(url, options)
    numbered.new(sample_file, "numbered")
    with pytest.raises(VersioningOptionError, match="not both"):
        numbered.update(sample_file, "numbered:0", bump_major=True)
    with pytest.raises(VersioningOptionError, match="not a complete version"):
        numbered.update(sample_file, "numbered:0.0")
    assert numbered.versions("numbered") == ["0.0"]
    assert numbered.update(sample_file, "numbered", bump_major=True) == "1.0"


@pytest.mark.parametrize(
    ("global_args", "env", "target", "options", "message"),
    [
        (
            ["--versioning", "simple_date"],
            {},
            "x",
            ["--bump-major"],
            "--bump-major means nothing with simple_date",
        ),
        (
            [],
            {"MODELKIT_ASSETS_VERSIONING_SYSTEM": "simple_date"},
            "x",
            ["--bump-major"],
            "--bump-major means",
        ),
        (["--versioning", "simple_date"], {}, "x:1", [], "`:1` (a major) means nothing with simple_date"),
        ([], {}, "y:0", ["--bump-major"], "not both"),
        ([], {}, "y:0.0", [], "not a complete version (`:0.0`)"),
    ],
)
def test_cli_update_reports_a_usage_error(
    tmp_path: Path,
    sample_file: Path,
    global_args: list[str],
    env: dict[str, str],
    target: str,
    options: list[str],
    message: str,
) -> None:
    url = f"memory://vo{uuid.uuid4().hex[:12]}"
    AssetStore(url, versioning="simple_date").new(sample_file, "x")
    AssetStore(url).new(sample_file, "y")
    before = {
        n: AssetStore(url, versioning=s).versions(n) for n, s in (("x", "simple_date"), ("y", "major_minor"))
    }
    result = CliRunner().invoke(
        app,
        [*global_args, "update", str(sample_file), target, *options, "--yes"],
        env={"MODELKIT_ASSETS_STORE": url, "MODELKIT_ASSETS_DIR": str(tmp_path / "assets"), **env},
    )
    assert result.exit_code == 2, result.output
    error = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(error) == 1 and message in error[0]
    assert result.stdout == ""
    after = {
        n: AssetStore(url, versioning=s).versions(n) for n, s in (("x", "simple_date"), ("y", "major_minor"))
    }
    assert after == before
