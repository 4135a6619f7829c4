"""The listing walks stay exact when the API lies (issue 19): an understated ``total_count``,
ties of ``created_at`` in a new order on each request, and a page that makes no progress or
passes the window. Judged by the ids yielded against the fake API's store, and by exact
request counts.
"""

from __future__ import annotations

import json
import random
from collections import Counter

import pytest

from airflow_provider_aigw.exceptions import AIGatewayListingError
from airflow_provider_aigw.listing import MAX_FILTERS_QUERY_CHARS
from tests.fake_clock import FakeClock
from tests.unit.test_client import LOGS, FakeListAPI, make_client, make_logs


@pytest.fixture
def client():
    return make_client(FakeClock())


DAY = {"start": "2026-11-26T00:00:00Z", "end": "2026-11-27T00:00:00Z"}


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
    exact([r["id"] for r in client.iter_logs(**DAY)], api.logs)
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
    exact([r["id"] for r in client.iter_logs(**DAY)], api.logs)
    # one page per 50 logs (and the empty page after a multiple of 50): no pass by page numbers
    assert requests_mock.call_count == requests


def test_many_crowded_instants_in_a_new_order_on_each_request(requests_mock, client):
    api = LyingListAPI(make_logs(2000, same_instant=400), shuffle_seed=7)
    requests_mock.get(LOGS, json=api)
    exact([r["id"] for r in client.iter_logs(**DAY)], api.logs)
    assert requests_mock.call_count == 41  # 2,000 / 50, plus the empty page


def test_an_instant_the_id_exclusion_cannot_name_in_one_url_is_refused(requests_mock, client):
    logs = [dict(r, id=f"0190c0de-0000-7000-8000-{i:012d}") for i, r in enumerate(make_logs(500, same_instant=500))]
    api = LyingListAPI(logs)
    requests_mock.get(LOGS, json=api)
    with pytest.raises(
        AIGatewayListingError, match=r"share created_at 2026-11-26T00:00:00.000Z, more than one listing"
    ):
        list(client.iter_logs(**DAY))
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
            r["id"] for r in client.iter_logs(start="2026-11-26T00:00:00.100Z", end="2026-11-26T00:00:00.200Z")
        )
    assert walked == [r["id"] for r in api.logs[100:200]]
    assert requests_mock.call_count == 3


def test_the_keyset_requests_are_unchanged_for_a_well_behaved_api(requests_mock, client):
    """Negative control: the second request resumes at the last instant, excluding its id."""
    api = LyingListAPI(make_logs(60))
    requests_mock.get(LOGS, json=api)
    list(client.iter_logs(**DAY))
    assert json.loads(api.queries[1]["filters"][0])[-2:] == [
        {"key": "created_at", "operator": "gt", "value": ["2026-11-26T00:00:00.048Z"]},
        {"key": "id", "operator": "neq", "value": ["log-000049"]},
    ]
    assert requests_mock.call_count == 2
