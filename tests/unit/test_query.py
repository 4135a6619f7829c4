from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw import query as query_module
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import run as export_run
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.operators.ai_gateway import (
    AIGatewayDeleteLogsOperator,
    AIGatewayExportLogsOperator,
    AIGatewayListLogsOperator,
)
from airflow_provider_aigw.query import (
    LogQuery,
    contradicted_filter,
    encode_filters,
    normalize_filters,
    run_window,
    validate_window,
    window_filters,
)

UTC = dt.timezone.utc


def test_scalar_value_is_wrapped_and_single_dict_accepted():
    assert normalize_filters({"key": "model", "operator": "eq", "value": "gpt-4o"}) == [
        {"key": "model", "operator": "eq", "value": ["gpt-4o"]}
    ]


def test_list_values_and_types_kept():
    filters = [
        {"key": "success", "operator": "eq", "value": [False]},
        {"key": "cost", "operator": "gt", "value": 0.5},
        {"key": "event_id", "operator": "neq", "value": [None, "x"]},
    ]
    assert normalize_filters(filters) == [
        {"key": "success", "operator": "eq", "value": [False]},
        {"key": "cost", "operator": "gt", "value": [0.5]},
        {"key": "event_id", "operator": "neq", "value": [None, "x"]},
    ]


def test_unknown_keys_are_allowed_because_the_api_adds_keys():
    assert normalize_filters([{"key": "brand_new_key", "operator": "eq", "value": 1}])[0]["key"] == "brand_new_key"


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ("model=gpt", "filters must be a list of filter dicts"),
        (42, "filters must be a list"),
        (["x"], r"filters\[0\] must be a dict"),
        ([{"operator": "eq", "value": [1]}], r"filters\[0\].key must be a non-empty string"),
        ([{"key": " ", "operator": "eq", "value": [1]}], r"filters\[0\].key must be a non-empty string"),
        ([{"key": "model", "value": [1]}], r"filters\[0\].operator must be one of"),
        ([{"key": "model", "operator": "gte", "value": [1]}], r"operator must be one of .*'gte'"),
        ([{"key": "model", "operator": "eq"}], r"filters\[0\].value is required"),
        ([{"key": "model", "operator": "eq", "value": []}], "must not be empty"),
        ([{"key": "model", "operator": "eq", "value": [{"a": 1}]}], "value items must be strings"),
        ([{"key": "cost", "operator": "gt", "value": [float("nan")]}], "finite numbers"),
        ([{"key": "model", "operator": "eq", "value": ["a"], "op": "x"}], "unexpected field"),
    ],
)
def test_bad_filters_are_refused_with_a_message_naming_the_item(filters, message):
    with pytest.raises(AIGatewayInputError, match=message):
        normalize_filters(filters)


def test_a_field_value_dict_is_refused_with_the_filter_to_write_instead():
    with pytest.raises(AIGatewayInputError) as info:
        normalize_filters({"model": "gpt-4o"})
    assert str(info.value) == (
        "filters[0] has unexpected field(s) ['model']; allowed: key, operator, value. Write it as "
        '{"key": "model", "operator": "eq", "value": ["gpt-4o"]} (operator: contains, eq, gt, lt, neq; value: a list)'
    )
    with pytest.raises(AIGatewayInputError, match=r'Write it as \[\{"key": "model", .*\{"key": "provider", '):
        normalize_filters([{"model": "gpt-4o", "provider": ["openai"]}])


@pytest.mark.parametrize(
    "filters",
    [["model=gpt-4o"], [{"operator": "eq", "value": [1]}], [{"key": "model", "operator": "eq", "value": [1], "op": 1}]],
)
def test_other_bad_shapes_show_the_shape_of_a_filter(filters):
    with pytest.raises(AIGatewayInputError, match=r'A filter has the shape \{"key": "model", "operator": "eq"'):
        normalize_filters(filters)


