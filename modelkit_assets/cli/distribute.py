"""``copy`` and ``bundle``: moving versions to another store, or into a self-contained dir."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from modelkit_assets.cli.context import CliState, RequireSignatureOption


def _options(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise typer.BadParameter("--to-storage-options is not valid JSON.") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("--to-storage-options must be a JSON object.")
    return value


def copy(
    ctx: typer.Context,
    spec: Annotated[
        str,
        typer.Argument(
            help="NAME[:VERSION]; no version means the latest.", metavar="SPEC", show_default=False
        ),
    ],
    to: Annotated[
        str, typer.Option("--to", metavar="URL", help="Destination store URL.", show_default=False)
    ],
    to_storage_options: Annotated[
        str | None,
        typer.Option(
            "--to-storage-options",
            envvar="MODELKIT_ASSETS_TO_STORAGE_OPTIONS",
            metavar="JSON",
            help="fsspec storage options of the destination (never printed).",
            show_default=False,
        ),
    ] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Copy every version matching SPEC, oldest first.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Copy versions to another store, keeping version numbers and metadata.

    Each copy goes through the destination's claim and exclusive commit (never
    overwriting), is re-hashed at the destination before it is committed, and is made
    server-side when both stores share a filesystem.
    """
    from modelkit_assets.maintenance.copy import copy as run_copy
    from modelkit_assets.store import AssetStore

    state = CliState.of(ctx)
    src = state.store()
    dst = AssetStore(
        to,
        _options(to_storage_options),
        versioning=src.versioning,
        settings=state.settings,
        options_origin="--to-storage-options",
    )
    results = run_copy(src, dst, spec, all_versions=all_versions)
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(
            {"from": src.display_url, "to": dst.display_url, "versions": [r.to_dict() for r in results]}
        )
        return
    from modelkit_assets.cli.progress import human_size

    for r in results:
        how = (
            "already there (same manifest)"
            if r.status == "present"
            else ("copied server-side" if r.server_side else "copied")
        )
        typer.echo(f"{r.name}:{r.version} {how} ({r.files} file(s), {human_size(r.size)})")
    copied = sum(r.status == "copied" for r in results)
    typer.echo(f"{copied} version(s) copied from {src.display_url} to {dst.display_url}, verified.")


def bundle(
    ctx: typer.Context,
    args: Annotated[
        list[str],
        typer.Argument(help="SPEC... then the target DIR.", metavar="SPEC... DIR", show_default=False),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the bundled versions as JSON.")] = False,
    require_signature: RequireSignatureOption = False,
) -> None:
    """Write a complete, read-only-servable assets dir holding SPECs into DIR.

    Serve it with MODELKIT_ASSETS_DIR=DIR and MODELKIT_ASSETS_STORE=none: no lock file is
    taken or created, partial specs resolve to the latest bundled version.
    """
    from modelkit_assets.maintenance.bundle import BUNDLE_INDEX
    from modelkit_assets.maintenance.bundle import bundle as run_bundle

    if len(args) < 2:
        raise typer.BadParameter("give at least one SPEC and the target DIR")
    *specs, directory = args
    state = CliState.of(ctx)
    state.require_signatures(require_signature)
    result = run_bundle(
        state.store(),
        specs,
        Path(directory),
        require_signature=state.settings.require_signature,
        trusted_keys=state.settings.trusted_keys,
    )
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(
            {
                "directory": str(result.directory),
                "size": result.size,
                "assets": json.loads(result.lockfile.to_json())["assets"],
            }
        )
        return
    from modelkit_assets.cli.progress import human_size

    for entry in result.lockfile.assets:
        typer.echo(f"{entry.spec} -> {entry.pinned}")
    typer.echo(
        f"Bundled {len(result.lockfile.assets)} version(s), {human_size(result.size)}, in {result.directory} "
        f"(index: .cache/{BUNDLE_INDEX}). Serve it with MODELKIT_ASSETS_DIR={result.directory} "
        "MODELKIT_ASSETS_STORE=none."
    )
