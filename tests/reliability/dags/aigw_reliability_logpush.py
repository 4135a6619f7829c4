"""Test-only DAG of the reliability suite: a Logpush import of the data interval, then a task
that reads the import's summary from XCom.

Run by ``tests/reliability/test_secret_scan.py``, which scans what the run leaves behind for the
key connection's PEM and passphrase. The source, destination and window come from the run's conf; the
key connection (``aigw_logpush_key``) from the environment.
"""

from __future__ import annotations

import datetime as dt

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[no-redef,attr-defined]
    from airflow.decorators import task  # type: ignore[no-redef]

from airflow_provider_aigw.operators.ai_gateway import AIGatewayImportLogpushOperator

with DAG(
    dag_id="aigw_reliability_logpush",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    params={
        "source": "file:///tmp/aigw-logpush",
        "destination": "file:///tmp/aigw-logpush-archive",
        "start": "2026-01-09T00:00:00Z",
        "end": "2026-01-10T00:00:00Z",
    },
    tags=["test"],
):
    imported = AIGatewayImportLogpushOperator(
        task_id="import_logpush",
        source="{{ params.source }}",
        destination="{{ params.destination }}",
        start="{{ params.start }}",
        end="{{ params.end }}",
        key_conn_id="aigw_logpush_key",
        retries=0,
    )

    @task
    def count_rows(summary: dict) -> int:
        return int(summary["count"])

    count_rows(imported.output)
