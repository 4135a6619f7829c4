"""AIGatewayLogsTrigger: serialisation, polling, backoff, deadline, errors, event-loop safety.

Driven with pytest-asyncio against the in-process emulator (real HTTP). Time is faked
(``trigger._clock`` / ``trigger._sleep``) wherever the number of polls matters, so request
counts are exact and nothing sleeps for real.
"""

from __future__ import annotations

import asyncio
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayInputError, AIGatewayRateLimitError
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.timestamps import format_time
from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsEventTrigger, AIGatewayLogsTrigger
from tests.fake_clock import FakeClock
from tests.log_lines import LogLines

GW = "my-gateway"
ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
NOW = 1_800_000_000.0  # fake epoch seconds


def faked(trigger: AIGatewayLogsTrigger, fake: FakeClock) -> AIGatewayLogsTrigger:
    trigger._clock = fake.time
    trigger._sleep = fake.async_sleep
    return trigger


async def first_event(trigger: AIGatewayLogsTrigger) -> dict[str, Any]:
    events = [event.payload async for event in trigger.run()]
    assert len(events) == 1
    return events[0]


def logs_in_window(n: int, model: str = "gpt-4o", offset_min: int = 0) -> list[dict[str, Any]]:
    return [
        {"created_at": (T0 + timedelta(minutes=offset_min + i)).isoformat(), "model": model, "provider": "openai"}
        for i in range(n)
    ]


@pytest.fixture
def emu(aigw_emulator_factory, monkeypatch):
    """An empty gateway; connection without client-side retries so each poll is one request."""
    server = aigw_emulator_factory(gateways={GW: 0})
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW, max_retries=0))
    return server


# ------------------------------------------------------------------ serialisation


def test_serialize_round_trips_json_only_kwargs():
    trigger = AIGatewayLogsTrigger(
        aigw_conn_id="my_conn",
        gateway_id="gw-1",
        filters={"key": "model", "operator": "eq", "value": "gpt-4o"},
        start=T0,
        end="2026-11-20T13:00:00+00:00",
        min_count=3,
        max_matches=2,
        poll_interval=15,
        deadline=NOW + 600,
        not_before=NOW + 60,
        exponential_backoff=True,
        max_interval=120,
        settled_at=NOW + 60,
    )
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsTrigger"
    assert kwargs == {
        "aigw_conn_id": "my_conn",
        "gateway_id": "gw-1",
        "filters": [{"key": "model", "operator": "eq", "value": ["gpt-4o"]}],
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
        "min_count": 3,
        "max_matches": 2,
        "poll_interval": 15.0,
        "deadline": NOW + 600,
        "not_before": NOW + 60,
        "exponential_backoff": True,
        "max_interval": 120.0,
        "settled_at": NOW + 60,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = AIGatewayLogsTrigger(**json.loads(json.dumps(kwargs)))
    assert again.serialize() == (path, kwargs)


def test_serialize_defaults():
    _, kwargs = AIGatewayLogsTrigger().serialize()
    assert kwargs == {
        "aigw_conn_id": "cloudflare_ai_gateway_default",
        "gateway_id": None,
        "filters": [],
        "start": None,
        "end": None,
        "min_count": 1,
        "max_matches": 5,
        "poll_interval": 60.0,
        "deadline": None,
        "not_before": None,
        "exponential_backoff": False,
        "max_interval": None,
        "settled_at": None,
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_count": 0}, "min_count"),
        ({"min_count": True}, "min_count"),
        ({"max_matches": 51}, "max_matches"),
        ({"filters": "model=gpt-4o"}, "filters"),
        ({"filters": {"key": "model", "operator": "like", "value": "x"}}, "operator"),
        ({"start": datetime(2026, 11, 20)}, "naive"),
        ({"start": T1, "end": T0}, "must be after start"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"deadline": float("nan")}, "deadline"),
    ],
)
def test_bad_input_is_refused(kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        AIGatewayLogsTrigger(**kwargs)


def test_repr_and_events_never_hold_the_token(emu):
    trigger = AIGatewayLogsTrigger(gateway_id=GW)
    assert emu.token not in repr(trigger)
    assert emu.token not in json.dumps(trigger.serialize())


# ------------------------------------------------------------------ polling (emulator)


async def test_success_at_once_returns_count_and_newest_matches(emu):
    emu.add_logs(GW, logs_in_window(4) + logs_in_window(2, model="claude", offset_min=10))
    emu.add_logs(GW, [{"created_at": (T1 + timedelta(minutes=5)).isoformat(), "model": "gpt-4o"}])  # outside
    emu.reset_stats()
    fake = FakeClock(NOW)
    trigger = faked(
        AIGatewayLogsTrigger(
            filters=[{"key": "model", "operator": "eq", "value": "gpt-4o"}],
            start=T0,
            end=T1,
            min_count=3,
            max_matches=2,
            poll_interval=30,
            deadline=NOW + 300,
        ),
        fake,
    )
    event = await first_event(trigger)
    assert event["status"] == "success"
    result = event["result"]
    assert {k: v for k, v in result.items() if k != "matches"} == {
        "count": 4,
        "min_count": 3,
        "gateway_id": GW,
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
    }
    assert [m["created_at"] for m in result["matches"]] == ["2026-11-20T12:03:00.000Z", "2026-11-20T12:02:00.000Z"]
    assert all(m["model"] == "gpt-4o" for m in result["matches"])
    assert emu.stats["total"] == 1 and fake.sleeps == []
    query = emu.stats.requests[0]["query"]
    assert query["per_page"] == ["2"] and query["order_by_direction"] == ["desc"]
    assert json.loads(query["filters"][0])[0] == {"key": "model", "operator": "eq", "value": ["gpt-4o"]}
    assert emu.token not in json.dumps(event)


async def test_late_logs_polls_until_they_arrive(emu):
    emu.schedule_late_logs(GW, logs_in_window(2), after_requests=2)  # visible from the 3rd request on
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(start=T0, end=T1, min_count=2, poll_interval=10, deadline=NOW + 3600), fake)
    event = await first_event(trigger)
    assert event["status"] == "success" and event["result"]["count"] == 2
    assert emu.stats["list"] == 3
    assert fake.sleeps == [10, 10]


