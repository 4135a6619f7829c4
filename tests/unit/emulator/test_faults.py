"""Fault injection of the emulator: rate limiting with lock-out, 5xx (JSON and HTML), dropped
connections, latency, churn and capacity, filters (or one operator of a key) ignored, failing and
enveloped body routes, DELETE order and caps, the URL length limit, understated totals and shuffled
ties; and the fault settings, in process and over the admin route."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest
import requests

from airflow_provider_aigw.emulator import EmulatorServer, Faults
from airflow_provider_aigw.emulator.data import parse_ts_ms
from tests.fake_clock import FakeClock
from tests.unit.emulator.logs_api import END, GW, START, get, total

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture
def emu(aigw_emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """100 logs (the counts below are out of 100), in place of the conftest's 600."""
    return aigw_emulator_factory(gateways={GW: 100}, start=START, end=END, seed=11)


def test_rate_limit_lockout_with_fake_clock(emu: EmulatorServer) -> None:
    clock = FakeClock()
    emu.clock = clock.time
    emu.faults.update(rate_limit_requests=3, rate_limit_period_s=10, lockout_s=20)
    for _ in range(3):
        r = get(emu)
        assert r.status_code == 200
        assert r.headers["ratelimit-policy"] == '"default";q=3;w=10'
        clock.now += 1
    r = get(emu)
    assert r.status_code == 429
    assert r.headers["retry-after"] == "20"
    assert "ratelimit" in r.headers and "ratelimit-policy" in r.headers
    assert r.json()["success"] is False
    assert r.json()["errors"] == [{"code": 971, "message": "Please wait and consider throttling your request speed"}]
    # every request during the lock-out is refused and does not extend it
    clock.now += 15
    for path in ("", "/whatever-id", "/whatever-id/request"):
        r = requests.get(emu.logs_url(GW) + path, headers=emu.auth_headers, timeout=10)
        assert r.status_code == 429 and r.headers["retry-after"] == "5"
    clock.now += 4.5
    r = get(emu)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    clock.now += 0.6
    assert get(emu).status_code == 200
    assert emu.stats["served_429"] == 5
    # a sliding window: 3 requests spread out are fine
    emu.reset_stats()
    for _ in range(6):
        clock.now += 4
        assert get(emu).status_code == 200
    # admin routes are never limited nor counted
    for _ in range(5):
        assert requests.get(emu.base_url + "/__emulator__/stats", timeout=10).status_code == 200
    assert emu.stats["total"] == 6


def test_error_rate_is_seeded_and_bounded(aigw_emulator_factory: Callable[..., EmulatorServer]) -> None:
    outcomes = []
    for _ in range(2):
        emu = aigw_emulator_factory(gateways={GW: 10}, seed=5, error_rate=0.3)
        statuses = [get(emu).status_code for _ in range(100)]
        outcomes.append(statuses)
        errors = [s for s in statuses if s != 200]
        assert set(errors) <= {500, 502, 503}
        assert 15 <= len(errors) <= 45
        assert emu.stats["served_5xx"] == len(errors)
    assert outcomes[0] == outcomes[1], "same seed, same sequence"
    r = None
    for _ in range(200):
        r = get(emu)
        if r.status_code != 200 and "json" in r.headers["content-type"]:
            break
    assert r is not None and r.json()["success"] is False


def test_html_5xx_bodies_occur(aigw_emulator_factory: Callable[..., EmulatorServer]) -> None:
    emu = aigw_emulator_factory(gateways={GW: 10}, seed=1, error_rate=1.0)
    kinds = {get(emu).headers["content-type"].split(";")[0] for _ in range(40)}
    assert kinds == {"application/json", "text/html"}


def test_drop_rate(aigw_emulator_factory: Callable[..., EmulatorServer]) -> None:
    emu = aigw_emulator_factory(gateways={GW: 10}, seed=2, drop_rate=0.25)
    dropped = 0
    for _ in range(60):
        try:
            assert get(emu).status_code == 200
        except requests.ConnectionError:
            dropped += 1
    assert 5 <= dropped <= 30
    assert emu.stats["dropped"] == dropped and emu.stats["total"] == 60


def test_latency_and_faults_runtime_update(emu: EmulatorServer) -> None:
    emu.faults.update(latency_ms=1, latency_jitter_ms=1)
    assert get(emu).status_code == 200
    with pytest.raises(TypeError):
        emu.faults.update(bogus=1)
    emu.faults.reset()
    assert emu.faults.to_dict()["latency_ms"] == 0
    assert Faults(seed=3).decide() == Faults(seed=3).decide()


