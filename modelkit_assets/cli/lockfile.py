"""``lock`` and ``sync``: pin resolved versions in ``assets.lock``, install them again.

For CI and container builds: ``lock`` once, commit the file, ``sync`` everywhere (fails,
listing every difference, if the store does not hold exactly the locked versions).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelkit_assets.cli.context import CliState, RequireSignatureOption

DEFAULT_LOCKFILE = Path("assets.lock")


def lock(
    ctx: typer.Context,
    specs: Annotated[
        list[str],
        typer.Argument(help="NAME[:VERSION][[SUB/PART]] to resolve.", metavar="SPEC...", show_default=False),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="Where to write the lockfile (JSON).")
    ] = DEFAULT_LOCKFILE,
    as_json: Annotated[bool, typer.Option("--json", help="Also print the lockfile on stdout.")] = False,
) -> None:
    """Resolve SPECs in the store and write their versions and manifest digests to a lockfile."""
    from modelkit_assets.maintenance.lockfile import lock as run_lock

    state = CliState.of(ctx)
    lockfile = run_lock(state.catalog(), specs)
    lockfile.write(output)
    if as_json:
        typer.echo(lockfile.to_json(), nl=False)
        return
    for entry in lockfile.assets:
        typer.echo(f"{entry.spec} -> {entry.pinned} {entry.digest[:19]}...")
    typer.echo(f"Locked {len(lockfile.assets)} asset(s) from {lockfile.store} in {output}.")


def sync(
    ctx: typer.Context,
    lockfile_path: Annotated[
        Path, typer.Argument(help="The lockfile.", metavar="LOCKFILE", show_default=False)
    ] = DEFAULT_LOCKFILE,
    frozen: Annotated[
        bool,
        typer.Option(
            "--frozen",
            help="Fail, fetching nothing, if any spec now resolves to another version than locked.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the installed paths as JSON.")] = False,
    require_signature: RequireSignatureOption = False,
) -> None:
    """Fetch every locked version concurrently; fail if anything differs from the lockfile."""
    from modelkit_assets.maintenance.lockfile import Lockfile
    from modelkit_assets.maintenance.lockfile import sync as run_sync

    state = CliState.of(ctx)
    state.require_signatures(require_signature)
    lockfile = Lockfile.read(lockfile_path)
    manager = state.manager()
    synced = run_sync(lockfile, manager, frozen=frozen, source=str(lockfile_path))
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"assets_dir": str(manager.assets_dir), "assets": [s.to_dict() for s in synced]})
        return
    for s in synced:
        origin = "cached" if s.from_cache else "fetched"
        typer.echo(f"{s.locked.pinned} {origin} {s.path}")
    fetched = sum(not s.from_cache for s in synced)
    typer.echo(
        f"{len(synced)} asset(s) match {lockfile_path} ({fetched} fetched, {len(synced) - fetched} cached)."
    )
