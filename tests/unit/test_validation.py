from __future__ import annotations

import ast
import datetime as dt
import math
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_aigw
from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayInputError
from airflow_provider_aigw.validation import (
    validate_choice,
    validate_duration,
    validate_feedback,
    validate_gateway_id,
    validate_log_id,
    validate_log_ids,
    validate_metadata,
    validate_names,
    validate_positive,
    validate_score,
)


@pytest.mark.parametrize("gateway_id", ["my-gateway", "a", "gw_1-prod", "x" * 64])
def test_valid_gateway_ids(gateway_id):
    assert validate_gateway_id(gateway_id) == gateway_id


@pytest.mark.parametrize(
    "gateway_id", ["", None, "My-Gateway", "a--b", "-a", "a-", "../../zones", "a/b", "a?b", "x" * 65, "a b"]
)
def test_invalid_gateway_ids(gateway_id):
    with pytest.raises(AIGatewayInputError, match="gateway_id"):
        validate_gateway_id(gateway_id)


@pytest.mark.parametrize("log_id", ["../x", "a/b", "..", "a?b", "a%2Fb", "", None, "a b", "x" * 129])
def test_invalid_log_ids(log_id):
    with pytest.raises(AIGatewayInputError, match="log_id"):
        validate_log_id(log_id)


@pytest.mark.parametrize("log_id", ["01JABCDXYZ0123456789ABCDEF", "0193a7c2-5e1f-7abc-8def-0123456789ab"])
def test_valid_log_ids(log_id):
    assert validate_log_id(log_id) == log_id


# ------------------------------------------------------------- one validator per kind of value


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "3", None, math.nan])
def test_validate_positive_refuses_what_is_not_a_positive_integer(value: Any) -> None:
    with pytest.raises(AIGatewayInputError, match=r"^n must be a positive integer, got "):
        validate_positive(value, param="n")


def test_validate_positive_bounds_zero_floats_and_error_class() -> None:
    assert validate_positive(50, param="n", maximum=50) == 50
    with pytest.raises(AIGatewayInputError, match=r"^n must be an integer from 1 to 50, got 51$"):
        validate_positive(51, param="n", maximum=50)
    assert validate_positive(0, param="n", allow_zero=True) == 0
    with pytest.raises(AIGatewayInputError, match=r"^n must be an integer >= 0, got -1$"):
        validate_positive(-1, param="n", allow_zero=True)
    assert validate_positive(0.5, param="t", integer=False) == 0.5
    with pytest.raises(AIGatewayConfigError, match=r"^t must be a positive number of seconds, got nan$"):
        validate_positive(math.nan, param="t", integer=False, unit=" of seconds", error=AIGatewayConfigError)


def test_validate_positive_refuses_infinity_for_numbers_of_seconds() -> None:
    with pytest.raises(AIGatewayInputError, match=r"^t must be a positive number, got inf$"):
        validate_positive(math.inf, param="t", integer=False)
    assert validate_positive(10**400, param="n") == 10**400  # big ints stay ints, no float overflow


def test_validate_choice_names_the_parameter_and_the_options() -> None:
    assert validate_choice("desc", ("asc", "desc"), param="order_by_direction") == "desc"
    for bad in ("DESC", None, ["asc"], 1):
        with pytest.raises(AIGatewayInputError, match=r"^order_by_direction must be one of \['asc', 'desc'\], got "):
            validate_choice(bad, ("asc", "desc"), param="order_by_direction")


def test_validate_duration_takes_timedeltas_and_seconds() -> None:
    assert validate_duration(90, param="d") == dt.timedelta(seconds=90)
    assert validate_duration(0, param="d") == dt.timedelta(0)
    assert validate_duration(dt.timedelta(minutes=2), param="d", allow_zero=False) == dt.timedelta(minutes=2)
    for bad in (-1, math.nan, math.inf, True, "5m", None, 1e20, dt.timedelta(seconds=-1)):
        with pytest.raises(AIGatewayInputError, match=r"^d must be a timedelta or a number of seconds >= 0, got "):
            validate_duration(bad, param="d")
    with pytest.raises(AIGatewayInputError, match=r"^lease must be a timedelta or a number of seconds > 0, got 0$"):
        validate_duration(0, param="lease", allow_zero=False)


def test_validate_log_ids_and_names() -> None:
    rows = [{"id": "b"}, "a", {"id": "b"}]
    assert validate_log_ids(rows, param="log_id") == ["b", "a"]
    assert validate_log_ids("a") == ["a"]
    with pytest.raises(AIGatewayInputError, match=r"log_id\[1\] 'x/y' is not a valid log id"):
        validate_log_ids(["a", "x/y"], param="log_id")
    with pytest.raises(AIGatewayInputError, match="log_id must be an id or a list of ids, got int"):
        validate_log_ids(3, param="log_id")
    assert validate_names(["id", "cost", "id"], param="fields") == ["id", "cost"]
    for bad, message in (("id", "non-empty list"), ([], "non-empty list"), (["id", ""], "non-empty strings")):
        with pytest.raises(AIGatewayInputError, match=f"fields must .*{message}"):
            validate_names(bad, param="fields")


def test_gateway_ids_are_checked_with_the_api_pattern() -> None:
    assert validate_gateway_id("my-gateway_1") == "my-gateway_1"
    # The export's own looser pattern let uppercase through; the API's refuses it.
    for bad in ("My-Gateway", "GW", "a" * 65, "a--b", ""):
        with pytest.raises(AIGatewayInputError):
            validate_gateway_id(bad)


@pytest.mark.parametrize("value", [-1, 0, 1, 0.5, -0.25])
def test_valid_feedback(value):
    assert validate_feedback(value) == value


@pytest.mark.parametrize("value", [2, -1.5, True, "1", None, float("nan"), float("inf")])
def test_invalid_feedback_names_the_parameter(value):
    with pytest.raises(AIGatewayInputError, match=r"^rating must be a number from -1 to 1"):
        validate_feedback(value, param="rating")


@pytest.mark.parametrize("value", [0, 100, 42.5])
def test_valid_score(value):
    assert validate_score(value) == value


@pytest.mark.parametrize("value", [101, -0.5, False, "50", None, float("nan")])
def test_invalid_score(value):
    with pytest.raises(AIGatewayInputError, match=r"^score must be a number from 0 to 100"):
        validate_score(value)


def test_metadata_is_returned_as_a_copy():
    given = {"team": "search", "n": 3, "ok": True, "x": 0.5}
    checked = validate_metadata(given)
    assert checked == given and checked is not given


RUNTIME = [p for p in Path(airflow_provider_aigw.__file__).parent.rglob("*.py") if "emulator" not in p.parts]


def test_no_module_keeps_a_validator_of_its_own() -> None:
    """Counts, choices and durations are checked by the validators of validation.py, nowhere else."""
    private = {"_positive_int", "_choice", "_seconds", "_settle_seconds", "_check_positive"}
    for path in RUNTIME:
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert not defined & private, (path.name, defined & private)
