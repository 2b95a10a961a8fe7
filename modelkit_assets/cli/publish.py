"""``new`` and ``update``: show what will be pushed, ask, then publish.

The plan (``AssetStore.plan_new``/``plan_update``) is computed without writing, and the
confirmation shows exactly that plan; ``AssetStore.publish`` then carries it out. A
concurrent writer may take the planned version first: the library then publishes the
next free one and says which, and so does the last line.

Chatter (the summary, the question, progress) goes to stderr; stdout gets only the
published ``name:version``, so ``v=$(modelkit-assets new ... --yes)`` works.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from modelkit_assets.cli.context import CliState, SignKeyOption
from modelkit_assets.cli.errors import EXIT_ERROR

if TYPE_CHECKING:
    from modelkit_assets.signing import SigningKey
    from modelkit_assets.store import AssetStore, PublishPlan

T = TypeVar("T")

PathArg = Annotated[
    str,
    typer.Argument(
        help="File or folder to publish: a local path or any fsspec URL (copied in).",
        metavar="PATH",
        show_default=False,
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Publish without asking for confirmation.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be published, and write nothing.")
]
DescriptionOption = Annotated[
    str | None,
    typer.Option(
        "--description",
        "-d",
        metavar="TEXT",
        help="Free text kept in the version's metadata.",
        show_default=False,
    ),
]


def confirm(question: str) -> bool:
    """Ask on stderr and read the answer from stdin (a terminal or a pipe).

    Anything but ``y``/``yes`` is a no; an unknown answer is asked again only on a
    terminal. Ctrl-C propagates (exit 130).

    Raises
    ------
    typer.Exit
        With code 1 when stdin ends before an answer.
    """
    while True:
        typer.echo(f"{question} [y/N] ", err=True, nl=False)
        line = sys.stdin.readline()
        if not line:
            typer.echo("", err=True)
            typer.echo(
                "No answer on stdin: nothing was published; pass --yes to publish without asking.",
                err=True,
            )
            raise typer.Exit(EXIT_ERROR)
        if not sys.stdin.isatty():
            typer.echo(line.rstrip("\r\n"), err=True)  # a piped answer is not echoed by a terminal
        answer = line.strip().lower()
        if answer in ("y", "yes"):
            return True
        if answer in ("", "n", "no") or not sys.stdin.isatty():
            return False
        typer.echo("Please answer y or n.", err=True)


def _reading(state: CliState, what: str, work: Callable[[], T]) -> T:
    """Run ``work`` (listing the store, hashing the source) under a spinner on a terminal."""
    if state.progress_mode != "rich":
        return work()
    with state.stderr().status(f"Reading {what}..."):
        return work()


def _publish(
    state: CliState,
    store: AssetStore,
    plan: PublishPlan,
    *,
    yes: bool,
    dry_run: bool,
    description: str | None,
    key: SigningKey | None,
) -> None:
    from modelkit_assets.cli import render
    from modelkit_assets.cli.progress import Transfer, human_size

    label = f"{plan.name}:{plan.version}"
    if not (state.quiet and (yes or dry_run)):
        render.plan_summary(
            state.stderr(),
            plan,
            store_url=store.display_url,
            versioning=store.versioning,
            embedded=state.embedded,
            description=description,
            signer=f"{key.fingerprint} ({key.algorithm})" if key is not None else None,
        )
    if dry_run:
        state.note(f"Dry run: {label} was not published; nothing was written.")
        typer.echo(label)
        return
    if not yes and not confirm(f"Publish {label} to {store.display_url}?"):
        typer.echo("Nothing was published.", err=True)
        raise typer.Exit(EXIT_ERROR)
    transfer = Transfer(
        state.progress_mode,
        label,
        "upload",
        total_bytes=plan.source.size,
        total_files=len(plan.source.files),
        console=state.stderr() if state.progress_mode == "rich" else None,
    )
    try:
        with transfer:
            meta = store.publish(plan, description=description, callback=transfer.callback, sign_key=key)
    except KeyboardInterrupt:
        typer.echo(
            f"Interrupted: {label} was not published (an unfinished publish leaves no version); "
            "rerun the command to publish it.",
            err=True,
        )
        raise
    published = f"{meta.name}:{meta.version}"
    unchanged = len(plan.source.files) - transfer.files_done
    if transfer.mode != "off" and unchanged > 0:
        state.note(
            f"{unchanged} of {len(plan.source.files)} files were unchanged since the previous version: "
            "copied inside the store instead of uploaded."
        )
    if meta.version != plan.version:
        state.note(f"{label} was taken by a concurrent writer: published as {published} instead.")
    count = len(meta.files)
    signed = f", signed by {key.fingerprint}" if key is not None else ""
    state.note(
        f"Published {published} ({count} file{'s' if count != 1 else ''}, "
        f"{human_size(plan.source.size)}) to {store.display_url}{signed}."
    )
    typer.echo(published)


def new(
    ctx: typer.Context,
    path: PathArg,
    name: Annotated[
        str, typer.Argument(help="Asset name, e.g. nlp/tokenizer.", metavar="NAME", show_default=False)
    ],
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    description: DescriptionOption = None,
    sign_key: SignKeyOption = None,
) -> None:
    """Publish PATH as the first version of a new asset NAME."""
    state = CliState.of(ctx)
    store = state.store()
    key = store.signing_key(sign_key)  # a bad key is refused before anything is read or written
    plan = _reading(state, f"{path} and {store.display_url}", lambda: store.plan_new(path, name))
    _publish(state, store, plan, yes=yes, dry_run=dry_run, description=description, key=key)


def update(
    ctx: typer.Context,
    path: PathArg,
    name: Annotated[
        str,
        typer.Argument(
            help="NAME (next minor of the latest major) or NAME:MAJOR (next minor of that major).",
            metavar="NAME[:MAJOR]",
            show_default=False,
        ),
    ],
    bump_major: Annotated[
        bool, typer.Option("--bump-major", help="Start a new major version (latest major + 1).")
    ] = False,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    description: DescriptionOption = None,
    sign_key: SignKeyOption = None,
) -> None:
    """Publish PATH as the next version of the existing asset NAME."""
    from modelkit_assets.errors import InvalidSpecError, VersioningOptionError
    from modelkit_assets.spec import AssetSpec
    from modelkit_assets.versioning import get_versioning

    state = CliState.of(ctx)
    try:  # a usage error (exit 2), found before the store is touched
        major = AssetSpec.parse(name).version
        get_versioning(state.settings.versioning).check_update(major=major, bump_major=bump_major)
    except VersioningOptionError as err:
        raise typer.BadParameter(str(err)) from None
    except InvalidSpecError:
        pass  # the store says what is wrong with NAME
    store = state.store()
    key = store.signing_key(sign_key)
    plan = _reading(
        state,
        f"{path} and {store.display_url}",
        lambda: store.plan_update(path, name, bump_major=bump_major),
    )
    _publish(state, store, plan, yes=yes, dry_run=dry_run, description=description, key=key)
