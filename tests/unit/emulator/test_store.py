"""The emulator's log store: pagination and order (ties included), ``created_at`` windows, the
aggregates of ``meta_info``, PATCH and DELETE over the stored logs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.data import parse_ts_ms
from tests.unit.emulator.logs_api import END, GW, START, Api, truth

if TYPE_CHECKING:
    from collections.abc import Callable


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
