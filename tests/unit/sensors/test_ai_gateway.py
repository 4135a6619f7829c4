"""AIGatewayLogsSensor: poke, reschedule and deferrable paths against the emulator (real HTTP)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
from airflow import __version__ as airflow_version
from airflow.providers.common.compat.sdk import TaskDeferred
from packaging.version import Version

from airflow_provider_aigw.compat import AirflowException, AirflowSensorTimeout, AirflowSkipException
from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayInputError
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.sensors.ai_gateway import DEFERRAL_TIMEOUT_GRACE, AIGatewayLogsSensor
from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsTrigger
from tests.compat_helpers import AirflowRescheduleException
from tests.fake_clock import FakeClock
from tests.log_lines import LogLines

GW = "my-gateway"
ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
T1 = T0 + timedelta(hours=1)
AIRFLOW_VERSION = Version(airflow_version)
GPT = {"key": "model", "operator": "eq", "value": "gpt-4o"}


def logs(n: int, model: str = "gpt-4o", offset_min: int = 0) -> list[dict[str, Any]]:
    return [
        {"created_at": (T0 + timedelta(minutes=offset_min + i)).isoformat(), "model": model, "provider": "openai"}
        for i in range(n)
    ]


@pytest.fixture
def lines(monkeypatch: pytest.MonkeyPatch) -> LogLines:
    """The sensor's log lines (Airflow 3's task loggers bypass caplog)."""
    recorder = LogLines()
    monkeypatch.setattr(AIGatewayLogsSensor, "log", recorder)
    return recorder


@pytest.fixture
def emu(aigw_emulator_factory, monkeypatch):
    server = aigw_emulator_factory(gateways={GW: 0})
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW, max_retries=0))
    return server


def sensor(**kwargs: Any) -> AIGatewayLogsSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0)
    kwargs.setdefault("timeout", 60)
    return AIGatewayLogsSensor(**kwargs)


def xcom_head(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "matches"}


# ------------------------------------------------------------------ construction


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_count": 0}, "min_count"),
        ({"min_count": -3}, "min_count"),
        ({"min_count": "2"}, "min_count"),
        ({"max_matches": -1}, "max_matches"),
        ({"max_matches": 51}, "max_matches"),
        ({"settle_lag": -5}, "settle_lag"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        sensor(**kwargs)


def test_keyword_only_and_template_fields():
    with pytest.raises((TypeError, AirflowException)):  # Airflow 2 raises its own error
        AIGatewayLogsSensor("wait")  # type: ignore[misc]
    assert tuple(AIGatewayLogsSensor.template_fields) == ("filters", "start", "end", "gateway_id", "aigw_conn_id")
    assert AIGatewayLogsSensor.template_fields_renderers == {"filters": "json"}


def test_deferrable_defaults_to_operators_default_deferrable(monkeypatch):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    assert sensor().deferrable is True
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "False")
    assert sensor().deferrable is False
    assert sensor(deferrable=True).deferrable is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"filters": "model=gpt-4o"}, "filters must be a list"),
        ({"filters": [{"key": "model", "operator": "is", "value": "x"}]}, "operator"),
        ({"start": "2026-11-20T12:00:00"}, "no timezone"),
        ({"start": datetime(2026, 11, 20, 12)}, "naive"),
        ({"start": T1, "end": T0}, "must be after start"),
        ({"start": T0, "end": T0}, "must be after start"),
        ({"settle_lag": 30}, "settle_lag needs an end"),
        ({"gateway_id": "Bad Gateway!"}, "not a valid gateway id"),
    ],
)
@pytest.mark.parametrize("deferrable", [False, True])
def test_bad_input_raises_before_any_request(emu, kwargs, message, deferrable):
    with pytest.raises(AIGatewayInputError, match=message):
        sensor(deferrable=deferrable, **kwargs).execute({})
    assert emu.stats["total"] == 0


@pytest.mark.parametrize("deferrable", [False, True])
def test_bad_input_is_refused_when_created_or_once_rendered(emu, deferrable):
    with pytest.raises(AIGatewayInputError, match="filters must be a list"):
        sensor(deferrable=deferrable, filters="model=gpt-4o")  # static: when the DAG is parsed
    task = sensor(deferrable=deferrable, filters="{{ params.f }}", params={"f": "model=gpt-4o"})
    task.render_template_fields({"params": task.params})
    with pytest.raises(AIGatewayInputError, match="filters must be a list"):
        task.execute({})  # templated: once rendered
    assert emu.stats["total"] == 0


# ------------------------------------------------------------------ poke


def test_poke_done_returns_count_and_newest_matches(emu):
    emu.add_logs(GW, logs(3) + logs(2, model="claude", offset_min=30))
    emu.add_logs(GW, [{"created_at": (T1 + timedelta(seconds=1)).isoformat(), "model": "gpt-4o"}])
    emu.reset_stats()
    ret = sensor(filters=GPT, start=T0, end=T1, min_count=3, max_matches=2).poke({})
    assert ret.is_done is True
    assert xcom_head(ret.xcom_value) == {
        "count": 3,
        "min_count": 3,
        "gateway_id": GW,
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
    }
    assert [m["created_at"] for m in ret.xcom_value["matches"]] == [
        "2026-11-20T12:02:00.000Z",
        "2026-11-20T12:01:00.000Z",
    ]
    assert emu.stats["total"] == 1
    query = emu.stats.requests[0]["query"]
    assert (
        query["per_page"] == ["2"] and query["order_by"] == ["created_at"] and query["order_by_direction"] == ["desc"]
    )
    sent = json.loads(query["filters"][0])
    assert sent == [
        {"key": "model", "operator": "eq", "value": ["gpt-4o"]},
        {"key": "created_at", "operator": "gt", "value": ["2026-11-20T11:59:59.999Z"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-20T13:00:00.000Z"]},
    ]
    assert emu.token not in json.dumps(ret.xcom_value)


def test_poke_not_enough_yet(emu):
    emu.add_logs(GW, logs(1))
    ret = sensor(start=T0, end=T1, min_count=2).poke({})
    assert ret.is_done is False and ret.xcom_value["count"] == 1
    assert emu.stats["total"] == 1


def test_max_matches_zero_returns_only_the_count(emu):
    emu.add_logs(GW, logs(4))
    ret = sensor(max_matches=0).poke({})
    assert ret.xcom_value["count"] == 4 and ret.xcom_value["matches"] == []
    assert emu.stats.requests[0]["query"]["per_page"] == ["1"]


def test_poke_transient_failure_is_not_done(emu):
    emu.add_logs(GW, logs(1))
    emu.faults.update(error_rate=1.0)
    ret = sensor().poke({})
    assert ret.is_done is False and ret.xcom_value is None
    assert emu.stats["served_5xx"] == 1


def test_poke_permanent_failure_raises(aigw_emulator_factory, monkeypatch):
    server = aigw_emulator_factory(gateways={GW: 1})
    conn = json.loads(server.airflow_conn_json(GW))
    conn["password"] = "wrong-TOKEN-5678"
    monkeypatch.setenv(ENV, json.dumps(conn))
    with pytest.raises(AIGatewayAPIError) as info:
        sensor(soft_fail=True).execute({})  # soft_fail covers timeouts, not a 403
    assert info.value.status == 403 and "wrong-TOKEN-5678" not in str(info.value)
    assert server.stats["total"] == 1


def test_settle_lag_holds_back_requests_until_end_plus_lag(emu):
    emu.add_logs(GW, logs(1))
    end = datetime.now(timezone.utc) + timedelta(hours=1)
    ret = sensor(start=T0, end=end, settle_lag=60).poke({})
    assert ret.is_done is False and emu.stats["total"] == 0
    past_end = datetime.now(timezone.utc) - timedelta(minutes=5)
    ret = sensor(start=T0, end=past_end, settle_lag=timedelta(minutes=1)).poke({})
    assert ret.is_done is True and emu.stats["total"] == 1


def test_templates_render_filters_window_and_gateway(emu):
    emu.add_logs(GW, logs(2))
    task = sensor(
        filters=[{"key": "model", "operator": "eq", "value": "{{ params.model }}"}],
        start="{{ params.start }}",
        end="{{ params.end }}",
        gateway_id="{{ params.gw }}",
        params={"model": "gpt-4o", "start": T0.isoformat(), "end": T1.isoformat(), "gw": GW},
    )
    task.render_template_fields({"params": task.params})
    assert task.filters == [{"key": "model", "operator": "eq", "value": "gpt-4o"}]
    assert task.start == "2026-11-20T12:00:00+00:00" and task.gateway_id == GW
    assert task.poke({}).xcom_value["count"] == 2


# ------------------------------------------------------------------ poke mode loop (BaseSensorOperator)


def test_poke_mode_waits_for_late_logs(emu):
    emu.schedule_late_logs(GW, logs(2), after_requests=2)
    result = sensor(start=T0, end=T1, min_count=2, mode="poke", poke_interval=0).execute({})
    assert result["count"] == 2 and emu.stats["list"] == 3


def test_poke_mode_timeout_fails_or_skips_with_soft_fail(emu):
    with pytest.raises(AirflowSensorTimeout):
        sensor(timeout=0).execute({})
    with pytest.raises(AirflowSkipException):
        sensor(timeout=0, soft_fail=True).execute({})
    assert emu.stats["list"] == 2


@pytest.mark.skipif(AIRFLOW_VERSION.major < 3, reason="Airflow 2 looks the first reschedule up in the DB")
def test_reschedule_mode(emu):
    ti = mock.Mock()
    ti.get_first_reschedule_date.return_value = None
    with pytest.raises(AirflowRescheduleException):
        sensor(mode="reschedule", poke_interval=30).execute({"ti": ti})
    emu.add_logs(GW, logs(1))
    result = sensor(mode="reschedule", poke_interval=30).execute({"ti": ti})
    assert result["count"] == 1 and emu.stats["list"] == 2


# ------------------------------------------------------------------ deferrable


def test_deferrable_returns_at_once_when_logs_are_there(emu):
    emu.add_logs(GW, logs(2))
    result = sensor(deferrable=True, start=T0, end=T1).execute({})
    assert xcom_head(result) == {
        "count": 2,
        "min_count": 1,
        "gateway_id": GW,
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
    }
    assert emu.stats["total"] == 1


def test_deferrable_defers_with_serialisable_trigger(emu):
    task = sensor(
        deferrable=True,
        filters=GPT,
        start=T0,
        end=T1,
        settle_lag=90,
        min_count=4,
        max_matches=3,
        poke_interval=20,
        timeout=600,
        exponential_backoff=True,
        max_wait=timedelta(minutes=2),
        gateway_id=GW,
        aigw_conn_id="cloudflare_ai_gateway_default",
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    after = time.time()
    assert emu.stats["total"] == 1  # one check in the worker before handing over
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=600) + DEFERRAL_TIMEOUT_GRACE
    trigger = deferred.trigger
    assert isinstance(trigger, AIGatewayLogsTrigger)
    path, kwargs = trigger.serialize()
    deadline = kwargs.pop("deadline")
    assert before + 600 <= deadline <= after + 600
    assert kwargs == {
        "aigw_conn_id": "cloudflare_ai_gateway_default",
        "gateway_id": GW,
        "filters": [{"key": "model", "operator": "eq", "value": ["gpt-4o"]}],
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
        "min_count": 4,
        "max_matches": 3,
        "poll_interval": 20.0,
        "not_before": T1.timestamp() + 90,
        "exponential_backoff": True,
        "max_interval": 120.0,
        "settled_at": None,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert emu.token not in json.dumps([path, kwargs]) and emu.token not in repr(trigger)


def test_deferrable_unsettled_window_defers_without_a_request(emu):
    end = datetime.now(timezone.utc) + timedelta(minutes=10)
    with pytest.raises(TaskDeferred) as info:
        sensor(deferrable=True, start=T0, end=end, settle_lag=30, timeout=3600).execute({})
    assert emu.stats["total"] == 0
    assert info.value.trigger.not_before == pytest.approx(end.timestamp() + 30)


@pytest.mark.parametrize("deferrable", [False, True])
def test_window_settling_after_the_timeout_is_refused_without_a_request(emu, deferrable):
    end = datetime.now(timezone.utc) + timedelta(minutes=10)
    task = sensor(deferrable=deferrable, start=T0, end=end, settle_lag=30, timeout=60, soft_fail=True)
    with pytest.raises(AIGatewayInputError, match=r"settles .* after the sensor's timeout \(60s\)"):
        task.execute({})
    assert emu.stats["total"] == 0


def test_execute_complete_success_returns_the_poke_xcom():
    result = {"count": 2, "min_count": 1, "gateway_id": GW, "start": None, "end": None, "matches": []}
    assert sensor().execute_complete({}, {"status": "success", "result": result}) == result


@pytest.mark.parametrize("soft_fail", [False, True])
def test_resume_after_timeout_fails_or_skips(soft_fail):
    task = sensor(deferrable=True, soft_fail=soft_fail)
    event = {"status": "timeout", "message": "Timed out waiting for at least 1 matching log(s)", "count": 0}
    expected = AirflowSkipException if soft_fail else AirflowSensorTimeout
    with pytest.raises(expected):
        task.resume_execution("execute_complete", {"event": event}, {})


@pytest.mark.parametrize("soft_fail", [False, True])
def test_resume_after_error_fails_even_with_soft_fail(soft_fail):
    task = sensor(deferrable=True, soft_fail=soft_fail)
    event = {"status": "error", "message": "GET ... failed with HTTP 403", "http_status": 403, "error_type": "x"}
    with pytest.raises(AIGatewayAPIError, match="HTTP 403") as info:
        task.resume_execution("execute_complete", {"event": event}, {})
    assert info.value.status == 403


def test_resume_after_success():
    result = {"count": 1, "matches": []}
    task = sensor(deferrable=True)
    assert task.resume_execution("execute_complete", {"event": {"status": "success", "result": result}}, {}) == result


def test_hook_uses_rendered_gateway_and_conn_id():
    task = sensor(gateway_id="gw-a", aigw_conn_id="other")
    assert isinstance(task.hook, AIGatewayHook)
    assert (task.hook.aigw_conn_id, task.hook.gateway_id) == ("other", "gw-a")



# ------------------------------------------------------------------ timeout parity with the trigger


#: The time each HTTP answer takes on the fake clock, so where each request falls is exact.
REQUEST_SECONDS = 0.25


@pytest.fixture
def virtual_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """One fake clock for the sensor, BaseSensorOperator and (with ``on_virtual_time``) the client."""
    import sys
    import types

    from airflow_provider_aigw.compat import BaseSensorOperator
    from airflow_provider_aigw.sensors import ai_gateway as sensor_module

    fake = FakeClock(1_800_000_000.0, request_seconds=REQUEST_SECONDS)
    base_module = sys.modules[BaseSensorOperator.__module__]
    monkeypatch.setattr(sensor_module, "time", types.SimpleNamespace(time=fake.time))
    monkeypatch.setattr(base_module, "time", types.SimpleNamespace(monotonic=fake.time, sleep=fake.sleep))
    monkeypatch.setattr(base_module, "timezone", types.SimpleNamespace(utcnow=fake.utcnow))
    return fake


def on_virtual_time(task: AIGatewayLogsSensor, fake: FakeClock) -> AIGatewayLogsSensor:
    import random

    client = task.hook.client
    client._clock, client._sleep, client._random = fake.time, fake.sleep, random.Random(7)
    client._session.hooks["response"].append(fake.answered)
    return task


@pytest.mark.parametrize("soft_fail", [False, True])
def test_poke_mode_against_5xx_ends_within_timeout_plus_one_request(emu, virtual_time, monkeypatch, soft_fail):
    # The connection's client would retry a 5xx for up to 15 minutes (10 retries, backoff 1 s doubling).
    monkeypatch.setenv(ENV, emu.airflow_conn_json(GW, max_retries=10, retry_deadline=900, backoff_base=1))
    emu.faults.update(error_rate=1.0)
    task = on_virtual_time(sensor(mode="poke", timeout=3, poke_interval=1, soft_fail=soft_fail), virtual_time)
    started = virtual_time.now

    with pytest.raises(AIGatewayAPIError, match="still failing when the sensor's timeout ran out") as info:
        task.execute({})

    # An outage fails the task (retries apply), even with soft_fail: never a skip that loses the window.
    assert info.value.status is not None and info.value.status >= 500
    elapsed = virtual_time.now - started
    assert elapsed <= 3 + REQUEST_SECONDS
    assert all(t - started <= 3 + REQUEST_SECONDS for t in virtual_time.request_times)
    assert emu.stats["served_5xx"] == emu.stats["list"] == emu.stats["total"] == len(virtual_time.request_times)
    assert emu.stats["total"] >= 2  # the client did retry, within the time left


@pytest.mark.skipif(AIRFLOW_VERSION.major < 3, reason="Airflow 2 looks the first reschedule up in the DB")
def test_reschedule_mode_against_5xx_ends_within_timeout_plus_one_request(emu, virtual_time, monkeypatch):
    monkeypatch.setenv(ENV, emu.airflow_conn_json(GW, max_retries=10, retry_deadline=900, backoff_base=1))
    emu.faults.update(error_rate=1.0)
    started = virtual_time.utcnow()
    ti = mock.Mock()
    ti.get_first_reschedule_date.return_value = None
    tries = 0
    while True:
        tries += 1
        task = on_virtual_time(sensor(mode="reschedule", timeout=3, poke_interval=2, soft_fail=True), virtual_time)
        try:
            task.execute({"ti": ti})
        except AirflowRescheduleException as reschedule:
            # The wait before the next try is cut at the timeout, never past it.
            assert reschedule.reschedule_date <= started + timedelta(seconds=3)
            virtual_time.now = max(virtual_time.now, reschedule.reschedule_date.timestamp())
            ti.get_first_reschedule_date.return_value = started
            continue
        except AIGatewayAPIError as err:
            assert "still failing when the sensor's timeout ran out" in str(err)
            break
        pytest.fail("the sensor succeeded against an API that only answers 5xx")
    elapsed = virtual_time.now - started.timestamp()
    assert elapsed <= 3 + REQUEST_SECONDS
    assert all(t - started.timestamp() <= 3 + REQUEST_SECONDS for t in virtual_time.request_times)
    assert tries >= 2 and emu.stats["served_5xx"] == emu.stats["total"] == len(virtual_time.request_times)


def test_poke_mode_wait_is_cut_at_the_timeout_and_the_last_check_decides(emu, virtual_time):
    # poke_interval far beyond the timeout: BaseSensorOperator alone would sleep 600 s, then check.
    task = on_virtual_time(sensor(mode="poke", timeout=3, poke_interval=600, soft_fail=True), virtual_time)
    started = virtual_time.now
    with pytest.raises(AirflowSkipException):  # the API answered "no logs" at the deadline: a real timeout
        task.execute({})
    assert emu.stats["list"] == 2  # at the start and at the timeout
    assert virtual_time.request_times == [started + 0.25, started + 3 + 0.25]


def test_rendered_filters_string_is_accepted_as_in_the_operators(emu):
    emu.add_logs(GW, logs(2) + logs(3, model="claude-3-5-haiku"))
    task = sensor(
        filters="{{ params.filters }}",
        start=T0,
        end=T1,
        params={"filters": [{"key": "model", "operator": "eq", "value": ["claude-3-5-haiku"]}]},
    )
    task.render_template_fields({"params": task.params})
    assert isinstance(task.filters, str)  # without render_template_as_native_obj
    assert task.poke({}).xcom_value["count"] == 3
    with pytest.raises(AIGatewayInputError, match="filters looks like a list or dict but cannot be parsed"):
        sensor(filters="[{'key': 'model',", start=T0, end=T1).poke({})
    assert emu.stats["total"] == 1


# ------------------------------------------------------------------ succeed_when_settled


def test_settled_empty_window_succeeds_with_succeed_when_settled(emu, lines):
    emu.add_logs(GW, logs(2, model="claude-3-5-haiku"))  # other logs of the window do not count
    task = sensor(filters=GPT, start=T0, end=T1, settle_lag=300, succeed_when_settled=True)
    ret = task.poke({})
    assert ret.is_done is True
    assert xcom_head(ret.xcom_value) == {
        "count": 0,
        "min_count": 1,
        "gateway_id": GW,
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
    }
    assert lines.text("info") == (
        "window [2026-11-20T12:00:00.000Z, 2026-11-20T13:00:00.000Z) of gateway 'my-gateway' has settled with "
        "0 matching log(s) (min_count=1): no more can arrive, succeeding (succeed_when_settled)"
    )
    assert emu.stats["total"] == 1


def test_settled_window_with_fewer_than_min_count_succeeds(emu):
    emu.add_logs(GW, logs(2))
    ret = sensor(start=T0, end=T1, min_count=5, succeed_when_settled=True).poke({})
    assert ret.is_done is True and ret.xcom_value["count"] == 2


def test_settled_empty_window_still_waits_by_default(emu):
    ret = sensor(start=T0, end=T1, settle_lag=300).poke({})
    assert ret.is_done is False and ret.xcom_value["count"] == 0


def test_unsettled_empty_window_waits_without_a_request(emu):
    end = datetime.now(timezone.utc) - timedelta(seconds=10)  # ended, but not settle_lag ago
    ret = sensor(start=T0, end=end, settle_lag=300, succeed_when_settled=True).poke({})
    assert ret.is_done is False and emu.stats["total"] == 0


def test_window_not_yet_ended_waits_for_min_count(emu):
    # settle_lag=0: checks run before the end, and only min_count ends the wait until then.
    end = datetime.now(timezone.utc) + timedelta(hours=1)
    emu.add_logs(GW, [{"created_at": (end - timedelta(hours=2)).isoformat()}])
    task = sensor(start=end - timedelta(hours=3), end=end, min_count=2, succeed_when_settled=True)
    ret = task.poke({})
    assert ret.is_done is False and ret.xcom_value["count"] == 1 and emu.stats["total"] == 1


def test_succeed_when_settled_needs_an_end(emu):
    with pytest.raises(AIGatewayInputError, match="succeed_when_settled needs an end"):
        sensor(start=T0, succeed_when_settled=True).poke({})
    assert emu.stats["total"] == 0


def test_deferrable_settled_empty_window_succeeds_without_deferring(emu):
    result = sensor(deferrable=True, start=T0, end=T1, settle_lag=300, succeed_when_settled=True).execute({})
    assert result["count"] == 0 and emu.stats["total"] == 1


def test_deferrable_unsettled_window_hands_the_settle_time_to_the_trigger(emu):
    end = datetime.now(timezone.utc) + timedelta(minutes=10)
    with pytest.raises(TaskDeferred) as info:
        sensor(deferrable=True, start=T0, end=end, settle_lag=30, succeed_when_settled=True, timeout=3600).execute({})
    trigger = info.value.trigger
    assert trigger.not_before == pytest.approx(end.timestamp() + 30)
    assert trigger.settled_at == pytest.approx(end.timestamp() + 30)
    assert emu.stats["total"] == 0


def test_execute_complete_after_a_settled_empty_window(lines):
    result = {"count": 0, "min_count": 1, "gateway_id": GW, "start": "a", "end": "b", "matches": []}
    assert sensor(deferrable=True).execute_complete({}, {"status": "success", "result": result}) == result
    assert "window [a, b) of gateway 'my-gateway' has settled with 0 matching log(s)" in lines.text("info")


# ------------------------------------------------------------------ one check, one hook


async def test_the_sensor_and_its_trigger_make_the_same_hook_check(emu, monkeypatch, client_accessors):
    emu.add_logs(GW, logs(2) + logs(2, model="claude", offset_min=10))
    checks: list[tuple[Any, dict[str, Any]]] = []
    original = AIGatewayHook.check_logs

    def spy(hook: AIGatewayHook, query: Any, **kwargs: Any) -> dict[str, Any]:
        checks.append((query, {k: v for k, v in kwargs.items() if k != "time_left"}))
        return original(hook, query, **kwargs)

    monkeypatch.setattr(AIGatewayHook, "check_logs", spy)
    with pytest.raises(TaskDeferred) as info:
        sensor(deferrable=True, filters=GPT, start=T0, end=T1, min_count=3, max_matches=2).execute({})
    # the triggerer re-creates the trigger from its serialised kwargs
    _, kwargs = info.value.trigger.serialize()
    trigger = AIGatewayLogsTrigger(**json.loads(json.dumps(kwargs)))
    emu.add_logs(GW, logs(1, offset_min=5))
    events = [event.payload async for event in trigger.run()]
    assert [e["status"] for e in events] == ["success"] and events[0]["result"]["count"] == 3
    expected = LogQuery.of(filters=GPT, start=T0, end=T1)
    assert checks == [(expected, {"min_count": 3, "max_matches": 2})] * 2
    assert emu.stats["list"] == 2
    assert client_accessors == {"hooks/ai_gateway.py"}  # neither touches the client itself


def test_aigw_conn_id_is_templated_and_the_hook_uses_the_rendered_one(emu, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_RENDERED_AIGW", emu.airflow_conn_json(GW, max_retries=0))
    monkeypatch.delenv(ENV)
    emu.add_logs(GW, logs(1))
    task = sensor(aigw_conn_id="{{ params.conn }}", params={"conn": "rendered_aigw"})
    assert "aigw_conn_id" in task.template_fields
    task.render_template_fields({"params": task.params})
    assert task.poke({}).is_done is True
    assert task.hook.aigw_conn_id == "rendered_aigw" and emu.stats["total"] == 1
