"""Soak: a 1,000,000-log export (exact, flat memory) and 10 concurrent exports under one budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.export import iter_manifest_records

from .conftest import FIGURES

pytestmark = pytest.mark.soak

UTC = timezone.utc
GW = "my-gateway"
START = datetime(2026, 1, 9, tzinfo=UTC)
END = START + timedelta(days=1)
CONN_ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
MILLION = int(os.environ.get("AIGW_SOAK_LOGS", "1000000"))
#: Allowed RSS growth of the exporting process after its first 10% of the export.
FLAT_MIB = 40.0


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@pytest.fixture
def emulator_process(tmp_path: Path) -> Any:
    """The emulator as its own process (its 1M logs must not count in the exporter's RSS)."""
    ready = tmp_path / "emulator.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aigw.emulator",
            "--gateway",
            f"{GW}:{MILLION}",
            "--start",
            iso(START),
            "--end",
            iso(END),
            "--token",
            "aigw-soak-token",
            "--ready-file",
            str(ready),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not ready.exists():
        assert proc.poll() is None, "the emulator exited"
        assert time.monotonic() < deadline, "the emulator was not ready in 5 minutes"
        time.sleep(0.1)
    yield json.loads(ready.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def admin(info: dict[str, Any], path: str) -> Any:
    base = info["url"].rsplit("/client/v4", 1)[0]
    with urllib.request.urlopen(f"{base}/__emulator__/{path}", timeout=120) as response:
        return json.loads(response.read())


def test_export_of_a_million_logs_is_exact_with_flat_memory(emulator_process, tmp_path):
    info = emulator_process
    conn = {
        "conn_type": "cloudflare_ai_gateway",
        "host": info["url"],
        "password": info["token"],
        "extra": {"account_id": info["account_id"], "gateway_id": GW, "budget_requests": 10**6, "budget_period": 1},
    }
    env = {**os.environ, CONN_ENV: json.dumps(conn)}
    worker = Path(__file__).with_name("export_worker.py")
    args = {"destination": f"file://{tmp_path}", "start": iso(START), "end": iso(END)}
    done = subprocess.run(
        [sys.executable, str(worker), json.dumps(args)], env=env, capture_output=True, text=True, timeout=3600
    )
    assert done.returncode == 0, done.stderr[-5000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    truth = admin(info, f"gateways/{GW}/ids?start={iso(START)}&end={iso(END)}")["ids"]
    read_started = time.monotonic()
    ids = [r["id"] for r in iter_manifest_records(result["summary"], verify=True)]
    read_s = time.monotonic() - read_started
    assert len(truth) == MILLION
    assert not [i for i, n in Counter(ids).items() if n > 1]
    assert set(ids) == set(truth) and len(ids) == len(truth)
    stats = admin(info, "stats")
    assert stats["served_429"] == 0 and stats["served_5xx"] == 0

    samples = result["samples"]
    warm = next(rss for t, rss in samples if t >= 0.1 * result["elapsed_s"])
    growth = max(rss for t, rss in samples if t >= 0.1 * result["elapsed_s"]) - warm
    name = f"export of {MILLION:,} logs"
    FIGURES.extend(
        [
            (name, "wall time", f"{result['elapsed_s']:.1f} s ({MILLION / result['elapsed_s']:,.0f} logs/s)"),
            (name, "API requests", f"{result['requests']:,} (emulator saw {stats['total']:,}; 0 x 429, 0 x 5xx)"),
            (name, "files / bytes", f"{result['summary']['files']} / {result['summary']['bytes']:,}"),
            (name, "exporter peak RSS", f"{result['peak_rss_mib']:.0f} MiB"),
            (name, "RSS after 10% / growth after", f"{warm:.0f} MiB / {growth:+.1f} MiB"),
            (name, "read-back + verify (sha256)", f"{read_s:.1f} s, exact: {len(ids):,} ids, no duplicates"),
        ]
    )
    assert growth < FLAT_MIB, f"RSS grew by {growth:.1f} MiB after the first 10% of the export: {samples}"


def test_ten_concurrent_exports_in_one_process_share_one_budget_without_a_429(
    aigw_emulator_factory, monkeypatch, tmp_path
):
    from airflow_provider_aigw.budget import RequestBudget
    from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

    RequestBudget._registry.clear()
    gateways = [f"gw-{i}" for i in range(10)]
    per_gateway = 5_000  # 1 count, 100 pages and the empty one each: 1,020 requests in all
    limit, period = 100, 2.0  # the API's rule, and the connection's budget: the same numbers
    server = aigw_emulator_factory(gateways=dict.fromkeys(gateways, per_gateway), start=START, end=END)
    server.faults.update(rate_limit_requests=limit, rate_limit_period_s=period, lockout_s=period)
    monkeypatch.setenv(CONN_ENV, server.airflow_conn_json(gateways[0], budget_requests=limit, budget_period=period))
    server.reset_stats()

    def export(gateway: str) -> dict[str, Any]:
        op = AIGatewayExportLogsOperator(
            task_id=f"export_{gateway}", gateway_id=gateway, destination=f"file://{tmp_path}", start=START, end=END
        )
        summary: dict[str, Any] = op.execute({})
        return summary

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=len(gateways)) as pool:
        summaries = list(pool.map(export, gateways))
    elapsed = time.monotonic() - started

    assert server.stats["served_429"] == 0
    for gateway, summary in zip(gateways, summaries, strict=True):
        ids = [r["id"] for r in iter_manifest_records(summary, verify=True)]
        assert len(ids) == len(set(ids)) == per_gateway and set(ids) == set(server.ids(gateway, START, END))
    (budget,) = RequestBudget._registry.values()  # one budget for all ten
    total = server.stats["total"]
    assert total == len(gateways) * (1 + per_gateway // 50 + 1)
    assert budget.waited_seconds > 0  # it was what held them back
    name = "10 concurrent exports, one process"
    FIGURES.extend(
        [
            (name, "wall time", f"{elapsed:.1f} s for {len(gateways) * per_gateway:,} logs"),
            (name, "requests / rule", f"{total:,} under {limit} per {period:.0f} s ({total / elapsed:.1f}/s), 0 x 429"),
            (name, "budget waits (summed over threads)", f"{budget.waited_seconds:.1f} s"),
        ]
    )
