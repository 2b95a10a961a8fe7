"""``verify`` and ``repair``: checking what the cache and the store hold against the manifests.

``verify`` prints every problem (one line each, on stdout) and exits 1 if there is any;
``repair`` prints what it found and did, and exits 0 (finding orphans is not an error:
deleting them is the user's call, with ``--delete-orphans``).
"""

from __future__ import annotations

from typing import Annotated

import typer

from modelkit_assets.cli.context import CliState, RequireSignatureOption
from modelkit_assets.cli.errors import EXIT_ERROR

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _one_of(items: list[str] | None, all_: bool, what: str) -> None:
    """Usage error unless exactly one of ``items`` and ``--all`` is given."""
    if not items and not all_:
        raise typer.BadParameter(f"give {what} or --all")
    if items and all_:
        raise typer.BadParameter(f"give {what} or --all, not both")


def verify(
    ctx: typer.Context,
    specs: Annotated[
        list[str] | None,
        typer.Argument(
            help="NAME[:VERSION]: a complete version, or every cached version matching a partial one.",
            metavar="[SPEC]...",
            show_default=False,
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every cached version (and, with --remote, stored).")
    ] = False,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Also stream the stored objects through sha256 against their .meta, and check "
            "their signatures.",
        ),
    ] = False,
    require_signature: RequireSignatureOption = False,
    as_json: JsonOption = False,
) -> None:
    """Re-hash cached versions (and with --remote the stored objects) against their manifests.

    Every mismatch is reported, not just the first; exit 1 if there is any.
    """
    from modelkit_assets.cli.progress import human_size
    from modelkit_assets.maintenance.verify import select_targets
    from modelkit_assets.maintenance.verify import verify as run_verify

    _one_of(specs, all_, "SPEC...")
    state = CliState.of(ctx)
    state.require_signatures(require_signature)
    manager = state.manager()
    if remote and manager.offline:
        state.store()  # refuses: --remote reads the store
    store = None if manager.offline else manager.store
    if remote and store is None:
        from modelkit_assets.errors import ConfigurationError

        raise ConfigurationError("--remote needs a store; set MODELKIT_ASSETS_STORE or --store.")
    cached, stored = select_targets(
        specs or [], cache=manager.cache, versioning=manager.versioning, store=store, remote=remote
    )
    trusted = manager.trusted_keys
    if not trusted and state.settings.trusted_keys:  # to say which signatures are trusted
        from modelkit_assets.signing import load_trusted_keys

        trusted = load_trusted_keys(state.settings.trusted_keys)
    report = run_verify(
        manager.cache,
        cached,
        store=store,
        remote=remote,
        remote_targets=stored,
        trusted=trusted,
        require_signature=manager.require_signature,
    )
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(report.to_dict())
    else:
        for problem in report.problems:
            typer.echo(str(problem))
        for sig in report.signatures:
            if sig["valid"]:
                trust = "trusted" if sig["trusted"] else "not a trusted key"
                label = f"{sig['name']}:{sig['version']}"
                typer.echo(f"store: {label}: signed by {sig['key']} ({sig['algorithm']}, {trust})")
        where = f"{len(cached)} cached" + (f", {len(stored)} stored" if remote else "")
        verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
        typer.echo(
            f"Checked {where} version(s), {report.files} files, {human_size(report.bytes)}: {verdict}."
        )
    if not report.ok:
        if not as_json:
            typer.echo(
                "Error: verification failed; fetch cached versions again with `modelkit-assets fetch "
                "SPEC --force`, republish stored ones.",
                err=True,
            )
        raise typer.Exit(EXIT_ERROR)


def repair(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Asset names to repair.", metavar="[NAME]...", show_default=False),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every asset of the store.")] = False,
    delete_orphans: Annotated[
        bool,
        typer.Option(
            "--delete-orphans",
            help="Delete orphaned data (no .meta, no live claim, older than the claim TTL) and "
            "stale or leftover claims.",
        ),
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report only; write nothing.")] = False,
    require_signature: RequireSignatureOption = False,
    as_json: JsonOption = False,
) -> None:
    """Rebuild .versions indexes from the committed metas; report orphaned data, stale claims
    and unsigned versions.

    Nothing is deleted unless --delete-orphans is given.
    """
    from modelkit_assets.cli.progress import human_size
    from modelkit_assets.maintenance.repair import repair as run_repair

    _one_of(names, all_, "NAME...")
    state = CliState.of(ctx)
    state.require_signatures(require_signature)
    store = state.store()
    reports = run_repair(
        store,
        None if all_ else names,
        delete_orphans=delete_orphans,
        dry_run=dry_run,
        require_signature=state.settings.require_signature,
    )
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"store": store.display_url, "assets": [r.to_dict() for r in reports]})
        return
    verb = "would rebuild" if dry_run else "rebuilt"
    for r in reports:
        lines: list[str] = []
        if r.index_rebuilt:
            before = "missing" if r.index_before is None else ", ".join(r.index_before) or "empty"
            lines.append(f"index {verb}: was [{before}], now [{', '.join(r.committed)}]")
        for o in r.orphans:
            when = o.modified.strftime("%Y-%m-%d %H:%M") if o.modified else "unknown date"
            lines.append(f"orphaned data: {o.version} ({o.objects} object(s), {human_size(o.size)}, {when})")
        for v in r.in_progress:
            lines.append(f"being published: {v} (left alone)")
        for c in r.claims:
            if c.state == "stale":
                lines.append(f"stale claim: {c.version} ({c.attempts} attempt(s), writer gone)")
        if r.unsigned_to_report:
            lines.append(
                f"unsigned: {', '.join(r.unsigned_to_report)} (sign with `modelkit-assets sign "
                f"{r.name}:VERSION --sign-key KEY.pem`)"
            )
        if r.orphan_signatures:
            lines.append(f"signatures of uncommitted versions: {', '.join(r.orphan_signatures)}")
        leftover = [c.version for c in r.claims if c.state == "leftover"]
        if leftover and not r.deleted_claims:
            lines.append(f"{len(leftover)} leftover claim(s) of committed versions (harmless)")
        if r.deleted_orphans:
            lines.append(f"deleted orphaned data: {', '.join(r.deleted_orphans)}")
        if r.deleted_claims:
            lines.append(f"deleted {len(r.deleted_claims)} claim folder(s)")
        status = "ok" if not lines else ""
        typer.echo(f"{r.name}: {', '.join(r.committed) or 'no committed version'} {status}".rstrip())
        for line in lines:
            typer.echo(f"  {line}")
    orphans = sum(
        len(r.orphans) + len(set(r.orphan_signatures) - {o.version for o in r.orphans}) for r in reports
    )
    unsigned = sum(len(r.unsigned_to_report) for r in reports)
    stale = sum(len(r.stale_claims) for r in reports)
    rebuilt = sum(r.index_rebuilt for r in reports)
    tail = "" if delete_orphans or not (orphans or stale) else "; delete them with --delete-orphans"
    typer.echo(
        f"{len(reports)} asset(s) in {store.display_url}: {rebuilt} index(es) {verb}, "
        f"{orphans} orphaned version(s), {stale} stale claim(s)"
        + (f", {unsigned} unsigned version(s)" if unsigned else "")
        + f"{tail}."
    )
