"""``sign`` and ``keygen``: publisher keys and signatures of existing versions.

Publishing signs with ``new``/``update --sign-key``; ``sign`` signs a version that is
already in the store (published unsigned, or for a new key), after re-hashing its
objects. ``keygen`` writes an Ed25519 (or EC P-256) key pair to start with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from modelkit_assets.cli.context import CliState, SignKeyOption


def sign(
    ctx: typer.Context,
    specs: Annotated[
        list[str],
        typer.Argument(
            help="NAME[:VERSION]: the version to sign (no version: the latest).",
            metavar="SPEC...",
            show_default=False,
        ),
    ],
    sign_key: SignKeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Sign versions already in the store, after checking their objects against the .meta."""
    from modelkit_assets.errors import ConfigurationError
    from modelkit_assets.maintenance.sign import sign_version

    state = CliState.of(ctx)
    store = state.store()
    key = store.signing_key(sign_key)
    if key is None:
        raise ConfigurationError(
            "`modelkit-assets sign` needs a private key: pass --sign-key KEY.pem or set "
            "MODELKIT_ASSETS_SIGNING_KEY."
        )
    results = [sign_version(store, spec, key) for spec in specs]
    if as_json:
        from modelkit_assets.cli.render import echo_json

        echo_json({"store": store.display_url, "versions": [r.to_dict() for r in results]})
        return
    for r in results:
        how = "signed" if r.written else "already signed"
        typer.echo(f"{r.name}:{r.version} {how} by {r.key} ({r.algorithm})")


def keygen(
    path: Annotated[
        Path,
        typer.Argument(
            help="Where to write the private key; the public key goes beside it as NAME.pub.pem.",
            metavar="KEY.pem",
            show_default=False,
        ),
    ],
    key_type: Annotated[
        str,
        typer.Option("--type", metavar="TYPE", help="ed25519 (default) or p256 (EC P-256)."),
    ] = "ed25519",
) -> None:
    """Create a signing key pair: a private key (mode 0600) and its public key."""
    from modelkit_assets.signing import ECDSA_P256, ED25519, generate_key, load_signing_key

    kinds = {"ed25519": ED25519, "p256": ECDSA_P256, "p-256": ECDSA_P256}
    algorithm = kinds.get(key_type.strip().lower())
    if algorithm is None:
        raise typer.BadParameter(f"--type is ed25519 or p256, not {key_type!r}")
    try:
        private, public = generate_key(path, algorithm)
    except FileExistsError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1) from None
    key = load_signing_key(private)
    typer.echo(f"Private key: {private} (keep it secret: publishers sign with --sign-key {private})")
    typer.echo(f"Public key:  {public} (consumers add it to MODELKIT_ASSETS_TRUSTED_KEYS)")
    typer.echo(f"Fingerprint: {key.fingerprint}")
