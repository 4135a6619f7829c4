"""Test-only DAGs for AIGatewayLogsSensor: one per mode x scenario, run by tests/dags/test_sensor_dags.py.

Not examples (see example_dags/ for those): they live in their own DAG bundle, which the
tests add to ``[dag_processor] dag_bundle_config_list`` because on Airflow 3.1+ ``dag.test()``
only runs DAGs that a configured bundle holds.

``late``: waits up to 60 s (the emulator makes the logs appear after a few requests);
``none`` / ``none_soft``: a 1 s timeout with no matching logs, without / with ``soft_fail``.
The window and model come from params, so the templated fields are exercised too.
"""

from __future__ import annotations

import datetime as dt

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2
    from airflow import DAG  # type: ignore[no-redef,attr-defined]
    from airflow.decorators import task  # type: ignore[no-redef]

from airflow_provider_aigw.sensors.ai_gateway import AIGatewayLogsSensor

MODES = {
    "poke": {"mode": "poke", "deferrable": False},
    "reschedule": {"mode": "reschedule", "deferrable": False},
    "deferrable": {"mode": "poke", "deferrable": True},
}
SCENARIOS = {
    "late": {"timeout": 60, "soft_fail": False},
    "none": {"timeout": 1, "soft_fail": False},
    "none_soft": {"timeout": 1, "soft_fail": True},
}

for mode, mode_kwargs in MODES.items():
    for scenario, scenario_kwargs in SCENARIOS.items():
        with DAG(
            dag_id=f"aigw_sensor_test_{mode}_{scenario}",
            schedule=None,
            start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
            catchup=False,
            params={"model": "gpt-4o", "start": "2026-11-20T12:00:00Z", "end": "2026-11-20T13:00:00Z"},
            tags=["test"],
        ) as dag:
            wait = AIGatewayLogsSensor(
                task_id="wait_for_logs",
                filters=[{"key": "model", "operator": "eq", "value": "{{ params.model }}"}],
                start="{{ params.start }}",
                end="{{ params.end }}",
                min_count=2,
                max_matches=2,
                poke_interval=0.2,
                **mode_kwargs,
                **scenario_kwargs,
            )

            @task
            def report(result: dict) -> int:
                return result["count"]

            report(wait.output)
        globals()[dag.dag_id] = dag