def test_churn_and_capacity(emu: EmulatorServer) -> None:
    emu.wall_clock = lambda: parse_ts_ms("2026-11-26T12:00:00Z") / 1000
    oldest = [x["id"] for x in emu.logs(GW)][:20]
    emu.faults.update(churn_insert_per_request=4, capacity=100)
    r = get(emu, per_page=50)
    assert r.status_code == 200
    assert r.json()["result_info"]["total_count"] == 100
    newest = r.json()["result"][:4]
    assert all(x["created_at"] == "2026-11-26T12:00:00.000Z" for x in newest)
    assert emu.count(GW) == 100
    get(emu)
    remaining = {x["id"] for x in emu.logs(GW)}
    assert not set(oldest[:8]) & remaining and set(oldest[8:]) <= remaining, "DELETE_OLDEST"


# --------------------------------------------------------- filters the server ignores, bodies


def _filters(*items: dict[str, Any]) -> dict[str, str]:
    return {"filters": json.dumps(list(items))}


def test_ignored_filter_keys_on_list_and_delete(emu: EmulatorServer) -> None:
    model = emu.logs(GW)[0]["model"]
    only = {"key": "model", "operator": "eq", "value": [model]}
    matching = sum(1 for x in emu.logs(GW) if x["model"] == model)
    assert 0 < total(emu, **_filters(only)) == matching < 100
    emu.faults.update(ignore_filter_keys=["model"])
    assert total(emu, **_filters(only)) == 100  # silently ignored, no error
    r = requests.delete(emu.logs_url(GW), headers=emu.auth_headers, params=_filters(only), timeout=10)
    assert r.status_code == 200 and emu.count(GW) == 0  # the DELETE took everything
    emu.faults.reset()
    assert emu.faults.ignore_filter_keys == []


def test_ignored_filter_keys_on_delete_only(emu: EmulatorServer) -> None:
    first = emu.ids(GW)[0]
    by_id = {"key": "id", "operator": "eq", "value": [first]}
    emu.faults.update(ignore_delete_filter_keys=["id"])
    assert total(emu, **_filters(by_id)) == 1  # the listing applies it
    r = requests.delete(
        emu.logs_url(GW), headers=emu.auth_headers, params={**_filters(by_id), "limit": 3}, timeout=10
    )
    assert r.status_code == 200 and emu.count(GW) == 97  # the DELETE did not: the 3 oldest went
    assert first not in emu.ids(GW)


def test_failing_body_routes_and_enveloped_bodies(emu: EmulatorServer) -> None:
    first, second = emu.ids(GW)[:2]
    url = emu.logs_url(GW)
    bare = requests.get(f"{url}/{second}/request", headers=emu.auth_headers, timeout=10)
    emu.faults.update(fail_body_ids=[first], fail_body_status=403)
    r = requests.get(f"{url}/{first}/request", headers=emu.auth_headers, timeout=10)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    assert requests.get(f"{url}/{first}/response", headers=emu.auth_headers, timeout=10).status_code == 403
    assert requests.get(f"{url}/{second}/request", headers=emu.auth_headers, timeout=10).status_code == bare.status_code
    emu.faults.update(fail_body_ids=["*"], fail_body_status=500)
    assert requests.get(f"{url}/{second}/response", headers=emu.auth_headers, timeout=10).status_code == 500
    emu.faults.update(fail_body_ids=[], envelope_bodies=True)
    if bare.status_code == 200:
        wrapped = requests.get(f"{url}/{second}/request", headers=emu.auth_headers, timeout=10).json()
        assert wrapped == {"success": True, "errors": [], "messages": [], "result": bare.json()}


def test_admin_route_sets_and_shows_the_new_fault_modes(emu: EmulatorServer) -> None:
    base = emu.base_url + "/__emulator__/faults"
    shown = requests.get(base, timeout=10).json()
    assert {k: shown[k] for k in ("ignore_filter_keys", "ignore_delete_filter_keys", "fail_body_ids")} == {
        "ignore_filter_keys": [],
        "ignore_delete_filter_keys": [],
        "fail_body_ids": [],
    }
    assert shown["fail_body_status"] == 500 and shown["envelope_bodies"] is False
    settings = {
        "ignore_filter_keys": ["metadata.value"],
        "ignore_delete_filter_keys": ["id"],
        "fail_body_ids": ["*"],
        "fail_body_status": 403,
        "envelope_bodies": True,
    }
    r = requests.post(base, json=settings, timeout=10)
    assert r.status_code == 200 and {k: r.json()[k] for k in settings} == settings
    assert requests.post(base, json={"ignore_filter_keys": "id"}, timeout=10).status_code == 400


