"""One request budget across processes (budget_storage=redis://), against a real redis-server.

The emulator enforces a scaled Cloudflare rule (100 requests per 5 s, then a 5 s lock-out): 20
requests/s, well below what four processes send on 2 cores, so the budget is what limits them.
Four separate processes export four gateways at once: through one ``redis://`` budget the
API never answers 429; with ``memory://`` (one budget per process) the same run trips the
lock-out, so the shared storage is what holds the line. How close the combined rate comes to
the rule is a wall-clock figure, so it is measured by ``make bench`` (benchmarks/shared_budget.py,
contender ``redis_export``), not asserted here.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.budget import RedisRequestBudget
from airflow_provider_aigw.exceptions import (
    AIGatewayBudgetStorageError,
    AIGatewayBudgetTimeoutError,
)
from airflow_provider_aigw.export import iter_manifest_records

from .redis_server import free_port

pytestmark = pytest.mark.integration

UTC = timezone.utc
START = datetime(2026, 1, 9, tzinfo=UTC)
END = START + timedelta(days=1)
CONN_ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
GATEWAYS = [f"gw-{i}" for i in range(4)]
PER_GATEWAY = 5_000  # 100 pages + 1 count request each: 404 requests in all
RULE = (100, 5.0)  # the emulator's rule, and the connection's budget: the same numbers
WORKER = Path(__file__).with_name("export_worker.py")


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def run_exports(server: Any, tmp_path: Path, **extra: Any) -> list[dict[str, Any]]:
    """Export every gateway in its own process at once; their JSON results."""
    conn = json.loads(server.airflow_conn_json(GATEWAYS[0], budget_requests=RULE[0], budget_period=RULE[1], **extra))
    env = {**os.environ, CONN_ENV: json.dumps(conn)}
    procs = []
    for gw in GATEWAYS:
        args = {"gateway_id": gw, "destination": f"file://{tmp_path}", "start": iso(START), "end": iso(END)}
        procs.append(
            subprocess.Popen(
                [sys.executable, str(WORKER), json.dumps(args)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
    for proc in procs:  # imports take seconds on a busy machine: start the exports together
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


class EmulatorProcess:
    """The emulator in its own process: it must not share the test process's GIL with whatever
    a long test session leaves running, or it cannot serve four exporters at the rule's rate."""

    def __init__(self, workdir: Path) -> None:
        ready = workdir / "emulator.json"
        args = [sys.executable, "-m", "airflow_provider_aigw.emulator", "--ready-file", str(ready)]
        for gateway in GATEWAYS:
            args += ["--gateway", f"{gateway}:{PER_GATEWAY}"]
        args += ["--start", iso(START), "--end", iso(END), "--rate-limit", f"{RULE[0]}/{RULE[1]}"]
        args += ["--lockout-s", str(RULE[1])]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while not ready.exists():
            assert self.proc.poll() is None, "the emulator exited"
            assert time.monotonic() < deadline, "the emulator was not ready in 5 minutes"
            time.sleep(0.05)
        self.info = json.loads(ready.read_text())

    def _admin(self, route: str) -> Any:
        base = self.info["url"].rsplit("/client/v4", 1)[0]
        with urllib.request.urlopen(f"{base}/__emulator__/{route}", timeout=60) as response:
            return json.loads(response.read())

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self._admin("stats"))

    def ids(self, gateway: str, start: datetime, end: datetime) -> list[str]:
        return list(self._admin(f"gateways/{gateway}/ids?start={iso(start)}&end={iso(end)}")["ids"])

    def airflow_conn_json(self, gateway: str, **extra: Any) -> str:
        return json.dumps(
            {
                "conn_type": "cloudflare_ai_gateway",
                "host": self.info["url"],
                "password": self.info["token"],
                "extra": {"account_id": self.info["account_id"], "gateway_id": gateway, **extra},
            }
        )

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


@pytest.fixture
def rule_emulator(tmp_path: Path) -> Any:
    server = EmulatorProcess(tmp_path)
    yield server
    server.stop()


