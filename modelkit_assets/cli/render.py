"""Drawing results: rich tables and trees for people, JSON for scripts.

Only the CLI imports rich (STYLE.md), and only this module and ``progress`` draw with
it; the commands hand over library objects and get text on a console.

Names, descriptions, sources and file names come from a store anyone with write access
may have filled, so no control character of theirs reaches the terminal (an ESC
sequence could clear the screen, retitle the window or forge output). This module is
the one place that enforces it, for every command: ``protect_streams`` makes
``sys.stdout``/``sys.stderr`` escape control characters for the whole command (plain
lines, errors, logs, JSON), and the rich consoles, which write their own ANSI styles,
escape them in the text of what they draw (``SafeConsole``).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import typer

from modelkit_assets.cli.progress import human_size

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from modelkit_assets.manifest import AssetMeta
    from modelkit_assets.store import PublishPlan
    from modelkit_assets.versioning import VersioningSystem

#: versions shown per major (or per row of ``list``) before "+N more"
SHOWN_VERSIONS = 6
#: width given to a console that is not a terminal
UNWRAPPED_WIDTH = 1000


#: C0 controls but newline and tab, DEL and the C1 controls (``\x9b`` is a CSI on its own)
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: str) -> str:
    """``text`` with every control character (but newline and tab) shown as ``\\u00NN``,
    as JSON writes them: readable in plain text, and still a valid escape should one end
    up inside a JSON string."""
    return _CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class SafeStream:
    """A text stream that escapes control characters in everything written to it."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(escape_controls(text))  # a bytes argument raises TypeError, as click expects
        return len(text)

    def __getattr__(self, attr: str) -> Any:  # encoding, errors, flush, isatty, fileno...
        return getattr(self.raw, attr)


def raw_stream(stream: TextIO) -> TextIO:
    """The stream under a ``SafeStream`` (rich writes its own escape sequences there)."""
    return stream.raw if isinstance(stream, SafeStream) else stream


def protect_streams() -> Callable[[], None]:
    """Make ``sys.stdout`` and ``sys.stderr`` escape control characters until the
    returned function is called (the app does it when the command ends)."""
    saved = sys.stdout, sys.stderr
    sys.stdout = SafeStream(raw_stream(sys.stdout))
    sys.stderr = SafeStream(raw_stream(sys.stderr))

    def restore() -> None:
        sys.stdout, sys.stderr = saved

    return restore


