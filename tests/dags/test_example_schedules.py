"""Each example DAG run as the scheduler runs it: on its real schedule boundary, seconds after
its data interval ended, on a fresh Airflow with nothing created by hand.

The clock is Airflow's own (``timezone.utcnow()``), moved with time-machine to a few seconds
after the NEXT boundary of the DAG's schedule (never a date in the past), and the scheduler's
timetable picks the run's data interval from it. Sleeps (the sensors' waits, ``dag.test()``'s
loop) move that clock instead of waiting, so the settle lag and retry delays pass in virtual
time and every request the emulator sees is counted exactly.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import time_machine

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.export import iter_manifest_records, read_manifest
from tests.compat_helpers import dag_test, get_xcom

pytestmark = pytest.mark.dags

UTC = timezone.utc
GW = "my-gateway"
ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
#: How far past the boundary the run starts (the scheduler creates it as soon as it may).
STARTED_AFTER = timedelta(seconds=7)
#: One step of ``dag.test()``'s idle loop (``time.sleep(1)``) in virtual time.
IDLE_STEP = 60.0


class VirtualClock:
    """Airflow's clock parked just after a boundary; ``time.sleep`` moves it instead of waiting."""

    def __init__(self, traveller: Any) -> None:
        self.traveller = traveller
        self.on_move: list[Any] = []

    def sleep(self, seconds: float) -> None:
        self.traveller.shift(max(float(seconds), IDLE_STEP))
        for callback in list(self.on_move):
            callback()


