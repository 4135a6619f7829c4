"""Which window a run of ``aigw_archive_logs`` covers, by the ways a user picks a day (Airflow 3.3).

The runs are created against the real api-server and metadata DB; no scheduler runs them: what
is asserted is the data interval Airflow gives each run, which is the window the archive DAG
exports (unless ``params.window`` overrides it, see tests/dags). One run, triggered in the
browser with a day in the form's ``window`` field, is then executed task by task (``airflow
tasks test`` on that very run) against the emulator, and its archive compared with the
emulator's ground truth.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.examples import example_dags_dir
from airflow_provider_aigw.export import iter_manifest_records, read_manifest

pytestmark = pytest.mark.ui

DAG_ID = "aigw_archive_logs"
DAY_START, DAY_END = "2026-11-26T00:00:00Z", "2026-11-27T00:00:00Z"


@pytest.fixture(scope="module")
def archive_dag(airflow_server: Any) -> str:
    shutil.copy(example_dags_dir() / f"{DAG_ID}.py", airflow_server.home / "dags")
    airflow_server.cli("dags", "reserialize")
    return DAG_ID


def runs(airflow_server: Any) -> dict[str, dict[str, Any]]:
    status, body = airflow_server.api("GET", f"/dags/{DAG_ID}/dagRuns?limit=100")
    assert status == 200
    return {run["dag_run_id"]: run for run in body["dag_runs"]}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def test_rest_api_data_interval_picks_the_day(airflow_server: Any, archive_dag: str) -> None:
    body = {
        "dag_run_id": "archive-2026-11-26",
        "logical_date": DAY_START,
        "data_interval_start": DAY_START,
        "data_interval_end": DAY_END,
    }
    status, run = airflow_server.api("POST", f"/dags/{archive_dag}/dagRuns", body)
    assert status == 200, run
    assert (utc(run["data_interval_start"]), utc(run["data_interval_end"])) == (utc(DAY_START), utc(DAY_END))


def test_a_logical_date_alone_does_not_pick_the_day(airflow_server: Any, archive_dag: str) -> None:
    # Airflow 3 infers a manual run's data interval from the time it runs, not from its logical
    # date: `airflow dags trigger --logical-date 2026-11-20...` archives the last complete day.
    # (Another date than the other tests': a DAG has one run per logical date.)
    airflow_server.cli(
        "dags", "trigger", archive_dag, "--run-id", "trigger-2026-11-20", "--logical-date", "2026-11-20T00:00:00+00:00"
    )
    run = runs(airflow_server)["trigger-2026-11-20"]
    assert utc(run["logical_date"]) == utc("2026-11-20T00:00:00Z")
    # The last complete day before now (run_after), whatever the logical date says.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (utc(run["data_interval_start"]), utc(run["data_interval_end"])) == (today - timedelta(days=1), today)


def test_backfill_create_runs_the_days_named(airflow_server: Any, archive_dag: str) -> None:
    # --from-date/--to-date name data interval starts (logical dates), both inclusive.
    airflow_server.cli(
        "backfill", "create", "--dag-id", archive_dag, "--from-date", "2026-11-24", "--to-date", "2026-11-25"
    )
    backfilled = sorted(
        (utc(r["data_interval_start"]), utc(r["data_interval_end"]))
        for r in runs(airflow_server).values()
        if r["run_type"] == "backfill"
    )
    assert backfilled == [
        (utc("2026-11-24T00:00:00Z"), utc("2026-11-25T00:00:00Z")),
        (utc("2026-11-25T00:00:00Z"), utc("2026-11-26T00:00:00Z")),
    ]


def pick_date_time(page: Any, dialog: Any, label: str, date: str, time: str) -> None:
    """Set one of the trigger form's date-time pickers (a popover with Date and Time inputs)."""
    field = dialog.locator("[data-scope=field][data-part=root]").filter(
        has=page.locator("label").get_by_text(label, exact=True)
    )
    field.get_by_test_id("datetime-input").click()
    popover = page.locator("[data-scope=popover][data-part=content][data-state=open]")
    popover.get_by_placeholder("YYYY/MM/DD").fill(date)
    popover.get_by_placeholder("HH:mm").fill(time)
    page.keyboard.press("Escape")
    popover.wait_for(state="detached")