def echo_json(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (dates as ISO strings)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def console(*, stderr: bool = False) -> Console:
    """A rich console; when it is not a terminal, lines are never wrapped (a pipe or a
    file has no width, and a wrapped path or table row is useless to a script)."""
    from rich.console import Console
    from rich.segment import Segment

    class SafeConsole(Console):
        """Escapes control characters in the text it draws; its own styles and cursor
        moves (control segments) go through. Strings are escaped before layout too, so
        columns stay aligned."""

        def render_str(self, text: str, **kwargs: Any) -> Text:
            return super().render_str(escape_controls(text), **kwargs)

        def _render_buffer(self, buffer: Iterable[Segment]) -> str:
            return super()._render_buffer(
                s if s.control else Segment(escape_controls(s.text), s.style) for s in buffer
            )

    stream = raw_stream(sys.stderr if stderr else sys.stdout)
    out = SafeConsole(file=stream, stderr=stderr, highlight=False, soft_wrap=False)
    if not out.is_terminal:
        out.width = UNWRAPPED_WIDTH
    return out


def stdout_console() -> Console:
    return console()


def short_list(versions: Sequence[str], shown: int = SHOWN_VERSIONS) -> str:
    """``1.2, 1.1, 1.0 (+4 more)``: latest first, a bounded width on huge assets."""
    text = ", ".join(versions[:shown])
    if len(versions) > shown:
        text += f" (+{len(versions) - shown} more)"
    return text


def version_groups(versioning: VersioningSystem, versions: Iterable[str]) -> list[tuple[str, str]]:
    """``[("major 1", "1.1, 1.0"), ...]``, grouped as the versioning system groups them."""
    groups = versioning.groups(versions)
    label = "major " if versioning.name == "major_minor" else ""
    return [(f"{label}{key}".strip(), short_list(group)) for key, group in groups.items()]


def plan_summary(
    console: Console,
    plan: PublishPlan,
    *,
    store_url: str,
    versioning: VersioningSystem,
    embedded: bool,
    description: str | None,
    signer: str | None = None,
) -> None:
    """What a publish will do: the store, the name, the versions it has and the one to come."""
    from rich.markup import escape
    from rich.table import Table

    from modelkit_assets.backends import redact_url

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    store_text = store_url + (
        " (embedded local store; set MODELKIT_ASSETS_STORE to change)" if embedded else ""
    )
    grid.add_row("Store", escape(store_text))
    grid.add_row("Asset", plan.name)
    if plan.existing:
        for index, (group, text) in enumerate(version_groups(versioning, plan.existing)):
            grid.add_row("Versions" if index == 0 else "", f"{group}: {text}" if group else text)
    else:
        grid.add_row("Versions", "none yet (new asset)")
    grid.add_row("New version", f"[green]{plan.name}:{plan.version}[/green]")
    source = plan.source
    kind = "folder" if source.is_directory else "file"
    count = len(source.files)
    grid.add_row("Source", f"{escape(redact_url(source.root))} ({kind})")
    grid.add_row("Contents", f"{count} file{'s' if count != 1 else ''}, {human_size(source.size)}")
    if description:
        grid.add_row("Description", escape(description))
    if signer:
        grid.add_row("Signed by", escape(signer))
    console.print(grid)


def assets_table(console: Console, assets: Sequence[tuple[str, Sequence[str]]], *, store_url: str) -> None:
    """``list``: one row per asset, its versions latest first and how many."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("Asset", overflow="fold")
    table.add_column("Versions (latest first)", overflow="fold")
    table.add_column("Count", justify="right")
    for name, versions in assets:
        table.add_row(name, short_list(versions), str(len(versions)))
    if assets:
        console.print(table)
    console.print(escape(summary_line(assets, store_url)))


def summary_line(assets: Sequence[tuple[str, Sequence[str]]], store_url: str) -> str:
    count = sum(len(v) for _, v in assets)
    return (
        f"{len(assets)} asset{'s' if len(assets) != 1 else ''}, "
        f"{count} version{'s' if count != 1 else ''} in {store_url}"
    )


def versions_table(
    console: Console, name: str, metas: Sequence[AssetMeta], versioning: VersioningSystem
) -> None:
    """``versions``: one row per version, grouped by major, with its metadata."""
    from rich.markup import escape
    from rich.table import Table

    by_version = {m.version: m for m in metas}
    table = Table(title=name, title_justify="left", box=None, header_style="bold", pad_edge=False)
    for column in ("Version", "Pushed (UTC)", "Size", "Files", "Pushed by", "Description"):
        table.add_column(column, justify="right" if column in ("Size", "Files") else "left")
    groups = versioning.groups(by_version)
    for index, group in enumerate(groups.values()):
        for version in group:
            meta = by_version[version]
            table.add_row(
                version,
                pushed(meta),
                human_size(meta.size if meta.size is not None else _files_size(meta)),
                str(len(meta.files)),
                escape(meta.pushed_by or ""),
                escape(meta.description or ""),
                end_section=index < len(groups) - 1 and version == group[-1],
            )
    console.print(table)


def pushed(meta: AssetMeta) -> str:
    import datetime as dt

    return meta.push_date.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _files_size(meta: AssetMeta) -> int | None:
    sizes = [e.size for e in meta.files.values()]
    return None if any(s is None for s in sizes) else sum(s for s in sizes if s is not None)


def info_tree(
    console: Console,
    meta: AssetMeta,
    *,
    store_url: str,
    sub_part: str | None = None,
    signatures: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """``info``: a version's metadata, its signatures (``None``: not read, offline), then
    its files as a tree (size, sha256 prefix)."""
    from rich.markup import escape
    from rich.table import Table
    from rich.tree import Tree

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Asset", f"{meta.name}:{meta.version}")
    grid.add_row("Store", escape(store_url))
    grid.add_row(
        "Pushed", f"{pushed(meta)} UTC" + (f" by {escape(meta.pushed_by)}" if meta.pushed_by else "")
    )
    size = meta.size if meta.size is not None else _files_size(meta)
    grid.add_row("Size", f"{human_size(size)} in {len(meta.files)} file{'s' if len(meta.files) != 1 else ''}")
    grid.add_row("Kind", "folder" if meta.is_directory else "file")
    if meta.description:
        grid.add_row("Description", escape(meta.description))
    if meta.tool_version:
        grid.add_row("Tool", meta.tool_version)
    if meta.source:
        grid.add_row("Source", escape(meta.source))
    grid.add_row("Verifiable", "yes (sha256 per file)" if meta.verifiable else "no: published without hashes")
    if signatures is not None:
        if not signatures:
            grid.add_row("Signed by", "nobody (unsigned)")
        for index, sig in enumerate(signatures):
            state = (
                ("trusted" if sig["trusted"] else "not a trusted key")
                if sig["valid"]
                else "not checked: install modelkit-assets[sign]"
                if sig["valid"] is None
                else "[red]INVALID: does not match the manifest[/red]"
            )
            grid.add_row("Signed by" if index == 0 else "", f"{sig['key']} ({sig['algorithm']}, {state})")
    console.print(grid)
    tree = Tree(f"[bold]{escape(meta.name)}:{meta.version}[/bold]")
    folders: dict[str, Tree] = {"": tree}
    for path, entry in sorted(meta.files.items()):
        if sub_part and path != sub_part and not path.startswith(sub_part.rstrip("/") + "/"):
            continue
        parts = path.split("/")
        parent = ""
        for depth, part in enumerate(parts[:-1]):
            key = "/".join(parts[: depth + 1])
            if key not in folders:
                folders[key] = folders[parent].add(f"[blue]{escape(part)}/[/blue]")
            parent = key
        digest = f"  sha256:{entry.sha256[:12]}" if entry.sha256 else ""
        folders[parent].add(f"{escape(parts[-1])}  [dim]{human_size(entry.size)}{digest}[/dim]")
    console.print(tree)


def meta_dict(meta: AssetMeta, *, store_url: str) -> dict[str, Any]:
    """A version's metadata for ``--json`` (the ``.meta`` fields plus identity)."""
    return {"name": meta.name, "version": meta.version, "store": store_url, **meta.to_dict()}
