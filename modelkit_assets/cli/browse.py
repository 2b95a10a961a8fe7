"""``list``, ``versions`` and ``info``: what a store holds, as rich tables or JSON.

Results go to stdout (tables, or JSON with ``--json``); nothing here writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from modelkit_assets.cli.context import CliState

if TYPE_CHECKING:
    from modelkit_assets.manifest import AssetMeta
    from modelkit_assets.offline import Catalog
    from modelkit_assets.signing import TrustedKey

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]
#: ``.meta`` objects read at once by ``versions`` (one small GET each)
META_READERS = 16


def list_assets(
    ctx: typer.Context,
    prefix: Annotated[
        str,
        typer.Argument(
            help="Only assets under this name prefix, e.g. nlp/.", metavar="[PREFIX]", show_default=False
        ),
    ] = "",
    as_json: JsonOption = False,
) -> None:
    """List assets (under PREFIX) with their versions, latest first."""
    state = CliState.of(ctx)
    store = state.catalog()
    assets = list(store.list(prefix))
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json(
            {
                "store": store.display_url,
                "assets": [{"name": n, "versions": v, "count": len(v)} for n, v in assets],
            }
        )
        return
    from modelkit_assets.cli.render import assets_table, stdout_console

    if state.embedded and not state.settings.offline:
        state.note(f"Using the embedded local store at {store.display_url} (set MODELKIT_ASSETS_STORE).")
    assets_table(stdout_console(), assets, store_url=store.display_url)


def _metas(state: CliState, store: Catalog, name: str, versions: list[str]) -> list[AssetMeta]:
    """The metadata of ``versions``; offline, those cached without a manifest (fetched by
    modelkit) are left out with a note rather than failing the whole listing."""
    from concurrent.futures import ThreadPoolExecutor

    from modelkit_assets.errors import VersionNotFoundError

    def one(version: str) -> AssetMeta | None:
        try:
            return store.meta(name, version)
        except VersionNotFoundError:
            if not state.settings.offline:
                raise
            state.note(f"offline: {name}:{version} is cached without its manifest: not shown.")
            return None

    with ThreadPoolExecutor(max_workers=min(META_READERS, max(1, len(versions)))) as pool:
        return [meta for meta in pool.map(one, versions) if meta is not None]


def versions(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Asset name.", metavar="NAME", show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """Show the versions of NAME with their metadata.

    Each row gives the push date, size, file count, author and description.
    """
    state = CliState.of(ctx)
    store = state.catalog()
    metas = _metas(state, store, name, store.versions(name))
    from modelkit_assets.cli import render

    if as_json:
        render.echo_json(
            {
                "name": name,
                "store": store.display_url,
                "versions": [render.meta_dict(m, store_url=store.display_url) for m in metas],
            }
        )
        return
    render.versions_table(render.stdout_console(), name, metas, store.versioning)


def info(
    ctx: typer.Context,
    spec: Annotated[
        str,
        typer.Argument(
            help="NAME[:VERSION][[SUB/PART]]; a partial or missing version means the latest.",
            metavar="SPEC",
            show_default=False,
        ),
    ],
    as_json: JsonOption = False,
) -> None:
    """Show the metadata and the files of one version."""
    from modelkit_assets.spec import AssetSpec

    state = CliState.of(ctx)
    store = state.catalog()
    parsed = AssetSpec.parse(spec)
    meta = store.meta(parsed.name, store.resolve(parsed))
    from modelkit_assets.cli import render

    if parsed.sub_part is not None:
        prefix = parsed.sub_part.rstrip("/")
        if not any(p == prefix or p.startswith(prefix + "/") for p in meta.files):
            from modelkit_assets.errors import SubPartNotFoundError

            raise SubPartNotFoundError(
                f"{meta.name}:{meta.version} has no {parsed.sub_part!r}; see its files with "
                f"`modelkit-assets info {meta.name}:{meta.version}`."
            )
    signatures = _signatures(state, store, meta)
    if as_json:
        data = render.meta_dict(meta, store_url=store.display_url)
        data["digest"] = meta.digest()
        data["signatures"] = signatures
        render.echo_json(data)
        return
    render.info_tree(
        render.stdout_console(),
        meta,
        store_url=store.display_url,
        sub_part=parsed.sub_part,
        signatures=signatures,
    )


def _signatures(state: CliState, catalog: Catalog, meta: AssetMeta) -> list[dict[str, Any]] | None:
    """Who signed the version, each key valid or not and trusted or not (``None`` offline:
    signatures live in the store)."""
    from modelkit_assets.maintenance.verify import VerifyReport, check_signatures
    from modelkit_assets.store import AssetStore

    if not isinstance(catalog, AssetStore):
        return None
    trusted: tuple[TrustedKey, ...] = ()
    if state.settings.trusted_keys:
        from modelkit_assets.signing import load_trusted_keys

        trusted = load_trusted_keys(state.settings.trusted_keys)
    report = VerifyReport()
    check_signatures(catalog, meta, report, trusted=trusted)
    return [{k: v for k, v in s.items() if k not in ("name", "version")} for s in report.signatures]
