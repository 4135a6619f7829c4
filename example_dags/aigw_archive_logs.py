"""Daily archive of Cloudflare AI Gateway logs: export the day to object storage, then delete it.

Each run first waits (``AIGatewayLogsSensor``) until its day (the data interval, UTC) has
settled - ended at least the settle lag (5 minutes) ago, as logs are listable only some time
after the request. It then exports the day's logs from the gateway of the
``cloudflare_ai_gateway_default`` connection to ``params.destination`` (hive-partitioned
``jsonl.gz`` files plus a manifest), then deletes exactly what the manifest covers. The delete
first checks that what matches the window now equals what was exported and refuses (deleting
nothing) if logs arrived late; re-running the export then the delete fixes that. A settled day
without logs is archived as empty: the sensor succeeds with 0 logs ("... has settled with 0
matching log(s)"), the export writes a manifest with ``count`` 0, the delete has nothing to do.

Start and catch-up (``AIGW_ARCHIVE_START_DATE``, environment, read when the DAG is parsed):

* unset (the default): ``catchup=False``. Unpausing the DAG runs yesterday (UTC) at once, and
  then every day; nothing older. A day missed while the scheduler was down is not run later:
  archive it with ``airflow backfill create`` or ``params.window``.
* a UTC day ``YYYY-MM-DD``, e.g. ``2026-12-01``: ``catchup=True`` from that day. Unpausing runs
  every day since, oldest first, one at a time (``max_active_runs=1``; a manual run queues
  behind them), so pick a recent day; a settled day's run takes about as long as its export.
  Later, a day missed while the scheduler was down or the DAG paused is archived when it is back.

Failed tasks are retried (``default_args``). An API outage is never taken for an empty day: if
the API is still failing when the sensor's timeout runs out, the sensor fails (and is retried),
so the run fails loudly and ``notify_failure`` is called. Replace ``notify_failure`` with your
alerting.

Picking a day by hand: set ``params.window`` (``"2026-11-27"``, or ``"START/END"`` in ISO 8601),
in the UI's trigger form or ``airflow dags trigger aigw_archive_logs -c '{"window":
"2026-11-27"}'``. Without it a run archives its data interval, and Airflow infers a manual run's
data interval as the day BEFORE its logical date: *Trigger* with *Inferred from Logical Date
and Timetable* 2026-11-09 archives 2026-11-08. A logical date before the DAG's start date runs
no task at all (Airflow creates none; the CLI refuses it): trigger with a recent logical date
and ``params.window`` instead. Other settings: ``AIGW_ARCHIVE_URL`` (environment) is the default
destination, e.g. ``s3://aws_default@my-bucket/ai-gateway``; ``params.destination`` and
``params.format`` can be overridden per run (``-c '{"destination": "file:///tmp/archive"}'``).
Downstream DAGs can be scheduled on ``ARCHIVE_ASSET``; its events carry the manifest summary
in ``extra``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_aigw.compat import DAG, Asset, Param  # airflow.sdk on Airflow 3, fallbacks on 2.x
from airflow_provider_aigw.examples import archive_start
from airflow_provider_aigw.operators.ai_gateway import (
    DEFAULT_SETTLE_LAG,
    AIGatewayDeleteLogsOperator,
    AIGatewayExportLogsOperator,
)
from airflow_provider_aigw.query import run_window
from airflow_provider_aigw.sensors.ai_gateway import AIGatewayLogsSensor

log = logging.getLogger(__name__)

ARCHIVE_URL = os.environ.get("AIGW_ARCHIVE_URL", "file:///tmp/aigw-archive")
#: The run's window: ``params.window`` when set, else the data interval.
WINDOW_START = "{{ aigw_window(params.window, data_interval_start, data_interval_end)[0] }}"
WINDOW_END = "{{ aigw_window(params.window, data_interval_start, data_interval_end)[1] }}"
#: What downstream DAGs schedule on (``schedule=[ARCHIVE_ASSET]``).
ARCHIVE_ASSET = Asset("aigw_logs_archive")
#: The first day to archive and whether missed days are caught up: AIGW_ARCHIVE_START_DATE.
START_DATE, CATCHUP = archive_start()


def notify_failure(context: Any) -> None:
    """Called once a task has failed for good (after its retries): plug your alerting in here."""
    ti = context["ti"]
    log.error(
        "AI Gateway archive failed: %s.%s, run %s: %s", ti.dag_id, ti.task_id, ti.run_id, context.get("exception")
    )


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
    dag_id="aigw_archive_logs",
    description="Export each day's AI Gateway logs to object storage, then delete them",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=START_DATE,
    catchup=CATCHUP,
    max_active_runs=1,
    # A run that cannot finish (e.g. no worker picks its tasks up) fails instead of hanging.
    dagrun_timeout=dt.timedelta(hours=20),
    default_args=default_args,
    on_failure_callback=notify_failure,
    params={
        "destination": Param(ARCHIVE_URL, type="string", description="archive root URL"),
        "format": Param("jsonl.gz", enum=["jsonl", "jsonl.gz", "parquet"]),
        "window": Param(
            None,
            type=["null", "string"],
            description=(
                "the UTC day to archive (YYYY-MM-DD), or START/END (ISO 8601). Empty: the run's data "
                "interval, which for 'Inferred from Logical Date' D is the day BEFORE D. A logical date "
                "before the DAG's start date runs no task: keep a recent one and set this instead."
            ),
        ),
    },
    user_defined_macros={"aigw_window": run_window},
    tags=["cloudflare", "ai-gateway"],
    doc_md=__doc__,
) as dag:
    # Frees the worker between checks (or waits on the triggerer when
    # [operators] default_deferrable is on). No log of a day can arrive once it has settled, so
    # the first check after that is final: a day without logs is archived as empty.
    # [START howto_sensor_aigw_logs]
    wait = AIGatewayLogsSensor(
        task_id="wait_for_logs",
        start=WINDOW_START,
        end=WINDOW_END,
        settle_lag=DEFAULT_SETTLE_LAG,
        succeed_when_settled=True,
        max_matches=1,
        mode="reschedule",
        poke_interval=dt.timedelta(minutes=5),
        timeout=DEFAULT_SETTLE_LAG + dt.timedelta(minutes=30),
    )
    # [END howto_sensor_aigw_logs]
    # [START howto_operator_aigw_export_logs]
    export = AIGatewayExportLogsOperator(
        task_id="export_logs",
        destination="{{ params.destination }}",
        format="{{ params.format }}",
        start=WINDOW_START,
        end=WINDOW_END,
        outlets=[ARCHIVE_ASSET],
    )
    # [END howto_operator_aigw_export_logs]
    # [START howto_operator_aigw_delete_logs]
    delete = AIGatewayDeleteLogsOperator(task_id="delete_exported_logs", manifest=export.output)
    # [END howto_operator_aigw_delete_logs]
    wait >> export >> delete
