"""``cache list`` and ``cache prune``: what the local assets dir holds, and cleaning it.

Nothing here opens a store: both commands work on the assets dir alone (offline, on a
read-only image for ``list``).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING, Annotated

import typer

from modelkit_assets.cli.context import CliState
from modelkit_assets.cli.errors import reported

if TYPE_CHECKING:
    from modelkit_assets.maintenance.inventory import CachedVersion

app = typer.Typer(
    name="cache",
    help="Inspect and clean the local assets dir.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``90m``, ``2w``, ``45s`` (pure).

    Raises
    ------
    typer.BadParameter
        For anything else (a usage error: exit 2).
    """
    match = _DURATION_RE.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration; write e.g. 30d, 12h, 90m or 2w.")
    return dt.timedelta(seconds=float(match[1]) * _DURATION_UNITS[match[2].lower()])


def parse_size(text: str) -> int:
    """``10GB``, ``500MB``, ``1.5GiB``, ``2048`` (bytes); decimal units, ``i`` for binary (pure).

    Raises
    ------
    typer.BadParameter
        For anything else (a usage error: exit 2).
    """
    match = _SIZE_RE.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a size; write e.g. 10GB, 500MB or 1.5GiB.")
    unit = match[2].lower().rstrip("b")
    base = 1024 if unit.endswith("i") else 1000
    power = "_kmgt".index(unit[0]) if unit else 0
    return int(float(match[1]) * base**power)


def ago(when: dt.datetime, now: dt.datetime | None = None) -> str:
    """``3 days ago``, ``5 h ago``, ``just now`` (pure)."""
    seconds = ((now or dt.datetime.now(dt.UTC)) - when).total_seconds()
    if seconds < 60:
        return "just now"
    for unit, length in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= length:
            return f"{int(seconds // length)} {unit} ago"
    return "just now"


def _table(versions: list[CachedVersion], title_total: str) -> None:
    from rich.table import Table

    from modelkit_assets.cli.progress import human_size
    from modelkit_assets.cli.render import stdout_console

    console = stdout_console()
    if versions:
        table = Table(box=None, header_style="bold", pad_edge=False)
        table.add_column("Asset", overflow="fold")
        table.add_column("Version")
        table.add_column("Kind")
        table.add_column("Size", justify="right")
        table.add_column("Shared", justify="right")
        table.add_column("Files", justify="right")
        table.add_column("Last used")
        for v in versions:
            kind = "folder" if v.is_directory else "file"
            shared = human_size(v.shared) if v.shared else "-"
            table.add_row(v.name, v.version, kind, human_size(v.size), shared, str(v.files), ago(v.last_used))
        console.print(table)
    console.print(title_total, highlight=False)


