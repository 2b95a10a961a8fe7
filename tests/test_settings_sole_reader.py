"""``modelkit_assets/settings.py`` is the only module that touches the environment.

Every variable is read there and every default lives there; other modules take a
``Settings``, a constant or a function of ``settings``. The scan is syntactic (``ast``) and
sees the ways a module can reach the environment by name:

- ``os.environ``, ``os.environb``, ``os.getenv``, ``os.getenvb``, ``os.putenv``,
  ``os.unsetenv`` (reads and writes alike: a write is someone else's read);
- the same through an alias (``import os as _os``) or the platform modules ``posix``/``nt``;
- ``from os import environ`` (or any name above, aliased or not).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "modelkit_assets"
OS_MODULES = {"os", "posix", "nt"}
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
#: the one reader
READER = "settings.py"
#: modules that may still touch the environment, each with the reason and the way out;
#: empty: the gs:// backend picks gcsfs's class instead of writing GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT
#: (backends/gcs.py asks settings.gcsfs_experimental_requested())
ALLOWED: dict[str, str] = {}


def environment_uses(package: Path) -> list[str]:
    """``path:line: expression`` for each reach into the environment outside ``READER``."""
    found: list[tuple[str, int, str]] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if relative == READER or relative in ALLOWED:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases = set(OS_MODULES)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                aliases |= {a.asname or a.name for a in node.names if a.name in OS_MODULES}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in OS_MODULES and not node.level:
                for alias in node.names:
                    if alias.name in ENVIRONMENT_NAMES | {"*"}:
                        found.append((relative, node.lineno, f"from {node.module} import {alias.name}"))
            elif (
                isinstance(node, ast.Attribute)
                and node.attr in ENVIRONMENT_NAMES
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                found.append((relative, node.lineno, ast.unparse(node)))
    return [f"{relative}:{line}: {text}" for relative, line, text in sorted(found)]


def test_settings_is_the_sole_reader_of_the_environment() -> None:
    assert environment_uses(PACKAGE) == []


def test_the_allow_list_names_existing_modules() -> None:
    assert [name for name in ALLOWED if not (PACKAGE / name).is_file()] == []


def test_the_scan_sees_every_way_in(tmp_path: Path) -> None:
    package = tmp_path / "modelkit_assets"
    (package / "sub").mkdir(parents=True)
    (package / "settings.py").write_text("import os\nX = os.environ.get('A')\n")
    (package / "store.py").write_text(
        "import os\nimport os as _os\n"
        "A = os.environ.get('A')\n"
        "B = _os.getenv('B')\n"
        "os.putenv('C', '1')\n"
        "P = os.path.join('a', 'b')\n"
        "environ = {}\n"
        "D = environ.get('D')\n"
    )
    (package / "sub" / "cli.py").write_text(
        "from os import environ as env, path\nfrom os import *\nimport posix\nE = posix.environb\n"
    )
    assert environment_uses(package) == [
        "store.py:3: os.environ",
        "store.py:4: _os.getenv",
        "store.py:5: os.putenv",
        "sub/cli.py:1: from os import environ",
        "sub/cli.py:2: from os import *",
        "sub/cli.py:4: posix.environb",
    ]