def test_encoding_is_one_compact_json_array():
    encoded = encode_filters(normalize_filters({"key": "model", "operator": "eq", "value": "gpt-4o"}))
    assert encoded == '[{"key":"model","operator":"eq","value":["gpt-4o"]}]'
    assert json.loads(encoded) == [{"key": "model", "operator": "eq", "value": ["gpt-4o"]}]


def test_window_is_half_open_at_millisecond_resolution():
    start = dt.datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    end = dt.datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert window_filters(start, end) == [
        {"key": "created_at", "operator": "gt", "value": ["2026-11-25T23:59:59.999Z"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]},
    ]
    assert window_filters(None, end) == [{"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]}]
    assert window_filters() == []


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (dt.datetime(2026, 11, 26), None, "start is a naive datetime"),
        (None, "2026-11-26T00:00:00", "end has no timezone"),
        ("yesterday", None, "start must be an ISO 8601 timestamp"),
        ("2026-11-26", None, "start has no timezone|must be a timestamp"),
        (20261126, None, "start must be a timezone-aware datetime"),
        ("2026-11-27T00:00:00Z", "2026-11-26T00:00:00Z", r"end .* must be after start"),
        ("2026-11-27T00:00:00Z", "2026-11-27T00:00:00Z", r"end .* must be after start"),
    ],
)
def test_bad_windows_are_refused(start, end, message):
    with pytest.raises(AIGatewayInputError, match=message):
        validate_window(start, end)


# --------------------------------------------------------------------------- run_window


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (None, ("2026-01-09T00:00:00+00:00", "2026-01-10T00:00:00+00:00")),
        ("", ("2026-01-09T00:00:00+00:00", "2026-01-10T00:00:00+00:00")),
        ("2026-11-27", ("2026-11-27T00:00:00+00:00", "2026-11-28T00:00:00+00:00")),
        ("2026-02-28", ("2026-02-28T00:00:00+00:00", "2026-03-01T00:00:00+00:00")),
        (
            "2026-11-27T06:00:00Z/2026-11-27T08:00:00+01:00",
            ("2026-11-27T06:00:00+00:00", "2026-11-27T07:00:00+00:00"),
        ),
    ],
)
def test_run_window(window, expected):
    assert run_window(window, "2026-01-09T00:00:00+00:00", "2026-01-10T00:00:00+00:00") == expected


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("yesterday", "window must be a UTC day 'YYYY-MM-DD' or an ISO 8601 interval"),
        ("2026-13-01", "window '2026-13-01' is not a calendar day"),
        ("2026-11-27T06:00:00/2026-11-27T08:00:00Z", "start has no timezone"),
        ("2026-11-28T00:00:00Z/2026-11-27T00:00:00Z", "must be after start"),
        (20261127, "window must be a UTC day"),
    ],
)
def test_run_window_refuses_bad_input(window, message):
    with pytest.raises(AIGatewayInputError, match=re.escape(message)):
        run_window(window, "2026-01-09T00:00:00+00:00", "2026-01-10T00:00:00+00:00")


def test_run_window_needs_a_window_without_a_data_interval():
    with pytest.raises(AIGatewayInputError, match="no data interval: set window"):
        run_window(None, None, None)


# --------------------------------------------------------------------------- contradicted_filter


ROW = {"id": "a", "created_at": "2026-11-26T10:00:00.000Z", "model": "gpt-4o", "cost": 0.5, "success": True}


