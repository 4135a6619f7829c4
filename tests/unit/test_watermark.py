"""The watcher's watermark: new logs fire once each, late ones inside the overlap are caught, an idle
poll costs one request, and the state stays small. Listing runs against the emulator over real
HTTP, through the client's keyset walk; the emulator's store is the ground truth.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from airflow_provider_aigw.budget import RequestBudget
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayListingError
from airflow_provider_aigw.query import Filter, LogQuery
from airflow_provider_aigw.timestamps import format_time
from airflow_provider_aigw.watermark import (
    MAX_STATE_CHARS,
    Batch,
    ListSince,
    Watermark,
    poll_once,
)

UTC = dt.timezone.utc
GW = "my-gateway"
NOW = dt.datetime(2026, 11, 26, 12, tzinfo=UTC)
OVERLAP = dt.timedelta(seconds=60)
THUMBS_DOWN: list[Filter] = [{"key": "feedback", "operator": "eq", "value": [-1]}]


def at(seconds: float) -> str:
    """``created_at`` ``seconds`` after NOW, as the API writes it."""
    return format_time(NOW + dt.timedelta(milliseconds=round(seconds * 1000)))


def client_for(server) -> AIGatewayClient:
    return AIGatewayClient(
        server.account_id, api_token=server.token, base_url=server.url, gateway_id=GW, budget=RequestBudget(10**6, 1)
    )


def listing(client: AIGatewayClient, filters: list[Filter]) -> ListSince:
    """The watcher's listing through today's client: a keyset walk, created_at ascending, 50 a page."""

    def list_since(since: dt.datetime, extra: list[Filter]) -> Iterable[Mapping[str, Any]]:
        return client.iter_logs(LogQuery.of(gateway_id=GW, filters=filters + extra, start=since), per_page=50)

    return list_since


class Watcher:
    """Polls like a watcher would, counting the emulator's list requests of each poll."""

    def __init__(self, server, *, lookback: float = 300, filters: list[Filter] = THUMBS_DOWN, **poll: Any) -> None:
        self.server = server
        self.list_since = listing(client_for(server), filters)
        self.watermark = Watermark.fresh(NOW, lookback)
        self.poll = poll
        self.emitted: list[str] = []
        self.requests: list[int] = []

    def __call__(self) -> Batch | None:
        before = self.server.stats.list
        batch, self.watermark = poll_once(self.list_since, self.watermark, overlap=OVERLAP, **self.poll)
        self.requests.append(self.server.stats.list - before)
        if batch is not None:
            self.emitted.extend(batch.ids)
        return batch


def add(server, *created: float, feedback: int = -1) -> list[str]:
    return server.add_logs(GW, [{"created_at": at(s), "feedback": feedback} for s in created])


@pytest.fixture
def server(aigw_emulator_factory):
    return aigw_emulator_factory(gateways={GW: 0})


def test_a_fresh_watcher_fires_on_the_matching_logs_of_its_lookback_then_only_on_new_ones(server):
    add(server, -400, -301)  # before the look-back
    first = add(server, -300, -120, -5)
    add(server, -200, -100, -1, feedback=1)  # do not match
    watch = Watcher(server, lookback=300)

    batch = watch()
    assert batch is not None
    assert batch.ids == tuple(first)
    assert (batch.oldest, batch.newest) == (NOW - dt.timedelta(seconds=300), NOW - dt.timedelta(seconds=5))
    assert batch.to_payload() == {
        "count": 3,
        "ids": first,
        "start": at(-300),
        "end": "2026-11-26T11:59:55.001Z",
        "newest_created_at": at(-5),
    }

    second = add(server, 10, 11.5)
    add(server, 12, feedback=0)
    batch = watch()
    assert batch is not None and list(batch.ids) == second
    assert watch.emitted == first + second
    assert sorted(watch.emitted) == sorted(
        log["id"] for log in server.logs(GW) if log.get("feedback") == -1 and log["created_at"] >= at(-300)
    )


