"""Development sessions: ``nox`` runs lint, typing and tests (what ``.ci/run`` checks).

    nox                          lint + typing + tests
    nox -s tests -- -m "not slow" -x          arguments after ``--`` go to pytest
    nox -s interop               the modelkit 0.1.3 round trips only
    nox -s conformance           modelkit 0.1.3's own tests/assets against modelkit_assets.compat
    nox -s bench -- --quick      benchmarks/run.py with its own arguments

Each session installs the project with its ``dev`` extra into its own virtualenv under
``.nox/`` (reused between runs). The Python is the one nox runs with.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typing", "tests"]
nox.options.reuse_existing_virtualenvs = True

LINTED = ["modelkit_assets", "tests", "examples", "benchmarks", "noxfile.py"]


def _install(session: nox.Session) -> None:
    session.install("-e", ".[dev]")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (servers start from the fixtures; Azurite needs the npm install in
    tests/servers/node)."""
    _install(session)
    session.run("pytest", *session.posargs)


@nox.session
def interop(session: nox.Session) -> None:
    """Two-way compatibility with the real modelkit 0.1.3 (its virtualenv is cached)."""
    _install(session)
    session.run("pytest", "-m", "interop", *session.posargs)


@nox.session
def conformance(session: nox.Session) -> None:
    """modelkit 0.1.3's own tests of ``modelkit.assets``, obtained at run time and run
    against ``modelkit_assets.compat`` on the same servers as our tests
    (tests/conformance/run.py; arguments after ``--`` go to it)."""
    _install(session)
    session.run("python", "tests/conformance/run.py", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, examples and benchmarks."""
    _install(session)
    session.run("ruff", "check", *(p for p in LINTED if Path(p).exists()), *session.posargs)


@nox.session
def typing(session: nox.Session) -> None:
    """mypy --strict (settings in pyproject.toml) over the package."""
    _install(session)
    session.run("mypy", "modelkit_assets", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """benchmarks/run.py (moto S3 behind a latency proxy; see its docstring)."""
    script = Path("benchmarks/run.py")
    if not script.exists():
        session.skip("benchmarks/run.py is not there")
    _install(session)
    session.run("python", str(script), *session.posargs)
