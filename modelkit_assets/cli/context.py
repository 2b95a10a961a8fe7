"""The global options of one invocation, and the library objects they configure.

Nothing heavy is imported here: the store (and so fsspec) is created only by commands
that need it, and rich only by commands that draw something, so ``--help`` and a cached
``fetch`` stay cheap (G6).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from modelkit_assets.manager import AssetsManager
    from modelkit_assets.offline import Catalog
    from modelkit_assets.settings import Settings
    from modelkit_assets.store import AssetStore

ProgressMode = Literal["rich", "plain", "off"]

RequireSignatureOption = Annotated[
    bool,
    typer.Option(
        "--require-signature",
        help="Refuse any version no trusted key signed (also MODELKIT_ASSETS_REQUIRE_SIGNATURE=1; "
        "trusted public keys in MODELKIT_ASSETS_TRUSTED_KEYS).",
    ),
]
SignKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--sign-key",
        metavar="KEY.pem",
        help="Sign with this PEM private key, Ed25519 or EC P-256 (default: "
        "MODELKIT_ASSETS_SIGNING_KEY; passphrase in MODELKIT_ASSETS_SIGNING_KEY_PASSPHRASE).",
        show_default=False,
    ),
]


@dataclass
class CliState:
    """Global options (``--store``, ``--assets-dir``, ...) shared by every command.

    ``None`` means "not given": the settings (read once from the environment) apply.
    """

    store_url: str | None = None
    assets_dir: Path | None = None
    versioning: str | None = None
    verbose: int = 0
    quiet: bool = False
    command: str = "this command"
    _settings: Settings | None = dataclasses.field(default=None, repr=False)
    _stderr: Console | None = dataclasses.field(default=None, repr=False)

    @staticmethod
    def of(ctx: typer.Context) -> CliState:
        state = ctx.find_object(CliState)
        state = state if state is not None else CliState()
        state.command = ctx.command_path  # for messages: "`modelkit-assets new` needs ..."
        return state

    def configure_logging(self) -> Callable[[], None]:
        """``-v`` shows the library's info messages, ``-vv`` its debug ones, ``-q`` only
        errors; returns what undoes it (the app calls it when the command ends, so a
        process that runs the app, such as a test, gets its logging back).

        Other libraries (gcsfs, botocore, the Azure SDK, aiohttp) log the failures our
        retries handle, gcsfs with a traceback per request; with no handler, Python's
        last-resort handler would print their warnings and errors before our one line.
        They are silenced unless ``-vv``, which shows their warnings and errors (not their
        debug output: it dumps request headers).
        """
        level = (
            logging.ERROR
            if self.quiet
            else [logging.WARNING, logging.INFO, logging.DEBUG][min(self.verbose, 2)]
        )
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler.setLevel(level)
        logger = logging.getLogger("modelkit_assets")
        previous_level = logger.level
        logger.addHandler(handler)
        logger.setLevel(min(level, logger.getEffectiveLevel()) if previous_level else level)

        foreign: logging.Handler
        if self.verbose >= 2:
            foreign = logging.StreamHandler(sys.stderr)
            foreign.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s"))
            foreign.setLevel(logging.WARNING)
            foreign.addFilter(lambda record: not record.name.startswith("modelkit_assets"))
        else:
            foreign = logging.NullHandler()
        root = logging.getLogger()
        root.addHandler(foreign)

        def restore() -> None:
            logger.removeHandler(handler)
            logger.setLevel(previous_level)
            root.removeHandler(foreign)

        return restore

    @property
    def settings(self) -> Settings:
        """The environment's settings with the command line's overrides on top."""
        if self._settings is None:
            from modelkit_assets.settings import NO_STORE, Settings

            settings = Settings.from_env()
            changes: dict[str, object] = {}
            if self.store_url is not None:
                url = self.store_url.strip()
                changes["store_url"] = None if url.lower() == NO_STORE else url
                changes["embedded"] = False
            if self.assets_dir is not None:
                changes["assets_dir"] = self.assets_dir.expanduser()
            if self.versioning is not None:
                changes["versioning"] = self.versioning.strip()
            self._settings = dataclasses.replace(settings, **changes)  # type: ignore[arg-type]
        return self._settings

    def require_signatures(self, required: bool) -> None:
        """``--require-signature``: as if ``MODELKIT_ASSETS_REQUIRE_SIGNATURE=1`` were set."""
        if required:
            self._settings = dataclasses.replace(self.settings, require_signature=True)

    def store(self) -> AssetStore:
        """The store to publish to or read from.

        Raises
        ------
        ConfigurationError
            When no store is configured (``--store none``).
        OfflineError
            When offline mode is on: the command cannot work without the store.
        """
        if self.settings.offline:
            from modelkit_assets.errors import OfflineError

            raise OfflineError(
                f"offline: `{self.command}` needs the store; unset MODELKIT_ASSETS_OFFLINE to run it."
            )
        from modelkit_assets.store import AssetStore

        return AssetStore(settings=self.settings)

    def catalog(self) -> Catalog:
        """What read-only commands ask: the store, or offline the assets dir alone (and a
        note on stderr that the answer covers the cached versions only)."""
        if not self.settings.offline:
            return self.store()
        from modelkit_assets.offline import ONLINE_HINT, CachedCatalog

        catalog = CachedCatalog(self.manager())
        self.note(
            f"offline: answering from the assets dir {catalog.manager.assets_dir} alone: cached "
            f"versions only; {ONLINE_HINT}."
        )
        return catalog

    def manager(self) -> AssetsManager:
        """The assets manager (its store is created only on a cache miss)."""
        from modelkit_assets.manager import AssetsManager

        return AssetsManager(settings=self.settings)

    @property
    def embedded(self) -> bool:
        """Whether the store is the embedded local one (nothing configured)."""
        return self.settings.embedded

    def stderr(self) -> Console:
        """A rich console on stderr, where everything but results goes."""
        if self._stderr is None:
            from modelkit_assets.cli.render import console

            self._stderr = console(stderr=True)
        return self._stderr

    def note(self, message: str) -> None:
        """A line for humans on stderr (silent with ``--quiet``)."""
        if not self.quiet:
            typer.echo(message, err=True)

    @property
    def progress_mode(self) -> ProgressMode:
        """Bars on a terminal, plain lines when stderr is piped, nothing with ``--quiet``."""
        if self.quiet:
            return "off"
        return "rich" if sys.stderr.isatty() else "plain"
