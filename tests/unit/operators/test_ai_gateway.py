"""Operators executed directly against the emulator over real HTTP: exact results and request counts."""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FunctionType
from typing import Any

import pytest

from airflow_provider_aigw import query as query_module
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.compat import Asset
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayError,
    AIGatewayInputError,
    AIGatewayLateLogsError,
)
from airflow_provider_aigw.export import iter_manifest_records, read_manifest
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.operators.ai_gateway import (
    AIGatewayDeleteLogsOperator,
    AIGatewayExportLogsOperator,
    AIGatewayListLogsOperator,
    AIGatewayPatchLogOperator,
)
from airflow_provider_aigw.patch import LogPatch
from airflow_provider_aigw.query import LogQuery
from tests.log_lines import LogLines

UTC = timezone.utc
GW = "my-gateway"
START = datetime(2026, 1, 9, tzinfo=UTC)
END = datetime(2026, 1, 10, tzinfo=UTC)
IN_WINDOW = 120
OUTSIDE = 30


Recorder = LogLines  # stands in for an operator's logger


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """120 logs in [START, END), 30 the day after; the default connection points at it."""
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, IN_WINDOW, START, END, seed=1)
    server.seed_logs(GW, OUTSIDE, END, END + timedelta(days=1), seed=2)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json(GW))
    server.reset_stats()
    return server


