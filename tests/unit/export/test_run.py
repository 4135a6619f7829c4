"""One export from the API (``export/run.py``): window, names, the run's summary, the counted walk, bodies."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.compat import Asset
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayBodyError, AIGatewayInputError, AIGatewayListingError
from airflow_provider_aigw.export import iter_manifest_records
from airflow_provider_aigw.export.run import (
    ExportRun,
    checked_rows,
    destination_assets,
    export_window,
    run_export,
)
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.query import LogQuery
from tests.log_lines import LogLines

UTC = timezone.utc
GW = "run-gateway"
START = datetime(2026, 1, 9, tzinfo=UTC)
END = datetime(2026, 1, 10, tzinfo=UTC)
LAG = timedelta(minutes=5)


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 70, START, END, seed=3)
    server.seed_logs(GW, 5, END, END + timedelta(hours=1), seed=4)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json(GW))
    server.reset_stats()
    return server


# ------------------------------------------------------------------------------ window


def test_the_window_defaults_to_the_data_interval_and_keeps_a_given_one() -> None:
    assert export_window(None, None, interval=(START, END), settle_lag=LAG) == (START, END)
    given = export_window("2026-01-08T00:00:00Z", "2026-01-09T00:00:00Z", interval=(START, END), settle_lag=LAG)
    assert given == (START - timedelta(days=1), START)


@pytest.mark.parametrize(
    ("start", "end", "interval", "message"),
    [
        (None, None, (None, None), "no data interval"),
        (None, None, (START, START), "data interval is empty"),
        (START, None, (START, END), "give both start and end"),
        (END, START, (None, None), "must be after start"),
    ],
)
def test_an_unusable_window_is_refused(start: Any, end: Any, interval: Any, message: str) -> None:
    with pytest.raises(AIGatewayInputError, match=message):
        export_window(start, end, interval=interval, settle_lag=LAG)


def test_a_recent_end_is_refused_or_clamped_with_a_warning() -> None:
    now = datetime.now(UTC)
    start = now - timedelta(hours=1)
    with pytest.raises(AIGatewayInputError, match="later than now - settle_lag"):
        export_window(start, now, interval=(None, None), settle_lag=LAG)
    lines = LogLines()
    got_start, got_end = export_window(start, now, interval=(None, None), settle_lag=LAG, clamp_end=True, logger=lines)
    assert got_start == start
    assert now - LAG - timedelta(milliseconds=1) <= got_end <= datetime.now(UTC) - LAG
    assert got_end.microsecond % 1000 == 0  # whole milliseconds, like created_at
    assert "end clamped to" in lines.text("warning")
    with pytest.raises(AIGatewayInputError, match="nothing has settled yet"):
        export_window(now - timedelta(minutes=1), now, interval=(None, None), settle_lag=LAG, clamp_end=True)


# ----------------------------------------------------------------------------- helpers


def test_urls_and_assets_are_named_for_lineage() -> None:
    assert destination_assets("s3://aws_default@bucket/aigw") == [Asset("s3://bucket/aigw")]
    assert destination_assets("/local/path") == []
    assert destination_assets(42) == []


def test_export_run_event_extra_and_body_check() -> None:
    summary = {"count": 3, "paths": ["a"], "usage": {"totals": {"requests": 3}, "by_model": []}}
    run = ExportRun(summary, "0" * 32, GW, "s3://bucket/aigw")
    assert run.event_extra() == {"count": 3, "usage": {"requests": 3}}
    run.check_bodies("fail")  # nothing failed: nothing to say
    failed = ExportRun(summary, "0" * 32, GW, "s3://bucket/aigw", body_failures="2 body fetch(es) failed")
    with pytest.raises(AIGatewayBodyError, match=r"2 body fetch\(es\) failed\. Files and manifest are written"):
        failed.check_bodies("fail")
    lines = LogLines()
    failed.check_bodies("warn", lines)
    assert "exported with body status 'failed'" in lines.text("warning")
    with pytest.raises(AIGatewayInputError, match=r"on_body_error must be one of \['fail', 'warn'\]"):
        failed.check_bodies("ignore")


# --------------------------------------------------------------------------------- run


DAY = LogQuery.of(start=START, end=END)


def export_day(client: AIGatewayClient, destination: str, query: LogQuery = DAY, **kwargs: Any) -> ExportRun:
    """``run_export`` of the seeded day as JSON lines."""
    kwargs.setdefault("logger", LogLines())
    return run_export(client, query, destination, format="jsonl", **kwargs)


def test_run_export_writes_exactly_the_window_in_counted_requests(emu: EmulatorServer, tmp_path: Path) -> None:
    lines = LogLines()
    client = AIGatewayHook().client
    run = export_day(client, f"file://{tmp_path}", logger=lines, owner="test/run")
    assert [r["id"] for r in iter_manifest_records(run.summary, verify=True)] == emu.ids(GW, START, END)
    assert run.summary["count"] == 70 and run.body_failures is None
    assert (run.account_id, run.gateway, run.url) == (client.account_id, GW, f"file://{tmp_path}")
    assert emu.stats["list"] == 1 + 2  # the count, then ceil(70 / 50) pages
    assert "exporting 70 logs of gateway 'run-gateway'" in lines.text("info")
    assert "exported 70 of 70 logs, 2 pages, 3 API requests" in lines.text("info")


def test_run_export_with_bodies_reports_failures_without_failing(emu: EmulatorServer, tmp_path: Path) -> None:
    broken = emu.ids(GW, START, END)[:2]
    emu.faults.update(fail_body_ids=broken, fail_body_status=400)  # not retried
    run = export_day(AIGatewayHook().client, f"file://{tmp_path}", include_bodies=True, body_concurrency=2)
    assert run.body_failures is not None and run.body_failures.startswith("4 body fetch(es) failed")
    failed = {r["id"] for r in iter_manifest_records(run.summary) if r["request_body_status"] == "failed"}
    assert failed == set(broken)
    assert run.summary["body_stats"]


def test_run_export_probes_the_destination_before_any_request(emu: EmulatorServer, tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(AIGatewayInputError):
        export_day(AIGatewayHook().client, f"file://{blocked}")
    assert emu.stats["total"] == 0


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (LogQuery.of(start=START), "an export needs a closed window"),
        (LogQuery.of(end=END), "an export needs a closed window"),
        (LogQuery.of(start=START, end=END, search="refund"), "an export takes no search"),
    ],
)
def test_run_export_refuses_a_query_it_cannot_archive_before_any_request(
    emu: EmulatorServer, tmp_path: Path, query: LogQuery, message: str
) -> None:
    with pytest.raises(AIGatewayInputError, match=message):
        export_day(AIGatewayHook().client, f"file://{tmp_path}", query)
    assert emu.stats["total"] == 0
    assert list(tmp_path.iterdir()) == []


def test_run_export_of_a_named_gateway_records_it(emu: EmulatorServer, tmp_path: Path) -> None:
    emu.seed_logs("other", 3, START, END, seed=5)
    query = LogQuery.of(gateway_id="other", start=START, end=END)
    run = export_day(AIGatewayHook().client, f"file://{tmp_path}", query)
    assert run.gateway == "other" and run.summary["count"] == 3
    assert {r["id"] for r in iter_manifest_records(run.summary)} == set(emu.ids("other", START, END))


def test_checked_rows_stop_at_the_first_row_the_query_contradicts() -> None:
    query = LogQuery.of(filters={"key": "model", "operator": "eq", "value": "gpt-4o"}, start=START, end=END)
    rows = [
        {"id": "a", "created_at": "2026-01-09T01:00:00.000Z", "model": "gpt-4o"},
        {"id": "b", "created_at": "2026-01-09T02:00:00.000Z", "model": "claude"},
        {"id": "c", "created_at": "2026-01-09T03:00:00.000Z", "model": "gpt-4o"},
    ]
    passed: list[str] = []
    with pytest.raises(AIGatewayListingError, match=r"did not apply the filter model eq \['gpt-4o'\]: listing the"):
        passed.extend(r["id"] for r in checked_rows(rows, query))
    assert passed == ["a"]
    late = [{"id": "d", "created_at": "2026-01-10T00:00:00.000Z", "model": "gpt-4o"}]
    with pytest.raises(AIGatewayListingError, match=r"created_at lt"):
        list(checked_rows(late, query))