def list_cached(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(help="Only this asset's versions.", metavar="[NAME]", show_default=False),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """List the versions in the assets dir, with size and last use, and the total.

    Last use is the latest access time of a version's files (the kernel's, updated when
    they are read; with relatime at most daily) or its install time.
    """
    from modelkit_assets.cli.progress import human_size
    from modelkit_assets.maintenance.inventory import cache_usage, scan_cache, scan_leftovers
    from modelkit_assets.spec import check_name
    from modelkit_assets.versioning import get_versioning

    state = CliState.of(ctx)
    settings = state.settings
    if name is not None:
        check_name(name)
    versions = scan_cache(settings.assets_dir, get_versioning(settings.versioning), name=name)
    total = sum(v.size for v in versions)
    usage = cache_usage(settings.assets_dir, versions, whole_cache=name is None)
    leftovers = scan_leftovers(settings.assets_dir)
    if name is not None:  # a download's folder starts with its asset's name, "/" written "__"
        leftovers = [x for x in leftovers if x.key == name.replace("/", "__")]
    leftover_size = sum(leftover.size for leftover in leftovers)
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(
            {
                "assets_dir": str(settings.assets_dir),
                "versions": [v.to_dict() for v in versions],
                "count": len(versions),
                "total_size": total,
                "disk_size": usage.disk,
                "shared_size": usage.shared,
                "unused_store_size": usage.unused,
                "partial_reads_size": usage.partial,
                "leftovers": [leftover.to_dict() for leftover in leftovers],
                "leftover_size": leftover_size,
            }
        )
        return
    count = len(versions)
    summary = f"{count} version{'s' if count != 1 else ''}, {human_size(total)} in {settings.assets_dir}"
    if usage.disk != total:
        summary += (
            f": {human_size(usage.disk)} on disk, {human_size(usage.shared)} of it shared between versions"
        )
    if usage.unused or usage.partial:
        summary += (
            f"; {human_size(usage.unused + usage.partial)} of contents no version uses or of partial reads "
            "(`modelkit-assets cache prune` removes them)"
        )
    if leftovers:
        summary += (
            f"; plus {len(leftovers)} unfinished download(s) or removal(s) in .cache/staging, "
            f"{human_size(leftover_size)} (`modelkit-assets cache prune` reclaims those no fetch is using)"
        )
    _table(versions, summary)


def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Remove versions not used for AGE (30d, 12h, 2w).",
            show_default=False,
        ),
    ] = None,
    max_size: Annotated[
        str | None,
        typer.Option(
            "--max-size",
            metavar="SIZE",
            help="Then remove least recently used versions until the cache holds at most SIZE (10GB).",
            show_default=False,
        ),
    ] = None,
    keep_newest: Annotated[
        int | None,
        typer.Option(
            "--keep-newest",
            metavar="N",
            min=0,
            help="Never remove the N newest versions of each asset; alone, remove all the others.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove cached versions by age, total size or count; never one in use by another process.

    A version is in use when a fetch of its asset holds the cache lock, a process holds
    its lease, or (Linux) a process has one of its files open or mapped.
    """
    from modelkit_assets.cli.progress import human_size
    from modelkit_assets.maintenance.prune import PrunePolicy
    from modelkit_assets.maintenance.prune import prune as run_prune
    from modelkit_assets.versioning import get_versioning

    if older_than is None and max_size is None and keep_newest is None:
        raise typer.BadParameter("give at least one of --older-than, --max-size, --keep-newest")
    policy = PrunePolicy(
        older_than=parse_duration(older_than) if older_than is not None else None,
        max_size=parse_size(max_size) if max_size is not None else None,
        keep_newest=keep_newest,
    )
    state = CliState.of(ctx)
    settings = state.settings
    result = run_prune(settings.assets_dir, policy, get_versioning(settings.versioning), dry_run=dry_run)
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(result.to_dict())
        return
    verb = "Would remove" if dry_run else "Removed"
    for v in result.removed:
        shared = f", {human_size(v.shared)} shared with other versions" if v.shared else ""
        typer.echo(f"{verb} {v.spec} ({human_size(v.size)}{shared}, last used {ago(v.last_used)})")
    for v, why in result.skipped:
        typer.echo(f"Kept {v.spec}: {why}")
    for leftover in result.leftovers_removed:
        typer.echo(f"{verb} leftover {leftover.label}, {human_size(leftover.size)}")
    for leftover, why in result.leftovers_kept:
        typer.echo(f"Kept leftover {leftover.label}: {why}")
    count = len(result.removed)
    reclaimed = ""
    if result.leftovers_removed:
        reclaimed = (
            f" and {len(result.leftovers_removed)} leftover(s) of unfinished fetches, "
            f"{human_size(result.reclaimed)}"
        )
    if result.blobs_removed:
        reclaimed += f", and {result.blobs_removed} content(s) no version used any more"
    typer.echo(
        f"{verb} {count} version{'s' if count != 1 else ''}, {human_size(result.freed)}{reclaimed}: "
        f"{human_size(result.disk_freed)} freed on disk; {human_size(result.disk_remaining)} left in "
        f"{settings.assets_dir}."
    )


app.command("list")(reported(list_cached))
app.command("prune")(reported(prune))
