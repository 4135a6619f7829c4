# ruff: noqa: RUF001 - typographic signs in report text are intended
"""Shared request budget: N worker processes through one budget vs the bound of the API's rule.

The emulator enforces a scaled Cloudflare rule (:data:`RULE`, sliding window, lock-out) with
uneven arrival times (latency jitter). N worker processes list the same gateway at once, each
through its own client, started together; every contender gives each worker the rule's numbers:

* ``redis``: ``budget_storage=redis://`` (:class:`RedisRequestBudget`: a Redis sorted set,
  each request re-scored when its answer arrives);
* ``limits``: the ``limits`` library's moving window on the same Redis, which counts a request
  when it is sent (the usual library approach), at the rule's numbers and with a 10% margin;
* ``memory``: ``memory://``, one budget per process (what several workers had before);
* ``redis_export``: ``budget_storage=redis://`` again, each worker an
  ``AIGatewayExportLogsOperator`` run as ``tests/shared_budget`` runs it (the count, the pages,
  the empty page ending the walk, the files written). The test asserts that run's exact ids and
  requests and no 429; its rate, a wall-clock figure, is reported here.

Reported per contender: requests and 429s at the API, and the time from the API's first request
to its last against the least time the rule allows for that many requests.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.emulator import WINDOW_END, WINDOW_START, admin, set_faults

#: Integer seconds: the ``limits`` library's windows are whole seconds. The issue's trap was
#: found at this scale (60 per 3 s).
RULE = (60, 3.0)
WORKERS = 4
GATEWAY = "g5k"  # 5,000 logs: 100 list requests per worker
JITTER = {"latency_ms": 2.0, "latency_jitter_ms": 20.0}
CONTENDERS = {
    "redis": "budget_storage=redis:// (re-scored at the answer)",
    "limits": "limits MovingWindow on Redis, counted at send",
    "limits_margin": "limits MovingWindow on Redis, counted at send, 10% margin",
    "memory": "budget_storage=memory:// (one budget per process)",
    "redis_export": "budget_storage=redis://, each worker an export operator",
}


class LimitsBudget:
    """The ``limits`` library's Redis moving window behind the client's budget interface."""

    def __init__(self, url: str, max_requests: int, period: float) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import RedisStorage
        from limits.strategies import MovingWindowRateLimiter

        self.max_requests, self.period = max_requests, period
        self._item = RateLimitItemPerSecond(max_requests, int(period))
        self._limiter = MovingWindowRateLimiter(RedisStorage(url))
        self.acquired, self.waited_seconds = 0, 0.0

    def clock(self) -> float:
        return time.monotonic()

    def acquire(self, deadline: float | None = None) -> int:
        while not self._limiter.hit(self._item, "bench"):
            reset = self._limiter.get_window_stats(self._item, "bench").reset_time
            wait = max(0.001, reset - time.time())
            self.waited_seconds += wait
            time.sleep(wait)
        self.acquired += 1
        return self.acquired

    def answered(self, ticket: Any) -> None:
        """Nothing to do: the library has no way to move a hit to the time of the answer."""

    def pause_for(self, seconds: float | None) -> None:
        time.sleep(0)  # no shared pause either


def worker(spec: dict[str, Any]) -> None:
    """One process: build the client, say ready, wait for the go line, list the gateway."""
    from airflow_provider_aigw.budget import RedisRequestBudget, RequestBudget
    from airflow_provider_aigw.client import AIGatewayClient
    from airflow_provider_aigw.query import LogQuery

    emu, contender = spec["emulator"], spec["contender"]
    limit, period = spec["rule"]
    if contender == "redis_export":
        export_worker(spec)
        return
    budget: Any
    if contender == "redis":
        budget = RedisRequestBudget(spec["redis"], "bench-user", limit, period)
    elif contender.startswith("limits"):
        budget = LimitsBudget(spec["redis"], math.floor(limit * (0.9 if contender == "limits_margin" else 1)), period)
    else:
        budget = RequestBudget(limit, period)
    client = AIGatewayClient(
        emu["account_id"], api_token=emu["token"], base_url=emu["url"], budget=budget, backoff_base=0.1
    )
    print("ready", flush=True)
    sys.stdin.readline()
    started = time.time()
    count = sum(1 for _ in client.iter_logs(LogQuery.of(gateway_id=GATEWAY, start=WINDOW_START, end=WINDOW_END)))
    print(json.dumps({"count": count, "requests": client.requests_sent, "elapsed_s": time.time() - started}))


def export_worker(spec: dict[str, Any]) -> None:
    """One process exporting the gateway with the export operator, through the Redis budget."""
    import os

    emu = spec["emulator"]
    limit, period = spec["rule"]
    extra = {"account_id": emu["account_id"], "budget_storage": spec["redis"]}
    extra.update(budget_requests=limit, budget_period=period, backoff_base=0.1)
    conn = {"conn_type": "cloudflare_ai_gateway", "host": emu["url"], "password": emu["token"], "extra": extra}
    os.environ["AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"] = json.dumps(conn)
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

    with tempfile.TemporaryDirectory(prefix="aigw-bench-shared-export-") as out:
        op = AIGatewayExportLogsOperator(
            task_id="shared_budget_export",
            gateway_id=GATEWAY,
            destination=Path(out).as_uri(),
            start=WINDOW_START,
            end=WINDOW_END,
        )
        print("ready", flush=True)
        sys.stdin.readline()
        started = time.time()
        summary = op.execute({})  # type: ignore[arg-type]
        elapsed = time.time() - started
    print(json.dumps({"count": summary["count"], "requests": op.hook.client.requests_sent, "elapsed_s": elapsed}))


def bound_s(requests: int, rule: tuple[int, float]) -> float:
    return ((requests - 1) // rule[0]) * rule[1]


def run_contender(emu_spec: dict[str, Any], base_url: str, redis_url: str, contender: str, n: int) -> dict[str, Any]:
    import redis

    redis.Redis.from_url(redis_url).flushall()
    set_faults(base_url, rate_limit_requests=RULE[0], rate_limit_period_s=RULE[1], lockout_s=RULE[1], **JITTER)
    spec = {"emulator": emu_spec, "contender": contender, "rule": list(RULE), "redis": redis_url}
    root = Path(__file__).resolve().parent.parent
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.shared_budget", "--worker", json.dumps(spec)],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [json.loads(p.communicate(timeout=900)[0].strip().splitlines()[-1]) for p in procs]
    stats = admin(base_url, "stats")
    arrivals = sorted(r["at"] for r in stats["requests"])
    span = arrivals[-1] - arrivals[0]
    total = stats["total"]
    ok = total - stats["served_429"]
    return {
        "contender": contender,
        "workers": n,
        "requests": total,
        "served_429": stats["served_429"],
        "counts": [o["count"] for o in outs],
        "api_span_s": span,
        "bound_s": bound_s(ok, RULE),
        "share": bound_s(ok, RULE) / span if span else float("nan"),
    }


def scenario(emu: Any, workers: int = WORKERS) -> list[dict[str, Any]]:
    """Every contender once with ``workers`` processes; needs ``redis-server`` on PATH."""
    from tests.shared_budget.redis_server import RedisServer

    server = RedisServer(Path(tempfile.mkdtemp(prefix="aigw-bench-redis-"))).start()
    rows = []
    try:
        for contender in CONTENDERS:
            row = run_contender(emu.spec(), emu.base_url, server.url, contender, workers)
            print(
                f"  [shared] {contender}: {row['requests']} requests, {row['served_429']} x 429, "
                f"{row['api_span_s']:.2f} s vs bound {row['bound_s']:.2f} s ({row['share']:.0%})",
                flush=True,
            )
            rows.append(row)
    finally:
        server.kill()
    return rows


def report(rows: list[dict[str, Any]]) -> list[str]:
    """The RESULTS.md section."""
    n = rows[0]["workers"]
    lines = [
        f"## Shared budget: {n} worker processes through one budget vs the bound",
        "",
        f"The emulator enforces {RULE[0]} requests per {RULE[1]:g} s with lock-out, arrivals uneven "
        f"({JITTER['latency_ms']:g} ms + up to {JITTER['latency_jitter_ms']:g} ms latency); {n} processes, "
        f"started together, each list gateway {GATEWAY} (100 requests; with the export operator 102: the "
        "count, 100 pages and the empty page ending the walk) with the rule's numbers as their "
        "budget. Bound: the least time the rule allows for the requests answered without 429, "
        f"(⌈R/{RULE[0]}⌉−1)×{RULE[1]:g} s; time measured at the API, first request to last.",
        "",
        "| contender | requests at the API | 429s | logs per worker | API time s | bound s | % of bound |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {CONTENDERS[r['contender']]} | {r['requests']} | {r['served_429']} | "
            f"{'/'.join(f'{c:,}' for c in r['counts'])} | {r['api_span_s']:.2f} | {r['bound_s']:.2f} | "
            f"{r['share']:.0%} |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(json.loads(sys.argv[2]))
