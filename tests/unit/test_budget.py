"""The process-wide request budget (memory://): no sleeping under the lock, deadlines, 429 pauses."""

from __future__ import annotations

import json
import threading

import pytest

from airflow_provider_aigw.budget import DEFAULT_429_PAUSE, RequestBudget, shared_budget, validate_budget_storage
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.exceptions import (
    AIGatewayBudgetTimeoutError,
    AIGatewayConfigError,
    AIGatewayInputError,
    AIGatewayRateLimitError,
)
from tests.fake_clock import FakeClock

ACCOUNT = "0123456789abcdef0123456789abcdef"
BASE = "https://api.example.test/client/v4"
LOGS = f"{BASE}/accounts/{ACCOUNT}/ai-gateway/gateways/gw/logs"
EMPTY = {"json": {"success": True, "result": [], "result_info": {"total_count": 0}}}


@pytest.fixture
def fake() -> FakeClock:
    return FakeClock()


def test_a_waiting_acquire_does_not_hold_the_lock(fake):
    """answered() and pause_for() go through while another thread waits for budget."""
    sleeping, wake = threading.Event(), threading.Event()

    def sleep(seconds: float) -> None:
        sleeping.set()
        wake.wait(60)
        fake.sleep(seconds)

    budget = RequestBudget(1, 10, clock=fake.time, sleep=sleep)
    first = budget.acquire()
    waiter = threading.Thread(target=budget.acquire)
    waiter.start()
    assert sleeping.wait(30)
    other_thread_done = threading.Event()

    def other() -> None:
        budget.answered(first, at=fake.now + 1)
        budget.pause_for(1)
        other_thread_done.set()

    threading.Thread(target=other).start()
    try:
        assert other_thread_done.wait(30), "answered()/pause_for() were blocked by a waiting acquire()"
    finally:
        wake.set()
        waiter.join(30)
    assert budget.acquired == 2


def test_real_waits_use_the_condition_and_release_the_lock():
    budget = RequestBudget(1, 0.2)
    first = budget.acquire()
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire()))
    waiter.start()
    budget.answered(first)  # would block for the whole wait if acquire() slept under the lock
    waiter.join(30)
    assert got == [1] and budget.waited_seconds > 0


def test_acquire_refuses_at_once_when_the_next_slot_is_after_the_deadline(fake):
    budget = RequestBudget(2, 10, clock=fake.time, sleep=fake.sleep)
    budget.acquire()
    budget.acquire()
    with pytest.raises(AIGatewayBudgetTimeoutError, match="no room before the call's deadline") as info:
        budget.acquire(deadline=fake.now + 9.5)
    assert info.value.retry_after == 10
    assert isinstance(info.value, AIGatewayRateLimitError)
    assert fake.sleeps == [] and budget.acquired == 2
    budget.acquire(deadline=fake.now + 10)  # fits exactly
    assert fake.sleeps == [10] and budget.acquired == 3


def test_a_pause_counts_against_the_deadline(fake):
    budget = RequestBudget(100, 10, clock=fake.time, sleep=fake.sleep)
    budget.pause_for(30)
    with pytest.raises(AIGatewayBudgetTimeoutError):
        budget.acquire(deadline=fake.now + 29)
    assert fake.sleeps == []


def test_pause_without_retry_after_uses_the_default_capped_at_the_period(fake):
    long = RequestBudget(100, 300, clock=fake.time, sleep=fake.sleep)
    long.pause_for(None)
    long.acquire()
    short = RequestBudget(100, 2, clock=fake.time, sleep=fake.sleep)
    short.pause_for(None)
    short.acquire()
    assert fake.sleeps == [DEFAULT_429_PAUSE, 2]


def make_client(fake: FakeClock, budget: RequestBudget, **kwargs) -> AIGatewayClient:
    return AIGatewayClient(
        ACCOUNT, api_token="tok", base_url=BASE, gateway_id="gw", budget=budget,
        sleep=fake.sleep, clock=fake.time, **kwargs,
    )  # fmt: skip


def test_a_429_without_retry_after_pauses_every_client_of_the_budget(requests_mock, fake):
    budget = RequestBudget(1000, 300, clock=fake.time, sleep=fake.sleep)
    one, two = make_client(fake, budget), make_client(fake, budget)
    requests_mock.get(LOGS, [{"status_code": 429, "json": {"success": False, "errors": []}}, EMPTY, EMPTY])
    paused_at = fake.now
    assert one.count_logs() == 0
    assert fake.now - paused_at >= DEFAULT_429_PAUSE  # its own retry waited the pause
    assert two.count_logs() == 0
    assert requests_mock.call_count == 3