async def test_exponential_backoff_capped_by_max_interval(emu):
    emu.schedule_late_logs(GW, logs_in_window(1), after_requests=5)
    fake = FakeClock(NOW)
    trigger = faked(
        AIGatewayLogsTrigger(
            start=T0, end=T1, poll_interval=10, exponential_backoff=True, max_interval=50, deadline=NOW + 3600
        ),
        fake,
    )
    event = await first_event(trigger)
    assert event["status"] == "success"
    assert fake.sleeps == [10, 20, 40, 50, 50]
    assert emu.stats["list"] == 6


async def test_deadline_yields_timeout_after_a_last_poll_at_the_deadline(emu):
    emu.add_logs(GW, logs_in_window(1))
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(start=T0, end=T1, min_count=2, poll_interval=3, deadline=NOW + 10), fake)
    event = await first_event(trigger)
    assert event["status"] == "timeout"
    assert event["count"] == 1
    assert "at least 2 matching log(s)" in event["message"] and "1 matching log(s)" in event["message"]
    # polls at t=0, 3, 6, 9 and a last one at the deadline (t=10)
    assert fake.sleeps == [3, 3, 3, 1]
    assert emu.stats["list"] == 5


async def test_deadline_already_passed_polls_once(emu):
    fake = FakeClock(NOW)
    event = await first_event(faked(AIGatewayLogsTrigger(poll_interval=3, deadline=NOW - 1), fake))
    assert event == {
        "status": "timeout",
        "message": "Timed out waiting for at least 1 matching log(s) in gateway (connection default): "
        "0 matching log(s)",
        "count": 0,
    }
    assert emu.stats["list"] == 1 and fake.sleeps == []


async def test_not_before_delays_the_first_poll(emu):
    emu.add_logs(GW, logs_in_window(1))
    fake = FakeClock(NOW)
    trigger = faked(
        AIGatewayLogsTrigger(start=T0, end=T1, poll_interval=5, not_before=NOW + 42, deadline=NOW + 100), fake
    )
    seen: list[int] = []
    fake.on_sleep = lambda n: seen.append(emu.stats["total"])
    event = await first_event(trigger)
    assert event["status"] == "success"
    assert fake.sleeps == [42] and seen == [0]  # no request before the window settled
    assert emu.stats["list"] == 1


async def test_not_before_past_the_deadline_times_out_without_a_request(emu):
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(not_before=NOW + 100, deadline=NOW + 30), fake)
    event = await first_event(trigger)
    assert event["status"] == "timeout" and event["count"] is None
    assert "no successful check" in event["message"]
    assert fake.sleeps == [30] and emu.stats["total"] == 0


# ------------------------------------------------------------------ errors


async def test_transient_5xx_and_drops_are_retried_with_backoff(emu):
    emu.add_logs(GW, logs_in_window(1))
    emu.faults.update(error_rate=0.5, drop_rate=0.5)  # every request fails one way or the other
    fake = FakeClock(NOW)
    fake.on_sleep = lambda n: emu.faults.update(error_rate=0.0, drop_rate=0.0) if n == 3 else None
    trigger = faked(AIGatewayLogsTrigger(start=T0, end=T1, poll_interval=2, deadline=NOW + 600), fake)
    event = await first_event(trigger)
    assert event["status"] == "success" and event["result"]["count"] == 1
    assert fake.sleeps == [2, 4, 8]  # doubling per consecutive transient failure
    assert emu.stats["list"] == 4
    assert emu.stats["served_5xx"] + emu.stats["dropped"] == 3


async def test_transient_backoff_honours_retry_after_and_max_interval(monkeypatch):
    script: list[Any] = [
        AIGatewayRateLimitError("429", status=429, retry_after=45),
        AIGatewayAPIError("502", status=502),
        AIGatewayAPIError("no response", status=None),
        AIGatewayAPIError("503", status=503),
        {"count": 0},
        {"count": 1, "matches": []},
    ]

    def scripted(self, remaining):
        item = script.pop(0)
        if isinstance(item, Exception):
            raise item
        return item

    monkeypatch.setattr(AIGatewayLogsTrigger, "_check", scripted)
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(poll_interval=5, max_interval=12, deadline=NOW + 600), fake)
    event = await first_event(trigger)
    assert event == {"status": "success", "result": {"count": 1, "matches": []}}
    # 429 waits Retry-After (45 > 5); then 10, then 12 (capped), 12; a clean poll resets to 5
    assert fake.sleeps == [45, 10, 12, 12, 5]


