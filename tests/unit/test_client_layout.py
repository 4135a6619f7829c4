"""The listing walks on any page fetcher, and one validator per kind of value (the import direction is
tests/unit/test_architecture.py's)."""

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
