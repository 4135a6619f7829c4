"""Requests the emulator parses: list parameters, filters and their errors (the API's messages and
paths), parameters it ignores, the filter forms it accepts and the deprecated parameters."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.data import parse_ts_ms
from airflow_provider_aigw.emulator.query import FILTER_KEYS
from tests.unit.emulator.logs_api import Api, truth


@pytest.mark.parametrize(
    ("params", "message", "path"),
    [
        ({"per_page": "51"}, "Number must be less than or equal to 50", ["per_page"]),
        ({"per_page": "0"}, "Number must be greater than or equal to 1", ["per_page"]),
        ({"page": "0"}, "Number must be greater than or equal to 1", ["page"]),
        ({"page": "abc"}, "Expected number, received nan", ["page"]),
        ({"per_page": "1.5"}, "Expected integer, received float", ["per_page"]),
        (
            {"order_by": "cost"},
            "Invalid enum value. Expected 'created_at' | 'provider' | 'model' | 'model_type' | 'success' "
            "| 'cached', received 'cost'",
            ["order_by"],
        ),
        (
            {"order_by_direction": "up"},
            "Invalid enum value. Expected 'asc' | 'desc', received 'up'",
            ["order_by_direction"],
        ),
        ({"filters": "provider=openai"}, "Expected array, received string", ["filters"]),
        ({"filters": '{"key": "provider"}'}, "Expected array, received object", ["filters"]),
        ({"filters": '"openai"'}, "Expected array, received string", ["filters"]),
        ({"filters": '[{"operator": "eq", "value": ["x"]}]'}, "Required", ["filters", 0, "key"]),
        ({"filters": '[{"key": "model", "value": ["x"]}]'}, "Required", ["filters", 0, "operator"]),
        ({"filters": '[{"key": "model", "operator": "eq"}]'}, "Required", ["filters", 0, "value"]),
        (
            {"filters": '[{"key": "model", "operator": "eq", "value": "gpt-4o"}]'},
            "Expected array, received string",
            ["filters", 0, "value"],
        ),
        (
            {"filters": '[{"key": "cost", "operator": "gt", "value": 1}]'},
            "Expected array, received number",
            ["filters", 0, "value"],
        ),
        (
            {"filters": '[{"key": "model", "operator": "like", "value": ["x"]}]'},
            "Invalid enum value. Expected 'eq' | 'neq' | 'contains' | 'lt' | 'gt', received 'like'",
            ["filters", 0, "operator"],
        ),
        (
            {"filters": '[{"key": "created_at", "operator": "gt", "value": ["yesterday"]}]'},
            "Invalid datetime",
            ["filters", 0, "value", 0],
        ),
    ],
)
def test_list_validation_errors(api: Api, params: dict[str, str], message: str, path: list[Any]) -> None:
    r = api.s.get(api.url, params=params)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["success"] is False and body["result"] == {}
    assert {"code": 7001, "message": message, "path": path} in body["errors"]


def test_unknown_filter_key_rejected_known_keys_accepted(api: Api) -> None:
    r = api.list([{"key": "colour", "operator": "eq", "value": ["red"]}])
    assert r.status_code == 400
    err = r.json()["errors"][0]
    assert err["code"] == 7001 and err["path"] == ["filters", 0, "key"] and "received 'colour'" in err["message"]
    for key in FILTER_KEYS:
        value = ["2026-11-24T00:00:00Z"] if key == "created_at" else ["x"]
        assert api.list([{"key": key, "operator": "neq", "value": value}]).status_code == 200, key


def test_unknown_params_ignored(api: Api) -> None:
    assert api.result(colour="red", foo="bar")["result_info"]["total_count"] == 600


def test_filters_json_only_dotted_and_bracket_forms_ignored(api: Api) -> None:
    dotted = {"filters.key": "provider", "filters.operator": "eq", "filters.value": "openai"}
    bracket = {"filters[0][key]": "provider", "filters[0][operator]": "eq", "filters[0][value][0]": "openai"}
    for params in (dotted, bracket):
        assert api.result(**params)["result_info"]["total_count"] == 600
    proper = api.result([{"key": "provider", "operator": "eq", "value": ["openai"]}])
    assert 0 < proper["result_info"]["total_count"] < 600


def test_deprecated_params(emu: EmulatorServer, api: Api) -> None:
    lo, hi = "2026-11-24T00:00:00Z", "2026-11-25T00:00:00Z"
    got = api.all_ids(start_date=lo, end_date=hi, provider="openai", success="true")
    expected = truth(
        emu,
        lambda x: (
            parse_ts_ms(lo) <= parse_ts_ms(x["created_at"]) <= parse_ts_ms(hi)
            and x["provider"] == "openai"
            and x["success"]
        ),
    )
    assert got == expected and expected
    assert api.all_ids(model="gpt-4o", cached="false") == truth(
        emu, lambda x: x["model"] == "gpt-4o" and not x["cached"]
    )
