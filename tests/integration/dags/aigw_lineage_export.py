"""Test-only DAG: one export run by ``airflow dags test`` with OpenLineage enabled
(``tests/integration/test_openlineage.py``). The destination comes from ``AIGW_LINEAGE_DEST``."""

from __future__ import annotations

import datetime as dt
import os

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.x
    from airflow import DAG  # type: ignore[no-redef,attr-defined]

from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

with DAG(
    dag_id="aigw_lineage_export",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["test"],
):
    AIGatewayExportLogsOperator(
        task_id="export",
        destination=os.environ.get("AIGW_LINEAGE_DEST", "file:///tmp/aigw-lineage"),
        start="2026-01-09T00:00:00Z",
        end="2026-01-10T00:00:00Z",
        format="parquet",
        retries=0,
    )