async def test_transient_failures_until_the_deadline_are_an_error_not_a_timeout(emu):
    emu.faults.update(error_rate=1.0)
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(poll_interval=1, deadline=NOW + 10), fake)
    event = await first_event(trigger)
    # An outage is not "too few logs": the sensor fails on it even with soft_fail.
    assert event["status"] == "error" and event["http_status"] >= 500
    assert event["message"].startswith("The AI Gateway API was still failing when the sensor's timeout ran out")
    assert fake.sleeps == [1, 2, 4, 3]  # the last wait is cut at the deadline
    assert emu.stats["list"] == 5


async def test_a_clean_last_poll_after_failures_is_a_timeout(emu):
    emu.faults.update(error_rate=1.0)
    fake = FakeClock(NOW)
    fake.on_sleep = lambda n: emu.faults.update(error_rate=0.0) if n == 3 else None
    trigger = faked(AIGatewayLogsTrigger(poll_interval=1, deadline=NOW + 10), fake)
    event = await first_event(trigger)
    assert event["status"] == "timeout" and event["count"] == 0
    assert fake.sleeps == [1, 2, 4, 1, 1, 1]
    assert emu.stats["list"] == 7 and emu.stats["served_5xx"] == 3


async def test_forbidden_yields_error_at_once(aigw_emulator_factory, monkeypatch):
    server = aigw_emulator_factory(gateways={GW: 3})
    conn = json.loads(server.airflow_conn_json(GW))
    conn["password"] = "wrong-TOKEN-1234"
    monkeypatch.setenv(ENV, json.dumps(conn))
    fake = FakeClock(NOW)
    event = await first_event(faked(AIGatewayLogsTrigger(poll_interval=1, deadline=NOW + 600), fake))
    assert event["status"] == "error"
    assert event["http_status"] == 403 and event["error_type"] == "AIGatewayAPIError"
    assert "HTTP 403" in event["message"] and "AI Gateway Read" in event["message"]
    assert "wrong-TOKEN-1234" not in json.dumps(event)
    assert server.stats["total"] == 1 and fake.sleeps == []


async def test_bad_filter_key_400_yields_error_at_once(emu):
    fake = FakeClock(NOW)
    trigger = faked(
        AIGatewayLogsTrigger(filters={"key": "no_such_key", "operator": "eq", "value": 1}, deadline=NOW + 600), fake
    )
    event = await first_event(trigger)
    assert event["status"] == "error" and event["http_status"] == 400
    assert emu.stats["total"] == 1 and fake.sleeps == []


async def test_unknown_gateway_404_yields_error_at_once(emu):
    event = await first_event(faked(AIGatewayLogsTrigger(gateway_id="nope", deadline=NOW + 600), FakeClock(NOW)))
    assert event["status"] == "error" and event["http_status"] == 404
    assert event["error_type"] == "AIGatewayNotFoundError"
    assert emu.stats["total"] == 1


async def test_missing_connection_yields_error_event(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    event = await first_event(faked(AIGatewayLogsTrigger(aigw_conn_id="does_not_exist"), FakeClock(NOW)))
    assert event["status"] == "error" and event["http_status"] is None
    assert "does_not_exist" in event["message"]


# ------------------------------------------------------------------ the event loop


async def test_connection_lookup_and_http_run_off_the_event_loop(emu, monkeypatch):
    """A request held open in the emulator must not stop other coroutines on the loop."""
    emu.add_logs(GW, logs_in_window(1))
    loop_thread = threading.get_ident()
    lookup_threads: list[int] = []
    real_get_connection = AIGatewayHook.get_connection

    def recording_get_connection(conn_id):
        lookup_threads.append(threading.get_ident())
        return real_get_connection(conn_id)

    monkeypatch.setattr(AIGatewayHook, "get_connection", staticmethod(recording_get_connection))

    in_flight, release = threading.Event(), threading.Event()
    real_before = emu.before_request

    def held_request() -> None:  # runs in the emulator's handler thread
        in_flight.set()
        release.wait(timeout=10)  # fail-safe: a blocked loop makes the test fail, not hang
        real_before()

    emu.before_request = held_request
    ticks = 0
    released_by_ticker = False

    async def ticker() -> None:
        nonlocal ticks, released_by_ticker
        while not in_flight.is_set():
            await asyncio.sleep(0.001)
        for _ in range(20):  # the loop keeps running while the request is in flight
            ticks += 1
            await asyncio.sleep(0)
        released_by_ticker = not release.is_set()
        release.set()

    trigger = AIGatewayLogsTrigger(start=T0, end=T1, poll_interval=1, deadline=None)
    event, _ = await asyncio.gather(first_event(trigger), ticker())
    assert event["status"] == "success" and event["result"]["count"] == 1
    assert ticks == 20 and released_by_ticker
    assert lookup_threads and all(t != loop_thread for t in lookup_threads)


async def test_client_retry_budget_is_capped_by_the_deadline(emu, monkeypatch):
    monkeypatch.setenv(ENV, emu.airflow_conn_json(GW, retry_deadline=900, timeout=30, max_retries=10))
    seen: list[tuple[float, float, int]] = []
    real = AIGatewayClient.list_page

    def spy(client, *args, **kwargs):
        seen.append((client.retry_deadline, client.timeout, client.max_retries))
        return real(client, *args, **kwargs)

    monkeypatch.setattr(AIGatewayClient, "list_page", spy)
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(poll_interval=5, min_count=1, deadline=NOW + 12), fake)
    event = await first_event(trigger)
    assert event["status"] == "timeout"
    # remaining 12, 7, 2, then 0 -> floor of 1 s and a single attempt
    assert seen == [(12.0, 12.0, 10), (7.0, 7.0, 10), (2.0, 2.0, 10), (1.0, 1.0, 0)]
    # the connection's own client keeps its settings
    assert (trigger._hook.client.retry_deadline, trigger._hook.client.timeout) == (900.0, 30.0)


