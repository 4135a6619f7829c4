"""The emulator speaks the AI Gateway Logs API over real HTTP (see the reference doc)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_aigw.emulator import EmulatorServer, generate_logs
from airflow_provider_aigw.emulator.data import parse_ts_ms
from airflow_provider_aigw.emulator.query import FILTER_KEYS

if TYPE_CHECKING:
    from collections.abc import Callable

END = datetime(2026, 11, 26, tzinfo=timezone.utc)
START = END - timedelta(days=3)
GW = "my-gateway"


class Api:
    """Tiny helper around requests for one gateway."""

    def __init__(self, emu: EmulatorServer, gateway: str = GW, token: str | None = None) -> None:
        self.emu = emu
        self.url = emu.logs_url(gateway)
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token or emu.token}"

    def list(self, filters: Any = None, **params: Any) -> requests.Response:
        if filters is not None:
            params["filters"] = json.dumps(filters)
        return self.s.get(self.url, params=params, timeout=10)

    def result(self, filters: Any = None, **params: Any) -> dict[str, Any]:
        r = self.list(filters, **params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def all_ids(self, filters: Any = None, direction: str = "asc", **params: Any) -> list[str]:
        out: list[str] = []
        page = 1
        while True:
            res = self.result(filters, page=page, per_page=50, order_by_direction=direction, **params)["result"]
            if not res:
                return out
            out.extend(x["id"] for x in res)
            page += 1

    def delete(self, filters: Any = None, **params: Any) -> requests.Response:
        if filters is not None:
            params["filters"] = json.dumps(filters)
        return self.s.delete(self.url, params=params, timeout=10)


@pytest.fixture
def emu(aigw_emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return aigw_emulator_factory(gateways={GW: 600}, start=START, end=END, seed=7)


@pytest.fixture
def api(emu: EmulatorServer) -> Api:
    return Api(emu)


def truth(emu: EmulatorServer, pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    return [x["id"] for x in emu.logs(GW) if pred(x)]


def meta(log: dict[str, Any]) -> dict[str, Any]:
    m: dict[str, Any] = json.loads(log["metadata"]) if log.get("metadata") else {}
    return m


# --------------------------------------------------------------------------- envelopes / listing


def test_list_envelope_and_defaults(emu: EmulatorServer, api: Api) -> None:
    body = api.result()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    info = body["result_info"]
    assert (info["page"], info["per_page"], info["count"], info["total_count"]) == (1, 20, 20, 600)
    assert "total_pages" not in info
    for k in ("min_cost", "max_cost", "min_duration", "max_duration", "min_tokens_in", "max_tokens_in"):
        assert k in info
    created = [parse_ts_ms(x["created_at"]) for x in body["result"]]
    assert created == sorted(created, reverse=True), "default order is created_at desc"
    newest = emu.logs(GW)[::-1][:20]
    assert [x["id"] for x in body["result"]] == [x["id"] for x in newest]
    log = body["result"][0]
    for field in ("id", "created_at", "provider", "model", "path", "duration", "success", "cached"):
        assert field in log
    assert log["created_at"].endswith("Z") and len(log["created_at"]) == 24


def test_meta_info_fills_aggregates(emu: EmulatorServer, api: Api) -> None:
    info = api.result(meta_info="true")["result_info"]
    durations = [x["duration"] for x in emu.logs(GW)]
    assert info["min_duration"] == min(durations) and info["max_duration"] == max(durations)
    costs = [x["cost"] for x in emu.logs(GW) if "cost" in x]
    assert info["max_cost"] == max(costs)


def test_pagination_exact_and_past_end(emu: EmulatorServer, api: Api) -> None:
    assert api.all_ids() == [x["id"] for x in emu.logs(GW)]
    assert api.all_ids(direction="desc") == [x["id"] for x in emu.logs(GW)][::-1]
    past = api.result(page=13, per_page=50)
    assert past["result"] == [] and past["result_info"]["total_count"] == 600
    assert past["result_info"]["count"] == 0
    last = api.result(page=12, per_page=50)
    assert last["result_info"]["count"] == 50


def test_order_by_other_keys_is_stable(api: Api) -> None:
    a = api.result(order_by="provider", order_by_direction="asc", per_page=50, page=3)["result"]
    b = api.result(order_by="provider", order_by_direction="asc", per_page=50, page=3)["result"]
    assert [x["id"] for x in a] == [x["id"] for x in b]
    full: list[str] = []
    for page in range(1, 13):
        full.extend(
            x["provider"]
            for x in api.result(order_by="provider", order_by_direction="asc", per_page=50, page=page)["result"]
        )
    assert full == sorted(full) and len(full) == 600
    success = [x["success"] for x in api.result(order_by="success", order_by_direction="desc", per_page=50)["result"]]
    assert all(success)


def test_ties_share_a_millisecond_and_are_ordered_deterministically(emu: EmulatorServer, api: Api) -> None:
    created = [x["created_at"] for x in emu.logs(GW)]
    assert len(set(created)) < len(created), "deliberate ties exist"
    assert len(set(created)) > 0.9 * len(created), "mostly unique"
    assert api.all_ids() == api.all_ids()


def test_detail_and_bodies(emu: EmulatorServer, api: Api) -> None:
    logs = emu.logs(GW)
    with_body = next(
        x
        for x in logs
        if emu.get_bodies(GW, x["id"])[0] is not None and x["response_content_type"] == "application/json"
    )
    r = api.s.get(f"{api.url}/{with_body['id']}")
    assert r.status_code == 200
    detail = r.json()["result"]
    for k in (
        "request_head",
        "request_head_complete",
        "request_size",
        "response_head",
        "response_head_complete",
        "response_size",
    ):
        assert k in detail
    r = api.s.get(f"{api.url}/{with_body['id']}/request")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    req = r.json()
    assert "success" not in req and req["model"] == with_body["model"], "no envelope"
    assert detail["request_head"] == r.text[:1024]
    assert detail["request_size"] == len(r.content)
    r = api.s.get(f"{api.url}/{with_body['id']}/response")
    assert r.status_code == 200 and "success" not in r.json()

    streamed = next(
        x
        for x in logs
        if x["response_content_type"] == "text/event-stream"
        and x["success"]
        and emu.get_bodies(GW, x["id"])[1] is not None
    )
    r = api.s.get(f"{api.url}/{streamed['id']}/response")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.startswith("data: {") and r.text.rstrip().endswith("data: [DONE]")

    absent = [x for x in logs if emu.get_bodies(GW, x["id"]) == (None, None)]
    assert 0.04 * len(logs) < len(absent) < 0.2 * len(logs)
    for kind in ("request", "response"):
        r = api.s.get(f"{api.url}/{absent[0]['id']}/{kind}")
        assert r.status_code == 404
        assert r.json()["errors"] == [{"code": 7002, "message": "Not Found"}]
    assert api.s.get(f"{api.url}/{absent[0]['id']}").status_code == 200


def test_not_found_and_bad_gateway(emu: EmulatorServer, api: Api) -> None:
    nf = {"code": 7002, "message": "Not Found"}
    r = api.s.get(f"{api.url}/0190a5b4-0000-7000-8000-000000000000")
    assert r.status_code == 404 and r.json()["errors"] == [nf] and r.json()["success"] is False
    r = api.s.get(f"{api.url}/not-an-id/request")
    assert r.status_code == 404
    r = api.s.get(emu.logs_url("other-gateway"))
    assert r.status_code == 404 and r.json()["errors"] == [nf]
    r = api.s.get(api.url.replace(emu.account_id, "f" * 32))
    assert r.status_code == 404 and r.json()["errors"] == [nf]
    r = api.s.get(f"{emu.url}/accounts/{emu.account_id}/nothing-here")
    assert r.status_code == 404 and r.json()["errors"] == [nf]
    for bad in ("My-Gateway", "-x", "a--b", "a" * 65, "a.b"):
        r = api.s.get(emu.logs_url(bad))
        assert r.status_code == 400, bad
        assert r.json()["errors"][0]["code"] == 7001


# --------------------------------------------------------------------------- validation


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


# --------------------------------------------------------------------------- filters


def test_filters_json_only_dotted_and_bracket_forms_ignored(api: Api) -> None:
    dotted = {"filters.key": "provider", "filters.operator": "eq", "filters.value": "openai"}
    bracket = {"filters[0][key]": "provider", "filters[0][operator]": "eq", "filters[0][value][0]": "openai"}
    for params in (dotted, bracket):
        assert api.result(**params)["result_info"]["total_count"] == 600
    proper = api.result([{"key": "provider", "operator": "eq", "value": ["openai"]}])
    assert 0 < proper["result_info"]["total_count"] < 600


def test_filters_and_or_neq(emu: EmulatorServer, api: Api) -> None:
    f_and = [
        {"key": "provider", "operator": "eq", "value": ["openai"]},
        {"key": "success", "operator": "eq", "value": [True]},
    ]
    assert api.all_ids(f_and) == truth(emu, lambda x: x["provider"] == "openai" and x["success"] is True)
    f_or = [{"key": "provider", "operator": "eq", "value": ["groq", "mistral"]}]
    expected = truth(emu, lambda x: x["provider"] in ("groq", "mistral"))
    assert api.all_ids(f_or) == expected and expected
    f_neq = [{"key": "provider", "operator": "neq", "value": ["openai", "anthropic"]}]
    expected = truth(emu, lambda x: x["provider"] not in ("openai", "anthropic"))
    assert api.all_ids(f_neq) == expected and expected
    f_contains = [{"key": "model", "operator": "contains", "value": ["LLAMA"]}]
    expected = truth(emu, lambda x: "llama" in x["model"])
    assert api.all_ids(f_contains) == expected and expected


def test_numeric_and_null_filters(emu: EmulatorServer, api: Api) -> None:
    f = [{"key": "tokens_in", "operator": "gt", "value": [1000]}, {"key": "cost", "operator": "lt", "value": [0.01]}]
    expected = truth(emu, lambda x: (x["tokens_in"] or 0) > 1000 and x.get("cost") is not None and x["cost"] < 0.01)
    assert api.all_ids(f) == expected and expected
    f = [{"key": "tokens_in", "operator": "eq", "value": [None]}]
    expected = truth(emu, lambda x: x["tokens_in"] is None)
    assert api.all_ids(f) == expected and expected
    f = [{"key": "cached", "operator": "eq", "value": [True]}]
    expected = truth(emu, lambda x: x["cached"] is True)
    assert api.all_ids(f) == expected and expected


def test_created_at_window(emu: EmulatorServer, api: Api) -> None:
    lo, hi = "2026-11-24T00:00:00Z", "2026-11-25T00:00:00+00:00"
    f = [
        {"key": "created_at", "operator": "gt", "value": [lo]},
        {"key": "created_at", "operator": "lt", "value": [hi]},
    ]
    lo_ms, hi_ms = parse_ts_ms(lo), parse_ts_ms(hi)
    expected = truth(emu, lambda x: lo_ms < parse_ts_ms(x["created_at"]) < hi_ms)
    assert api.result(f, per_page=1)["result_info"]["total_count"] == len(expected)
    assert api.all_ids(f) == expected
    # offsets and a strict boundary at millisecond precision
    first = emu.logs(GW)[100]
    f2 = [{"key": "created_at", "operator": "gt", "value": [first["created_at"].replace("Z", "+00:00")]}]
    got = api.all_ids(f2)
    assert first["id"] not in got
    assert got == truth(emu, lambda x: parse_ts_ms(x["created_at"]) > parse_ts_ms(first["created_at"]))
    # the ground-truth helper agrees ([start, end))
    assert emu.ids(GW, lo, hi) == truth(emu, lambda x: lo_ms <= parse_ts_ms(x["created_at"]) < hi_ms)


def test_window_with_id_exclusions(emu: EmulatorServer, api: Api) -> None:
    lo, hi = "2026-11-23T12:00:00Z", "2026-11-25T12:00:00Z"
    inside = emu.ids(GW, lo, hi)
    excluded = [inside[0], inside[5], inside[-1], "0190a5b4-0000-7000-8000-000000000000"]
    f = [
        {"key": "created_at", "operator": "gt", "value": [lo]},
        {"key": "created_at", "operator": "lt", "value": [hi]},
        {"key": "id", "operator": "neq", "value": excluded},
    ]
    lo_ms, hi_ms = parse_ts_ms(lo), parse_ts_ms(hi)
    expected = truth(emu, lambda x: lo_ms < parse_ts_ms(x["created_at"]) < hi_ms and x["id"] not in excluded)
    assert len(expected) == len(inside) - 3
    assert api.result(f, per_page=1)["result_info"]["total_count"] == len(expected)
    assert api.all_ids(f) == expected
    assert api.all_ids(f, direction="desc") == expected[::-1]
    got = api.result([{"key": "id", "operator": "eq", "value": [inside[3], inside[7]]}])["result"]
    assert [x["id"] for x in got] == [inside[7], inside[3]]


def test_metadata_filters_and_search(emu: EmulatorServer, api: Api) -> None:
    f = [{"key": "metadata.key", "operator": "eq", "value": ["team"]}]
    expected = truth(emu, lambda x: "team" in meta(x))
    assert api.all_ids(f) == expected and expected
    f = [{"key": "metadata.value", "operator": "eq", "value": ["prod"]}]
    expected = truth(emu, lambda x: "prod" in meta(x).values())
    assert api.all_ids(f) == expected and expected
    expected = truth(emu, lambda x: "staging" in (x.get("metadata") or ""))
    assert api.all_ids(search="staging") == expected and expected


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


# --------------------------------------------------------------------------- patch


def test_patch_validation_and_persistence(emu: EmulatorServer, api: Api) -> None:
    log_id = emu.logs(GW)[10]["id"]
    url = f"{api.url}/{log_id}"
    for body, path, msg in [
        ({"feedback": 2}, ["feedback"], "Number must be less than or equal to 1"),
        ({"feedback": "up"}, ["feedback"], "Expected number, received string"),
        ({"score": -1}, ["score"], "Number must be greater than or equal to 0"),
        ({"score": 101}, ["score"], "Number must be less than or equal to 100"),
        ({"metadata": ["a"]}, ["metadata"], "Expected object, received array"),
        ({"metadata": {"a": {"b": 1}}}, ["metadata", "a"], "Invalid input"),
    ]:
        r = api.s.patch(url, json=body)
        assert r.status_code == 400, body
        assert r.json()["errors"] == [{"code": 7001, "message": msg, "path": path}]
    r = api.s.patch(url, json={"feedback": 1, "score": 87.5, "metadata": {"reviewed": True, "by": "qa"}})
    assert r.status_code == 200
    assert r.json() == {"success": True, "errors": [], "messages": [], "result": {}}
    got = api.s.get(url).json()["result"]
    assert got["feedback"] == 1 and got["score"] == 87.5
    assert json.loads(got["metadata"]) == {"reviewed": True, "by": "qa"}
    assert api.all_ids([{"key": "feedback", "operator": "eq", "value": [1]}]) == [log_id]
    assert api.all_ids(feedback="1") == [log_id]
    # metadata replaces; null clears
    api.s.patch(url, json={"metadata": {"only": "this"}, "feedback": None})
    got = api.s.get(url).json()["result"]
    assert json.loads(got["metadata"]) == {"only": "this"} and "feedback" not in got and got["score"] == 87.5
    assert api.s.patch(f"{api.url}/0190a5b4-0000-7000-8000-000000000000", json={"score": 1}).status_code == 404
    assert api.s.patch(url, data="not json", headers={"content-type": "application/json"}).status_code == 400


def test_patch_explicit_log(emu: EmulatorServer, api: Api) -> None:
    [log_id] = emu.add_logs(GW, [{"created_at": "2026-11-24T10:00:00.5Z", "provider": "openai", "model": "gpt-4o"}])
    assert api.s.patch(f"{api.url}/{log_id}", json={"score": 3}).status_code == 200
    assert emu.get_log(GW, log_id)["score"] == 3  # type: ignore[index]
    assert emu.get_log(GW, log_id)["created_at"] == "2026-11-24T10:00:00.500Z"  # type: ignore[index]


# --------------------------------------------------------------------------- delete


def test_delete_defaults_limit_and_order(aigw_emulator_factory: Callable[..., EmulatorServer]) -> None:
    emu = aigw_emulator_factory(gateways={GW: 10_250}, start=START, end=END)
    api = Api(emu)
    all_ids = [x["id"] for x in emu.logs(GW)]
    r = api.delete()
    assert r.status_code == 200 and r.json() == {"success": True}
    assert [x["id"] for x in emu.logs(GW)] == all_ids[10_000:], "default: oldest 10,000 first"
    # mis-encoded (dotted) filters are ignored: deletes the oldest `limit`
    r = api.s.delete(api.url, params={"filters.key": "provider", "filters.value": "openai", "limit": 50})
    assert r.status_code == 200
    assert [x["id"] for x in emu.logs(GW)] == all_ids[10_050:]
    r = api.delete(limit=10, order_by_direction="desc")
    assert [x["id"] for x in emu.logs(GW)] == all_ids[10_050:-10]


def test_delete_with_filters_and_validation(emu: EmulatorServer, api: Api) -> None:
    f = [{"key": "provider", "operator": "eq", "value": ["openai"]}]
    openai = truth(emu, lambda x: x["provider"] == "openai")
    assert len(openai) > 20
    assert api.delete(f, limit=5).status_code == 200
    assert truth(emu, lambda x: x["provider"] == "openai") == openai[5:]
    before = {x["id"]: x for x in emu.logs(GW)}
    assert api.delete(f, limit=3, order_by="tokens_in", order_by_direction="desc").status_code == 200
    gone = set(before) - {x["id"] for x in emu.logs(GW)}
    assert len(gone) == 3 and all(before[i]["provider"] == "openai" for i in gone)
    remaining_max = max((x["tokens_in"] or -1) for x in emu.logs(GW) if x["provider"] == "openai")
    assert all((before[i]["tokens_in"] or -1) >= remaining_max for i in gone)
    for params, msg in [
        ({"limit": "0"}, "Number must be greater than or equal to 1"),
        ({"limit": "10001"}, "Number must be less than or equal to 10000"),
    ]:
        r = api.s.delete(api.url, params=params)
        assert r.status_code == 400
        assert r.json()["errors"] == [{"code": 7001, "message": msg, "path": ["limit"]}]
    r = api.s.delete(api.url, params={"order_by": "score"})
    assert r.status_code == 400
    r = api.delete([{"key": "nope", "operator": "eq", "value": [1]}])
    assert r.status_code == 400
    assert api.result()["result_info"]["total_count"] == 592


# --------------------------------------------------------------------------- auth


def test_auth(emu: EmulatorServer, api: Api) -> None:
    auth_err = {
        "success": False,
        "errors": [{"code": 10000, "message": "Authentication error"}],
        "messages": [],
        "result": None,
    }
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": emu.token},
        {"X-Auth-Email": emu.email, "X-Auth-Key": "wrong"},
    ):
        r = requests.get(api.url, headers=headers, timeout=10)
        assert r.status_code == 403 and r.json() == auth_err, headers
    r = requests.get(api.url, headers={"X-Auth-Email": emu.email, "X-Auth-Key": emu.api_key}, timeout=10)
    assert r.status_code == 200
    ro = Api(emu, token=emu.read_only_token)
    assert ro.list().status_code == 200
    log_id = emu.logs(GW)[0]["id"]
    assert ro.s.get(f"{ro.url}/{log_id}").status_code == 200
    assert ro.s.get(f"{ro.url}/{log_id}/request").status_code in (200, 404)
    r = ro.s.patch(f"{ro.url}/{log_id}", json={"score": 1})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    r = ro.delete(limit=1)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    assert emu.count(GW) == 600


# --------------------------------------------------------------------------- determinism


def test_generation_is_deterministic(aigw_emulator_factory: Callable[..., EmulatorServer]) -> None:
    a = generate_logs(200, START, END, seed=3, gateway_id="gw")
    b = generate_logs(200, START, END, seed=3, gateway_id="gw")
    c = generate_logs(200, START, END, seed=4, gateway_id="gw")
    assert a == b and a != c
    assert len({x["id"] for x in a}) == 200
    providers = {x["provider"] for x in generate_logs(2000, START, END, seed=1)}
    assert {"openai", "anthropic", "workers-ai", "google-ai-studio", "groq"} <= providers
    for x in a:
        assert START <= datetime.fromisoformat(x["created_at"].replace("Z", "+00:00")) < END
        if "metadata" in x:
            assert isinstance(x["metadata"], str) and len(json.loads(x["metadata"])) <= 5
    emu = aigw_emulator_factory(gateways={})
    ids = emu.seed_logs("gw", 200, START, END, seed=3)
    assert ids == [x["id"] for x in a] and emu.logs("gw") == a
