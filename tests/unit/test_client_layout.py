"""The client's split by concern: one way in, imports pointing down, one validator per kind of value."""

from __future__ import annotations

import ast
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw import client, timestamps
from airflow_provider_aigw.exceptions import AIGatewayConfigError
from airflow_provider_aigw.listing import iter_keyset, iter_pages

PACKAGE = Path(client.__file__).parent
UTC = dt.timezone.utc


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
        ("budget", {"exceptions", "validation"}),
        ("listing", {"exceptions", "query", "timestamps", "validation"}),
        ("calls", {"exceptions", "listing", "patch", "query", "timestamps", "validation"}),
        ("transport", {"budget", "exceptions", "validation"}),
    ],
)
def test_the_client_parts_import_only_what_lies_below_them(module: str, allowed: set[str]) -> None:
    assert provider_imports(module) <= allowed
    assert "client" not in provider_imports(module)


def test_every_client_part_stays_under_500_lines() -> None:
    for module in ("client", "transport", "listing", "calls", "budget", "validation", "timestamps", "query"):
        assert len((PACKAGE / f"{module}.py").read_text().splitlines()) < 500, module


def test_the_names_callers_import_from_the_client_are_still_there() -> None:
    for name in (
        "AIGatewayClient",
        "RequestBudget",
        "build_patch_body",
        "clean_credential",
        "unwrap_envelope",
        "DEFAULT_BASE_URL",
        "DEFAULT_BUDGET_REQUESTS",
        "DEFAULT_BUDGET_PERIOD",
        "DEFAULT_BUDGET_STORAGE",
        "MAX_PER_PAGE",
        "MAX_DELETE_LIMIT",
        "MAX_FILTERS_QUERY_CHARS",
        "LIST_ORDER_KEYS",
        "DELETE_ORDER_KEYS",
        "_NOT_SET",
    ):
        assert hasattr(client, name), name


def _fake_api(rows: list[dict[str, Any]], calls: list[tuple[list[Any], dict[str, Any]]]) -> Any:
    """A page fetcher over ``rows`` (oldest first) that honours created_at gt/lt, id neq and pages."""

    def fetch(flts: list[Any], params: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        calls.append((flts, dict(params)))
        match = rows
        for f in flts:
            if f["key"] == "created_at":
                edge = timestamps.parse_created_at(f["value"][0])
                op = (lambda a, b: a > b) if f["operator"] == "gt" else (lambda a, b: a < b)
                match = [r for r in match if op(timestamps.parse_created_at(r["created_at"]), edge)]
            elif f["key"] == "id" and f["operator"] == "neq":
                match = [r for r in match if r["id"] not in f["value"]]
        start = (params["page"] - 1) * params["per_page"]
        return match[start : start + params["per_page"]], {"total_count": len(match)}

    return fetch


def test_the_keyset_walk_runs_on_any_page_fetcher_with_ties_and_exact_requests() -> None:
    base = dt.datetime(2026, 1, 1, tzinfo=UTC)
    # 7 logs, 3 of them sharing one millisecond across a page boundary.
    stamps = [0, 1, 2, 2, 2, 3, 4]
    rows = [
        {"id": f"log{i}", "created_at": (base + dt.timedelta(milliseconds=ms)).isoformat().replace("+00:00", "Z")}
        for i, ms in enumerate(stamps)
    ]
    calls: list[tuple[list[Any], dict[str, Any]]] = []
    walked = list(iter_keyset(_fake_api(rows, calls), [], None, None, False, 3, {"order_by": "created_at"}))
    assert [r["id"] for r in walked] == [r["id"] for r in rows]
    assert len(calls) == 3  # ceil(7 / 3): no request wasted


def test_the_page_walk_stops_on_a_short_page() -> None:
    rows = [{"id": f"log{i}", "created_at": "2026-01-01T00:00:00Z"} for i in range(5)]
    calls: list[tuple[list[Any], dict[str, Any]]] = []
    walked = list(iter_pages(_fake_api(rows, calls), [], 2, {}))
    assert [r["id"] for r in walked] == [r["id"] for r in rows]
    assert [c[1]["page"] for c in calls] == [1, 2, 3]


def test_a_nan_timeout_is_refused_before_any_request() -> None:
    with pytest.raises(AIGatewayConfigError, match="timeout in the client settings must be a positive number"):
        client.AIGatewayClient("0" * 32, api_token="t", timeout=math.nan)


RUNTIME = [p for p in PACKAGE.rglob("*.py") if "emulator" not in p.parts]


def test_no_module_keeps_a_validator_of_its_own() -> None:
    """Counts, choices and durations are checked by the validators of validation.py, nowhere else."""
    private = {"_positive_int", "_choice", "_seconds", "_settle_seconds", "_check_positive"}
    for path in RUNTIME:
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not defined & private, (path.name, defined & private)


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
