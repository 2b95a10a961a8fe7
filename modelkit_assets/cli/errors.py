"""How the CLI reports a failure: one line on stderr and an exit code.

The library's own errors (``AssetsError``) already name the asset, version and store and
say what to do next, so they are printed as they are. Anything else is described from a
table that maps the exception type to a one-line message built only from safe parts
(file names, ``strerror``): a foreign message may quote a signed URL or a key (G7).
``MODELKIT_ASSETS_DEBUG=1`` lets the exception through, with its traceback.

Exit codes: 1 for errors, 2 for usage errors (typer/click's own), 130 for Ctrl-C.
"""

from __future__ import annotations

import errno
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer

from modelkit_assets.errors import AssetsError
from modelkit_assets.settings import DEBUG_VARIABLE, debug_enabled

P = ParamSpec("P")
R = TypeVar("R")

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_HINT = f"set {DEBUG_VARIABLE}=1 to see the traceback"


def _os_error(err: BaseException) -> str:
    if not isinstance(err, OSError):
        return _unexpected(err)
    where = f": {err.filename}" if getattr(err, "filename", None) else ""
    if err.errno == errno.ENOSPC:
        return f"No space left on the device{where}; free some space or point --assets-dir elsewhere."
    if err.errno in (errno.EROFS,):
        return f"Read-only file system{where}; point --assets-dir at a writable folder."
    reason = err.strerror or type(err).__name__
    return f"{reason}{where}; {_HINT}."


def _permission(err: BaseException) -> str:
    filename = getattr(err, "filename", None)
    where = f" on {filename}" if filename else ""
    return f"Permission denied{where}; fix its rights or point --assets-dir at a folder you can write."


def _memory(err: BaseException) -> str:
    return "Out of memory; close other programs or lower MODELKIT_ASSETS_CONCURRENCY."


def _unexpected(err: BaseException) -> str:
    return f"Unexpected error ({type(err).__name__}); {_HINT} and report it."


#: exception type -> one-line message; the first matching entry (in this order) wins
MESSAGES: list[tuple[type[BaseException], Callable[[BaseException], str]]] = [
    (AssetsError, str),
    (PermissionError, _permission),
    (MemoryError, _memory),
    (OSError, _os_error),
    (Exception, _unexpected),
]


def describe(err: BaseException) -> str:
    """The one line printed for ``err`` (never a foreign exception's own message)."""
    for kind, message in MESSAGES:
        if isinstance(err, kind):
            text = message(err).strip()
            # one line, whatever the message holds
            return " ".join(text.split()) or type(err).__name__
    return _unexpected(err)


def reported(command: Callable[P, R]) -> Callable[P, R]:
    """Wrap a command so that a failure prints one line on stderr and exits 1.

    Usage errors never get here (typer reports them before the command runs, exit 2);
    Ctrl-C exits 130 after the command has said what was left undone. Applied to the
    command functions rather than in ``main()`` so that typer's ``CliRunner`` sees
    exactly what the console script does.
    """

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (typer.Exit, typer.Abort, typer.BadParameter):
            raise  # BadParameter: a usage error found by the command itself, exit 2
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as err:
            if debug_enabled():
                raise
            typer.echo(f"Error: {describe(err)}", err=True)
            raise typer.Exit(EXIT_ERROR) from None

    return wrapper
