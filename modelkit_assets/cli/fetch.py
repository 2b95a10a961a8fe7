"""``fetch``: put a version in the local cache and print its path.

stdout gets the path alone (``$(modelkit-assets fetch x:1)`` works) or, with ``--json``,
the fetch's description; progress goes to stderr. A pinned version already in the cache
costs a ``stat`` or two: no store is opened and neither fsspec nor rich is imported (G6).
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelkit_assets.cli.context import CliState, RequireSignatureOption


def fetch(
    ctx: typer.Context,
    spec: Annotated[
        str,
        typer.Argument(
            help="NAME[:VERSION][[SUB/PART]], e.g. nlp/tokenizer:1.2[vocab.txt]; no version means "
            "the latest.",
            metavar="SPEC",
            show_default=False,
        ),
    ],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Download again even if the version is in the cache (also MODELKIT_STORAGE_FORCE_DOWNLOAD).",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the path, version, origin and metadata as JSON.")
    ] = False,
    require_signature: RequireSignatureOption = False,
) -> None:
    """Fetch SPEC into the local assets dir and print its path."""
    from modelkit_assets.cli.progress import Transfer

    state = CliState.of(ctx)
    state.require_signatures(require_signature)
    manager = state.manager()
    transfer = Transfer(state.progress_mode, spec, "download")
    # None leaves MODELKIT_STORAGE_FORCE_DOWNLOAD in charge
    forced = True if force else None
    try:
        with transfer:
            if as_json:
                result = manager.fetch_info(spec, force=forced, callback=transfer.callback)
            else:
                path = manager.fetch(spec, force=forced, callback=transfer.callback)
    except KeyboardInterrupt:
        typer.echo(
            f"Interrupted: {spec} was not installed (the cache is unchanged); rerun the command.", err=True
        )
        raise
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(result.to_dict())
    else:
        typer.echo(str(path))
