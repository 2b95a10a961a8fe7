"""Run modelkit 0.1.3's own tests of ``modelkit.assets`` against ``modelkit_assets.compat``.

    python tests/conformance/run.py [--source DIR_OR_GIT_DIR] [-- pytest args]

modelkit's code is never part of this repository: its tests are obtained at run time.
PyPI has only a wheel of modelkit 0.1.3 (no sdist), and the wheel has no tests, so the
source is a git checkout or bare clone of Cornerstone-OnDemand/modelkit at the 0.1.3 code
(``--source``, ``MODELKIT_CONFORMANCE_SOURCE``, else the mirror path below); without one the
run is skipped, saying so (``--require-source`` makes that a failure).

What it does, in a temporary folder::

    {tmp}/pytest.ini            a clean config (not ours: modelkit's tests are not strict)
    {tmp}/README.md             modelkit's (its tests fetch it as a local path)
    {tmp}/tests/__init__.py     modelkit's, imports rewritten
    {tmp}/tests/conftest.py     modelkit's, imports rewritten
    {tmp}/tests/testdata/       modelkit's test bucket
    {tmp}/tests/assets/...      modelkit's tests/assets, imports rewritten
    {tmp}/tests/assets/conftest.py   ours (conftest_assets.py): the same fixtures on moto,
                                fake-gcs-server and Azurite (tests/servers.py) instead of docker
    {tmp}/tests/_excluded.py    placeholders for the imports of wholly excluded files

``modelkit.assets`` becomes ``modelkit_assets.compat`` everywhere. Tests listed in
``excluded.toml`` (modelkit's driver internals only, each with its reason) are collected
and reported as skipped with that reason. Prints ``passed/failed/excluded of total``.
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
OURS = HERE.parent  # our tests/ (servers.py)
MIRROR = Path("/work/.mirror/Cornerstone-OnDemand+modelkit/repo")
#: the commit of modelkit's main that is its 0.1.3 code (the tag is missing upstream; its
#: modelkit/assets is byte for byte the one in PyPI's 0.1.3 wheel)
MODELKIT_REF = os.environ.get("MODELKIT_CONFORMANCE_REF", "454454ca83c0f7c3ff6538f29b32a32db27ea35a")
WANTED = ("tests/__init__.py", "tests/conftest.py", "tests/assets", "tests/testdata/test-bucket", "README.md")


def _extract(source: Path, dest: Path) -> None:
    """Copy modelkit's test files from a checkout or a (bare) git dir into ``dest``."""
    if (source / "tests" / "assets").is_dir():
        for item in WANTED:
            src = source / item
            if src.is_dir():
                shutil.copytree(src, dest / item)
            else:
                (dest / item).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dest / item)
        return
    archive = subprocess.run(
        ["git", "--git-dir", str(source), "archive", "--format=tar", MODELKIT_REF, *WANTED],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


_MODULE = re.compile(r"\bmodelkit\.assets\b")


def _rewrite(text: str) -> str:
    """modelkit.assets -> modelkit_assets.compat; its CLI module (driver internals, used
    only by an excluded test) is not imported."""
    text = text.replace("import modelkit.assets.cli\n", "import modelkit_assets.compat\n")
    return _MODULE.sub("modelkit_assets.compat", text)


def _importable(module: str, folder: Path) -> bool:
    """Whether ``module`` can be imported by the copied tests (their own modules can)."""
    top = module.split(".")[0]
    if top == "tests" or (folder / f"{top}.py").exists():
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False


def _stub_missing_imports(text: str, folder: Path) -> str:
    """Bind imports that do not exist here (modelkit's drivers and model layer, tenacity)
    to placeholders, so that the excluded tests using them are still collected and counted.
    A placeholder used once collection is over raises (tests/_excluded.py)."""
    lines = text.splitlines(keepends=True)
    for node in reversed(ast.parse(text).body):
        if isinstance(node, ast.ImportFrom) and node.module and not _importable(node.module, folder):
            names, was = ", ".join(a.asname or a.name for a in node.names), f"from {node.module}"
        elif isinstance(node, ast.Import) and not all(_importable(a.name, folder) for a in node.names):
            names = ", ".join(a.asname or a.name.split(".")[0] for a in node.names)
            was = "import " + ", ".join(a.name for a in node.names)
        else:
            continue
        start, end = node.lineno - 1, node.end_lineno or node.lineno
        lines[start:end] = [f"from tests._excluded import {names}  # was: {was}\n"]
    return "".join(lines)


_PLACEHOLDERS = '''"""Placeholders for imports that do not exist here; only excluded tests use them."""

COLLECTING = True


class _Placeholder:
    def __init__(self, name):
        self._name = name

    def _check(self):
        if not COLLECTING:
            raise RuntimeError(f"{self._name} is not available here: only excluded tests may use it")

    def __call__(self, *args, **kwargs):
        self._check()
        return self

    def __getattr__(self, name):
        self._check()
        return _Placeholder(f"{self._name}.{name}")


def __getattr__(name):
    return _Placeholder(name)
'''


def prepare(source: Path, root: Path) -> None:
    """Lay modelkit's tests out under ``root``, rewritten for modelkit_assets.compat."""
    _extract(source, root)
    for path in (root / "tests").rglob("*.py"):
        text = _rewrite(path.read_text())
        path.write_text(_stub_missing_imports(text, path.parent))
    shutil.copy(HERE / "conftest_assets.py", root / "tests" / "assets" / "conftest.py")
    (root / "tests" / "_excluded.py").write_text(_PLACEHOLDERS)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")


def find_source(given: str | None) -> Path | None:
    for candidate in (given, os.environ.get("MODELKIT_CONFORMANCE_SOURCE"), str(MIRROR)):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="modelkit checkout or git dir at the 0.1.3 code")
    parser.add_argument("--require-source", action="store_true", help="fail if no source is found")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    source = find_source(args.source)
    if source is None:
        print(
            "conformance: skipped: modelkit's tests are not here (PyPI has no sdist of 0.1.3); "
            "pass --source or set MODELKIT_CONFORMANCE_SOURCE to a modelkit checkout or git dir."
        )
        return 1 if args.require_source else 0
    root = Path(tempfile.mkdtemp(prefix="modelkit-conformance-"))
    try:
        prepare(source, root)
        env = dict(os.environ)
        env.update(
            {
                "MODELKIT_CONFORMANCE_OURS": str(OURS),
                "MODELKIT_CONFORMANCE_EXCLUDED": str(HERE / "excluded.toml"),
                "ENABLE_S3_TEST": "True",
                "ENABLE_GCS_TEST": "True",
                "ENABLE_AZ_TEST": "True",
                # google-auth must not probe the GCE metadata server (off loopback)
                "NO_GCE_CHECK": "true",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")])),
            }
        )
        command = [sys.executable, "-m", "pytest", "tests/assets", "-rfEs", "-q", *args.pytest_args]
        print(f"conformance: modelkit's tests from {source}, run in {root}", flush=True)
        return subprocess.run(command, cwd=root, env=env, check=False).returncode
    finally:
        if args.keep:
            print(f"conformance: kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
