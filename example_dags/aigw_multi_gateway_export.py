"""Export several AI Gateways in parallel with dynamic task mapping, sharing the API budget.

One mapped export task per gateway in ``params.gateways`` (all under one Cloudflare account,
the ``cloudflare_ai_gateway_default`` connection), each writing its own
``gateway=<id>/...`` partitions under ``params.destination``, then one summary task.

Cloudflare allows 1,200 API requests per 5 minutes per user, across every process. Give the
connection ``"budget_storage": "redis://<your redis>:6379/0"`` (``pip install
'airflow-provider-aigw[redis]'``): every mapped export, on every worker, then draws on one
request budget (``budget_requests`` per ``budget_period``) and none of them trips the lock-out.
The ``aigw_api`` pool (``airflow pools set aigw_api 2 "Cloudflare AI Gateway API"``) only caps
how many exports run at once. Without Redis (``memory://``, one budget per process), set
``budget_requests`` to about 1000 / pool slots instead so the tasks together stay under the limit.
The same pattern maps over time slices of one long window (``expand_kwargs`` with
``start``/``end`` pairs) to backfill one gateway.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_aigw.compat import DAG, Param, task  # airflow.sdk on Airflow 3, fallbacks on 2.x
from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

POOL = "aigw_api"

with DAG(
    dag_id="aigw_multi_gateway_export",
    description="Export several AI Gateways with mapped tasks sharing one API budget",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    params={
        "gateways": Param(["my-gateway"], type="array", description="gateway ids to export"),
        "destination": Param(os.environ.get("AIGW_ARCHIVE_URL", "file:///tmp/aigw-archive"), type="string"),
    },
    tags=["cloudflare", "ai-gateway"],
    doc_md=__doc__,
) as dag:

    @task
    def gateways(params: dict[str, Any]) -> list[str]:
        """The gateway ids of this run."""
        return list(params["gateways"])

    exports = AIGatewayExportLogsOperator.partial(
        task_id="export_gateway",
        destination="{{ params.destination }}",
        pool=POOL,
    ).expand(gateway_id=gateways())

    @task
    def summarize(summaries: list[dict[str, Any]]) -> dict[str, int]:
        """Totals over all gateways."""
        return {
            "gateways": len(summaries),
            "count": sum(s["count"] for s in summaries),
            "files": sum(s["files"] for s in summaries),
            "bytes": sum(s["bytes"] for s in summaries),
        }

    summarize(exports.output)