# ------------------------------------------------------------------ settled_at


async def test_settled_empty_window_succeeds_at_the_first_poll_after_settling(emu, monkeypatch):
    fake = FakeClock(NOW)
    trigger = faked(
        AIGatewayLogsTrigger(
            start=T0, end=T1, poll_interval=5, not_before=NOW + 42, settled_at=NOW + 42, deadline=NOW + 600
        ),
        fake,
    )
    lines = LogLines()
    monkeypatch.setattr(AIGatewayLogsTrigger, "log", lines)
    event = await first_event(trigger)
    assert event["status"] == "success" and event["result"]["count"] == 0
    assert fake.sleeps == [42] and emu.stats["list"] == 1
    assert "has settled with 0 matching log(s) (min_count=1)" in lines.text("info")


async def test_polls_before_settled_at_wait_for_min_count(emu):
    fake = FakeClock(NOW)
    trigger = faked(
        AIGatewayLogsTrigger(start=T0, end=T1, poll_interval=60, settled_at=NOW + 100, deadline=NOW + 600), fake
    )
    event = await first_event(trigger)
    # polls at NOW and NOW+60 saw 0 logs before the settle time; the poll at NOW+120 is final
    assert event["status"] == "success" and event["result"]["count"] == 0
    assert fake.sleeps == [60, 60] and emu.stats["list"] == 3


async def test_without_settled_at_an_empty_window_times_out(emu):
    fake = FakeClock(NOW)
    trigger = faked(AIGatewayLogsTrigger(start=T0, end=T1, poll_interval=60, deadline=NOW + 150), fake)
    event = await first_event(trigger)
    assert event["status"] == "timeout" and event["count"] == 0


# ================================================================ AIGatewayLogsEventTrigger

EPOCH = datetime(2026, 11, 26, 12, tzinfo=timezone.utc)
THUMBS_DOWN = {"key": "feedback", "operator": "eq", "value": [-1]}


class Stop(Exception):
    """Ends a watcher's endless loop from the fake clock."""


class FakeStateStore:
    """The asset's state as Airflow 3.3's triggerer hands it in: ``aget``/``aset`` of JSON values."""

    def __init__(self, *, assets: int = 1) -> None:
        self.values: dict[str, Any] = {}
        self.assets = assets
        self.sets = 0

    def _one(self) -> None:
        if self.assets != 1:
            raise ValueError(f"Task has {self.assets} concrete inlets and outlets")

    async def aget(self, key: str, default: Any = None) -> Any:
        self._one()
        return json.loads(json.dumps(self.values[key])) if key in self.values else default

    async def aset(self, key: str, value: Any) -> None:
        self._one()
        self.sets += 1
        self.values[key] = json.loads(json.dumps(value))


def at(seconds: float) -> str:
    """``created_at`` ``seconds`` after EPOCH (the fake clock's start)."""
    return format_time(EPOCH + timedelta(milliseconds=round(seconds * 1000)))


def watcher(fake: FakeClock, store: FakeStateStore | None = None, **kwargs: Any) -> AIGatewayLogsEventTrigger:
    trigger = AIGatewayLogsEventTrigger(gateway_id=GW, filters=THUMBS_DOWN, poll_interval=30, **kwargs)
    trigger._clock, trigger._sleep = fake.time, fake.async_sleep
    trigger.asset_state_store = store
    return trigger


async def events_until(trigger: AIGatewayLogsEventTrigger, fake: FakeClock, sleeps: int, world=None) -> list[dict]:
    """The payloads the watcher yields until its ``sleeps``-th sleep; ``world(n)`` runs after sleep n."""

    before = len(fake.sleeps)

    def on_sleep(total: int) -> None:
        n = total - before
        if world is not None:
            world(n)
        if n >= sleeps:
            raise Stop

    fake.on_sleep = on_sleep
    payloads: list[dict] = []
    with pytest.raises(Stop):
        async for event in trigger.run():
            payloads.append(event.payload)
    return payloads


def add(emu, *seconds: float, feedback: int = -1) -> list[str]:
    return emu.add_logs(GW, [{"created_at": at(s), "feedback": feedback} for s in seconds])


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock(EPOCH.timestamp())


