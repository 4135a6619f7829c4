"""Test-only DAG of the reliability suite: one export of a fixed window, small parts.

Run as a real worker (``airflow dags test aigw_reliability_export``) by
``tests/reliability/test_worker_kill.py``, which SIGKILLs it mid-export. The destination
comes from ``AIGW_RELIABILITY_DEST``.
"""

from __future__ import annotations

import datetime as dt
import os

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined]

from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

with DAG(
    dag_id="aigw_reliability_export",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["test"],
):
    AIGatewayExportLogsOperator(
        task_id="export",
        destination=os.environ.get("AIGW_RELIABILITY_DEST", "file:///tmp/aigw-reliability"),
        start="2026-01-09T00:00:00Z",
        end="2026-01-10T00:00:00Z",
        rows_per_part=40,
        retries=0,
    )