def _delete(emu: EmulatorServer, limit: int, **filters: dict[str, Any]) -> requests.Response:
    params: dict[str, Any] = {**_filters(*filters.values()), "limit": limit}
    return requests.delete(emu.logs_url(GW), headers=emu.auth_headers, params=params, timeout=10)


@pytest.mark.parametrize(("order", "taken"), [("asked", slice(0, 3)), ("asc", slice(0, 3)), ("desc", slice(-3, None))])
def test_delete_order_decides_which_matches_an_id_less_delete_takes(emu: EmulatorServer, order: str, taken: slice):
    ids = emu.ids(GW)
    emu.faults.update(ignore_delete_filter_keys=["id"], delete_order=order)
    assert _delete(emu, 3, by_id={"key": "id", "operator": "eq", "value": [ids[50]]}).status_code == 200
    assert set(ids) - set(emu.ids(GW)) == set(ids[taken])


def test_random_delete_order_and_delete_max_logs(emu: EmulatorServer) -> None:
    ids = emu.ids(GW)
    emu.faults.update(ignore_delete_filter_keys=["id"], delete_order="random", seed=7)
    _delete(emu, 3, by_id={"key": "id", "operator": "eq", "value": [ids[0]]})
    gone = set(ids) - set(emu.ids(GW))
    assert len(gone) == 3 and gone not in (set(ids[:3]), set(ids[-3:]))  # neither the oldest nor the newest
    emu.faults.update(delete_order="asked", ignore_delete_filter_keys=[], delete_max_logs=2)
    named = emu.ids(GW)[:5]
    assert _delete(emu, 5, by_id={"key": "id", "operator": "eq", "value": named}).status_code == 200
    assert set(named) - set(emu.ids(GW)) == set(named[:2])  # a partial delete: 2 of the 5 named
    with pytest.raises(TypeError, match="delete_order must be one of"):
        emu.faults.update(delete_order="sideways")


def test_max_url_bytes_answers_414_and_applies_nothing(emu: EmulatorServer) -> None:
    ids = emu.ids(GW)
    emu.faults.update(max_url_bytes=300)
    r = _delete(emu, 10, by_id={"key": "id", "operator": "eq", "value": ids[:10]})
    assert r.status_code == 414 and emu.ids(GW) == ids
    assert get(emu, per_page=1).status_code == 200  # a short request still goes
    assert emu.stats["delete"] == 1
    assert Faults().to_dict()["max_url_bytes"] is None and Faults().delete_order == "asked"


def test_understated_total_counts(emu: EmulatorServer) -> None:
    emu.faults.update(total_count_factor=0.12)
    assert total(emu) == 12
    emu.faults.update(total_count_factor=None, total_count_page_only=True)
    info = get(emu, per_page=30, page=4).json()["result_info"]
    assert info["total_count"] == info["count"] == 10  # only the rows of that page
    emu.faults.reset()
    assert total(emu) == 100


def test_shuffled_ties_cut_a_crowded_instant_differently_on_each_request(emu: EmulatorServer) -> None:
    instant = "2026-01-05T12:00:00.000Z"
    crowded = set(emu.add_logs(GW, [{"created_at": instant} for _ in range(60)]))
    only = _filters({"key": "created_at", "operator": "contains", "value": ["2026-01-05T12:00:00.000"]})

    def pages() -> list[list[str]]:
        return [[r["id"] for r in get(emu, per_page=20, page=p, **only).json()["result"]] for p in (1, 2, 3)]

    assert pages() == pages()  # insertion order: stable
    emu.faults.update(shuffle_ties=True)
    first, second = pages(), pages()
    assert first[0] != second[0]
    assert set(first[0]) <= crowded and set(second[0]) <= crowded
    emu.faults.reset()
    assert emu.faults.shuffle_ties is False


def test_one_ignored_operator_of_a_key_on_list_only(emu: EmulatorServer) -> None:
    cut = emu.logs(GW)[50]["created_at"]
    before = _filters({"key": "created_at", "operator": "lt", "value": [cut]})
    assert total(emu, **before) == 50
    emu.faults.update(ignore_list_filter_operators=["created_at:lt"])
    assert total(emu, **before) == 100  # the list dropped it silently
    after = _filters({"key": "created_at", "operator": "gt", "value": [cut]})
    assert total(emu, **after) == 49  # the other operator still applies
    r = requests.delete(emu.logs_url(GW), headers=emu.auth_headers, params=before, timeout=10)
    assert r.status_code == 200 and emu.count(GW) == 50  # the DELETE applied it
    assert requests.post(emu.base_url + "/__emulator__/faults", json={"shuffle_ties": True}, timeout=10).ok
    assert requests.get(emu.base_url + "/__emulator__/faults", timeout=10).json()["ignore_list_filter_operators"] == [
        "created_at:lt"
    ]
