"""The ``modelkit-assets`` command (a thin typer layer over the library)."""

from modelkit_assets.cli.app import main

__all__ = ["main"]
