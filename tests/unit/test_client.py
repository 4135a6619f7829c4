"""The client (:mod:`airflow_provider_aigw.client`): each endpoint of the Logs API, its parameters and its
answer, validated before any request. The walks over pages are tested in ``test_listing.py``, the HTTP
path in ``test_transport.py``.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlsplit

import pytest

from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayNotFoundError
from airflow_provider_aigw.patch import LogPatch
from airflow_provider_aigw.query import LogQuery
from tests.unit.fake_api import LOGS, FakeListAPI, make_client, make_logs, query_of

# --------------------------------------------------------------------- listing


def test_filters_go_on_the_wire_as_one_json_parameter(requests_mock, client):
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    list(
        client.iter_logs(
            LogQuery.of(
                filters=[{"key": "model", "operator": "eq", "value": "gpt-4o"}],
                start="2026-11-26T00:00:00Z",
                end="2026-11-27T00:00:00Z",
            )
        )
    )
    request = requests_mock.last_request
    raw_query = urlsplit(request.url).query
    assert "filters." not in raw_query and "filters%5B" not in raw_query and "filters[" not in raw_query
    query = query_of(request)
    assert sorted(query) == ["filters", "order_by", "order_by_direction", "page", "per_page"]
    assert json.loads(query["filters"][0]) == [
        {"key": "model", "operator": "eq", "value": ["gpt-4o"]},
        {"key": "created_at", "operator": "gt", "value": ["2026-11-25T23:59:59.999Z"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]},
    ]
    assert query["per_page"] == ["50"] and query["order_by"] == ["created_at"]
    assert query["order_by_direction"] == ["asc"]


def test_a_page_msgspec_refuses_is_decoded_as_the_stdlib_does(requests_mock, client):
    # JSON.stringify writes a lone surrogate as "\ud800"; NaN is not JSON, yet Python reads it.
    log = {**make_logs(1)[0], "model": "broken \ud800 pair", "cost": float("nan")}
    page = {"success": True, "result": [log], "result_info": {"count": 1, "total_count": 1}}
    text = json.dumps(page)
    assert "\\ud800" in text and "NaN" in text
    requests_mock.get(LOGS, text=text)
    (got,) = client.list_logs()
    assert got["model"] == "broken \ud800 pair" and got["cost"] != got["cost"]
    assert requests_mock.call_count == 1


def test_max_results_stops_without_fetching_more_pages(requests_mock, client):
    requests_mock.get(LOGS, json=FakeListAPI(make_logs(500)))
    assert len(list(client.iter_logs(max_results=50))) == 50
    assert requests_mock.call_count == 1
    assert len(list(client.iter_logs(max_results=75))) == 75
    assert requests_mock.call_count == 3


def test_search_and_extra_params_pass_through(requests_mock, client):
    requests_mock.get(LOGS, json=FakeListAPI([]))
    list(client.iter_logs(LogQuery.of(search="invoice"), meta_info=True))
    query = query_of(requests_mock.last_request)
    assert query["search"] == ["invoice"] and query["meta_info"] == ["true"]


def test_count_logs_is_one_request_with_per_page_1(requests_mock, client):
    requests_mock.get(LOGS, json=FakeListAPI(make_logs(77)))
    assert client.count_logs(LogQuery.of(start="2026-11-26T00:00:00Z")) == 77
    assert requests_mock.call_count == 1
    assert query_of(requests_mock.last_request)["per_page"] == ["1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_page": 51}, "per_page must be an integer from 1 to 50"),
        ({"per_page": 0}, "per_page"),
        ({"max_results": 0}, "max_results must be a positive integer"),
        ({"order_by": "cost"}, "order_by must be one of"),
        ({"order_by_direction": "up"}, "order_by_direction"),
        ({"filters": "model=gpt"}, "filters must be a list"),
        ({"start": dt.datetime(2026, 1, 1)}, "naive"),
        ({"start": "2026-11-27T00:00:00Z", "end": "2026-11-26T00:00:00Z"}, "must be after start"),
        ({"gateway_id": "../../zones"}, "not a valid gateway id"),
        ({"page": 3}, r"\['page'\] cannot be passed"),
    ],
)
def test_bad_list_input_raises_before_any_request(requests_mock, client, kwargs, message):
    parts = {name: kwargs.pop(name) for name in ("filters", "start", "end", "gateway_id") if name in kwargs}
    with pytest.raises(AIGatewayInputError, match=message):
        client.iter_logs(LogQuery.of(**parts), **kwargs)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("gw", "query must be a LogQuery .*, got str"),  # the gateway id, passed where it used to go
        ({"filters": []}, "query must be a LogQuery .*, got dict"),
        (LogQuery(gateway_id="../../zones"), "not a valid gateway id"),  # made without LogQuery.of
    ],
)
def test_every_listing_method_refuses_what_is_not_a_valid_query(requests_mock, client, query, message):
    with pytest.raises(AIGatewayInputError, match=message):
        client.iter_logs(query)
    with pytest.raises(AIGatewayInputError, match=message):
        client.count_logs(query)
    with pytest.raises(AIGatewayInputError, match=message):
        client.list_page(query)
    assert requests_mock.call_count == 0


def test_the_query_of_a_listing_is_not_validated_again(requests_mock, client, monkeypatch):
    requests_mock.get(LOGS, json=FakeListAPI(make_logs(3)))
    query = LogQuery.of(filters={"key": "model", "operator": "eq", "value": "gpt-4o"}, start="2026-11-26T00:00:00Z")

    def refuse(*args, **kwargs):
        raise AssertionError("validated again")

    monkeypatch.setattr("airflow_provider_aigw.query.normalize_filters", refuse)
    monkeypatch.setattr("airflow_provider_aigw.query.validate_window", refuse)
    assert len(list(client.iter_logs(query))) == 3
    assert client.count_logs(query) == 3
    assert len(client.list_page(query)[0]) == 3


def test_list_page_is_one_request_with_the_newest_logs_and_the_total(requests_mock, client):
    api = FakeListAPI(make_logs(5))
    requests_mock.get(LOGS, json=api)
    window = LogQuery.of(start="2026-11-26T00:00:00.001Z", end="2026-11-26T00:00:00.004Z")
    rows, total = client.list_page(window, per_page=2)
    assert total == 3 and [r["id"] for r in rows] == ["log-000003", "log-000002"]
    rows, total = client.list_page(order_by_direction="asc", per_page=1)
    assert total == 5 and [r["id"] for r in rows] == ["log-000000"]
    assert requests_mock.call_count == 2
    for bad in ({"per_page": 51}, {"order_by": "cost"}, {"order_by_direction": "up"}):
        with pytest.raises(AIGatewayInputError):
            client.list_page(**bad)
    assert requests_mock.call_count == 2


def test_no_gateway_anywhere_is_a_clear_error(requests_mock, fake_time):
    client = make_client(fake_time, gateway_id=None)
    with pytest.raises(AIGatewayInputError, match="gateway_id is required"):
        client.count_logs()
    assert requests_mock.call_count == 0


# ---------------------------------------------------------------- single logs


def test_get_log_and_bodies(requests_mock, client):
    requests_mock.get(f"{LOGS}/abc", json={"success": True, "result": {"id": "abc", "request_size": 10}})
    requests_mock.get(f"{LOGS}/abc/request", json={"model": "gpt-4o", "messages": []})
    requests_mock.get(
        f"{LOGS}/abc/response", text="data: {}\n\ndata: [DONE]\n\n", headers={"Content-Type": "text/event-stream"}
    )
    assert client.get_log("abc") == {"id": "abc", "request_size": 10}
    assert client.get_log_request("abc") == {"model": "gpt-4o", "messages": []}
    assert client.get_log_response("abc") == "data: {}\n\ndata: [DONE]\n\n"


def test_absent_body_raises_not_found(requests_mock, client):
    requests_mock.get(
        f"{LOGS}/abc/request",
        status_code=404,
        json={"success": False, "errors": [{"code": 7002, "message": "Not Found"}]},
    )
    with pytest.raises(AIGatewayNotFoundError):
        client.get_log_request("abc")


@pytest.mark.parametrize("log_id", ["../../../zones", "a/b", "a?x=1", "..", ""])
def test_log_ids_cannot_reach_other_routes(requests_mock, client, log_id):
    with pytest.raises(AIGatewayInputError, match="log_id"):
        client.get_log(log_id)
    with pytest.raises(AIGatewayInputError, match="log_id"):
        client.patch_log(log_id, LogPatch.of(feedback=1))
    assert requests_mock.call_count == 0


def test_patch_sends_only_given_fields_and_none_clears(requests_mock, client):
    requests_mock.patch(f"{LOGS}/abc", json={"success": True, "result": {}})
    assert client.patch_log("abc", LogPatch.of(feedback=-1, metadata={"team": "search", "n": 3, "ok": True})) == {}
    assert requests_mock.last_request.json() == {"feedback": -1, "metadata": {"team": "search", "n": 3, "ok": True}}
    client.patch_log("abc", LogPatch.of(score=None))
    assert requests_mock.last_request.json() == {"score": None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to patch"),
        ({"feedback": 2}, "feedback must be a number from -1 to 1"),
        ({"feedback": True}, "feedback"),
        ({"feedback": "1"}, "feedback"),
        ({"score": 101}, "score must be a number from 0 to 100"),
        ({"score": -0.5}, "score"),
        ({"score": float("nan")}, "score"),
        ({"metadata": {"a": {"nested": 1}}}, r"metadata\['a'\] must be a string"),
        ({"metadata": {"a": [1]}}, "metadata"),
        ({"metadata": "k=v"}, "metadata must be a dict"),
        ({"metadata": {str(i): i for i in range(6)}}, "at most 5 entries"),
        ({"metadata": {"x": float("inf")}}, "finite"),
    ],
)
def test_bad_patch_values_raise_before_any_request(requests_mock, client, kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        client.patch_log("abc", LogPatch.of(**kwargs))
    assert requests_mock.call_count == 0


def test_a_patch_that_is_not_a_log_patch_is_refused_before_any_request(requests_mock, client):
    with pytest.raises(AIGatewayInputError, match=r"patch must be a LogPatch .*, got dict"):
        client.patch_log("abc", {"feedback": 1})  # type: ignore[arg-type]
    assert requests_mock.call_count == 0


# ---------------------------------------------------------------------- delete


def test_delete_sends_filters_limit_and_order_as_query(requests_mock, client):
    requests_mock.delete(LOGS, json={"success": True})
    client.delete_logs(
        LogQuery.of(filters={"key": "model", "operator": "eq", "value": "gpt-4o"}, end="2026-11-26T00:00:00Z"),
        limit=500,
        order_by="created_at",
        order_by_direction="asc",
    )
    request = requests_mock.last_request
    assert request.body is None
    query = query_of(request)
    assert json.loads(query["filters"][0]) == [
        {"key": "model", "operator": "eq", "value": ["gpt-4o"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-26T00:00:00.000Z"]},
    ]
    assert query["limit"] == ["500"] and query["order_by"] == ["created_at"]


def test_delete_without_filters_is_refused_unless_explicit(requests_mock, client):
    requests_mock.delete(LOGS, json={"success": True})
    with pytest.raises(AIGatewayInputError, match="deletes the gateway's oldest logs"):
        client.delete_logs(LogQuery())
    assert requests_mock.call_count == 0
    client.delete_logs(LogQuery(), allow_unfiltered=True, limit=10)
    assert query_of(requests_mock.last_request) == {"limit": ["10"]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 10000"),
        ({"limit": 10001}, "limit"),
        ({"order_by": "id"}, "order_by must be one of"),
        ({"order_by_direction": "sideways"}, "order_by_direction"),
        ({"filters": [{"key": "x", "operator": "like", "value": 1}]}, "operator must be one of"),
    ],
)
def test_bad_delete_input(requests_mock, client, kwargs, message):
    filters = kwargs.pop("filters", None)
    with pytest.raises(AIGatewayInputError, match=message):
        client.delete_logs(LogQuery.of(filters=filters, start="2026-11-26T00:00:00Z"), **kwargs)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            LogQuery.of(filters={"key": "brand_new_key", "operator": "eq", "value": 1}),
            r"filters\[0\].key 'brand_new_key' is not a documented filter key",
        ),
        (LogQuery.of(start="2026-11-26T00:00:00Z", search="refund"), "delete_logs takes no search"),
        ("gw", "query must be a LogQuery"),
    ],
)
def test_a_delete_the_api_could_widen_is_refused_before_any_request(requests_mock, client, query, message):
    with pytest.raises(AIGatewayInputError, match=message):
        client.delete_logs(query)
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"success": True, "result": {"model": "gpt-4o"}}, {"model": "gpt-4o"}),
        ({"success": True, "errors": [], "messages": [], "result": [1, 2]}, [1, 2]),
        ({"success": True, "result": "data: {}\n\n"}, "data: {}\n\n"),
        # not exactly an envelope: a stored provider body is kept as it is
        (
            {"success": True, "result": {"a": 1}, "id": "chatcmpl-1"},
            {"success": True, "result": {"a": 1}, "id": "chatcmpl-1"},
        ),
        ({"success": False, "result": None}, {"success": False, "result": None}),
        ({"result": {"a": 1}}, {"result": {"a": 1}}),
        ({"model": "gpt-4o"}, {"model": "gpt-4o"}),
    ],
)
# ---------------------------------------------------------------------- bodies


def test_bodies_are_unwrapped_only_from_an_exact_envelope(requests_mock, client, body, expected):
    requests_mock.get(f"{LOGS}/abc/request", json=body)
    requests_mock.get(f"{LOGS}/abc/response", json=body)
    assert client.get_log_request("abc") == expected
    assert client.get_log_response("abc") == expected
