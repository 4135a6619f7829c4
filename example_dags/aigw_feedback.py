"""Tag failed and expensive AI Gateway calls with feedback, score and metadata.

Every six hours, for the run's data interval: list the failed calls (``success = false``) and
the expensive ones (``cost > EXPENSIVE_USD``), ids only, then patch them — failed calls get a
thumbs-down (``feedback=-1``) and ``score=0``; expensive calls get ``metadata`` marking them
for review. The API's PATCH replaces a log's metadata (it does not merge), so only tag with
metadata what you do not need the original metadata of.
"""

from __future__ import annotations

import datetime as dt

from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_aigw.compat import DAG  # airflow.sdk on Airflow 3, fallbacks on 2.x
from airflow_provider_aigw.operators.ai_gateway import (
    AIGatewayListLogsOperator,
    AIGatewayPatchLogOperator,
)

EXPENSIVE_USD = 0.01
WINDOW = {"start": "{{ data_interval_start }}", "end": "{{ data_interval_end }}"}

with DAG(
    dag_id="aigw_feedback",
    description="Tag failed and expensive AI Gateway calls",
    schedule=CronDataIntervalTimetable("0 */6 * * *", timezone="UTC"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    tags=["cloudflare", "ai-gateway"],
    doc_md=__doc__,
) as dag:
    failed = AIGatewayListLogsOperator(
        task_id="list_failed",
        filters=[{"key": "success", "operator": "eq", "value": [False]}],
        fields=["id"],
        max_results=5000,
        **WINDOW,
    )
    expensive = AIGatewayListLogsOperator(
        task_id="list_expensive",
        filters=[{"key": "cost", "operator": "gt", "value": [EXPENSIVE_USD]}],
        fields=["id"],
        max_results=5000,
        **WINDOW,
    )
    AIGatewayPatchLogOperator(task_id="tag_failed", log_id=failed.output, feedback=-1, score=0)
    AIGatewayPatchLogOperator(
        task_id="tag_expensive",
        log_id=expensive.output,
        metadata={"review": "expensive", "tagged_by": "aigw_feedback", "run": "{{ run_id }}"},
    )
