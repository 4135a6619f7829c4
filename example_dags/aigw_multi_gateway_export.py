"""Export several AI Gateways in parallel with dynamic task mapping, sharing the API budget.

Each day, once the day has settled (logs are listable only some time after the request, so
the run first waits ``DEFAULT_SETTLE_LAG``, 5 minutes, past the end of its data interval), one
mapped export task per gateway in ``params.gateways`` (all under one Cloudflare account, the
``cloudflare_ai_gateway_default`` connection) writes its own ``gateway=<id>/...`` partitions
under ``params.destination``; then one summary task adds them up.

Cloudflare allows 1,200 API requests per 5 minutes per user, across every process. Give the
connection ``"budget_storage": "redis://<your redis>:6379/0"`` (``pip install
'airflow-provider-aigw[redis]'``): every mapped export, on every worker, then draws on one
request budget (``budget_requests`` per ``budget_period``) and none of them trips the lock-out.
Without Redis (``memory://``, one budget per process), set ``budget_requests`` to about
1000 / ``MAX_PARALLEL_EXPORTS`` so the tasks together stay under the limit.
``max_active_tis_per_dagrun`` caps how many exports of a run run at once. No pool is needed, so
a fresh Airflow runs this DAG with nothing created by hand. To cap exports across several DAGs,
create a pool first (``airflow pools set aigw_api 2 "Cloudflare AI Gateway API"``) and add
``pool="aigw_api"`` to the export: Airflow never schedules a task whose pool does not exist,
and ``dagrun_timeout`` then fails the run (calling ``notify_failure``) instead of leaving it
waiting. The same pattern maps over time slices of one long window (``expand_kwargs`` with
``start``/``end`` pairs) to backfill one gateway.

Start and catch-up as in ``aigw_archive_logs`` (``AIGW_ARCHIVE_START_DATE``, environment): unset,
unpausing runs yesterday (UTC) at once and no older day (``catchup=False``); set to a UTC day
``YYYY-MM-DD``, every day since runs, oldest first, and a day missed later is run when the
scheduler is back (``catchup=True``). A gateway without logs that day gets an empty manifest.
Failed exports are retried (``default_args``); ``notify_failure`` is the hook point for your
alerting.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_aigw.compat import (  # airflow.sdk on Airflow 3, fallbacks on 2.x
    DAG,
    Param,
    TimeDeltaSensor,
    task,
)
from airflow_provider_aigw.examples import archive_start
from airflow_provider_aigw.operators.ai_gateway import DEFAULT_SETTLE_LAG, AIGatewayExportLogsOperator

log = logging.getLogger(__name__)

MAX_PARALLEL_EXPORTS = 2
#: The first day to export and whether missed days are caught up: AIGW_ARCHIVE_START_DATE.
START_DATE, CATCHUP = archive_start()


def notify_failure(context: Any) -> None:
    """Called once a task has failed for good (after its retries): plug your alerting in here."""
    ti = context["ti"]
    log.error("AI Gateway export failed: %s.%s, run %s: %s", ti.dag_id, ti.task_id, ti.run_id, context.get("exception"))


default_args = {
    # Here too, so that `airflow dags trigger` refuses a logical date before the start.
    "start_date": START_DATE,
    "retries": 3,
    "retry_delay": dt.timedelta(minutes=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": dt.timedelta(hours=1),
    "execution_timeout": dt.timedelta(hours=4),
    "on_failure_callback": notify_failure,
}

with DAG(
    dag_id="aigw_multi_gateway_export",
    description="Export several AI Gateways with mapped tasks sharing one API budget",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START_DATE,
    catchup=CATCHUP,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=20),
    default_args=default_args,
    on_failure_callback=notify_failure,
    params={
        "gateways": Param(["my-gateway"], type="array", description="gateway ids to export"),
        "destination": Param(os.environ.get("AIGW_ARCHIVE_URL", "file:///tmp/aigw-archive"), type="string"),
    },
    tags=["cloudflare", "ai-gateway"],
    doc_md=__doc__,
) as dag:
    # The exports refuse a window that ended less than the settle lag ago: wait for it first,
    # without holding a worker slot.
    settled = TimeDeltaSensor(
        task_id="wait_for_window_to_settle",
        delta=DEFAULT_SETTLE_LAG,
        mode="reschedule",
        poke_interval=60,
        timeout=3600,
    )

    @task
    def gateways(params: dict[str, Any]) -> list[str]:
        """The gateway ids of this run."""
        return list(params["gateways"])

    # [START howto_operator_aigw_export_logs_mapped]
    exports = AIGatewayExportLogsOperator.partial(
        task_id="export_gateway",
        destination="{{ params.destination }}",
        max_active_tis_per_dagrun=MAX_PARALLEL_EXPORTS,
    ).expand(gateway_id=gateways())
    # [END howto_operator_aigw_export_logs_mapped]

    @task
    def summarize(summaries: list[dict[str, Any]]) -> dict[str, int]:
        """Totals over all gateways."""
        return {
            "gateways": len(summaries),
            "count": sum(s["count"] for s in summaries),
            "files": sum(s["files"] for s in summaries),
            "bytes": sum(s["bytes"] for s in summaries),
        }

    settled >> exports
    summarize(exports.output)
