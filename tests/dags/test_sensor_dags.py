"""``dag.test()`` runs of AIGatewayLogsSensor against the emulator, in poke, reschedule and
deferrable mode: logs that arrive late (the sensor waits, then succeeds) and logs that never
arrive (timeout -> failed, or skipped with ``soft_fail``).

The DAGs live in ``tests/dags/sensor_dags/`` (test-only, not examples); each test adds that
folder as an extra DAG bundle, since on Airflow 3.1+ ``dag.test()`` only runs DAGs that a
configured bundle holds. ``dag.test()`` runs the deferred trigger inline, so the deferrable
path runs end to end.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.export import iter_manifest_records, read_manifest
from tests.compat_helpers import dag_test

pytestmark = pytest.mark.dags

GW = "my-gateway"
ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
SENSOR_DAGS = Path(__file__).resolve().parent / "sensor_dags"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
BUNDLES = [
    {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle", "kwargs": {}},
    {
        "name": "aigw-sensor-test-dags",
        "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(SENSOR_DAGS)},
    },
]


@pytest.fixture
def sensor_dag(airflow_db: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """``sensor_dag(mode, scenario)``: a test DAG from tests/dags/sensor_dags/, its bundle configured."""
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(BUNDLES))
    bag = dag_bag(SENSOR_DAGS)
    assert not bag.import_errors, bag.import_errors

    def get(mode: str, scenario: str) -> Any:
        from airflow import __version__ as airflow_version

        if mode == "reschedule" and airflow_version.startswith("3.0."):
            pytest.skip(
                "Airflow 3.0's dag.test() hands reschedule sensors their first reschedule date as a "
                "string, so any rescheduled sensor fails there (apache/airflow#58777); fixed in 3.1"
            )
        return bag.dags[f"aigw_sensor_test_{mode}_{scenario}"]

    return get


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    server = aigw_emulator_factory(gateways={GW: 0})
    # Logs of other models and outside the window must not count.
    server.add_logs(
        GW,
        [
            {"created_at": (T0 + timedelta(minutes=1)).isoformat(), "model": "claude-3-5-haiku"},
            {"created_at": (T0 - timedelta(minutes=1)).isoformat(), "model": "gpt-4o"},
            {"created_at": (T0 + timedelta(hours=1)).isoformat(), "model": "gpt-4o"},
        ],
    )
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW, max_retries=0))
    return server


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: ti.state for ti in run.get_task_instances()}


def dag_bag(path: Path) -> Any:
    from tests.compat_helpers import DagBag

    return DagBag(dag_folder=str(path))


def xcom(run: Any, task_id: str) -> Any:
    from airflow.utils.session import create_session

    try:  # Airflow 3
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2
        return run.get_task_instance(task_id).xcom_pull(task_ids=task_id)
    with create_session() as session:
        query = XComModel.get_many(run_id=run.run_id, dag_ids=run.dag_id, task_ids=task_id, key="return_value")
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_late_logs_sensor_waits_then_succeeds(sensor_dag, emu, mode):
    late = [{"created_at": (T0 + timedelta(minutes=10 + i)).isoformat(), "model": "gpt-4o"} for i in range(3)]
    emu.schedule_late_logs(GW, late, after_requests=2)  # visible from the 3rd API request on
    emu.reset_stats()

    run = sensor_dag(mode, "late").test()

    assert run.state == "success", states(run)
    assert states(run) == {"wait_for_logs": "success", "report": "success"}
    result = xcom(run, "wait_for_logs")
    assert {k: v for k, v in result.items() if k != "matches"} == {
        "count": 3,
        "min_count": 2,
        "gateway_id": GW,
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
    }
    assert [m["created_at"] for m in result["matches"]] == ["2026-11-20T12:12:00.000Z", "2026-11-20T12:11:00.000Z"]
    assert xcom(run, "report") == 3
    # two checks saw nothing, the third saw the late logs (deferrable: 1 in the worker + 2 in the trigger)
    assert emu.stats["list"] == 3 and emu.stats["total"] == 3
    assert emu.token not in json.dumps(result)


@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
@pytest.mark.parametrize(("scenario", "sensor_state"), [("none", "failed"), ("none_soft", "skipped")])
def test_no_logs_times_out(sensor_dag, emu, mode, scenario, sensor_state):
    run = sensor_dag(mode, scenario).test()

    assert states(run)["wait_for_logs"] == sensor_state
    assert states(run)["report"] == ("upstream_failed" if sensor_state == "failed" else "skipped")
    assert run.state == ("failed" if sensor_state == "failed" else "success")
    assert xcom(run, "wait_for_logs") is None
    # it kept checking until the timeout, then gave up; only list calls were made
    assert emu.stats["list"] >= 2 and emu.stats["total"] == emu.stats["list"]


# ------------------------------------------------------------------ the example archive DAG


@pytest.fixture
def archive_dag(airflow_db: None) -> Any:
    bag = dag_bag(Path(__file__).resolve().parents[2] / "example_dags" / "aigw_archive_logs.py")
    assert not bag.import_errors, bag.import_errors
    return bag.dags["aigw_archive_logs"]


DAY = datetime(2026, 1, 10, tzinfo=timezone.utc)  # logical date; the data interval is 2026-01-09


def test_archive_dag_waits_for_logs_then_exports_and_deletes(archive_dag, aigw_emulator_factory, monkeypatch, tmp_path):
    server = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 40, DAY - timedelta(days=1), DAY)
    server.seed_logs(GW, 7, DAY, DAY + timedelta(hours=3))  # the next day stays
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW))

    run = dag_test(archive_dag, logical_date=DAY, run_conf={"destination": f"file://{tmp_path}/archive"})

    assert states(run) == {"wait_for_logs": "success", "export_logs": "success", "delete_exported_logs": "success"}
    waited = xcom(run, "wait_for_logs")
    assert {k: v for k, v in waited.items() if k != "matches"} == {
        "count": 40,
        "min_count": 1,
        "gateway_id": GW,
        "start": "2026-01-09T00:00:00.000Z",
        "end": "2026-01-10T00:00:00.000Z",
    }
    assert len(waited["matches"]) == 1
    assert xcom(run, "export_logs")["count"] == 40
    assert server.count(GW) == 7


def test_archive_dag_archives_a_settled_day_without_logs_as_empty(
    archive_dag, aigw_emulator_factory, monkeypatch, tmp_path
):
    """Issue 20: an idle day is no error. Its window settled long ago: the sensor's first check is
    final (0 logs), the export writes an empty manifest, the delete has nothing to do."""
    server = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 6, DAY - timedelta(days=2), DAY - timedelta(days=1))  # the day before
    server.seed_logs(GW, 5, DAY, DAY + timedelta(hours=1))  # and the next day have logs
    before = server.ids(GW)
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW))
    server.reset_stats()

    run = dag_test(archive_dag, logical_date=DAY, run_conf={"destination": f"file://{tmp_path}/archive"})

    assert states(run) == {"wait_for_logs": "success", "export_logs": "success", "delete_exported_logs": "success"}
    assert run.state == "success"
    assert xcom(run, "wait_for_logs")["count"] == 0
    manifest = read_manifest(
        f"file://{tmp_path}/archive/gateway={GW}/_manifests/20260109T000000Z-20260110T000000Z.jsonl.gz.json"
    )
    assert (manifest["count"], manifest["files"], manifest["complete"]) == (0, [], True)
    assert list(iter_manifest_records(manifest, verify=True)) == []
    assert xcom(run, "delete_exported_logs") == 0
    assert server.ids(GW) == before and server.stats["delete"] == 0
    # the sensor's one check, the export's count and (empty) page, the delete's count and walk
    assert server.stats["total"] == server.stats["list"] == 1 + 2 + 2
