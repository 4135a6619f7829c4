"""Triage thumbs-down AI Gateway logs as they arrive (Airflow 3: an asset watcher).

An ``AssetWatcher`` runs :class:`~airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger`
in the triggerer: every minute it looks for new logs with ``feedback = -1`` on the
``cloudflare_ai_gateway_default`` connection's gateway, and each batch of new ones becomes an
event of the ``aigw_thumbs_down`` asset, so a run of this DAG. The run reads the logs that fired
it (:func:`~airflow_provider_aigw.events.triggered_logs`), lists them, tags them for review in
their metadata (the API's PATCH replaces a log's metadata), and writes them to
``params.destination`` (``AIGW_TRIAGE_URL``, default ``file:///tmp/aigw-triage``).

A log fires once in the normal case; after a triggerer restart one batch may come again, so
every step here is idempotent. On Airflow 2.x this file defines no DAG (no asset watchers).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow_provider_aigw.compat import DAG, AirflowSkipException, Asset, AssetWatcher, Param, task
from airflow_provider_aigw.events import triggered_logs
from airflow_provider_aigw.operators.ai_gateway import (
    AIGatewayExportLogsOperator,
    AIGatewayListLogsOperator,
    AIGatewayPatchLogOperator,
)
from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsEventTrigger

TRIAGE_URL = os.environ.get("AIGW_TRIAGE_URL", "file:///tmp/aigw-triage")

if AssetWatcher is not None:
    # [START howto_trigger_aigw_asset_watcher]
    THUMBS_DOWN = Asset(
        "aigw_thumbs_down",
        watchers=[
            AssetWatcher(
                name="aigw_thumbs_down_watcher",
                trigger=AIGatewayLogsEventTrigger(
                    filters={"key": "feedback", "operator": "eq", "value": [-1]},
                    poll_interval=60,  # one request a minute while nothing is new
                    overlap=120,  # re-read two minutes behind the newest log: late logs fire too
                ),
            )
        ],
    )
    # [END howto_trigger_aigw_asset_watcher]

    with DAG(
        dag_id="aigw_triage_thumbs_down",
        description="Triage thumbs-down AI Gateway logs as they arrive",
        schedule=[THUMBS_DOWN],
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        params={"destination": Param(TRIAGE_URL, type="string", description="where the triaged logs go")},
        tags=["cloudflare", "ai-gateway"],
        doc_md=__doc__,
    ):
        # [START howto_events_triggered_logs]
        @task(multiple_outputs=True)
        def fired(triggering_asset_events: Any = None) -> dict[str, Any]:
            """The new logs of this run's events: gateway, ids (each once), window and the id filter."""
            logs = triggered_logs(triggering_asset_events)
            if not logs.ids:
                raise AirflowSkipException("no new thumbs-down logs in this run's events")
            return logs.to_json()

        logs = fired()
        listed = AIGatewayListLogsOperator(
            task_id="list_thumbs_down",
            gateway_id=logs["gateway_id"],
            filters=logs["filters"],
            start=logs["start"],
            end=logs["end"],
            fields=["id", "created_at", "model", "provider", "feedback"],
            max_results=1000,
        )
        # [END howto_events_triggered_logs]
        tagged = AIGatewayPatchLogOperator(
            task_id="tag_for_review",
            gateway_id=logs["gateway_id"],
            log_id=listed.output,
            metadata={"review": "thumbs_down", "triaged_by": "aigw_triage_thumbs_down"},
        )
        written = AIGatewayExportLogsOperator(
            task_id="write_thumbs_down",
            gateway_id=logs["gateway_id"],
            filters=logs["filters"],
            start=logs["start"],
            end=logs["end"],
            destination="{{ params.destination }}",
            format="jsonl",
            settle_lag=0,  # the logs are named by id: no need to wait for the window to settle
        )
        listed >> tagged >> written
