"""The layout of the modules: imports pointing down, no re-exports, thin operators."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import airflow_provider_aigw

PACKAGE = Path(airflow_provider_aigw.__file__).parent


def provider_imports(module: str) -> set[str]:
    """The provider modules ``module`` imports (at any level of the file)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("airflow_provider_aigw."):
            found.add(node.module.removeprefix("airflow_provider_aigw."))
    return found


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("validation", {"exceptions"}),
        ("timestamps", {"exceptions"}),
        ("query", {"exceptions", "timestamps", "validation"}),
        ("patch", {"exceptions", "validation"}),
        ("progress", set()),
        ("concurrency", set()),
        ("budget", {"exceptions", "validation"}),
        ("listing", {"exceptions", "query", "timestamps", "validation"}),
        ("transport", {"budget", "exceptions", "validation"}),
    ],
)
def test_the_client_parts_import_only_what_lies_below_them(module: str, allowed: set[str]) -> None:
    assert provider_imports(module) <= allowed
    assert "client" not in provider_imports(module)


def test_every_client_part_stays_under_500_lines() -> None:
    for module in ("client", "transport", "listing", "patch", "budget", "validation", "timestamps", "query"):
        assert len((PACKAGE / f"{module}.py").read_text().splitlines()) < 500, module


#: The client, its layers and the values: modules other modules import names from.
LOWER_MODULES = (
    "validation",
    "timestamps",
    "query",
    "patch",
    "progress",
    "concurrency",
    "budget",
    "transport",
    "listing",
    "client",
)


def _borrowed_names(module: str) -> set[str]:
    """The names ``module`` imports from other provider modules (anywhere in the file)."""
    return {
        alias.asname or alias.name
        for node in ast.walk(ast.parse((PACKAGE / f"{module}.py").read_text()))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE.name)
        for alias in node.names
    }


def test_no_name_is_imported_from_a_module_that_only_imported_it() -> None:
    """The client and the values re-export nothing: importers name the module that defines a name."""
    borrowed = {f"airflow_provider_aigw.{module}": _borrowed_names(module) for module in LOWER_MODULES}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in borrowed:
                found += [f"{path.name}: {node.module}.{a.name}" for a in node.names if a.name in borrowed[node.module]]
    assert found == []
    assert all(not hasattr(__import__(module, fromlist=["_"]), "__all__") for module in borrowed)


RUNTIME = [p for p in PACKAGE.rglob("*.py") if "emulator" not in p.parts]


def test_operators_are_thin() -> None:
    source = (PACKAGE / "operators" / "ai_gateway.py").read_text()
    assert len(source.splitlines()) < 500
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno is not None
            assert node.end_lineno - node.lineno + 1 <= 60, node.name


def test_every_runtime_module_stays_under_500_lines() -> None:
    for path in RUNTIME:
        assert len(path.read_text().splitlines()) < 500, path


def test_export_and_deletion_never_import_operators_and_export_imports_hooks_for_typing_only() -> None:
    for path in [*(PACKAGE / "export").glob("*.py"), *(PACKAGE / "deletion").glob("*.py")]:
        tree = ast.parse(path.read_text())
        runtime = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module]
        every = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not any(n.module.startswith("airflow_provider_aigw.operators") for n in every), path  # type: ignore[union-attr]
        assert not any(n.module.startswith("airflow_provider_aigw.hooks") for n in runtime), path  # type: ignore[union-attr]