def test_unchanged_data_never_fires_again_and_an_idle_poll_is_one_request(server):
    add(server, *[-50 + i * 0.25 for i in range(120)])  # 120 emitted logs inside the overlap
    add(server, *[-40 + i for i in range(30)], feedback=1)
    watch = Watcher(server)
    assert watch() is not None
    saved = watch.watermark

    assert [watch() for _ in range(3)] == [None, None, None]
    assert watch.watermark == saved
    # The first poll walked 120 logs (3 pages); each idle one kept the 120 out with `id neq`.
    assert watch.requests == [3, 1, 1, 1]


def test_emitted_logs_the_query_cannot_exclude_are_dropped_not_fired_again(server):
    emitted = add(server, *[-55 + i * 0.1 for i in range(400)])  # more than MAX_EXCLUDED_QUERY_CHARS holds
    watch = Watcher(server)
    watch()
    assert watch() is None
    assert sorted(watch.emitted) == sorted(emitted)
    # about 130 ids excluded by the query, the other 270 listed and dropped: 6 pages
    assert watch.requests[1] == 6


def test_late_logs_inside_the_overlap_fire_and_older_ones_are_the_documented_miss(server):
    add(server, -10, 0)
    watch = Watcher(server)
    watch()

    late = add(server, -59, -30, 0)  # created inside the overlap (newest - 60 s), listable only now
    missed = add(server, -61, -90)  # created before it: never fired
    batch = watch()
    assert batch is not None
    assert sorted(batch.ids) == sorted(late)
    assert not set(missed) & set(watch.emitted)
    assert watch() is None


def test_a_log_listable_late_at_the_newest_instant_fires_once(server):
    tied = add(server, 0, 0)
    watch = Watcher(server)
    watch()
    tied += add(server, 0)
    assert watch() is not None
    assert watch() is None
    assert sorted(watch.emitted) == sorted(tied)


def test_a_backlog_drains_in_batches_of_max_batch_without_repeats(server):
    logs = add(server, *[-250 + i for i in range(120)])
    watch = Watcher(server, max_batch=50)
    batches = [watch() for _ in range(4)]
    assert [b.count if b else None for b in batches] == [50, 50, 20, None]
    assert watch.emitted == logs
    assert watch.requests[:3] == [1, 1, 1]  # a batch stops the walk at its last page


def test_the_saved_watermark_resumes_where_the_watcher_stopped(server):
    add(server, -30, -20)
    watch = Watcher(server)
    watch()
    state = json.loads(json.dumps(watch.watermark.to_state()))  # through JSON, as the asset's state
    new = add(server, -25, 5)  # one late (inside the overlap), one new

    resumed = Watcher(server)
    resumed.watermark = Watermark.from_state(state)
    assert resumed.watermark == watch.watermark
    batch = resumed()
    assert batch is not None and sorted(batch.ids) == sorted(new)


def test_without_a_saved_watermark_a_restart_repeats_what_its_lookback_holds(server):
    before = add(server, -200, -30)
    watch = Watcher(server, lookback=300)
    watch()
    restarted = Watcher(server, lookback=60)  # Airflow 3.0-3.2: no state, the look-back decides
    batch = restarted()
    assert batch is not None and batch.ids == (before[1],)


# ------------------------------------------------------------------------------- pure


def logs_at(*pairs: tuple[float, str]) -> ListSince:
    """A listing over fixed logs that honours ``since`` and the ``id neq`` exclusion."""

    def list_since(since: dt.datetime, extra: list[Filter]) -> list[dict[str, Any]]:
        excluded = {i for f in extra for i in f["value"]}
        rows = [{"id": i, "created_at": at(s)} for s, i in sorted(pairs)]
        return [r for r in rows if r["created_at"] >= format_time(since) and r["id"] not in excluded]

    return list_since


def test_the_state_round_trips_through_json():
    batch, watermark = poll_once(logs_at((-3, "a"), (-3, "b"), (-1.5, "c")), Watermark.fresh(NOW, 60), overlap=OVERLAP)
    assert batch is not None
    state = watermark.to_state()
    assert state == {
        "v": 1,
        "horizon": at(-60),
        "newest": at(-1.5),
        "seen": [[1500, ["a", "b"]], [0, ["c"]]],
    }
    assert Watermark.from_state(json.loads(json.dumps(state))) == watermark
    assert Watermark.fresh(NOW, 60).to_state() == {"v": 1, "horizon": at(-60), "newest": None, "seen": []}


