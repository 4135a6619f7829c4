"""The listing walks on any page fetcher, and one validator per kind of value (the import direction is
tests/unit/test_architecture.py's)."""

from __future__ import annotations

import ast
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw import client, filters
from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayInputError
from airflow_provider_aigw.export._window import check_gateway_id
from airflow_provider_aigw.export.formats import parse_created_at as formats_parse_created_at
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
                edge = filters.parse_created_at(f["value"][0])
                op = (lambda a, b: a > b) if f["operator"] == "gt" else (lambda a, b: a < b)
                match = [r for r in match if op(filters.parse_created_at(r["created_at"]), edge)]
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


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "3", None, math.nan])
def test_validate_positive_refuses_what_is_not_a_positive_integer(value: Any) -> None:
    with pytest.raises(AIGatewayInputError, match=r"^n must be a positive integer, got "):
        filters.validate_positive(value, param="n")


def test_validate_positive_bounds_zero_floats_and_error_class() -> None:
    assert filters.validate_positive(50, param="n", maximum=50) == 50
    with pytest.raises(AIGatewayInputError, match=r"^n must be an integer from 1 to 50, got 51$"):
        filters.validate_positive(51, param="n", maximum=50)
    assert filters.validate_positive(0, param="n", allow_zero=True) == 0
    with pytest.raises(AIGatewayInputError, match=r"^n must be an integer >= 0, got -1$"):
        filters.validate_positive(-1, param="n", allow_zero=True)
    assert filters.validate_positive(0.5, param="t", integer=False) == 0.5
    with pytest.raises(AIGatewayConfigError, match=r"^t must be a positive number of seconds, got nan$"):
        filters.validate_positive(math.nan, param="t", integer=False, unit=" of seconds", error=AIGatewayConfigError)


def test_a_nan_timeout_is_refused_before_any_request() -> None:
    with pytest.raises(AIGatewayConfigError, match="timeout in the client settings must be a positive number"):
        client.AIGatewayClient("0" * 32, api_token="t", timeout=math.nan)


def test_one_created_at_parser_for_the_listing_the_export_and_the_delete() -> None:
    assert formats_parse_created_at is filters.parse_created_at
    expected = dt.datetime(2026, 1, 2, 3, 4, 5, 123400, tzinfo=UTC)
    assert filters.parse_created_at("2026-01-02T03:04:05.1234Z") == expected  # 4 digits: Python 3.10 too
    assert filters.parse_created_at(" 2026-01-02T04:04:05.1234+0100 ") == expected
    assert filters.parse_created_at(expected.replace(tzinfo=None)) == expected
    with pytest.raises(AIGatewayInputError, match="not ISO 8601"):
        filters.parse_created_at("yesterday")


def test_the_export_checks_gateway_ids_with_the_api_pattern() -> None:
    assert check_gateway_id("my-gateway_1") == "my-gateway_1"
    # The export's own looser pattern let uppercase through; the API's refuses it.
    for bad in ("My-Gateway", "GW", "a" * 65, "a--b", ""):
        with pytest.raises(AIGatewayInputError):
            check_gateway_id(bad)


# ------------------------------------------------------------- one validator per kind of value


def test_validate_positive_refuses_infinity_for_numbers_of_seconds() -> None:
    with pytest.raises(AIGatewayInputError, match=r"^t must be a positive number, got inf$"):
        filters.validate_positive(math.inf, param="t", integer=False)
    assert filters.validate_positive(10**400, param="n") == 10**400  # big ints stay ints, no float overflow


def test_validate_choice_names_the_parameter_and_the_options() -> None:
    assert filters.validate_choice("desc", ("asc", "desc"), param="order_by_direction") == "desc"
    for bad in ("DESC", None, ["asc"], 1):
        with pytest.raises(AIGatewayInputError, match=r"^order_by_direction must be one of \['asc', 'desc'\], got "):
            filters.validate_choice(bad, ("asc", "desc"), param="order_by_direction")


def test_validate_duration_takes_timedeltas_and_seconds() -> None:
    assert filters.validate_duration(90, param="d") == dt.timedelta(seconds=90)
    assert filters.validate_duration(0, param="d") == dt.timedelta(0)
    assert filters.validate_duration(dt.timedelta(minutes=2), param="d", allow_zero=False) == dt.timedelta(minutes=2)
    for bad in (-1, math.nan, math.inf, True, "5m", None, 1e20, dt.timedelta(seconds=-1)):
        with pytest.raises(AIGatewayInputError, match=r"^d must be a timedelta or a number of seconds >= 0, got "):
            filters.validate_duration(bad, param="d")
    with pytest.raises(AIGatewayInputError, match=r"^lease must be a timedelta or a number of seconds > 0, got 0$"):
        filters.validate_duration(0, param="lease", allow_zero=False)


def test_validate_log_ids_and_names() -> None:
    rows = [{"id": "b"}, "a", {"id": "b"}]
    assert filters.validate_log_ids(rows, param="log_id") == ["b", "a"]
    assert filters.validate_log_ids("a") == ["a"]
    with pytest.raises(AIGatewayInputError, match=r"log_id\[1\] 'x/y' is not a valid log id"):
        filters.validate_log_ids(["a", "x/y"], param="log_id")
    with pytest.raises(AIGatewayInputError, match="log_id must be an id or a list of ids, got int"):
        filters.validate_log_ids(3, param="log_id")
    assert filters.validate_names(["id", "cost", "id"], param="fields") == ["id", "cost"]
    for bad, message in (("id", "non-empty list"), ([], "non-empty list"), (["id", ""], "non-empty strings")):
        with pytest.raises(AIGatewayInputError, match=f"fields must .*{message}"):
            filters.validate_names(bad, param="fields")


RUNTIME = [p for p in PACKAGE.rglob("*.py") if "emulator" not in p.parts]


def test_no_module_keeps_a_validator_of_its_own() -> None:
    """Counts, choices and durations are checked by filters' validators, nowhere else."""
    private = {"_positive_int", "_choice", "_seconds", "_settle_seconds", "_check_positive"}
    for path in RUNTIME:
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not defined & private, (path.name, defined & private)