def test_event_trigger_serialises_its_filters_as_one_json_string_and_hashes_stably():
    from airflow_provider_aigw.compat import AssetWatcher, BaseEventTrigger

    filters = [THUMBS_DOWN, {"key": "model", "operator": "eq", "value": "x"}]
    trigger = AIGatewayLogsEventTrigger(gateway_id=GW, filters=filters)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger"
    assert kwargs == {
        "aigw_conn_id": "cloudflare_ai_gateway_default",
        "gateway_id": GW,
        "filters": '[{"key":"feedback","operator":"eq","value":[-1]},{"key":"model","operator":"eq","value":["x"]}]',
        "search": None,
        "poll_interval": 60.0,
        "overlap": 120.0,
        "lookback": 300.0,
        "max_batch": 200,
    }
    again = AIGatewayLogsEventTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)  # a re-parse files the same trigger row
    assert isinstance(trigger, BaseEventTrigger)
    if AssetWatcher is not None:  # Airflow 3: watchers whose kwargs hash alike share one trigger row
        assert BaseEventTrigger.hash(path, kwargs) == BaseEventTrigger.hash(*again.serialize())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"poll_interval": 5}, "poll_interval must be at least 10 seconds"),
        ({"filters": {"key": "feedback", "operator": "is", "value": [-1]}}, "operator"),
        ({"filters": '[{"key": "feedback"'}, "filters"),
        ({"gateway_id": "bad gateway/"}, "gateway"),
        ({"overlap": -1}, "overlap"),
        ({"lookback": "soon"}, "lookback"),
        ({"max_batch": 0}, "max_batch"),
        ({"max_batch": 251}, "max_batch"),
        ({"aigw_conn_id": ""}, "aigw_conn_id"),
    ],
)
def test_event_trigger_refuses_bad_input_when_built(kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        AIGatewayLogsEventTrigger(**{"gateway_id": GW, "filters": THUMBS_DOWN, **kwargs})


async def test_watcher_fires_new_matching_logs_once_catches_late_ones_and_idles_at_one_request(emu, fake):
    old = add(emu, -400)  # before the look-back: never fires
    first = add(emu, -100, -50)
    add(emu, -60, feedback=1)  # does not match
    store = FakeStateStore()
    requests: list[int] = []
    late: dict[str, list[str]] = {}

    def world(n: int) -> None:
        requests.append(emu.stats.list)
        if n == 4:  # after two idle polls: one late log inside the overlap, one new, one far too late
            late["inside"] = add(emu, -80)
            late["new"] = add(emu, 40)
            late["outside"] = add(emu, -300)

    emu.reset_stats()
    payloads = await events_until(watcher(fake, store), fake, 6, world)
    assert [p["ids"] for p in payloads] == [first, late["inside"] + late["new"]]
    assert not set(old + late["outside"]) & {i for p in payloads for i in p["ids"]}
    assert payloads[0] == {
        "kind": "aigw.new_logs",
        "gateway_id": GW,
        "count": 2,
        "ids": first,
        "start": at(-100),
        "end": at(-49.999),
        "newest_created_at": at(-50),
    }
    # sleeps: the state delay after an event, the rest of the interval, idle polls of 30 s
    assert fake.sleeps == [5.0, 25.0, 30.0, 30.0, 5.0, 25.0]
    # one request per poll: idle ones included (the emitted ids are kept out by the query)
    assert [b - a for a, b in zip([0, *requests], requests, strict=False)] == [1, 0, 1, 1, 1, 0]
    (key,) = store.values
    assert key.startswith("aigw.watermark.") and store.values[key]["newest"] == at(40)


async def test_a_restart_resumes_from_the_saved_watermark_and_repeats_only_an_unsaved_batch(emu, fake):
    store = FakeStateStore()
    first = add(emu, -100, -50)
    # killed right after yielding its first event: the watermark was not saved past it
    assert [p["ids"] for p in await events_until(watcher(fake, store), fake, 1)] == [first]
    assert [p["ids"] for p in await events_until(watcher(fake, store), fake, 2)] == [first]  # repeated once
    second = add(emu, 10)
    payloads = await events_until(watcher(fake, store), fake, 4)
    assert [p["ids"] for p in payloads] == [second]  # saved: nothing of before repeats


async def test_without_state_a_restart_starts_from_the_lookback(emu, fake):
    recent = add(emu, -100)
    add(emu, -400)
    assert [p["ids"] for p in await events_until(watcher(fake, None, lookback=200), fake, 2)] == [recent]
    # Airflow 3.0-3.2: no state, so a restart fires again on what its look-back holds
    assert [p["ids"] for p in await events_until(watcher(fake, None, lookback=200), fake, 2)] == [recent]


async def test_several_assets_on_one_trigger_warn_once_and_run_without_state(emu, fake, monkeypatch):
    lines = LogLines()
    monkeypatch.setattr(AIGatewayLogsEventTrigger, "log", lines)
    store = FakeStateStore(assets=2)
    ids = add(emu, -10)
    assert [p["ids"] for p in await events_until(watcher(fake, store), fake, 3)] == [ids]
    assert store.sets == 0 and fake.sleeps == [30.0, 30.0, 30.0]  # no save delay without a state
    assert lines.text("warning").count("several assets watch this trigger") == 1


async def test_a_full_batch_polls_again_at_once_and_a_backlog_drains_without_repeats(emu, fake):
    ids = add(emu, *range(-50, 0, 10))
    payloads = await events_until(watcher(fake, FakeStateStore(), max_batch=2), fake, 5)
    assert [p["ids"] for p in payloads] == [ids[0:2], ids[2:4], ids[4:]]
    assert fake.sleeps == [5.0, 5.0, 5.0, 25.0, 30.0]


async def test_transient_failures_back_off_and_permanent_ones_raise(emu, fake):
    ids = add(emu, -10)
    emu.faults.update(error_rate=1.0)
    fake.on_sleep = None

    def world(n: int) -> None:
        if n == 3:
            emu.faults.update(error_rate=0.0)

    payloads = await events_until(watcher(fake, None), fake, 4, world)
    assert [p["ids"] for p in payloads] == [ids]
    assert fake.sleeps == [30.0, 60.0, 120.0, 30.0]  # doubling from poll_interval, then the poll interval
    with pytest.raises(AIGatewayAPIError) as info:
        trigger = AIGatewayLogsEventTrigger(gateway_id="no-such-gateway", filters=THUMBS_DOWN, poll_interval=30)
        trigger._sleep = fake.async_sleep
        await anext(trigger.run())
    assert info.value.status == 404


# ----------------------------------------------------- Airflow 3.3's shared stream (one poll a gateway)

# Three watchers of one gateway, each its own filters.
FILTERS = {
    "thumbs_down": THUMBS_DOWN,
    "claude": {"key": "model", "operator": "eq", "value": ["claude"]},
    "thumbs_up": {"key": "feedback", "operator": "eq", "value": [1]},
}


def log_of(seconds: float, feedback: int, model: str = "gpt-4o") -> dict[str, Any]:
    return {"created_at": at(seconds), "feedback": feedback, "model": model}


def matching(emu, name: str, ids: set[str]) -> set[str]:
    """Which of ``ids`` the emulator's stored logs say match the watcher ``name`` (the ground truth)."""
    logs = {log["id"]: log for log in emu.logs(GW)}
    if name == "claude":
        return {i for i in ids if logs[i]["model"] == "claude"}
    return {i for i in ids if logs[i]["feedback"] == (-1 if name == "thumbs_down" else 1)}


@pytest.fixture
def detector_clock(monkeypatch, fake):
    """The fake clock of the detector :meth:`open_shared_stream` builds from kwargs (as the triggerer does)."""
    init = AIGatewayLogsEventTrigger.__init__

    def faked_init(self, **kwargs):
        init(self, **kwargs)
        self._clock, self._sleep = fake.time, fake.async_sleep

    monkeypatch.setattr(AIGatewayLogsEventTrigger, "__init__", faked_init)
    return fake


class Group:
    """The triggerer's shared stream in miniature (its fast path, ``airflow/triggers/shared_stream.py``):
    each signal of the detector goes to the queue of every watcher subscribed at that time, and
    :meth:`run` waits until every watcher has handled it (blocked on an empty queue) before the
    detector goes on, so each fake interval's requests are exact."""

    def __init__(self, detector_of: AIGatewayLogsEventTrigger) -> None:
        self.kwargs = detector_of.serialize()[1]
        self.key = detector_of.shared_stream_key()
        self.queues: list[asyncio.Queue] = []
        self.tasks: list[asyncio.Task] = []
        self.waiting = 0
        self.idle = asyncio.Condition()
        self.signals: list[dict] = []
        self.later: dict[int, list[tuple[AIGatewayLogsEventTrigger, list[dict]]]] = {}
        self.failure: Exception | None = None

    def join(self, trigger: AIGatewayLogsEventTrigger, *, after_signal: int | None = None) -> list[dict]:
        """Subscribe ``trigger`` (its key must be the group's); returns the payloads it will yield.

        With ``after_signal=n`` it subscribes just before the ``n``-th signal is broadcast (so gets it)
        and starts polling after the others handled it.
        """
        assert trigger.shared_stream_key() == self.key
        payloads: list[dict] = []
        if after_signal is not None:
            self.later.setdefault(after_signal, []).append((trigger, payloads))
        else:
            self._start(trigger, payloads, asyncio.Queue())
        return payloads

    def _start(self, trigger: AIGatewayLogsEventTrigger, payloads: list[dict], queue: asyncio.Queue) -> None:
        self.queues.append(queue)

        async def stream():
            while True:
                async with self.idle:
                    self.waiting += 1
                    self.idle.notify_all()
                item = await queue.get()
                self.waiting -= 1
                yield item

        async def consume():
            try:
                async for event in trigger.filter_shared_stream(stream()):
                    payloads.append(event.payload)
            except Exception as err:  # a watcher that failed fails the test (or Stop ends it)
                async with self.idle:
                    self.failure = err
                    self.idle.notify_all()

        self.tasks.append(asyncio.create_task(consume()))
        return payloads

    async def settled(self) -> None:
        async with self.idle:
            await self.idle.wait_for(
                lambda: self.failure is not None
                or (self.waiting == len(self.queues) and all(q.empty() for q in self.queues))
            )
        if self.failure is not None:
            raise self.failure

    async def run(self) -> None:
        """Run the detector (until the fake clock raises :class:`Stop`), fanning its signals out."""
        try:
            await self.settled()  # every watcher has polled on joining
            async for change in AIGatewayLogsEventTrigger.open_shared_stream(self.kwargs):
                self.signals.append(change)
                for queue in self.queues:
                    queue.put_nowait(change)
                await self.settled()
                for trigger, payloads in self.later.pop(len(self.signals), []):
                    queue = asyncio.Queue()
                    queue.put_nowait(change)
                    self._start(trigger, payloads, queue)
                    await self.settled()
        except Stop:
            pass
        finally:
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)