@pytest.fixture
def rec(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    for cls in (
        AIGatewayListLogsOperator,
        AIGatewayExportLogsOperator,
        AIGatewayDeleteLogsOperator,
        AIGatewayPatchLogOperator,
    ):
        monkeypatch.setattr(cls, "log", recorder)
    return recorder


def interval() -> dict[str, Any]:
    return {"data_interval_start": START, "data_interval_end": END}


def export(dest: str, **kwargs: Any) -> dict[str, Any]:
    op = AIGatewayExportLogsOperator(task_id="export", destination=dest, **kwargs)
    result: dict[str, Any] = op.execute(interval())
    return result


def exported_ids(summary: dict[str, Any]) -> list[str]:
    return [r["id"] for r in iter_manifest_records(summary)]


# ------------------------------------------------------------------------------------- list


def test_list_returns_window_in_order_in_ceil_n_over_50_requests(emu: EmulatorServer, rec: Recorder) -> None:
    op = AIGatewayListLogsOperator(task_id="list", start=START, end=END)
    logs = op.execute({})
    assert [x["id"] for x in logs] == emu.ids(GW, START, END)
    assert emu.stats["total"] == 3  # 120 logs / 50 per page
    assert rec.text("warning") == ""


def test_list_truncates_and_warns_with_true_total(emu: EmulatorServer, rec: Recorder) -> None:
    op = AIGatewayListLogsOperator(task_id="list", start=START.isoformat(), end=END.isoformat(), max_results=10)
    logs = op.execute({})
    assert [x["id"] for x in logs] == emu.ids(GW, START, END)[:10]
    assert emu.stats["list"] == 2  # one page, one count
    assert "120 logs matched; returning the first 10" in rec.text("warning")


def test_list_projects_fields_filters_and_orders(emu: EmulatorServer, rec: Recorder) -> None:
    failed = [x for x in emu.logs(GW) if x["success"] is False and START.isoformat() <= x["created_at"]]
    op = AIGatewayListLogsOperator(
        task_id="list",
        filters={"key": "success", "operator": "eq", "value": False},
        fields=["id", "success"],
        order_by_direction="desc",
    )
    logs = op.execute({})
    assert logs == [{"id": x["id"], "success": False} for x in reversed(failed)]


def test_list_rendered_filters_string_is_parsed(emu: EmulatorServer, rec: Recorder) -> None:
    op = AIGatewayListLogsOperator(
        task_id="list", filters="[{'key': 'model', 'operator': 'eq', 'value': ['nope']}]", start=START, end=END
    )
    assert op.execute({}) == []


def test_list_refuses_multi_megabyte_xcom_at_parse_time() -> None:
    with pytest.raises(AIGatewayInputError, match=r"max_results=5000 could push an XCom of about 4\.9 MiB"):
        AIGatewayListLogsOperator(task_id="list", max_results=5000)
    AIGatewayListLogsOperator(task_id="list", max_results=5000, fields=["id"])
    with pytest.raises(AIGatewayInputError, match="order_by must be one of"):
        AIGatewayListLogsOperator(task_id="list", order_by="cost")
    with pytest.raises(AIGatewayInputError, match="fields must be a non-empty list"):
        AIGatewayListLogsOperator(task_id="list", fields="id")


def test_list_bad_input_fails_before_any_request(emu: EmulatorServer) -> None:
    with pytest.raises(AIGatewayInputError, match=r"filters\[0\]\.operator"):
        AIGatewayListLogsOperator(task_id="list", filters=[{"key": "model", "operator": "like", "value": "x"}]).execute(
            {}
        )
    with pytest.raises(AIGatewayInputError, match="naive datetime"):
        AIGatewayListLogsOperator(task_id="list", start=datetime(2026, 1, 1)).execute({})
    with pytest.raises(AIGatewayInputError, match="not a valid gateway id"):
        AIGatewayListLogsOperator(task_id="list", gateway_id="Bad/Gateway").execute({})
    assert emu.stats["total"] == 0


# ----------------------------------------------------------------------------------- export


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet"])
def test_export_data_interval_exact_ids_and_requests(
    emu: EmulatorServer, rec: Recorder, tmp_path: Path, fmt: str
) -> None:
    truth = emu.ids(GW, START, END)
    summary = export(f"file://{tmp_path}", format=fmt, rows_per_part=40)
    ids = exported_ids(summary)
    assert ids == truth and len(set(ids)) == IN_WINDOW
    assert summary["count"] == IN_WINDOW
    assert (summary["start"], summary["end"]) == ("2026-01-09T00:00:00Z", "2026-01-10T00:00:00Z")
    assert summary["files"] == len(summary["paths"]) and summary["bytes"] > 0
    assert emu.stats["total"] == 1 + 3  # count + ceil(120 / 50) pages
    assert "exported 120 of 120 logs" in rec.text("info")
    assert len(json.dumps(summary)) < 20_000


def test_export_rerun_rewrites_the_same_content_under_new_names(emu: EmulatorServer, tmp_path: Path) -> None:
    def plain(path: Path) -> str:
        return re.sub(r"-a[0-9a-f]{12}-", "-", str(path))

    first = export(f"file://{tmp_path}", rows_per_part=25)
    before = {plain(p): p.read_bytes() for p in tmp_path.rglob("part-*")}
    second = export(f"file://{tmp_path}", rows_per_part=25)
    after = {plain(p): p.read_bytes() for p in tmp_path.rglob("part-*")}
    assert before == after and [plain(p) for p in first["paths"]] == [plain(p) for p in second["paths"]]
    assert second["commit"] == {"mode": "replace", "added": IN_WINDOW, "kept": 0}
    on_disk = sorted(str(p) for p in tmp_path.rglob("part-*"))
    assert on_disk == sorted(u.removeprefix("file://") for u in second["paths"])


def test_export_memory_destination(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export("memory://aigw-unit/archive")
    assert summary["manifest_uri"].startswith("memory://aigw-unit/archive/gateway=my-gateway/_manifests/")
    assert exported_ids(summary) == emu.ids(GW, START, END)


def test_export_refuses_end_within_settle_lag_before_any_request(emu: EmulatorServer, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    op = AIGatewayExportLogsOperator(
        task_id="export", destination=f"file://{tmp_path}", start=now - timedelta(hours=1), end=now
    )
    with pytest.raises(AIGatewayInputError, match="later than now - settle_lag"):
        op.execute({})
    assert emu.stats["total"] == 0


def test_export_clamps_end_with_warning(emu: EmulatorServer, rec: Recorder, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    emu.add_logs(GW, [{"created_at": (now - timedelta(minutes=30)).isoformat()}])
    op = AIGatewayExportLogsOperator(
        task_id="export",
        destination=f"file://{tmp_path}",
        start=now - timedelta(hours=1),
        end=now + timedelta(hours=1),
        clamp_end=True,
        settle_lag=600,
    )
    summary = op.execute({})
    end = datetime.fromisoformat(summary["end"].replace("Z", "+00:00"))
    assert now - timedelta(minutes=11) < end <= datetime.now(UTC) - timedelta(minutes=10)
    assert summary["count"] == 1
    assert "end clamped to" in rec.text("warning")


def test_export_needs_an_interval_or_explicit_window(emu: EmulatorServer, tmp_path: Path) -> None:
    op = AIGatewayExportLogsOperator(task_id="export", destination=f"file://{tmp_path}")
    with pytest.raises(AIGatewayInputError, match="no data interval"):
        op.execute({})
    with pytest.raises(AIGatewayInputError, match="data interval is empty"):
        op.execute({"data_interval_start": START, "data_interval_end": START})
    with pytest.raises(AIGatewayInputError, match="give both start and end"):
        AIGatewayExportLogsOperator(task_id="e", destination=f"file://{tmp_path}", start=START).execute(interval())
    assert emu.stats["total"] == 0


def test_export_parse_time_validation() -> None:
    with pytest.raises(AIGatewayInputError, match="format must be one of"):
        AIGatewayExportLogsOperator(task_id="e", destination="file:///tmp/x", format="csv")
    with pytest.raises(AIGatewayInputError, match="body_concurrency must be an integer from 1 to 32"):
        AIGatewayExportLogsOperator(task_id="e", destination="file:///tmp/x", body_concurrency=0)
    with pytest.raises(AIGatewayInputError, match="settle_lag must be a timedelta"):
        AIGatewayExportLogsOperator(task_id="e", destination="file:///tmp/x", settle_lag="5m")  # type: ignore[arg-type]


def test_export_declares_static_destination_as_asset(tmp_path: Path) -> None:
    op = AIGatewayExportLogsOperator(task_id="e", destination="s3://aws_default@bucket/aigw")
    assert op.outlets == [Asset("s3://bucket/aigw")]
    templated = AIGatewayExportLogsOperator(task_id="t", destination="{{ params.dest }}", format="{{ params.f }}")
    assert templated.outlets == []


def test_export_asset_event_extra_carries_usage_totals_only(emu: EmulatorServer, tmp_path: Path) -> None:
    class Event:
        def __init__(self) -> None:
            self.extra: dict[str, Any] = {}

    op = AIGatewayExportLogsOperator(task_id="export", destination=f"file://{tmp_path}")
    [asset] = op.outlets
    events = {asset: Event()}
    summary = op.execute({**interval(), "outlet_events": events})
    extra = events[asset].extra
    assert extra["count"] == IN_WINDOW and "paths" not in extra
    assert extra["usage"] == summary["usage"]["totals"]
    assert extra["usage"]["logs"] == IN_WINDOW
    errors = sum(1 for log in emu.logs(GW) if log["id"] in set(emu.ids(GW, START, END)) and log["success"] is False)
    assert extra["usage"]["errors"] == errors
    # the XCom summary has the per-model figures, without the duration buckets
    assert sum(g["logs"] for g in summary["usage"]["by_model"]) == IN_WINDOW
    assert all("durations" not in g for g in summary["usage"]["by_model"])
    assert len(json.dumps(extra)) < 1024


def test_export_include_bodies_records_status_per_log(
    emu: EmulatorServer, rec: Recorder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = datetime(2026, 1, 5, tzinfo=UTC)
    ids = emu.add_logs(
        "bodies",
        [
            {
                "created_at": (day + timedelta(minutes=1)).isoformat(),
                "request_body": {"q": 1},
                "response_body": "data: x",
            },
            {"created_at": (day + timedelta(minutes=2)).isoformat(), "request_body": None, "response_body": None},
            {
                "created_at": (day + timedelta(minutes=3)).isoformat(),
                "request_body": {"q": 3},
                "response_body": {"a": 3},
            },
        ],
    )
    original = AIGatewayClient.get_log_response

    def flaky(self: AIGatewayClient, log_id: str, gateway_id: str | None = None) -> Any:
        if log_id == ids[2]:
            raise AIGatewayAPIError("GET .../response failed: 502", status=502)
        return original(self, log_id, gateway_id)

    monkeypatch.setattr(AIGatewayClient, "get_log_response", flaky)
    emu.reset_stats()
    summary = export(
        f"file://{tmp_path}",
        gateway_id="bodies",
        include_bodies=True,
        on_body_error="warn",
        start=day,
        end=day + timedelta(days=1),
    )
    rows = {r["id"]: r for r in iter_manifest_records(summary)}
    assert list(rows) == ids
    assert (rows[ids[0]]["request_body_status"], rows[ids[0]]["response_body_status"]) == ("collected", "collected")
    request, response = emu.get_bodies("bodies", ids[0])
    assert (json.loads(rows[ids[0]]["request_body"]), rows[ids[0]]["response_body"]) == (request, response)
    assert (rows[ids[0]]["request_body_format"], rows[ids[0]]["response_body_format"]) == ("json", "sse")
    assert rows[ids[1]]["request_body_format"] is None and rows[ids[2]]["response_body_format"] is None
    assert (rows[ids[1]]["request_body_status"], rows[ids[1]]["response_body_status"]) == (
        "not_collected",
        "not_collected",
    )
    assert rows[ids[2]]["request_body_status"] == "collected" and rows[ids[2]]["response_body_status"] == "failed"
    assert rows[ids[2]]["response_body"] is None
    assert summary["body_stats"]["response_body_status"] == {"collected": 1, "not_collected": 1, "failed": 1}
    assert emu.stats["total"] == 1 + 1 + 3 * 2 - 1  # count, 1 page, 2 bodies per log minus the faked failure
    assert "1 body fetch(es) failed" in rec.text("warning")


def test_export_after_archive_and_delete_adds_late_logs_and_delete_removes_exactly_them(
    emu: EmulatorServer, tmp_path: Path
) -> None:
    archived = emu.ids(GW, START, END)
    first = export(f"file://{tmp_path}")
    AIGatewayDeleteLogsOperator(task_id="d", manifest=first).execute({})
    files = {p: p.read_bytes() for p in tmp_path.rglob("part-*")}
    late = emu.add_logs(GW, [{"created_at": (START + timedelta(hours=h, minutes=7)).isoformat()} for h in range(5)])
    second = export(f"file://{tmp_path}")
    assert second["commit"] == {"mode": "union", "added": 5, "kept": IN_WINDOW}
    assert second["count"] == IN_WINDOW + 5
    assert sorted(exported_ids(second)) == sorted([*archived, *late])
    assert {p: p.read_bytes() for p in tmp_path.rglob("part-*") if p in files} == files, "archived files kept"
    outside = emu.ids(GW, END)
    assert AIGatewayDeleteLogsOperator(task_id="d", manifest=second).execute({}) == 5
    assert emu.ids(GW, START, END) == [] and emu.ids(GW, END) == outside
    # overwrite_smaller replaces the archive with what matches now: nothing.
    assert export(f"file://{tmp_path}", overwrite_smaller=True)["count"] == 0


def test_export_shrink_guard_when_the_walk_yields_fewer_than_counted(
    emu: EmulatorServer, tmp_path: Path, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = export(f"file://{tmp_path}")
    oldest = emu.ids(GW, START, END)[0]
    original = AIGatewayClient.iter_logs

    def retention_during_walk(self: AIGatewayClient, *args: Any, **kwargs: Any) -> Any:
        # The gateway drops its oldest log after count_logs, before the walk reaches it.
        return (log for log in original(self, *args, **kwargs) if log["id"] != oldest)

    monkeypatch.setattr(AIGatewayClient, "iter_logs", retention_during_walk)
    second = export(f"file://{tmp_path}")
    assert second["count"] == IN_WINDOW and second["commit"]["mode"] == "union"
    assert sorted(exported_ids(second)) == sorted(exported_ids(first))
    assert "120 logs matched when the export started, 119 were read" in rec.text("warning")


# ----------------------------------------------------------------------------------- delete


def test_delete_refuses_without_filters_or_window() -> None:
    with pytest.raises(AIGatewayInputError, match="refusing to delete with neither filters nor a start/end window"):
        AIGatewayDeleteLogsOperator(task_id="d")
    with pytest.raises(AIGatewayInputError, match="limit must be an integer from 1 to 10000"):
        AIGatewayDeleteLogsOperator(task_id="d", start=START, limit=10_001)


def test_delete_by_window_deletes_the_listed_ids_in_batches(emu: EmulatorServer, rec: Recorder) -> None:
    outside = emu.ids(GW, END)
    deleted = AIGatewayDeleteLogsOperator(task_id="d", start=START, end=END, limit=50).execute({})
    assert deleted == IN_WINDOW
    assert emu.ids(GW, START, END) == [] and emu.ids(GW) == outside
    # DELETEs: the canary (5 ids), then the other 115 in batches of at most 50
    assert emu.stats["delete"] == 1 + 3
    # lists: count, keyset walk of 120 (3 pages), canary slice before and after, final count
    assert emu.stats["list"] == 1 + 3 + 2 + 1


def test_delete_dry_run_deletes_nothing(emu: EmulatorServer, rec: Recorder) -> None:
    op = AIGatewayDeleteLogsOperator(
        task_id="d", filters=[{"key": "success", "operator": "eq", "value": [False]}], dry_run=True
    )
    failed = sum(1 for x in emu.logs(GW) if x["success"] is False)
    assert op.execute({}) == failed
    assert emu.stats["delete"] == 0 and emu.count(GW) == IN_WINDOW + OUTSIDE
    assert f"dry run: {failed} logs would be deleted" in rec.text("info")


def test_delete_with_manifest_deletes_exactly_the_export(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export(f"file://{tmp_path}")
    outside = emu.ids(GW, END)
    emu.reset_stats()
    assert AIGatewayDeleteLogsOperator(task_id="d", manifest=summary).execute({}) == IN_WINDOW
    assert emu.ids(GW) == outside
    # count, keyset walk proving every match exported (3 pages), canary slice listed before and
    # after its DELETE, one DELETE for the other 115 ids, final count
    assert emu.stats["list"] == 1 + 3 + 2 + 1 and emu.stats["delete"] == 2
    assert emu.stats["total"] == 9


def test_delete_with_manifest_accepts_its_url_and_rendered_text(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export(f"file://{tmp_path}")
    op = AIGatewayDeleteLogsOperator(task_id="d", manifest=str(summary), dry_run=True)
    assert op.execute({}) == IN_WINDOW
    op = AIGatewayDeleteLogsOperator(task_id="d", manifest=summary["manifest_uri"], dry_run=True)
    assert op.execute({}) == IN_WINDOW


def test_delete_refuses_when_late_logs_arrived(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export(f"file://{tmp_path}")
    emu.add_logs(GW, [{"created_at": (START + timedelta(hours=5)).isoformat()}])
    before = emu.ids(GW)
    emu.reset_stats()
    with pytest.raises(AIGatewayLateLogsError) as err:
        AIGatewayDeleteLogsOperator(task_id="d", manifest=summary).execute({})
    assert "121 logs match" in str(err.value) and "the export wrote 120" in str(err.value)
    assert "Nothing was deleted. Re-run the export for this window" in str(err.value)
    assert emu.ids(GW) == before and emu.stats["delete"] == 0 and emu.stats["total"] == 1


def test_delete_with_manifest_after_partial_delete_checks_ids(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export(f"file://{tmp_path}")
    AIGatewayDeleteLogsOperator(task_id="d", start=START, end=START + timedelta(hours=12)).execute({})
    left = len(emu.ids(GW, START, END))
    assert 0 < left < IN_WINDOW
    assert AIGatewayDeleteLogsOperator(task_id="d", manifest=summary).execute({}) == left
    assert emu.ids(GW, START, END) == []


def test_delete_with_manifest_refuses_unexported_logs_among_fewer(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export(f"file://{tmp_path}")
    AIGatewayDeleteLogsOperator(task_id="d", start=START, end=START + timedelta(hours=12)).execute({})
    emu.add_logs(GW, [{"created_at": (START + timedelta(hours=13)).isoformat()}])
    before = emu.ids(GW)
    with pytest.raises(AIGatewayLateLogsError, match="are not in the export"):
        AIGatewayDeleteLogsOperator(task_id="d", manifest=summary).execute({})
    assert emu.ids(GW) == before


def test_delete_manifest_excludes_filters_and_other_gateways(emu: EmulatorServer, tmp_path: Path) -> None:
    summary = export(f"file://{tmp_path}")
    emu.reset_stats()
    with pytest.raises(AIGatewayInputError, match=r"start 2026-01-09T01:00:00.000Z differs from the manifest's"):
        AIGatewayDeleteLogsOperator(task_id="d", manifest=summary, start=START + timedelta(hours=1)).execute({})
    with pytest.raises(AIGatewayInputError, match=r"filters .* differ from the manifest's \[\]"):
        AIGatewayDeleteLogsOperator(
            task_id="d", manifest=summary, filters={"key": "model", "operator": "eq", "value": "x"}
        ).execute({})
    with pytest.raises(AIGatewayInputError, match="differs from the manifest's"):
        AIGatewayDeleteLogsOperator(task_id="d", manifest=summary, gateway_id="other").execute({})
    assert emu.stats["total"] == 0
    assert read_manifest(summary)["count"] == IN_WINDOW


# ------------------------------------------------------------------------------------ patch


def test_patch_validates_at_parse_time() -> None:
    with pytest.raises(AIGatewayInputError, match="feedback must be a number from -1 to 1"):
        AIGatewayPatchLogOperator(task_id="p", log_id="a", feedback=2)
    with pytest.raises(AIGatewayInputError, match="nothing to patch"):
        AIGatewayPatchLogOperator(task_id="p", log_id="a")
    with pytest.raises(AIGatewayInputError, match=r"\['score'\] given both a value and in clear="):
        AIGatewayPatchLogOperator(task_id="p", log_id="a", score=5, clear=["score"])


def test_patch_list_xcom_ids(emu: EmulatorServer, rec: Recorder) -> None:
    listed = AIGatewayListLogsOperator(task_id="l", start=START, end=END, fields=["id"], max_results=5).execute({})
    emu.reset_stats()
    result = AIGatewayPatchLogOperator(
        task_id="p", log_id=listed, feedback=-1, score=12.5, metadata={"triage": "x"}
    ).execute({})
    assert result == {"patched": 5, "log_ids": 5}
    assert emu.stats["patch"] == 5 and emu.stats["total"] == 5
    for item in listed:
        log = emu.get_log(GW, item["id"])
        assert log is not None
        assert (log["feedback"], log["score"], json.loads(log["metadata"])) == (-1, 12.5, {"triage": "x"})
    AIGatewayPatchLogOperator(task_id="c", log_id=listed[0]["id"], clear=["score"]).execute({})
    cleared = emu.get_log(GW, listed[0]["id"])
    assert cleared is not None and cleared.get("score") is None and cleared["feedback"] == -1


def test_patch_reports_per_id_failures(emu: EmulatorServer, rec: Recorder) -> None:
    good = emu.ids(GW, START, END)[:2]
    with pytest.raises(AIGatewayError, match=r"1 of 3 patch\(es\) failed \(2 succeeded\): missing-id: ") as err:
        AIGatewayPatchLogOperator(task_id="p", log_id=[good[0], "missing-id", good[1]], feedback=1).execute({})
    assert "404" in str(err.value)
    assert all(emu.get_log(GW, i)["feedback"] == 1 for i in good)  # type: ignore[index]


def test_patch_bad_values_fail_before_any_request(emu: EmulatorServer) -> None:
    with pytest.raises(AIGatewayInputError, match=r"log_id\[1\]"):
        AIGatewayPatchLogOperator(task_id="p", log_id=["ok", "../etc"], feedback=1).execute({})
    with pytest.raises(AIGatewayInputError, match="metadata holds at most 5 entries"):
        AIGatewayPatchLogOperator(task_id="p", log_id="ok", metadata={str(i): i for i in range(6)}).execute({})
    assert emu.stats["total"] == 0


def test_patch_empty_id_list_is_a_no_op(emu: EmulatorServer, rec: Recorder) -> None:
    assert AIGatewayPatchLogOperator(task_id="p", log_id=[], feedback=1).execute({}) == {"patched": 0, "log_ids": 0}
    assert emu.stats["total"] == 0


def test_rendered_fields_and_reprs_never_hold_the_token(emu: EmulatorServer, tmp_path: Path) -> None:
    ops = [
        AIGatewayListLogsOperator(task_id="l"),
        AIGatewayExportLogsOperator(task_id="e", destination=f"file://{tmp_path}"),
        AIGatewayDeleteLogsOperator(task_id="d", start=START),
        AIGatewayPatchLogOperator(task_id="p", log_id="x", feedback=1),
    ]
    for op in ops:
        text = (
            repr(op)
            + repr(op.hook)
            + repr(op.hook.client)
            + json.dumps({f: str(getattr(op, f)) for f in op.template_fields})
        )
        assert emu.token not in text


# ----------------------------------------------------------------------- one way to the API


def hook_calls_from_operators(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hook methods the operators' own code calls, in order (each recorded once, by name)."""
    calls: list[str] = []
    operators_file = sys.modules[AIGatewayListLogsOperator.__module__].__file__
    for name, method in list(vars(AIGatewayHook).items()):
        if name.startswith("_") or not isinstance(method, FunctionType):
            continue

        def recording(*args: Any, _name: str = name, _method: Any = method, **kwargs: Any) -> Any:
            if sys._getframe(1).f_code.co_filename == operators_file:
                calls.append(_name)
            return _method(*args, **kwargs)

        monkeypatch.setattr(AIGatewayHook, name, recording)
    return calls


def test_every_operator_reaches_the_api_only_through_hook_methods(
    emu: EmulatorServer, tmp_path: Path, rec: Recorder, monkeypatch: pytest.MonkeyPatch, client_accessors: set[str]
) -> None:
    calls = hook_calls_from_operators(monkeypatch)
    listed = AIGatewayListLogsOperator(task_id="l", start=START, end=END, max_results=5, fields=["id"]).execute({})
    assert calls == ["with_gateway", "list_logs", "count_logs"]
    calls.clear()
    summary = export(f"file://{tmp_path}", include_bodies=True)
    assert calls == ["run_export"]
    calls.clear()
    AIGatewayPatchLogOperator(task_id="p", log_id=listed, score=1).execute({})
    assert calls == ["resolve_gateway_id", "patch_logs"]
    calls.clear()
    AIGatewayDeleteLogsOperator(task_id="d", start=START, end=START + timedelta(hours=6)).execute({})
    assert calls == ["delete_matching"]
    calls.clear()
    AIGatewayDeleteLogsOperator(task_id="d", manifest=summary).execute({})
    assert calls == ["delete_exported"]
    assert emu.ids(GW, START, END) == [] and emu.stats["patch"] == 5
    # the client (every request's way out) is only ever read by the hook's methods
    assert client_accessors == {"hooks/ai_gateway.py"}


# ----------------------------------------------------------------------- templated connection


@pytest.mark.parametrize(
    "make",
    [
        lambda dest: AIGatewayListLogsOperator(task_id="l", start=START, end=END, max_results=5),
        lambda dest: AIGatewayExportLogsOperator(task_id="e", destination=dest),
        lambda dest: AIGatewayDeleteLogsOperator(task_id="d", start=START, end=END, dry_run=True),
        lambda dest: AIGatewayPatchLogOperator(task_id="p", log_id=[], score=1),
    ],
    ids=["list", "export", "delete", "patch"],
)
def test_aigw_conn_id_is_templated_and_the_hook_uses_the_rendered_one(
    emu: EmulatorServer, tmp_path: Path, rec: Recorder, monkeypatch: pytest.MonkeyPatch, make: Any
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_RENDERED_AIGW", os.environ.pop("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"))
    op = make(f"file://{tmp_path}")
    op.aigw_conn_id = "{{ params.conn }}"
    assert "aigw_conn_id" in op.template_fields
    context = {**interval(), "params": {"conn": "rendered_aigw"}}
    op.render_template_fields(context)
    op.execute(context)
    assert op.hook.aigw_conn_id == "rendered_aigw"
    assert op.hook.resolve_gateway_id() == GW  # the rendered connection's gateway


# ----------------------------------------------------------------------- renamed parameters


@pytest.mark.parametrize("name", ["allow_shrink", "overwrite_smaller"])
def test_export_allow_shrink_and_its_old_name_overwrite_smaller(emu: EmulatorServer, tmp_path: Path, name: str) -> None:
    export(f"file://{tmp_path}")
    AIGatewayDeleteLogsOperator(task_id="d", start=START, end=START + timedelta(hours=6)).execute({})
    left = emu.ids(GW, START, END)
    assert 0 < len(left) < IN_WINDOW
    union = export(f"file://{tmp_path}")
    assert union["commit"]["mode"] == "union" and union["count"] == IN_WINDOW
    shrunk = export(f"file://{tmp_path}", **{name: True})
    assert shrunk["commit"]["mode"] == "replace" and sorted(exported_ids(shrunk)) == sorted(left)


@pytest.mark.parametrize("name", ["batch_size", "limit"])
def test_delete_batch_size_and_its_old_name_limit(emu: EmulatorServer, rec: Recorder, name: str) -> None:
    with pytest.raises(AIGatewayInputError, match=f"{name} must be an integer from 1 to 10000, got 10001"):
        AIGatewayDeleteLogsOperator(task_id="d", start=START, **{name: 10_001})
    op = AIGatewayDeleteLogsOperator(task_id="d", start=START, end=END, **{name: 30})
    assert op.batch_size == 30
    assert op.execute({}) == IN_WINDOW
    assert emu.ids(GW, START, END) == []
    assert emu.stats["delete"] == 1 + 4  # the canary (5 ids), then 115 ids in batches of at most 30


def test_renamed_parameters_refuse_both_names() -> None:
    with pytest.raises(AIGatewayInputError, match="pass allow_shrink= or its old name overwrite_smaller=, not both"):
        AIGatewayExportLogsOperator(task_id="e", destination="file:///tmp/x", allow_shrink=True, overwrite_smaller=True)
    with pytest.raises(AIGatewayInputError, match="pass batch_size= or its old name limit=, not both"):
        AIGatewayDeleteLogsOperator(task_id="d", start=START, batch_size=50, limit=50)
    assert AIGatewayExportLogsOperator(task_id="e", destination="file:///tmp/x").allow_shrink is False
    assert AIGatewayDeleteLogsOperator(task_id="d", start=START).batch_size == 10_000


def test_delete_dry_run_is_stored_apart_from_the_base_operators_dry_run_method() -> None:
    op = AIGatewayDeleteLogsOperator(task_id="d", start=START, dry_run=True)
    assert op.is_dry_run is True and callable(op.dry_run)


# ----------------------------------------------------------------------- validated once


def test_the_query_and_the_patch_are_validated_once(
    emu: EmulatorServer, rec: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    for cls in (LogQuery, LogPatch):
        original = vars(cls)["of"].__func__

        def counting(klass: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            built.append(klass.__name__)
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "of", classmethod(counting))
    checked = []
    original_normalize = query_module.normalize_filters

    def normalize(*args: Any, **kwargs: Any) -> Any:
        checked.append(args)
        return original_normalize(*args, **kwargs)

    monkeypatch.setattr(query_module, "normalize_filters", normalize)
    static = AIGatewayListLogsOperator(task_id="l", filters={"key": "success", "operator": "eq", "value": True})
    static.execute({})
    templated = AIGatewayListLogsOperator(task_id="l", filters="{{ params.f }}")
    templated.render_template_fields({"params": {"f": [{"key": "success", "operator": "eq", "value": [True]}]}})
    templated.execute({})
    assert built == ["LogQuery", "LogQuery"] and len(checked) == 2  # once each: at creation, once rendered
    built.clear()
    ids = emu.ids(GW, START, END)[:3]
    AIGatewayPatchLogOperator(task_id="p", log_id=ids, score=7, metadata={"k": "v"}).execute({})
    assert built == ["LogPatch"] and emu.stats["patch"] == 3