def test_the_429_pause_reaches_a_client_that_did_not_see_the_429(fake):
    budget = RequestBudget(1000, 300, clock=fake.time, sleep=fake.sleep)
    budget.pause_for(None)  # as the client does on a 429 without Retry-After
    other = make_client(fake, budget, retry_deadline=30)
    with pytest.raises(AIGatewayBudgetTimeoutError):
        other.count_logs()
    assert other.requests_sent == 0


def test_the_call_deadline_covers_waiting_for_budget(requests_mock, fake):
    budget = RequestBudget(1, 300, clock=fake.time, sleep=fake.sleep)
    client = make_client(fake, budget, retry_deadline=60)
    requests_mock.get(LOGS, [EMPTY])
    client.count_logs()
    with pytest.raises(AIGatewayBudgetTimeoutError, match=r"next request may go in 300\.0s, 60\.0s are left"):
        client.count_logs()
    assert requests_mock.call_count == 1 and fake.sleeps == []


@pytest.mark.parametrize(
    "storage",
    ["redis", "http://localhost:6379", "memcached://x:1", "redis:///0", "file:///tmp/budget", 5],
)
def test_bad_budget_storage_is_refused_naming_the_extra(storage):
    with pytest.raises(AIGatewayConfigError, match="budget_storage"):
        validate_budget_storage(storage)


def test_bad_budget_storage_error_never_shows_a_password():
    with pytest.raises(AIGatewayConfigError) as info:
        validate_budget_storage("redis://:hunter2-secret@/0")
    assert "hunter2" not in str(info.value)


def test_memory_storage_is_the_process_budget():
    assert shared_budget("memory://", "k", 10, 60) is RequestBudget.shared("k", 10, 60)
    assert shared_budget("", "k", 10, 60) is RequestBudget.shared("k", 10, 60)


def test_redis_storage_without_the_extra_says_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(AIGatewayConfigError, match=r"pip install 'airflow-provider-aigw\[redis\]'"):
        shared_budget("redis://127.0.0.1:1/0", "k", 10, 60)


def test_the_hook_reads_budget_storage_from_the_connection(monkeypatch):
    from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook

    conn = {"conn_type": "cloudflare_ai_gateway", "password": "tok", "host": BASE, "extra": {"account_id": ACCOUNT}}
    monkeypatch.setenv("AIRFLOW_CONN_AIGW_MEM", json.dumps({**conn, "extra": {**conn["extra"], "budget_requests": 7}}))
    assert AIGatewayHook("aigw_mem").client.budget is RequestBudget.shared(f"{BASE}|{fingerprint('tok')}", 7, 300)
    bad = {**conn, "extra": {**conn["extra"], "budget_storage": "redis:/no-host"}}
    monkeypatch.setenv("AIRFLOW_CONN_AIGW_BAD", json.dumps(bad))
    with pytest.raises(AIGatewayConfigError, match="budget_storage in connection 'aigw_bad'"):
        AIGatewayHook("aigw_bad").client  # noqa: B018


def fingerprint(secret: str) -> str:
    import hashlib

    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def test_budget_allows_max_requests_per_sliding_period(fake):
    budget = RequestBudget(3, 10, clock=fake.time, sleep=fake.sleep)
    for _ in range(3):  # at t=0, 2, 4
        budget.acquire()
        fake.now += 2
    assert fake.sleeps == []
    fake.now -= 2
    budget.acquire()  # t=4: waits until the first request leaves the window at t=10
    assert fake.sleeps == [6]
    budget.acquire()  # t=10: waits until the second one leaves at t=12
    assert fake.sleeps == [6, 2]
    assert budget.acquired == 5
    assert budget.waited_seconds == 8


def test_budget_pause(fake):
    budget = RequestBudget(100, 10, clock=fake.time, sleep=fake.sleep)
    budget.pause_for(30)
    budget.acquire()
    assert fake.sleeps == [30]


def test_shared_budget_is_one_per_credentials_and_limits():
    a = RequestBudget.shared("k1", 10, 60)
    assert RequestBudget.shared("k1", 10, 60) is a
    assert RequestBudget.shared("k2", 10, 60) is not a


@pytest.mark.parametrize(("requests_", "period"), [(0, 10), (10, 0), (True, 10)])
def test_bad_budget(requests_, period):
    with pytest.raises(AIGatewayInputError, match="budget_"):
        RequestBudget(requests_, period)
