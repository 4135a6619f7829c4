"""Which window a run of ``aigw_archive_logs`` covers, by the ways a user picks a day (Airflow 3.3).

The runs are created against the real api-server and metadata DB; no scheduler runs them: what
is asserted is the data interval Airflow gives each run, which is the window the archive DAG
exports (unless ``params.window`` overrides it, see tests/dags).
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_aigw.examples import example_dags_dir

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
    page.get_by_text("Dag Run Triggered").wait_for()
    (new,) = [run for run_id, run in runs(airflow_server).items() if run_id not in before]
    assert new["run_type"] == "manual"
    assert (utc(new["data_interval_start"]), utc(new["data_interval_end"])) == (utc(DAY_START), utc(DAY_END))
