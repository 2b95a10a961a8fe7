"""The ``modelkit-assets`` typer app: global options, the commands, and error handling.

Each command lives in the module of its group (``publish``: new/update; ``browse``:
list/versions/info; ``fetch``) and is joined here. Start-up is kept cheap: typer's help
is drawn without rich (``rich_markup_mode=None``), and commands import the library,
fsspec and rich only when they run.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from modelkit_assets._version import __version__
from modelkit_assets.cli import (
    browse,
    cache,
    distribute,
    fetch,
    integrity,
    lifecycle,
    lockfile,
    publish,
    trust,
)
from modelkit_assets.cli.context import CliState
from modelkit_assets.cli.errors import EXIT_INTERRUPTED, reported
from modelkit_assets.cli.render import protect_streams

app = typer.Typer(
    name="modelkit-assets",
    help="Publish and fetch immutable, versioned ML assets in any fsspec store "
    "(S3, GCS, Azure, local disk), into a verified local cache.",
    epilog="Errors print one line; set MODELKIT_ASSETS_DEBUG=1 for the traceback.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"modelkit-assets {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            envvar="MODELKIT_ASSETS_STORE",
            show_envvar=True,
            metavar="URL",
            help="Store URL: s3://bucket/prefix, gs://, az://, file:///path, memory://... "
            "(`none`: the assets dir alone). Default: modelkit's MODELKIT_STORAGE_* variables, "
            "else an embedded local store.",
            show_default=False,
        ),
    ] = None,
    assets_dir: Annotated[
        Path | None,
        typer.Option(
            "--assets-dir",
            envvar="MODELKIT_ASSETS_DIR",
            show_envvar=True,
            metavar="DIR",
            help="Local cache of fetched versions. Default: the user cache dir.",
            show_default=False,
        ),
    ] = None,
    versioning: Annotated[
        str | None,
        typer.Option(
            "--versioning",
            envvar="MODELKIT_ASSETS_VERSIONING_SYSTEM",
            show_envvar=True,
            metavar="SYSTEM",
            help="Versioning system: major_minor (default), simple_date, or a registered plugin.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, show_default=False, help="Log more (-v info, -vv debug) on stderr."
        ),
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print results only: no progress, no notes.")
    ] = False,
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_show_version, is_eager=True, help="Show the version and exit."),
    ] = None,
) -> None:
    """Publish and fetch immutable, versioned ML assets in any fsspec store."""
    state = CliState(
        store_url=store, assets_dir=assets_dir, versioning=versioning, verbose=verbose, quiet=quiet
    )
    ctx.call_on_close(protect_streams())  # first: the log handler writes to the protected stderr
    ctx.call_on_close(state.configure_logging())
    ctx.obj = state


app.command("new")(reported(publish.new))
app.command("update")(reported(publish.update))
app.command("list")(reported(browse.list_assets))
app.command("versions")(reported(browse.versions))
app.command("info")(reported(browse.info))
app.command("fetch")(reported(fetch.fetch))
app.add_typer(cache.app, name="cache")
app.command("verify")(reported(integrity.verify))
app.command("repair")(reported(integrity.repair))
app.command("lock")(reported(lockfile.lock))
app.command("sync")(reported(lockfile.sync))
app.command("copy")(reported(distribute.copy))
app.command("bundle")(reported(distribute.bundle))
app.add_typer(lifecycle.app, name="alias")
app.command("retire")(reported(lifecycle.retire))
app.command("gc")(reported(lifecycle.gc))
app.command("sign")(reported(trust.sign))
app.command("keygen")(reported(trust.keygen))


def main(argv: list[str] | None = None) -> None:
    """The console script: run the app and exit with its code.

    Errors are already one line (``errors.reported``); what is left here is Ctrl-C outside a
    command (exit 130).
    """
    try:
        app(args=argv, prog_name="modelkit-assets")
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