def test_ui_trigger_specify_manually_picks_the_day(
    page: Any, airflow_server: Any, archive_dag: str, screenshot: Any
) -> None:
    before = set(runs(airflow_server))
    page.goto(f"{airflow_server.url}/dags/{archive_dag}")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Specify Manually").click()
    pick_date_time(page, dialog, "Start", "2026/11/26", "00:00")
    pick_date_time(page, dialog, "End", "2026/11/27", "00:00")
    screenshot(page, "07-trigger-specify-manually")
    dialog.get_by_test_id("trigger-dag-submit").click()
    page.get_by_text("Dag Run Triggered").first.wait_for()  # the toast may be in the DOM twice while it animates
    (new,) = [run for run_id, run in runs(airflow_server).items() if run_id not in before]
    assert new["run_type"] == "manual"
    assert (utc(new["data_interval_start"]), utc(new["data_interval_end"])) == (utc(DAY_START), utc(DAY_END))


def test_inferred_from_a_logical_date_is_the_day_before(airflow_server: Any, archive_dag: str) -> None:
    # What the UI's "Inferred from Logical Date and Timetable" sends: a logical date and no data interval. The
    # docs and the window param's description warn about it.
    body = {"dag_run_id": "inferred-2026-11-09", "logical_date": "2026-11-09T00:00:00Z"}
    status, run = airflow_server.api("POST", f"/dags/{archive_dag}/dagRuns", body)
    assert status == 200, run
    assert (utc(run["data_interval_start"]), utc(run["data_interval_end"])) == (
        utc("2026-11-08T00:00:00Z"),
        utc("2026-11-09T00:00:00Z"),
    )


def test_cli_refuses_a_logical_date_before_the_start(airflow_server: Any, archive_dag: str) -> None:
    # The REST API and the UI would create a run without task instances: the docs say so.
    with pytest.raises(RuntimeError, match=r"should be >= start_date \[2026-01-01T00:00:00\+00:00\]"):
        airflow_server.cli(
            "dags", "trigger", archive_dag, "--run-id", "before-start", "--logical-date", "2025-12-01T00:00:00+00:00"
        )
    assert "before-start" not in runs(airflow_server)


GW = "my-gateway"
PICKED = datetime(2026, 11, 23, tzinfo=timezone.utc)  # a day no other test here names


def test_ui_trigger_with_the_window_field_archives_exactly_that_day(
    page: Any,
    airflow_server: Any,
    archive_dag: str,
    screenshot: Any,
    aigw_emulator_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emu: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    emu.seed_logs(GW, 30, PICKED - timedelta(days=1), PICKED, seed=1)
    emu.seed_logs(GW, 140, PICKED, PICKED + timedelta(days=1), seed=2)
    emu.seed_logs(GW, 30, PICKED + timedelta(days=1), PICKED + timedelta(days=2), seed=3)
    truth = emu.ids(GW, PICKED, PICKED + timedelta(days=1))
    others = emu.ids(GW, None, PICKED) + emu.ids(GW, PICKED + timedelta(days=1))
    before = set(runs(airflow_server))

    page.goto(f"{airflow_server.url}/dags/{archive_dag}")
    page.get_by_test_id("trigger-dag-button").click()
    dialog = page.get_by_role("dialog")
    window = dialog.locator("#element_window")
    if not window.is_visible():
        dialog.get_by_text("Run Parameters").click()
    window.fill("2026-11-23")
    screenshot(page, "08-trigger-window-param")
    dialog.locator("#element_destination").fill(f"file://{tmp_path}")
    dialog.get_by_test_id("trigger-dag-submit").click()
    page.get_by_text("Dag Run Triggered").first.wait_for()  # the toast may be in the DOM twice while it animates
    (new,) = [run for run_id, run in runs(airflow_server).items() if run_id not in before]
    assert new["run_type"] == "manual" and new["conf"]["window"] == "2026-11-23"

    # That run, executed task by task against the emulator (no scheduler runs in these tests).
    monkeypatch.setitem(airflow_server.env, "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", emu.airflow_conn_json(GW))
    for task_id in ("wait_for_logs", "export_logs", "delete_exported_logs"):
        airflow_server.cli("tasks", "test", archive_dag, task_id, new["dag_run_id"])

    tag = "20261123T000000Z-20261124T000000Z"
    manifest = read_manifest(f"file://{tmp_path}/gateway={GW}/_manifests/{tag}.jsonl.gz.json")
    assert [r["id"] for r in iter_manifest_records(manifest, verify=True)] == truth and len(truth) == 140
    assert emu.ids(GW) == others  # exactly the picked day deleted, the days around it kept
