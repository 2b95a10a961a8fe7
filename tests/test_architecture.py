"""The package's shape, checked: no import cycles between its modules, and no module
reaching into another's private names (``x._name``, ``from m import _name``).

Imports inside functions count (a lazy import that closes a cycle is still a cycle);
imports under ``if TYPE_CHECKING:`` do not (they never run). Allowed private names:
a subclass calling its base class's hook (``super()._x``) and fsspec's asynchronous API,
whose coroutines are underscore-named by design (``AsyncFileSystem._cp_file``...,
and s3fs's ``_call_s3``, the coroutine twin of its public ``call_s3``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "modelkit_assets"
#: fsspec's documented async coroutines, called on an open filesystem
FSSPEC_ASYNC = {"_cp_file", "_put_file", "_get_file", "_pipe_file", "_cat_file", "_info", "_ls", "_call_s3"}


def _modules(package: Path) -> dict[str, Path]:
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded |= {id(child) for child in ast.walk(node)}
    return guarded


def _defined_names(tree: ast.AST) -> set[str]:
    """The names a module defines: functions, classes, and attributes it assigns."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def _imported_module(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _scan(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    """The import graph between the package's modules, and every private use."""
    modules = _modules(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private: list[str] = []
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        guarded = _type_checking_nodes(tree)
        own = _defined_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _imported_module(name, path, node)
                if not target.startswith("modelkit_assets"):
                    continue
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private.append(f"{name}:{node.lineno}: from {target} import {alias.name}")
                    if id(node) not in guarded:
                        sub = f"{target}.{alias.name}"
                        graph[name].add(sub if sub in modules else target)
            elif isinstance(node, ast.Import) and id(node) not in guarded:
                graph[name] |= {a.name for a in node.names if a.name.startswith("modelkit_assets")}
            elif (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and ast.unparse(owner.func) == "super":
                    continue
                if node.attr in FSSPEC_ASYNC and ast.unparse(owner) == "fs":
                    continue
                if node.attr in own:  # the module's own private name, e.g. on another instance
                    continue
                private.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
    return {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}, private


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    graph, _ = _scan()
    assert _cycles(graph) == []


def test_no_module_uses_another_modules_private_names() -> None:
    _, private = _scan()
    assert private == []


def test_the_checker_sees_cycles_and_private_uses(tmp_path: Path) -> None:
    """The checks above can fail: a made-up package with both defects."""
    package = tmp_path / "modelkit_assets"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "store.py").write_text("from modelkit_assets.sub import claims\n")
    (package / "sub" / "claims.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from modelkit_assets import alone\n"
        "def f(store, fs):\n"
        "    from modelkit_assets.store import _request\n"
        "    super()._hook(); self._ok(); fs._cp_file()\n"
        "    other = f; other._mine()\n"
        "    return store._remove_quietly()\n"
        "def _mine(): pass\n"
    )
    (package / "alone.py").write_text("from modelkit_assets.sub import claims\n")
    graph, private = _scan(package)
    assert _cycles(graph) == [["modelkit_assets.store", "modelkit_assets.sub.claims"]]
    assert private == [
        "modelkit_assets.sub.claims:5: from modelkit_assets.store import _request",
        "modelkit_assets.sub.claims:8: store._remove_quietly",
    ]