@pytest.fixture
def after_boundary(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``after_boundary(period)``: travel to ``STARTED_AFTER`` past the next ``period`` boundary (UTC)."""
    travels: list[Any] = []

    def go(period: timedelta) -> tuple[datetime, VirtualClock]:
        now = datetime.now(UTC)
        epoch = datetime(2000, 1, 1, tzinfo=UTC)
        boundary = epoch + ((now - epoch) // period + 1) * period
        travel = time_machine.travel(boundary + STARTED_AFTER, tick=True)
        clock = VirtualClock(travel.start())
        travels.append(travel)
        monkeypatch.setattr(time, "sleep", clock.sleep)
        return boundary, clock

    yield go
    for travel in travels:
        travel.stop()


def scheduled_interval(dag: Any) -> Any:
    """The data interval the scheduler runs now, by the DAG's own timetable and Airflow's clock."""
    from airflow.timetables.base import DataInterval, TimeRestriction

    try:  # Airflow 3.x
        from airflow.sdk import timezone as airflow_timezone
    except ImportError:  # Airflow 2.x
        from airflow.utils import timezone as airflow_timezone  # type: ignore[no-redef]

    now = airflow_timezone.utcnow()
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup)
    last = None
    if dag.catchup:  # the previous interval already ran, as on a DAG that has been running
        current = dag.timetable.infer_manual_data_interval(run_after=now)
        previous = dag.timetable.infer_manual_data_interval(run_after=current.start)
        last = DataInterval(previous.start, previous.end)
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=last, restriction=restriction)
    assert info is not None and info.run_after <= now
    # The interval ended seconds ago: the run starts before its window has settled.
    assert timedelta(0) <= now - info.data_interval.end < timedelta(minutes=1)
    return info.data_interval


def run_as_scheduled(dag: Any, **kwargs: Any) -> Any:
    interval = scheduled_interval(dag)
    run = dag_test(dag, logical_date=interval.end, **kwargs)
    assert (run.data_interval_start, run.data_interval_end) == (interval.start, interval.end)
    return run


def states(run: Any) -> dict[str, str]:
    return {
        f"{ti.task_id}[{ti.map_index}]" if ti.map_index >= 0 else ti.task_id: str(ti.state)
        for ti in run.get_task_instances()
    }


def tries(run: Any, task_id: str) -> int:
    return next(ti.try_number for ti in run.get_task_instances() if ti.task_id == task_id)


def manifest_uri(root: Path, start: datetime, end: datetime, gateway: str = GW) -> str:
    tag = f"{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"
    return f"file://{root}/gateway={gateway}/_manifests/{tag}.jsonl.gz.json"


def iso(moment: datetime) -> str:
    return moment.isoformat()


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW, max_retries=0))
    return server


def test_no_pool_or_anything_else_is_created_by_hand(load_dag: Any) -> None:
    from airflow.models.pool import Pool

    assert Pool.get_pool("aigw_api") is None
    for dag_id in ("aigw_archive_logs", "aigw_feedback", "aigw_multi_gateway_export"):
        dag = load_dag(dag_id, retries=None)
        assert {task.pool for task in dag.tasks} == {Pool.DEFAULT_POOL_NAME}, dag_id
        # Production defaults: retries with a delay, a time limit, an alerting hook, no run that hangs.
        for task in dag.tasks:
            assert task.retries >= 2 and task.retry_delay >= timedelta(minutes=5), (dag_id, task.task_id)
            assert task.execution_timeout is not None, (dag_id, task.task_id)
            assert task.on_failure_callback, (dag_id, task.task_id)
        assert dag.dagrun_timeout is not None and dag.on_failure_callback, dag_id



@pytest.mark.parametrize("dag_id", ["aigw_archive_logs", "aigw_multi_gateway_export"])
def test_unpausing_runs_yesterday_at_once_and_nothing_older(load_dag: Any, dag_id: str) -> None:
    """Issue 20: no catch-up from a start date far back unless AIGW_ARCHIVE_START_DATE asks for one."""
    dag = load_dag(dag_id)
    assert dag.catchup is False
    first = first_run_on_unpause(dag)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert (first.data_interval.start, first.data_interval.end) == (today - timedelta(days=1), today)
    assert first.run_after <= datetime.now(UTC)  # due now: the scheduler creates it at once


@pytest.mark.parametrize("dag_id", ["aigw_archive_logs", "aigw_multi_gateway_export"])
def test_a_start_date_setting_catches_up_from_that_day(
    load_dag: Any, dag_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    monkeypatch.setenv("AIGW_ARCHIVE_START_DATE", f"{today - timedelta(days=3):%Y-%m-%d}")
    dag = load_dag(dag_id)
    assert dag.catchup is True and dag.start_date == today - timedelta(days=3)
    first = first_run_on_unpause(dag)
    three_days_ago = today - timedelta(days=3)
    assert (first.data_interval.start, first.data_interval.end) == (three_days_ago, three_days_ago + timedelta(days=1))
    # Airflow's CLI refuses a logical date before the start (default_args carry it).
    assert dag.default_args["start_date"] == dag.start_date


def test_a_bad_start_date_setting_fails_the_import_with_its_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.compat_helpers import DagBag
    from tests.dags.conftest import EXAMPLE_DAGS

    monkeypatch.setenv("AIGW_ARCHIVE_START_DATE", "1 Dec 2026")
    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "aigw_archive_logs.py"))
    (error,) = bag.import_errors.values()
    assert "AIGW_ARCHIVE_START_DATE='1 Dec 2026' is not a day: give the first UTC day to archive as YYYY-MM-DD" in error


def first_run_on_unpause(dag: Any) -> Any:
    """The run the scheduler creates first for a DAG that never ran, by its timetable, now."""
    from airflow.timetables.base import TimeRestriction

    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=dag.catchup)
    info = dag.timetable.next_dagrun_info(last_automated_data_interval=None, restriction=restriction)
    assert info is not None
    return info


def test_archive_on_its_boundary_waits_for_the_day_to_settle(
    load_dag: Any, emu: EmulatorServer, after_boundary: Any, tmp_path: Path
) -> None:
    boundary, clock = after_boundary(timedelta(days=1))
    day = boundary - timedelta(days=1)
    emu.seed_logs(GW, 120, day, boundary - timedelta(minutes=1), seed=1)
    emu.add_logs(GW, [{"created_at": iso(boundary + timedelta(seconds=s))} for s in (1, 2, 3)])  # today's
    # A call made 2 s before midnight reaches the API a minute after it.
    straggler = {"created_at": iso(boundary - timedelta(seconds=2))}
    arrival = boundary + timedelta(minutes=1)

    def arrive() -> None:
        if straggler and datetime.now(UTC) >= arrival:
            emu.add_logs(GW, [straggler.copy()])
            straggler.clear()

    clock.on_move.append(arrive)
    today = emu.ids(GW, boundary)
    emu.reset_stats()

    run = run_as_scheduled(load_dag("aigw_archive_logs"), run_conf={"destination": f"file://{tmp_path}"})

    assert states(run) == {"wait_for_logs": "success", "export_logs": "success", "delete_exported_logs": "success"}
    manifest = read_manifest(manifest_uri(tmp_path, day, boundary))
    assert manifest["count"] == 121  # the straggler included: nothing was read before the day settled
    assert len({r["id"] for r in iter_manifest_records(manifest, verify=True)}) == 121
    assert emu.ids(GW, day, boundary) == [] and emu.ids(GW) == today  # today's logs untouched
    # No request before end + settle lag; then 1 check, the export's count + 3 pages, and the
    # delete's listings (count, walk of 3 pages, canary slice listed twice, final count) and 2 DELETEs.
    assert emu.stats["list"] == 1 + (1 + 3) + (1 + 3 + 2 + 1) and emu.stats["delete"] == 2


def test_archive_of_an_idle_day_waits_for_it_to_settle_then_archives_it_empty(
    load_dag: Any, emu: EmulatorServer, after_boundary: Any, tmp_path: Path
) -> None:
    """Issue 20: a day without logs, run seconds after midnight. The sensor waits (reschedules,
    no request) until the day has settled, then 0 logs is final: empty manifest, nothing deleted."""
    boundary, clock = after_boundary(timedelta(days=1))
    day = boundary - timedelta(days=1)
    emu.add_logs(GW, [{"created_at": iso(boundary + timedelta(seconds=s))} for s in (1, 2, 3)])  # today's
    settled = boundary + timedelta(minutes=5)
    requests_before_settled: list[int] = []
    clock.on_move.append(
        lambda: requests_before_settled.append(emu.stats["total"]) if datetime.now(UTC) < settled else None
    )
    today = emu.ids(GW)
    emu.reset_stats()

    run = run_as_scheduled(load_dag("aigw_archive_logs"), run_conf={"destination": f"file://{tmp_path}"})

    assert states(run) == {"wait_for_logs": "success", "export_logs": "success", "delete_exported_logs": "success"}
    assert requests_before_settled and set(requests_before_settled) == {0}  # it waited, asking nothing
    assert get_xcom(run, "wait_for_logs")["count"] == 0
    manifest = read_manifest(manifest_uri(tmp_path, day, boundary))
    assert (manifest["count"], manifest["files"]) == (0, [])
    assert get_xcom(run, "delete_exported_logs") == 0
    assert emu.ids(GW) == today and emu.stats["delete"] == 0


def test_archive_outage_fails_the_run_after_retries_never_skips_the_day(
    load_dag: Any, emu: EmulatorServer, after_boundary: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    boundary, _ = after_boundary(timedelta(days=1))
    day = boundary - timedelta(days=1)
    emu.seed_logs(GW, 30, day, boundary - timedelta(minutes=1), seed=2)
    emu.faults.update(error_rate=1.0)  # the API answers 5xx all day
    before = emu.ids(GW)
    emu.reset_stats()

    with caplog.at_level(logging.ERROR):
        run = run_as_scheduled(
            load_dag("aigw_archive_logs", retries=None), run_conf={"destination": f"file://{tmp_path}"}
        )

    assert str(run.state) == "failed"
    assert states(run) == {
        "wait_for_logs": "failed",
        "export_logs": "upstream_failed",
        "delete_exported_logs": "upstream_failed",
    }
    assert tries(run, "wait_for_logs") == 4  # the first try and 3 retries, each ending on the outage
    assert emu.ids(GW) == before and not list(tmp_path.iterdir())
    assert emu.stats["total"] == emu.stats["served_5xx"] and emu.stats["delete"] == 0
    assert "AI Gateway archive failed: aigw_archive_logs.wait_for_logs" in caplog.text
    assert "still failing when the sensor's timeout ran out" in caplog.text


def test_feedback_on_its_boundary_lists_only_settled_logs(
    load_dag: Any, emu: EmulatorServer, after_boundary: Any
) -> None:
    boundary, _ = after_boundary(timedelta(hours=6))
    lag = timedelta(minutes=5)
    start, end = boundary - timedelta(hours=6) - lag, boundary - lag
    emu.seed_logs(GW, 200, start - timedelta(minutes=30), boundary, seed=3)
    # A failed call 2 minutes before the boundary: the next run tags it, not this one.
    (recent_failure,) = emu.add_logs(GW, [{"created_at": iso(boundary - timedelta(minutes=2)), "success": False}])
    window = [x for x in emu.logs(GW) if iso_ms(start) <= x["created_at"] < iso_ms(end)]
    failed = {x["id"] for x in window if x["success"] is False}
    expensive = {x["id"] for x in window if (x.get("cost") or 0) > 0.01}
    unsettled = [x for x in emu.logs(GW) if x["created_at"] >= iso_ms(end)]
    assert failed and expensive and unsettled
    emu.reset_stats()

    run = run_as_scheduled(load_dag("aigw_feedback"))

    assert set(states(run).values()) == {"success"}
    assert {x["id"] for x in get_xcom(run, "list_failed")} == failed
    assert {x["id"] for x in get_xcom(run, "list_expensive")} == expensive
    assert emu.stats["patch"] == len(failed) + len(expensive)
    tagged = {x["id"] for x in emu.logs(GW) if (emu.get_log(GW, x["id"]) or {}).get("feedback") == -1}
    assert tagged == failed  # the last 5 minutes wait for the next run, whose window starts at `end`
    assert recent_failure not in tagged
    # Both listings asked for exactly [start, end) on created_at (the start bound shifted by 1 ms).
    bounds = {
        (f["operator"], f["value"][0])
        for r in emu.stats.requests
        if r["kind"] == "list"
        for f in json.loads(r["query"]["filters"][0])
        if f["key"] == "created_at"
    }
    assert bounds == {("gt", iso_ms(start - timedelta(milliseconds=1))), ("lt", iso_ms(end))}


def iso_ms(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def test_multi_gateway_export_on_its_boundary_without_a_pool(
    load_dag: Any, emu: EmulatorServer, after_boundary: Any, tmp_path: Path
) -> None:
    boundary, _ = after_boundary(timedelta(days=1))
    day = boundary - timedelta(days=1)
    gateways = {"gw-a": 80, "gw-b": 0, "gw-c": 55}
    for gateway, count in gateways.items():
        emu.create_gateway(gateway)
        if count:
            emu.seed_logs(gateway, count, day, boundary - timedelta(seconds=30))
        emu.add_logs(gateway, [{"created_at": iso(boundary + timedelta(seconds=1))}])
    emu.reset_stats()

    run = run_as_scheduled(
        load_dag("aigw_multi_gateway_export"),
        run_conf={"gateways": list(gateways), "destination": f"file://{tmp_path}"},
    )

    assert states(run) == {
        "wait_for_window_to_settle": "success",
        "gateways": "success",
        "export_gateway[0]": "success",
        "export_gateway[1]": "success",
        "export_gateway[2]": "success",
        "summarize": "success",
    }
    assert {ti.pool for ti in run.get_task_instances()} == {"default_pool"}
    for gateway, count in gateways.items():
        manifest = read_manifest(manifest_uri(tmp_path, day, boundary, gateway))
        assert [r["id"] for r in iter_manifest_records(manifest)] == emu.ids(gateway, day, boundary)
        assert manifest["count"] == count
    assert get_xcom(run, "summarize")["count"] == sum(gateways.values())
    assert json.dumps(get_xcom(run, "summarize"))
