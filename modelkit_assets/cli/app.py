"""Minimal CLI: new, update, list, fetch. Each command parses, calls one library
function and renders."""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

app = typer.Typer(
    name="modelkit-assets",
    help="Publish and fetch immutable, versioned ML assets in any fsspec store.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _store(url: str | None):  # type: ignore[no-untyped-def]
    from modelkit_assets.store import AssetStore

    return AssetStore(url)


StoreOption = Annotated[
    str | None, typer.Option("--store", envvar="MODELKIT_ASSETS_STORE", help="Store URL.")
]


@app.command()
def new(
    path: str, name: str, store: StoreOption = None, yes: Annotated[bool, typer.Option("--yes", "-y")] = False
) -> None:
    """Publish PATH as the first version of NAME."""
    version = _store(store).new(path, name)
    typer.echo(f"{name}:{version}")


@app.command()
def update(
    path: str,
    name: str,
    store: StoreOption = None,
    bump_major: Annotated[bool, typer.Option("--bump-major")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y")] = False,
) -> None:
    """Publish PATH as the next version of NAME[:MAJOR]."""
    version = _store(store).update(path, name, bump_major=bump_major)
    typer.echo(f"{name.split(':')[0]}:{version}")


@app.command("list")
def list_(store: StoreOption = None) -> None:
    """List assets and their versions."""
    for name, versions in _store(store).list():
        typer.echo(f"{name}: {', '.join(versions)}")


@app.command()
def fetch(
    spec: str,
    store: StoreOption = None,
    force: Annotated[bool, typer.Option("--force")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fetch SPEC into the local cache and print its path."""
    from modelkit_assets.manager import AssetsManager

    manager = AssetsManager(store)
    if as_json:
        typer.echo(json.dumps(manager.fetch_info(spec, force=force).to_dict(), default=str))
    else:
        typer.echo(str(manager.fetch(spec, force=force)))


def main() -> None:
    """Entry point: errors become one line on stderr and exit 1."""
    from modelkit_assets.errors import AssetsError

    try:
        app(standalone_mode=False)
    except AssetsError as err:
        if os.environ.get("MODELKIT_ASSETS_DEBUG") == "1":
            raise
        print(f"Error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except Exception as err:  # typer's own usage errors
        import click

        if isinstance(err, click.exceptions.ClickException):
            err.show()
            raise SystemExit(err.exit_code) from None
        if isinstance(err, click.exceptions.Abort):
            raise SystemExit(130) from None
        raise