@pytest.mark.parametrize(
    ("flt", "contradicted"),
    [
        ({"key": "model", "operator": "eq", "value": ["claude", "gpt-4o"]}, False),  # OR of the values
        ({"key": "model", "operator": "eq", "value": ["claude", "llama"]}, True),
        ({"key": "model", "operator": "neq", "value": ["claude", "llama"]}, False),  # none of the values
        ({"key": "model", "operator": "neq", "value": ["claude", "gpt-4o"]}, True),
        ({"key": "model", "operator": "contains", "value": ["GPT", "x"]}, False),
        ({"key": "model", "operator": "contains", "value": ["claude"]}, True),
        ({"key": "cost", "operator": "gt", "value": [0.4]}, False),
        ({"key": "cost", "operator": "lt", "value": [0.4]}, True),
        ({"key": "cost", "operator": "lt", "value": ["0.4"]}, False),  # a string against a number: undecidable
        ({"key": "success", "operator": "eq", "value": [False]}, True),
        ({"key": "success", "operator": "eq", "value": ["false"]}, False),  # undecidable
        ({"key": "created_at", "operator": "lt", "value": ["2026-11-26T10:00:00.000Z"]}, True),
        ({"key": "created_at", "operator": "gt", "value": ["2026-11-26T09:59:59.999Z"]}, False),
        ({"key": "created_at", "operator": "contains", "value": ["2025"]}, False),  # not judged
        ({"key": "metadata.value", "operator": "eq", "value": ["user-1"]}, False),  # not in the row: skipped
        ({"key": "provider", "operator": "eq", "value": ["openai"]}, False),  # field absent: skipped
    ],
)
def test_contradicted_filter_judges_only_what_the_row_shows(flt: dict, contradicted: bool) -> None:
    assert contradicted_filter(ROW, [flt]) == (flt if contradicted else None)


# --------------------------------------------------------------------------- LogQuery

MODEL = {"key": "model", "operator": "eq", "value": ["gpt-4o"]}


def test_log_query_of_validates_and_normalises_once():
    query = LogQuery.of(
        gateway_id="gw",
        filters='[{"key": "model", "operator": "eq", "value": "gpt-4o"}]',  # a rendered template
        start="2026-11-26T01:00:00+01:00",
        end=dt.datetime(2026, 11, 27, tzinfo=UTC),
        search="",
    )
    assert query == LogQuery(
        "gw", (MODEL,), dt.datetime(2026, 11, 26, tzinfo=UTC), dt.datetime(2026, 11, 27, tzinfo=UTC), None
    )
    assert query.start is not None and query.start.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"gateway_id": "../zones"}, "gateway_id '../zones' is not a valid gateway id"),
        ({"filters": "[{'key': 'model'"}, "filters looks like a list or dict but cannot be parsed"),
        ({"filters": [{"key": "model", "operator": "gte", "value": 1}]}, r"filters\[0\].operator must be one of"),
        ({"start": "2026-11-26T00:00:00"}, "start has no timezone"),
        ({"start": "2026-11-27T00:00:00Z", "end": "2026-11-26T00:00:00Z"}, "must be after start"),
        ({"search": 3}, "search must be a string, got int"),
    ],
)
def test_log_query_of_refuses_bad_parts(kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        LogQuery.of(**kwargs)


def test_log_query_api_filters_append_the_half_open_window():
    query = LogQuery.of(filters=MODEL, start="2026-11-26T00:00:00Z", end="2026-11-27T00:00:00Z")
    assert query.api_filters() == [
        MODEL,
        {"key": "created_at", "operator": "gt", "value": ["2026-11-25T23:59:59.999Z"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]},
    ]
    assert LogQuery.of().api_filters() == []


def test_log_query_with_gateway_fills_only_a_missing_gateway():
    assert LogQuery.of().with_gateway("default").gateway_id == "default"
    assert LogQuery.of(gateway_id="own").with_gateway("default").gateway_id == "own"
    query = LogQuery.of()
    assert query.with_gateway(None) is query


def test_log_query_json_round_trip_holds_only_json_scalars():
    query = LogQuery.of(
        gateway_id="gw",
        filters=[MODEL, {"key": "cost", "operator": "gt", "value": 0.5}],
        start=dt.datetime(2026, 11, 26, 0, 0, 0, 123456, tzinfo=UTC),
        end="2026-11-27T00:00:00Z",
        search="refund",
    )
    data = query.to_json()
    assert data == {
        "gateway_id": "gw",
        "filters": '[{"key":"model","operator":"eq","value":["gpt-4o"]},{"key":"cost","operator":"gt","value":[0.5]}]',
        "start": "2026-11-26T00:00:00.123456Z",
        "end": "2026-11-27T00:00:00Z",
        "search": "refund",
    }
    assert all(v is None or isinstance(v, str) for v in data.values())
    assert json.loads(json.dumps(data)) == data
    assert LogQuery.from_json(data) == query
    assert LogQuery.from_json(LogQuery.of().to_json()) == LogQuery.of()


def test_log_query_from_json_validates_what_crossed_the_process_boundary():
    with pytest.raises(AIGatewayInputError, match="end has no timezone"):
        LogQuery.from_json({"end": "2026-11-27T00:00:00"})


def test_log_query_hashes_although_filters_are_dicts():
    first = LogQuery.of(gateway_id="gw", filters=MODEL)
    assert hash(first) == hash(LogQuery.of(gateway_id="gw", filters=MODEL))
    assert first != LogQuery.of(gateway_id="gw")


def test_log_query_describe():
    query = LogQuery.of(gateway_id="gw", filters=MODEL, start="2026-11-26T00:00:00Z")
    assert query.describe() == (
        "gateway 'gw', window [2026-11-26T00:00:00.000Z, now), "
        'filters [{"key": "model", "operator": "eq", "value": ["gpt-4o"]}]'
    )
    assert LogQuery.of(end="2026-11-27T00:00:00Z", search="x").describe() == (
        "the default gateway, window [-inf, 2026-11-27T00:00:00.000Z), search 'x'"
    )


# --------------------------------------------------------------------------- validated once, on the way down

DAY_START = dt.datetime(2026, 1, 9, tzinfo=UTC)
DAY_END = dt.datetime(2026, 1, 10, tzinfo=UTC)
FAILED = {"key": "success", "operator": "eq", "value": [False]}


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={"gw": 0})
    server.seed_logs("gw", 120, DAY_START, DAY_END, seed=1)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json("gw"))
    return server