def shared_watcher(name: str, store: FakeStateStore | None = None, **kwargs: Any) -> AIGatewayLogsEventTrigger:
    # Its own fake clock for the state-save delay: the detector's clock is the group's time.
    trigger = AIGatewayLogsEventTrigger(gateway_id=GW, filters=FILTERS[name], poll_interval=30, **kwargs)
    clock = FakeClock(EPOCH.timestamp())
    trigger._clock, trigger._sleep = clock.time, clock.async_sleep
    trigger.asset_state_store = store
    return trigger


async def detector_signals() -> list[dict]:
    """The shared poll's signals until the fake clock raises :class:`Stop`."""
    signals: list[dict] = []
    with pytest.raises(Stop):
        async for change in AIGatewayLogsEventTrigger.open_shared_stream(shared_watcher("claude").serialize()[1]):
            signals.append(change)
    return signals


def test_watchers_of_one_gateway_share_a_key_whatever_their_filters():
    keys = {name: shared_watcher(name).shared_stream_key() for name in FILTERS}
    assert len(set(keys.values())) == 1
    (key,) = set(keys.values())
    assert key == ("airflow_provider_aigw.gateway_changes", "cloudflare_ai_gateway_default", GW, 30.0, 120.0)
    # deterministic: the trigger re-made from its kwargs (a triggerer restart) joins the same group
    kwargs = shared_watcher("claude").serialize()[1]
    assert AIGatewayLogsEventTrigger(**kwargs).shared_stream_key() == key
    others = [
        AIGatewayLogsEventTrigger(gateway_id="other-gateway", filters=THUMBS_DOWN, poll_interval=30),
        AIGatewayLogsEventTrigger(aigw_conn_id="other_conn", gateway_id=GW, filters=THUMBS_DOWN, poll_interval=30),
        AIGatewayLogsEventTrigger(gateway_id=GW, filters=THUMBS_DOWN, poll_interval=60),
        AIGatewayLogsEventTrigger(gateway_id=GW, filters=THUMBS_DOWN, poll_interval=30, overlap=60),
    ]
    assert len({key, *(t.shared_stream_key() for t in others)}) == 5