def test_the_state_stays_within_its_bound_and_the_horizon_passes_what_it_forgets():
    ids = [f"{n:04d}" + "x" * 124 for n in range(2_000)]  # the longest valid log ids
    pairs = [(-59 + n * 0.02, log_id) for n, log_id in enumerate(ids)]
    batch, watermark = poll_once(logs_at(*pairs), Watermark.fresh(NOW, 60), overlap=OVERLAP, max_batch=1_000)
    batch2, watermark = poll_once(logs_at(*pairs), watermark, overlap=OVERLAP, max_batch=1_000)
    assert batch is not None and batch2 is not None
    assert list(batch.ids + batch2.ids) == ids

    assert len(json.dumps(watermark.to_state())) <= MAX_STATE_CHARS
    kept = watermark.ids()
    assert 200 < len(kept) < 2_000 and kept == set(ids[-len(kept) :])  # the newest are remembered
    last_forgotten = NOW + dt.timedelta(milliseconds=-59_000 + (2_000 - len(kept) - 1) * 20)
    assert watermark.since(OVERLAP) == watermark.horizon == last_forgotten + dt.timedelta(milliseconds=1)
    # what was forgotten lies before the horizon: it is never listed, so never fired again
    assert poll_once(logs_at(*pairs), watermark, overlap=OVERLAP) == (None, watermark)


@pytest.mark.parametrize(
    "state",
    [
        None,
        {"v": 2, "horizon": at(0), "newest": None, "seen": []},
        {"v": 1, "horizon": "yesterday", "newest": None, "seen": []},
        {"v": 1, "horizon": at(0), "newest": at(0), "seen": [[-5, ["a"]]]},
        {"v": 1, "horizon": at(0), "newest": at(0), "seen": [[0, ["a/../b"]]]},
        {"v": 1, "horizon": at(0), "newest": at(0), "seen": [[0, ["a"]], [5, ["b"]]]},
        {"v": 1, "horizon": at(0)},
    ],
)
def test_a_state_that_is_not_a_saved_watermark_is_refused(state):
    with pytest.raises(AIGatewayInputError, match="saved watermark"):
        Watermark.from_state(state)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(-100, "a")], "before its start"),
        ([(-5, "a"), (-10, "b")], "after a log created at"),
    ],
)
def test_a_listing_that_breaks_its_contract_stops_the_poll(rows, message):
    def list_since(since: dt.datetime, extra: list[Filter]) -> list[dict[str, Any]]:
        return [{"id": i, "created_at": at(s)} for s, i in rows]

    with pytest.raises(AIGatewayListingError, match=message):
        poll_once(list_since, Watermark.fresh(NOW, 60), overlap=OVERLAP)


def test_bad_arguments_are_refused_before_listing():
    def never(since: dt.datetime, extra: list[Filter]) -> list[dict[str, Any]]:
        raise AssertionError("listed")

    with pytest.raises(AIGatewayInputError, match="overlap"):
        poll_once(never, Watermark.fresh(NOW, 60), overlap=-1)
    with pytest.raises(AIGatewayInputError, match="max_batch"):
        poll_once(never, Watermark.fresh(NOW, 60), overlap=60, max_batch=0)
    with pytest.raises(AIGatewayInputError, match="lookback"):
        Watermark.fresh(NOW, "1h")


def test_skipping_to_a_newest_page_remembers_it_and_moves_the_horizon_just_past_its_oldest():
    rows = [{"created_at": at(s), "id": f"0195c0de-0000-7000-8000-00000000000{i}"} for i, s in enumerate([5, 5, 7, 9])]
    start = Watermark.fresh(NOW, 300)
    skipped = start.skipped_to(rows[1:], OVERLAP)  # the page holds one of the two logs of its oldest instant
    # the instant it only partly holds is behind the horizon: the next poll re-reads only what it remembers
    assert skipped.horizon == NOW + dt.timedelta(seconds=5, milliseconds=1)
    assert skipped.newest == NOW + dt.timedelta(seconds=9)
    assert skipped.ids() == {rows[2]["id"], rows[3]["id"]}
    assert skipped.since(OVERLAP) == skipped.horizon
    assert start.skipped_to([], OVERLAP) == start
