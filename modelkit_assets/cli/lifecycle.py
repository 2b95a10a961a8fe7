"""``alias`` (set, list, history, rm), ``retire`` and ``gc``: a version's life after publish.

Aliases are movable names (``name@prod``) accepted wherever a spec is; ``retire`` and
``gc`` hide old versions for good (their numbers are never given again). Changes show a
summary and ask, like ``new``/``update``; ``--yes`` skips the question and ``--dry-run``
writes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from modelkit_assets.cli.context import CliState
from modelkit_assets.cli.errors import EXIT_ERROR, reported

if TYPE_CHECKING:
    from modelkit_assets.maintenance.retention import RetirePlan
    from modelkit_assets.store import AssetStore

app = typer.Typer(
    name="alias",
    help="Movable names for versions (NAME@ALIAS, e.g. nlp/tokenizer@prod), with their history.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking for confirmation.")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would be done, and write nothing.")]
ExpectOption = Annotated[
    str | None,
    typer.Option(
        "--expect",
        metavar="VERSION",
        help="Refuse (exit 1) unless the alias points to VERSION now (`none`: unset); for scripts.",
        show_default=False,
    ),
]


def _name_and_alias(text: str) -> tuple[str, str]:
    from modelkit_assets.errors import InvalidSpecError
    from modelkit_assets.spec import AssetSpec

    spec = AssetSpec.parse(text)
    if spec.alias is None or spec.sub_part is not None:
        raise InvalidSpecError(f"Give the alias as NAME@ALIAS, e.g. {spec.name}@prod, not {text!r}.")
    return spec.name, spec.alias


def _expect(value: str | None) -> tuple[str | None, bool]:
    if value is None:
        return None, False
    return (None if value.strip().lower() == "none" else value.strip()), True


def set_alias(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="NAME@ALIAS, e.g. nlp/tokenizer@prod.", metavar="NAME@ALIAS")],
    version: Annotated[
        str, typer.Argument(help="The version to point to (a partial one: its latest).", metavar="VERSION")
    ],
    expect: ExpectOption = None,
    as_json: JsonOption = False,
) -> None:
    """Point NAME@ALIAS at VERSION (every move is kept in the alias's history)."""
    name, alias = _name_and_alias(target)
    store = CliState.of(ctx).store()
    expected, check = _expect(expect)
    move = store.set_alias(name, alias, version, expect=expected, check_expect=check)
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"name": name, **move.to_dict()})
        return
    was = f" (was {move.previous})" if move.previous else ""
    typer.echo(f"{name}@{alias} -> {move.version}{was}")


def list_aliases(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The asset.", metavar="NAME")],
    as_json: JsonOption = False,
) -> None:
    """Show every alias of NAME and the version it points to."""
    from modelkit_assets.spec import check_name

    store = CliState.of(ctx).store()
    values = store.aliases.values(check_name(name))
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"name": name, "aliases": {a: m.to_dict() for a, m in sorted(values.items())}})
        return
    if not values:
        typer.echo(f"{name} has no alias; set one with `modelkit-assets alias set {name}@prod VERSION`.")
        return
    for alias, move in sorted(values.items()):
        typer.echo(f"{name}@{alias} -> {move.version}  (moved {move.at or '?'} by {move.by or '?'})")


def history(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="NAME@ALIAS.", metavar="NAME@ALIAS")],
    as_json: JsonOption = False,
) -> None:
    """Show every move of NAME@ALIAS, oldest first."""
    name, alias = _name_and_alias(target)
    store = CliState.of(ctx).store()
    moves = store.aliases.history(name, alias)
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"name": name, "alias": alias, "moves": [m.to_dict() for m in moves]})
        return
    if not moves:
        typer.echo(f"{name}@{alias} was never set.")
        return
    for m in moves:
        what = f"-> {m.version}" if m.version is not None else "removed"
        typer.echo(f"{m.seq:>4}  {m.at or '?'}  {what:<12} by {m.by or '?'}")


