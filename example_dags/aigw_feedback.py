"""Tag failed and expensive AI Gateway calls with feedback, score and metadata.

Every six hours: list the failed calls (``success = false``) and the expensive ones
(``cost > EXPENSIVE_USD``), ids only, then patch them — failed calls get a thumbs-down
(``feedback=-1``) and ``score=0``; expensive calls get ``metadata`` marking them for review.
The API's PATCH replaces a log's metadata (it does not merge), so only tag with metadata what
you do not need the original metadata of.

Logs become listable seconds to a minute after the call they record, so a run does not list
up to the very end of its data interval: it lists the six hours that ended the settle lag
(``params.settle_lag_minutes``, 5) earlier, ``[data_interval_start - lag, data_interval_end - lag)``. Consecutive
runs still cover every instant exactly once. Failed tasks are retried (``default_args``);
``notify_failure`` is the hook point for your alerting. ``catchup=False``: tagging is a review
aid, and a paused DAG does not tag the windows it missed (set ``catchup=True`` if it should).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_aigw.compat import DAG, Param  # airflow.sdk on Airflow 3, fallbacks on 2.x
from airflow_provider_aigw.operators.ai_gateway import (
    DEFAULT_SETTLE_LAG,
    AIGatewayListLogsOperator,
    AIGatewayPatchLogOperator,
)

log = logging.getLogger(__name__)

EXPENSIVE_USD = 0.01
#: The listed window: the data interval moved back by the settle lag (``params.settle_lag_minutes``).
WINDOW = {
    "start": "{{ data_interval_start - macros.timedelta(minutes=params.settle_lag_minutes) }}",
    "end": "{{ data_interval_end - macros.timedelta(minutes=params.settle_lag_minutes) }}",
}


def notify_failure(context: Any) -> None:
    """Called once a task has failed for good (after its retries): plug your alerting in here."""
    ti = context["ti"]
    log.error(
        "AI Gateway tagging failed: %s.%s, run %s: %s", ti.dag_id, ti.task_id, ti.run_id, context.get("exception")
    )


default_args = {
    "retries": 2,
    "retry_delay": dt.timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "execution_timeout": dt.timedelta(hours=1),
    "on_failure_callback": notify_failure,
}

with DAG(
    dag_id="aigw_feedback",
    description="Tag failed and expensive AI Gateway calls",
    schedule=CronDataIntervalTimetable("0 */6 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=dt.timedelta(hours=5),
    default_args=default_args,
    on_failure_callback=notify_failure,
    params={"settle_lag_minutes": Param(DEFAULT_SETTLE_LAG.total_seconds() / 60, type="number", minimum=0)},
    tags=["cloudflare", "ai-gateway"],
    doc_md=__doc__,
) as dag:
    # [START howto_operator_aigw_list_logs]
    failed = AIGatewayListLogsOperator(
        task_id="list_failed",
        filters=[{"key": "success", "operator": "eq", "value": [False]}],
        fields=["id"],
        max_results=5000,
        **WINDOW,
    )
    # [END howto_operator_aigw_list_logs]
    expensive = AIGatewayListLogsOperator(
        task_id="list_expensive",
        filters=[{"key": "cost", "operator": "gt", "value": [EXPENSIVE_USD]}],
        fields=["id"],
        max_results=5000,
        **WINDOW,
    )
    # [START howto_operator_aigw_patch_log]
    AIGatewayPatchLogOperator(task_id="tag_failed", log_id=failed.output, feedback=-1, score=0)
    AIGatewayPatchLogOperator(
        task_id="tag_expensive",
        log_id=expensive.output,
        metadata={"review": "expensive", "tagged_by": "aigw_feedback", "run": "{{ run_id }}"},
    )
    # [END howto_operator_aigw_patch_log]
