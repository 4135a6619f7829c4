"""OpenLineage for real: ``airflow dags test`` with the openlineage provider enabled (file transport)
runs an export; the emitted COMPLETE event names the gateway as input, the destination as output,
and carries a schema facet built from the export's one schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.export import COLUMNS
from airflow_provider_aigw.export.schema import TYPES

pytestmark = [pytest.mark.integration, pytest.mark.dags]

DAGS = Path(__file__).resolve().parent / "dags"
UTC = timezone.utc
GW = "lineage-gw"


def run_airflow(args: list[str], env: dict[str, str], log: Path) -> None:
    cli = Path(sys.executable).parent / "airflow"
    with log.open("ab") as out:
        code = subprocess.call([str(cli), *args], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300)
    assert code == 0, f"airflow {' '.join(args)} failed ({code}):\n{log.read_text()[-4000:]}"


def test_export_emits_gateway_input_destination_output_and_schema_facet(
    aigw_emulator_factory: Any, tmp_path: Path
) -> None:
    emu: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    emu.seed_logs(GW, 60, datetime(2026, 1, 9, tzinfo=UTC), datetime(2026, 1, 10, tzinfo=UTC), seed=5)
    events_file = tmp_path / "openlineage.jsonl"
    dest = tmp_path / "archive"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT": emu.airflow_conn_json(GW),
        "AIGW_LINEAGE_DEST": f"file://{dest}",
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "aigw-test",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events_file), "append": True}
        ),
    }
    env.pop("AIRFLOW__OPENLINEAGE__DISABLED", None)
    log = tmp_path / "airflow.log"
    run_airflow(["db", "migrate"], env, log)
    run_airflow(["dags", "test", "aigw_lineage_export", "2026-01-10"], env, log)

    assert events_file.exists(), f"no OpenLineage event was emitted:\n{log.read_text()[-4000:]}"
    events = [json.loads(line) for line in events_file.read_text().splitlines() if line.strip()]
    complete = [
        e for e in events if e.get("eventType") == "COMPLETE" and e["job"]["name"].endswith(".export")
    ]
    assert len(complete) == 1, [(e.get("eventType"), e["job"]["name"]) for e in events]
    event = complete[0]
    account_id = json.loads(emu.airflow_conn_json(GW))["extra"]["account_id"]
    [source] = event["inputs"]
    assert (source["namespace"], source["name"]) == (f"cloudflare-ai-gateway://{account_id}", f"gateways/{GW}/logs")
    [target] = event["outputs"]
    assert (target["namespace"], target["name"]) == ("file", str(dest))
    for dataset in (source, target):
        fields = dataset["facets"]["schema"]["fields"]
        assert [(f["name"], f["type"]) for f in fields] == [(c.name, TYPES[c.type][0]) for c in COLUMNS]
    # the export really ran: its manifest is there
    assert list(dest.rglob("_manifests/*.json"))