async def test_the_shared_poll_costs_one_request_an_idle_interval_and_signals_new_and_late_logs(emu, detector_clock):
    add(emu, -400)  # before its overlap: never a change
    emu.add_logs(GW, [log_of(-30, -1), log_of(-20, 1, "claude")])
    requests: list[int] = []

    def world(n: int) -> None:
        requests.append(emu.stats.list)
        if n == 3:
            emu.add_logs(GW, [log_of(-60, 0)])  # late: created before the newest seen, inside the overlap
        if n == 5:
            emu.add_logs(GW, [log_of(-300, -1)])  # far behind the overlap: not a change (the bound)
        if n == 6:
            emu.add_logs(GW, [log_of(200, 0), log_of(201, -1)])
        if n == 8:
            raise Stop

    detector_clock.on_sleep = world
    emu.reset_stats()
    signals = await detector_signals()
    assert [(s["new_logs"], s["changed_through"], s["gateway_id"]) for s in signals] == [
        (2, at(-20), GW),  # its first poll (always a signal)
        (1, at(-60), GW),  # the late log
        (2, at(201), GW),
    ]
    assert signals[0]["listing"] < signals[1]["listing"] < signals[2]["listing"]
    # one request a poll, idle or not, whatever the watchers' filters; a poll every 30 s
    assert [b - a for a, b in zip([0, *requests], requests, strict=False)] == [1] * 8
    assert detector_clock.sleeps == [30.0] * 8


async def test_the_shared_poll_skips_a_burst_in_two_requests_and_idles_at_one(emu, detector_clock):
    requests: list[int] = []

    def world(n: int) -> None:
        requests.append(emu.stats.list)
        if n == 1:
            emu.add_logs(GW, [log_of(10 + i * 0.1, 0) for i in range(120)])
        if n == 4:
            raise Stop

    detector_clock.on_sleep = world
    emu.reset_stats()
    signals = await detector_signals()
    # the first poll (empty gateway) signals; the burst: a page of new logs, then the newest page
    assert [(s["new_logs"], s["changed_through"]) for s in signals] == [(0, None), (50, at(14.9))]
    assert [b - a for a, b in zip([0, *requests], requests, strict=False)] == [1, 2, 1, 1]


