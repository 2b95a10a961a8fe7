"""The public names of ``modelkit_assets``: one sorted ``__all__``, each importable and
documented in the README's API section (httpx keeps the same test)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import modelkit_assets
from modelkit_assets import errors

README = Path(__file__).resolve().parent.parent / "README.md"

EXPECTED = [
    "AliasConflictError",
    "AssetExistsError",
    "AssetMeta",
    "AssetNotFoundError",
    "AssetSpec",
    "AssetStore",
    "AssetsError",
    "AssetsManager",
    "BackendNotInstalledError",
    "CacheLockTimeoutError",
    "CacheNotWritableError",
    "ClaimLostError",
    "ConfigurationError",
    "FetchResult",
    "FileEntry",
    "IntegrityError",
    "InvalidMetaError",
    "InvalidNameError",
    "InvalidSourceError",
    "InvalidSpecError",
    "InvalidSubPartError",
    "InvalidVersionError",
    "LocalDiskError",
    "LockMismatchError",
    "LockfileError",
    "OfflineError",
    "PublishConflictError",
    "PublishPlan",
    "ReadOnlyFilesystemError",
    "Settings",
    "SignatureError",
    "StoreError",
    "StoreNotFoundError",
    "StorePermissionError",
    "StoreUnreachableError",
    "SubPartNotFoundError",
    "UnknownVersioningSystemError",
    "VersionExistsError",
    "VersionNotFoundError",
    "VersioningOptionError",
    "__version__",
]


def _api_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## API\n(.*?)(?=^## )", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "README.md has no '## API' section"
    return match.group(1)


def test_all_is_the_exact_sorted_list() -> None:
    assert modelkit_assets.__all__ == EXPECTED
    assert modelkit_assets.__all__ == sorted(modelkit_assets.__all__)
    assert dir(modelkit_assets) == EXPECTED


def test_every_public_name_imports() -> None:
    namespace: dict[str, object] = {}
    exec(f"from modelkit_assets import {', '.join(EXPECTED)}", namespace)
    for name in EXPECTED:
        assert namespace[name] is getattr(modelkit_assets, name)
        if name != "__version__":
            assert getattr(namespace[name], "__name__", None) == name, name


def test_every_lazily_imported_name_is_public() -> None:
    # a name reachable through __getattr__ but missing from __all__ is public by accident
    assert set(modelkit_assets._LAZY) <= set(EXPECTED)


def test_every_error_class_is_exported() -> None:
    # a new error added to errors.py is raised to users: it must be importable from the top
    defined = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.AssetsError)
    }
    assert defined == {name for name in EXPECTED if name.endswith("Error")}
    for name in defined:
        assert getattr(modelkit_assets, name) is getattr(errors, name)


def test_every_public_name_is_documented_in_the_readme_api_section() -> None:
    section = _api_section()
    # one bullet per name: "- `Name`: one line"
    documented = re.findall(r"^- `([A-Za-z_][A-Za-z0-9_]*)`[ :(]", section, flags=re.MULTILINE)
    assert sorted(documented) == EXPECTED  # each once, none stale
    for line in section.splitlines():
        if line.startswith("- `"):
            assert len(line.split(": ", 1)) == 2 and line.split(": ", 1)[1].strip(), line


def test_importing_the_package_stays_cheap() -> None:
    # the error tree is imported eagerly; nothing that pulls in fsspec may be
    code = (
        "import sys, modelkit_assets; "
        "print(sorted(m for m in ('fsspec', 'rich', 'typer') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