def remove(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="NAME@ALIAS.", metavar="NAME@ALIAS")],
    expect: ExpectOption = None,
) -> None:
    """Unset NAME@ALIAS (its history stays)."""
    name, alias = _name_and_alias(target)
    store = CliState.of(ctx).store()
    expected, check = _expect(expect)
    move = store.remove_alias(name, alias, expect=expected, check_expect=check)
    typer.echo(f"{name}@{alias} removed (was {move.previous})")


app.command("set")(reported(set_alias))
app.command("list")(reported(list_aliases))
app.command("history")(reported(history))
app.command("rm")(reported(remove))


def _carry_out(
    state: CliState, store: AssetStore, plan: RetirePlan, *, yes: bool, dry_run: bool, as_json: bool
) -> None:
    """Show the plan (stderr), ask, retire; print what was retired (stdout)."""
    from modelkit_assets.cli.publish import confirm
    from modelkit_assets.maintenance.retention import retire as run_retire

    url = store.display_url
    doomed = plan.to_retire
    if as_json and (dry_run or not doomed):
        from modelkit_assets.cli.render import echo_json

        echo_json({"store": url, "dry_run": dry_run, **plan.to_dict()})
        return
    if not as_json:
        for d in plan.decisions:
            pushed = f", published {d.pushed:%Y-%m-%d}" if d.pushed else ""
            reason = f" ({d.reason}{pushed})" if d.reason else (f" ({pushed[2:]})" if pushed else "")
            typer.echo(f"{d.action:>15}  {d.name}:{d.version}{reason}", err=True)
    if not doomed:
        state.note("Nothing to retire.")
        return
    labels = ", ".join(f"{d.name}:{d.version}" for d in doomed[:5]) + (" ..." if len(doomed) > 5 else "")
    if dry_run:
        state.note(f"Dry run: {len(doomed)} version(s) would be retired ({labels}); nothing was written.")
        return
    question = (
        f"Retire {len(doomed)} version(s) from {url} ({labels})? They disappear for every user "
        "and their numbers are never used again."
    )
    if not yes and not confirm(question):
        typer.echo("Nothing was retired.", err=True)
        raise typer.Exit(EXIT_ERROR)
    done = run_retire(store, plan)
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"store": url, "dry_run": False, "retired": [d.to_dict() for d in done]})
        return
    for d in done:
        typer.echo(f"{d.name}:{d.version} retired")


def retire(
    ctx: typer.Context,
    specs: Annotated[
        list[str], typer.Argument(help="NAME:VERSION, exact versions.", metavar="NAME:VERSION...")
    ],
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Retire versions: gone from versions, list, .versions and fetch; numbers never reused."""
    from modelkit_assets.maintenance.retention import plan_retire

    state = CliState.of(ctx)
    store = state.store()
    plan = plan_retire(store, specs)
    _carry_out(state, store, plan, yes=yes, dry_run=dry_run, as_json=as_json)


def gc(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Assets to clean.", metavar="NAME...")],
    keep_last: Annotated[
        int, typer.Option("--keep-last", metavar="N", help="Keep the N latest versions of each asset.")
    ],
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            metavar="AGE",
            help="Retire only versions published more than AGE ago (30d, 12h, 2w).",
            show_default=False,
        ),
    ] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Retire old versions: all but the N latest (and aliased ones), optionally only past an age."""
    from modelkit_assets.cli.cache import parse_duration
    from modelkit_assets.maintenance.retention import plan_gc

    age = parse_duration(older_than) if older_than is not None else None
    if keep_last < 0:
        raise typer.BadParameter("--keep-last takes 0 or more")
    state = CliState.of(ctx)
    store = state.store()
    plan = plan_gc(store, names, keep_last=keep_last, older_than=age)
    _carry_out(state, store, plan, yes=yes, dry_run=dry_run, as_json=as_json)