async def test_each_watcher_of_a_group_fires_exactly_its_new_logs_once(emu, detector_clock):
    initial = emu.add_logs(GW, [log_of(-100, -1), log_of(-90, 1, "claude"), log_of(-80, 0), log_of(-400, -1)])
    stores = {name: FakeStateStore() for name in FILTERS}
    group = Group(shared_watcher("thumbs_down"))
    payloads = {name: group.join(shared_watcher(name, stores[name])) for name in FILTERS}
    requests: list[int] = []
    added: list[str] = []

    def world(n: int) -> None:
        requests.append(emu.stats.list)
        if n == 2:
            added.extend(emu.add_logs(GW, [log_of(40, -1), log_of(41, 0, "claude")]))
        if n == 3:
            added.extend(emu.add_logs(GW, [log_of(20, 1)]))  # late, inside the overlap
        if n == 6:
            raise Stop

    detector_clock.on_sleep = world
    emu.reset_stats()
    await group.run()

    created = set(initial[:3]) | set(added)  # initial[3] is older than the look-back
    for name in FILTERS:
        fired = [i for p in payloads[name] for i in p["ids"]]
        assert len(fired) == len(set(fired))  # each id once
        assert set(fired) == matching(emu, name, created), name
    assert [p["ids"] for p in payloads["thumbs_down"]] == [initial[:1], added[:1]]
    assert [p["ids"] for p in payloads["claude"]] == [initial[1:2], added[1:2]]
    assert [p["ids"] for p in payloads["thumbs_up"]] == [initial[1:2], added[2:]]
    # per interval: the shared poll, plus one poll per watcher when it signals a change; first the
    # watchers' polls on joining and, as the shared poll listed after they began, their polls on its first signal
    assert [b - a for a, b in zip([0, *requests], requests, strict=False)] == [3 + 1 + 3, 1, 1 + 3, 1 + 3, 1, 1]
    assert [s["new_logs"] for s in group.signals] == [3, 2, 1]
    # each watcher's watermark saved in its own asset state, exactly as run() saves it
    assert {store.values[next(iter(store.values))]["newest"] for store in stores.values()} == {
        at(40),
        at(41),
        at(20),
    }


async def test_a_watcher_joining_later_catches_up_from_its_state_and_skips_a_signal_it_listed_after(
    emu, detector_clock
):
    before = emu.add_logs(GW, [log_of(-100, 1)])
    up_store = FakeStateStore()
    up, clock = shared_watcher("thumbs_up", up_store), FakeClock(EPOCH.timestamp())
    up._clock, up._sleep = clock.time, clock.async_sleep
    assert [p["ids"] for p in await events_until(up, clock, 2)] == [before]  # it ran alone before; state saved
    # while it is down: a thumbs-up log, and a late one inside its overlap
    missed = emu.add_logs(GW, [log_of(10, 1), log_of(-50, 1)])
    group = Group(shared_watcher("thumbs_down"))
    down = group.join(shared_watcher("thumbs_down", FakeStateStore()))
    joined = group.join(shared_watcher("thumbs_up", up_store), after_signal=1)
    requests: list[int] = []
    added: list[str] = []

    def world(n: int) -> None:
        requests.append(emu.stats.list)
        if n == 2:
            added.extend(emu.add_logs(GW, [log_of(100, 1), log_of(101, -1)]))
        if n == 4:
            raise Stop

    detector_clock.on_sleep = world
    emu.reset_stats()
    await group.run()
    assert [p["ids"] for p in joined] == [[missed[1], missed[0]], added[:1]]  # oldest first, nothing repeated
    assert [p["ids"] for p in down] == [added[1:]]
    # interval 1: the thumbs-down watcher's poll on joining, the shared poll, its poll on the first signal, then
    # the late watcher's poll on joining (that signal reached its queue, but it listed after: skipped)
    assert [b - a for a, b in zip([0, *requests], requests, strict=False)] == [1 + 1 + 1 + 1, 1, 1 + 2, 1]



async def test_in_a_group_a_restart_resumes_from_the_state_and_repeats_only_an_unsaved_batch(emu, detector_clock):
    store = FakeStateStore()
    first = emu.add_logs(GW, [log_of(-100, -1), log_of(-50, -1)])
    second: list[str] = []

    async def triggerer(world_at: int, killed_before_saving: bool = False) -> list[list[str]]:
        """One triggerer's life: a group of the watcher, until the shared poll's ``world_at``-th sleep."""
        detector_clock.sleeps.clear()

        def world(n: int) -> None:
            if n == 2 and not second:
                second.extend(emu.add_logs(GW, [log_of(60, -1), log_of(61, 1)])[:1])
            if n >= world_at:
                raise Stop

        detector_clock.on_sleep = world
        sub = shared_watcher("thumbs_down", store)
        if killed_before_saving:  # the triggerer dies in the state-save delay after its first event
            clock = FakeClock(EPOCH.timestamp())

            def killed(_sleeps: int) -> None:
                raise Stop

            clock.on_sleep = killed
            sub._clock, sub._sleep = clock.time, clock.async_sleep
        group = Group(shared_watcher("thumbs_down"))
        payloads = group.join(sub)
        await group.run()
        return [p["ids"] for p in payloads]

    assert await triggerer(1, killed_before_saving=True) == [first]
    assert await triggerer(3) == [first, second]  # the unsaved batch once more, then the new log
    assert await triggerer(3) == []  # saved: nothing repeats
    assert store.values[next(iter(store.values))]["newest"] == at(60)


async def test_a_permanent_failure_of_the_shared_poll_raises(emu, detector_clock):
    unknown = AIGatewayLogsEventTrigger(gateway_id="no-such-gateway", filters=THUMBS_DOWN, poll_interval=30)
    kwargs = unknown.serialize()[1]
    with pytest.raises(AIGatewayAPIError) as info:
        await anext(AIGatewayLogsEventTrigger.open_shared_stream(kwargs))
    assert info.value.status == 404
