"""No re-exports: importers name the module that defines a name (the import direction is
tests/unit/test_architecture.py's)."""

from __future__ import annotations

import ast
from pathlib import Path

import airflow_provider_aigw

PACKAGE = Path(airflow_provider_aigw.__file__).parent


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
