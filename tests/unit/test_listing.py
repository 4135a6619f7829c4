"""The listing walks (:mod:`airflow_provider_aigw.listing`): keyset by ``created_at`` (exact whatever the
tie order), or page numbers for the other orders; every walk ends on a short page and costs exactly
ceil(N / 50) requests, one more when N is a multiple of 50. They stay exact when the API lies (issue
19): an understated ``total_count``, ties of ``created_at`` in a new order on each request, and a page
that makes no progress or passes the window. Judged by the ids yielded against the fake API's store,
and by exact request counts.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayListingError
from airflow_provider_aigw.listing import MAX_FILTERS_QUERY_CHARS, iter_keyset, iter_pages
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.timestamps import parse_created_at
from tests.unit.fake_api import LOGS, FakeListAPI, make_logs

UTC = dt.timezone.utc

# ------------------------------------------------------------- 1. the walks, on any page function


def _fake_api(rows: list[dict[str, Any]], calls: list[tuple[list[Any], dict[str, Any]]]) -> Any:
    """A page fetcher over ``rows`` (oldest first) that honours created_at gt/lt, id neq and pages."""

    def fetch(flts: list[Any], params: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        calls.append((flts, dict(params)))
        match = rows
        for f in flts:
            if f["key"] == "created_at":
                edge = parse_created_at(f["value"][0])
                op = (lambda a, b: a > b) if f["operator"] == "gt" else (lambda a, b: a < b)
                match = [r for r in match if op(parse_created_at(r["created_at"]), edge)]
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
    walked = list(iter_keyset(_fake_api(rows, calls), LogQuery(), False, 3, {"order_by": "created_at"}))
    assert [r["id"] for r in walked] == [r["id"] for r in rows]
    assert len(calls) == 3  # ceil(7 / 3): no request wasted


def test_the_page_walk_stops_on_a_short_page() -> None:
    rows = [{"id": f"log{i}", "created_at": "2026-01-01T00:00:00Z"} for i in range(5)]
    calls: list[tuple[list[Any], dict[str, Any]]] = []
    walked = list(iter_pages(_fake_api(rows, calls), LogQuery(), 2, {}))
    assert [r["id"] for r in walked] == [r["id"] for r in rows]
    assert [c[1]["page"] for c in calls] == [1, 2, 3]


# ------------------------------------------------------------- the walks through the client


@pytest.mark.parametrize(
    ("n", "expected_requests"), [(0, 1), (1, 1), (49, 1), (50, 2), (51, 2), (100, 3), (437, 9), (1234, 25)]
)
def test_full_listing_costs_ceil_n_over_50_requests(requests_mock, client, n, expected_requests):
    api = FakeListAPI(make_logs(n))
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs()]
    assert got == [r["id"] for r in api.logs]
    assert requests_mock.call_count == expected_requests


def test_keyset_cursor_resumes_after_last_instant_excluding_seen_ids(requests_mock, client):
    api = FakeListAPI(make_logs(60))
    requests_mock.get(LOGS, json=api)
    list(client.iter_logs(LogQuery.of(end="2026-11-27T00:00:00Z")))
    second = json.loads(api.queries[1]["filters"][0])
    assert second == [
        {"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]},
        {"key": "created_at", "operator": "gt", "value": ["2026-11-26T00:00:00.048Z"]},
        {"key": "id", "operator": "neq", "value": ["log-000049"]},
    ]
    assert api.queries[1]["page"] == ["1"]


def test_descending_keyset(requests_mock, client):
    api = FakeListAPI(make_logs(120))
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs(order_by_direction="desc")]
    assert got == [r["id"] for r in reversed(api.logs)]
    assert requests_mock.call_count == 3


def test_more_logs_than_a_page_sharing_one_instant(requests_mock, client):
    # 130 logs share each millisecond: the walk must neither loop nor skip nor repeat.
    api = FakeListAPI(make_logs(400, same_instant=130))
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs()]
    assert sorted(got) == [r["id"] for r in api.logs]
    assert len(got) == len(set(got)) == 400


def test_api_ignoring_the_id_exclusion_never_yields_twice(requests_mock, client):
    api = FakeListAPI(make_logs(300, same_instant=3), honour_neq=False)
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs()]
    assert sorted(got) == [r["id"] for r in api.logs]


def test_other_orders_use_page_numbers(requests_mock, client):
    api = FakeListAPI(make_logs(120))
    requests_mock.get(LOGS, json=api)
    assert len(list(client.iter_logs(order_by="model"))) == 120
    assert [q["page"] for q in api.queries] == [["1"], ["2"], ["3"]]


class RetentionListAPI(FakeListAPI):
    """Deletes the oldest ``drop`` logs right after serving its first request (once)."""

    def __init__(self, logs: list[dict], drop: int) -> None:
        super().__init__(logs)
        self.drop = drop

    def __call__(self, request, context):
        answer = super().__call__(request, context)
        if self.drop:
            del self.logs[: self.drop]
            self.drop = 0
        return answer


def test_an_instant_of_more_than_50_logs_stays_exact_under_oldest_deletion(requests_mock, client):
    logs = make_logs(200, same_instant=200)  # 200 logs in one millisecond
    api = RetentionListAPI(list(logs), drop=50)
    requests_mock.get(LOGS, json=api)
    seen = [row["id"] for row in client.iter_logs()]
    assert len(seen) == len(set(seen)) == 200
    # every request excludes the ids seen at the instant: 4 full pages, then the empty one
    assert len(api.queries) == 5


DAY = LogQuery.of(start="2026-11-26T00:00:00Z", end="2026-11-27T00:00:00Z")


class LyingListAPI(FakeListAPI):
    """A :class:`FakeListAPI` that can understate ``total_count`` and shuffle ties on each request."""

    def __init__(self, logs: list[dict], *, total: str = "true", shuffle_seed: int | None = None, **kwargs) -> None:
        super().__init__(logs, **kwargs)
        self.total = total
        self.rng = random.Random(shuffle_seed) if shuffle_seed is not None else None

    def __call__(self, request, context):
        if len(self.queries) >= 200:
            raise AssertionError("the walk did not stop: 200 requests")
        if self.rng is not None:
            instants: dict[str, list[dict]] = {}
            for row in self.logs:
                instants.setdefault(row["created_at"], []).append(row)
            for group in instants.values():
                self.rng.shuffle(group)
            self.logs = [row for group in instants.values() for row in group]
        answer = super().__call__(request, context)
        if self.total == "page":
            answer["result_info"]["total_count"] = len(answer["result"])
        elif self.total == "eighth":
            answer["result_info"]["total_count"] //= 8
        return answer


def exact(got: list[str], truth: list[dict]) -> None:
    assert [i for i, n in Counter(got).items() if n > 1] == []
    assert set(got) == {r["id"] for r in truth}


# ------------------------------------------------------------- 2. no walk trusts an aggregate


@pytest.mark.parametrize("total", ["page", "eighth"])
@pytest.mark.parametrize("order_by", ["created_at", "model"])
def test_an_understated_total_count_never_ends_a_walk(requests_mock, client, total, order_by):
    api = LyingListAPI(make_logs(437), total=total)
    requests_mock.get(LOGS, json=api)
    exact([r["id"] for r in client.iter_logs(order_by=order_by)], api.logs)
    assert requests_mock.call_count == 9  # ceil(437 / 50): the short page ends it


@pytest.mark.parametrize(("n", "expected"), [(437, 9), (450, 10)])
def test_a_multiple_of_the_page_costs_one_empty_page_more(requests_mock, client, n, expected):
    api = LyingListAPI(make_logs(n))
    requests_mock.get(LOGS, json=api)
    exact([r["id"] for r in client.iter_logs(DAY)], api.logs)
    assert requests_mock.call_count == expected


# ------------------------------------------------------- 3. exact whatever the tie order


@pytest.mark.parametrize(
    ("size", "seed", "requests"),
    # (200, 3) and (500, 1): the page-number passes of the old walk lost 3 and 2 ids
    [*((120, seed, 3) for seed in range(5)), (200, 3, 5), (500, 1, 11)],
)
def test_a_crowded_instant_in_a_new_order_on_each_request_is_walked_exactly(
    requests_mock, client, size, seed, requests
):
    api = LyingListAPI(make_logs(size, same_instant=size), shuffle_seed=seed)
    requests_mock.get(LOGS, json=api)
    exact([r["id"] for r in client.iter_logs(DAY)], api.logs)
    # one page per 50 logs (and the empty page after a multiple of 50): no pass by page numbers
    assert requests_mock.call_count == requests


def test_many_crowded_instants_in_a_new_order_on_each_request(requests_mock, client):
    api = LyingListAPI(make_logs(2000, same_instant=400), shuffle_seed=7)
    requests_mock.get(LOGS, json=api)
    exact([r["id"] for r in client.iter_logs(DAY)], api.logs)
    assert requests_mock.call_count == 41  # 2,000 / 50, plus the empty page


def test_an_instant_the_id_exclusion_cannot_name_in_one_url_is_refused(requests_mock, client):
    logs = [dict(r, id=f"0190c0de-0000-7000-8000-{i:012d}") for i, r in enumerate(make_logs(500, same_instant=500))]
    api = LyingListAPI(logs)
    requests_mock.get(LOGS, json=api)
    with pytest.raises(
        AIGatewayListingError, match=r"share created_at 2026-11-26T00:00:00.000Z, more than one listing"
    ):
        list(client.iter_logs(DAY))
    sent = [len(r.url) for r in requests_mock.request_history]
    assert max(sent) < MAX_FILTERS_QUERY_CHARS + 500  # no request went out over the cap
    assert requests_mock.call_count == 7  # 350 ids excluded in the last request sent


# ------------------------------------------------------- 3. no progress is an error at once


def test_a_cursor_the_api_ignores_fails_after_one_request(requests_mock, client):
    api = LyingListAPI(make_logs(437), ignore_created_at=("gt", "lt"))
    requests_mock.get(LOGS, json=api)
    walked: list[str] = []
    with pytest.raises(AIGatewayListingError, match="did not apply the keyset cursor: the listing went back"):
        walked.extend(r["id"] for r in client.iter_logs())
    assert requests_mock.call_count == 2 and len(walked) == 50


def test_a_page_that_repeats_itself_fails_after_one_request(requests_mock, client):
    api = LyingListAPI(make_logs(120, same_instant=120), honour_neq=False)
    requests_mock.get(LOGS, json=api)
    with pytest.raises(AIGatewayListingError, match="answered 50 logs it had listed already"):
        list(client.iter_logs())
    assert requests_mock.call_count == 2


def test_a_window_end_the_api_ignores_fails_before_yielding_a_later_log(requests_mock, client):
    api = LyingListAPI(make_logs(437), ignore_created_at=("lt",))
    requests_mock.get(LOGS, json=api)
    walked: list[str] = []
    with pytest.raises(AIGatewayListingError, match=r"did not apply the created_at filter: listing \[2026-11-26"):
        walked.extend(
            r["id"]
            for r in client.iter_logs(LogQuery.of(start="2026-11-26T00:00:00.100Z", end="2026-11-26T00:00:00.200Z"))
        )
    assert walked == [r["id"] for r in api.logs[100:200]]
    assert requests_mock.call_count == 3


def test_the_keyset_requests_are_unchanged_for_a_well_behaved_api(requests_mock, client):
    """Negative control: the second request resumes at the last instant, excluding its id."""
    api = LyingListAPI(make_logs(60))
    requests_mock.get(LOGS, json=api)
    list(client.iter_logs(DAY))
    assert json.loads(api.queries[1]["filters"][0])[-2:] == [
        {"key": "created_at", "operator": "gt", "value": ["2026-11-26T00:00:00.048Z"]},
        {"key": "id", "operator": "neq", "value": ["log-000049"]},
    ]
    assert requests_mock.call_count == 2