@pytest.fixture
def normalized(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call of ``normalize_filters``, wherever a provider module imported it from."""
    calls: list[Any] = []
    original = query_module.normalize_filters

    def spy(filters: Any, **kwargs: Any) -> Any:
        calls.append(filters)
        return original(filters, **kwargs)

    for name, module in list(sys.modules.items()):
        if name.startswith("airflow_provider_aigw") and getattr(module, "normalize_filters", None) is original:
            monkeypatch.setattr(module, "normalize_filters", spy)
    return calls


def test_a_listing_normalises_its_filters_once(emu: EmulatorServer, normalized: list[Any]) -> None:
    task = AIGatewayListLogsOperator(task_id="list", filters=FAILED, start=DAY_START, end=DAY_END, max_results=1)
    assert len(task.execute({})) == 1  # a full page: the listing and the count behind it
    assert normalized == [FAILED]
    normalized.clear()
    assert len(list(AIGatewayHook().iter_logs(filters=FAILED, start=DAY_START, end=DAY_END))) > 1
    assert normalized == [FAILED]


def test_a_delete_normalises_its_filters_once(emu: EmulatorServer, normalized: list[Any]) -> None:
    failed = [log["id"] for log in emu.logs("gw") if log["success"] is False]
    normalized.clear()
    task = AIGatewayDeleteLogsOperator(task_id="delete", filters=FAILED, start=DAY_START, end=DAY_END)
    assert normalized == [FAILED]  # static filters: checked once, when the operator is built
    assert task.execute({}) == len(failed) > 1  # counts, listings, a canary and its checks, DELETEs
    assert normalized == [FAILED]  # and not again on the way down
    assert not set(failed) & set(emu.ids("gw"))


def test_an_export_normalises_its_filters_once_on_the_way_to_the_writer(
    emu: EmulatorServer, normalized: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_writer: list[int] = []
    original = export_run.export_logs

    def writer(*args: Any, **kwargs: Any) -> Any:
        before_writer.append(len(normalized))  # the writer checks what it is given on its own
        return original(*args, **kwargs)

    monkeypatch.setattr(export_run, "export_logs", writer)
    task = AIGatewayExportLogsOperator(
        task_id="export", destination=f"file://{tmp_path}", filters=FAILED, start=DAY_START, end=DAY_END
    )
    assert task.execute({})["count"] > 0
    assert before_writer == [1]