def test_four_processes_share_one_redis_budget_without_a_429(rule_emulator, redis_server, tmp_path):
    results = run_exports(rule_emulator, tmp_path, budget_storage=redis_server.url)

    assert [r.get("error") for r in results] == [None] * 4
    assert rule_emulator.stats["served_429"] == 0
    for result in results:  # exact id sets per gateway
        exported = [row["id"] for row in iter_manifest_records(result["summary"], verify=True)]
        assert sorted(exported) == sorted(rule_emulator.ids(result["gateway_id"], START, END))
        assert len(exported) == PER_GATEWAY
    sent = sum(r["requests"] for r in results)
    # per export: the count, PER_GATEWAY / 50 pages and the empty page ending the walk
    assert sent == rule_emulator.stats["total"] == 4 * (1 + PER_GATEWAY // 50 + 1)
    assert len(rule_emulator.stats["requests"]) == sent


def test_the_same_run_with_memory_budgets_trips_the_lockout(rule_emulator, tmp_path):
    results = run_exports(rule_emulator, tmp_path, budget_storage="memory://", backoff_base=0.1, backoff_max=0.5)
    # Each process believes it owns the whole allowance: together they go over it.
    assert rule_emulator.stats["served_429"] > 0
    assert [r.get("error") for r in results] == [None] * 4  # they waited the lock-out out


def test_window_is_shared_by_separate_budget_clients(redis_server):
    one = RedisRequestBudget(redis_server.url, "user", 3, 60)
    two = RedisRequestBudget(redis_server.url, "user", 3, 60)
    other_user = RedisRequestBudget(redis_server.url, "another user", 3, 60)
    one.acquire()
    two.acquire()
    one.acquire()
    with pytest.raises(AIGatewayBudgetTimeoutError) as info:
        two.acquire(deadline=time.monotonic() + 1)
    assert 58 < info.value.retry_after <= 60
    other_user.acquire(deadline=time.monotonic())  # another Cloudflare user: another window
    assert (one.acquired, two.acquired, other_user.acquired) == (2, 1, 1)


def test_the_answer_re_stamps_the_request_in_the_shared_window(redis_server):
    import redis

    budget = RedisRequestBudget(redis_server.url, "user", 5, 60)
    ticket = budget.acquire()
    key = next(iter(redis.Redis.from_url(redis_server.url).scan_iter("aigw:budget:*:window")))
    store = redis.Redis.from_url(redis_server.url)
    sent_at = store.zscore(key, ticket)
    budget.answered(ticket)
    answered_at = store.zscore(key, ticket)
    assert sent_at is not None and answered_at is not None and answered_at > sent_at
    budget.answered("not-a-ticket")  # unknown (expired) tickets are never added
    assert store.zcard(key) == 1


def test_a_429_pauses_every_process_of_the_shared_budget(redis_server):
    seen_429 = RedisRequestBudget(redis_server.url, "user", 100, 300)
    elsewhere = RedisRequestBudget(redis_server.url, "user", 100, 300)
    seen_429.pause_for(None)  # no Retry-After: the default pause (60 s)
    with pytest.raises(AIGatewayBudgetTimeoutError) as info:
        elsewhere.acquire(deadline=time.monotonic() + 30)
    assert 55 < info.value.retry_after <= 60
    seen_429.pause_for(5)  # a shorter pause never shortens a longer one
    with pytest.raises(AIGatewayBudgetTimeoutError):
        elsewhere.acquire(deadline=time.monotonic() + 30)
    assert elsewhere.acquired == 0


def export_operator(gateway: str, tmp_path: Path) -> Any:
    from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

    return AIGatewayExportLogsOperator(
        task_id="export", gateway_id=gateway, destination=f"file://{tmp_path}", start=START, end=END
    )


def manifests(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.json") if "_manifests" in p.parts]


def test_storage_down_at_start_is_a_clear_error_before_any_request(rule_emulator, monkeypatch, tmp_path):
    storage = f"redis://:hunter2-storage-secret@127.0.0.1:{free_port()}/0"
    monkeypatch.setenv(CONN_ENV, rule_emulator.airflow_conn_json(GATEWAYS[0], budget_storage=storage))
    with pytest.raises(AIGatewayBudgetStorageError) as info:
        export_operator(GATEWAYS[0], tmp_path).execute({})
    message = str(info.value)
    assert "budget_storage" in message and "unreachable" in message and "no API request was sent" in message
    assert "hunter2" not in message and "hunter2" not in repr(info.value)
    assert rule_emulator.stats["total"] == 0
    assert manifests(tmp_path) == []


def test_storage_killed_mid_run_fails_cleanly_within_the_deadline(rule_emulator, redis_server, monkeypatch, tmp_path):
    monkeypatch.setenv(
        CONN_ENV,
        rule_emulator.airflow_conn_json(
            GATEWAYS[0], budget_storage=redis_server.url, budget_requests=RULE[0], budget_period=RULE[1],
            retry_deadline=3,
        ),
    )  # fmt: skip
    op = export_operator(GATEWAYS[0], tmp_path)

    def kill_redis_part_way() -> None:  # the export runs in the main thread (Airflow 2 insists)
        deadline = time.monotonic() + 120
        while rule_emulator.stats["total"] < 30 and time.monotonic() < deadline:
            time.sleep(0.01)
        redis_server.kill()

    killer = threading.Thread(target=kill_redis_part_way)
    killer.start()
    try:
        with pytest.raises(AIGatewayBudgetStorageError) as info:
            op.execute({})
    finally:
        killer.join(120)
    assert "budget_storage" in str(info.value) and "lost the Redis server" in str(info.value)
    total = rule_emulator.stats["total"]
    assert 30 <= total < PER_GATEWAY // 50 + 1  # stopped part-way, sending nothing unbudgeted
    assert rule_emulator.stats["served_429"] == 0
    assert manifests(tmp_path) == []  # no manifest: the window reads as not exported


def test_budget_wait_in_the_trigger_counts_against_its_deadline(rule_emulator, redis_server, monkeypatch):
    from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
    from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsTrigger

    monkeypatch.setenv(CONN_ENV, rule_emulator.airflow_conn_json(GATEWAYS[0], budget_storage=redis_server.url))
    AIGatewayHook().client.budget.pause_for(120)  # another worker saw a 429 a moment ago
    trigger = AIGatewayLogsTrigger(gateway_id=GATEWAYS[0], start=START, end=END, deadline=time.time() + 3)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.05)

    async def first_event() -> Any:
        tick = asyncio.ensure_future(ticker())
        try:
            return await asyncio.wait_for(anext(aiter(trigger.run())), timeout=60)
        finally:
            tick.cancel()

    event = asyncio.run(first_event())
    # At the deadline the API was still out of reach (the budget was paused): an error, never
    # mistaken for a window without logs; reported at the deadline, not after the 120 s pause.
    assert event.payload["status"] == "error", event.payload
    assert event.payload["error_type"] == "AIGatewayBudgetTimeoutError"
    assert rule_emulator.stats["total"] == 0  # the pause held; the deadline ended the wait
    assert ticks > 5  # the event loop kept running meanwhile
