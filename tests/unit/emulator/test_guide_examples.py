"""The emulator guide's examples (docs/emulator.rst includes them by their START/END markers).

They are written as a user would test their own tasks: only the installed pytest fixtures,
the provider's public classes and the emulator's ground truth.
"""

from __future__ import annotations

# [START howto_emulator_imports]
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.operators.ai_gateway import AIGatewayListLogsOperator

# [END howto_emulator_imports]


# [START howto_emulator_fixture]
def test_list_failed_finds_exactly_the_failed_calls(aigw_emulator: Any) -> None:
    # aigw_emulator: gateway "my-gateway" with 1,000 logs over the last 3 days, and
    # AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT pointing at it.
    task = AIGatewayListLogsOperator(
        task_id="list_failed",
        filters=[{"key": "success", "operator": "eq", "value": [False]}],
        fields=["id"],
        max_results=1000,
    )
    listed = {log["id"] for log in task.execute(context={})}

    # Ground truth: what the emulator stores, not what the task reported.
    failed = {log["id"] for log in aigw_emulator.logs("my-gateway") if not log["success"]}
    assert failed and listed == failed
    assert aigw_emulator.stats.list == -(-len(failed) // 50)  # one request per 50 logs


# [END howto_emulator_fixture]


# [START howto_emulator_factory_faults]
DAY_START = datetime(2026, 11, 26, tzinfo=timezone.utc)
DAY_END = datetime(2026, 11, 27, tzinfo=timezone.utc)


def test_listing_survives_a_flaky_api(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault settings (error_rate, drop_rate, latency_ms, rate_limit_requests, ...) go straight
    # to the factory; seed makes the logs and the faults the same on every run.
    emu = aigw_emulator_factory(gateways={"gw-a": 500}, start=DAY_START, end=DAY_END, error_rate=0.2, seed=7)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT",
        emu.airflow_conn_json("gw-a", backoff_base=0.01, backoff_max=0.05),  # quick retries
    )

    ids = [log["id"] for log in AIGatewayHook().iter_logs(start=DAY_START, end=DAY_END)]

    assert ids == emu.ids("gw-a", DAY_START, DAY_END)  # every log once, oldest first
    assert emu.stats.served_5xx > 0  # the retries were needed


# [END howto_emulator_factory_faults]
