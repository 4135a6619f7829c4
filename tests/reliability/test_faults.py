"""Faults survived: exports and deletes against a misbehaving gateway, exact against ground truth.

Each case: the export's id set equals the emulator's ground truth exactly, with no duplicates,
and the delete removes nothing that was not exported.
"""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayLateLogsError, AIGatewayRateLimitError
from airflow_provider_aigw.export import read_manifest
from airflow_provider_aigw.operators.ai_gateway import AIGatewayDeleteLogsOperator, AIGatewayExportLogsOperator

from .conftest import (
    END,
    GW,
    START,
    assert_exact,
    comparable,
    export_context,
    exported_ids,
    files_of,
    use_connection,
)

pytestmark = pytest.mark.integration


def export(dest: Path, **kwargs: Any) -> dict[str, Any]:
    op = AIGatewayExportLogsOperator(task_id="export", destination=f"file://{dest}", **kwargs)
    summary: dict[str, Any] = op.execute(export_context())
    return summary


def delete(summary: dict[str, Any], **kwargs: Any) -> int:
    deleted: int = AIGatewayDeleteLogsOperator(task_id="delete", manifest=summary, **kwargs).execute({})
    return deleted


def manifest_path(dest: Path) -> Path:
    (found,) = (dest / f"gateway={GW}" / "_manifests").glob("*.json")
    return found


# ----------------------------------------------------------------- 5xx, drops and jitter


@pytest.mark.parametrize(("seed", "fmt"), [(1, "jsonl.gz"), (2, "parquet"), (5, "jsonl")])
def test_export_and_delete_survive_5xx_drops_and_jitter(make_emulator, tmp_path, seed, fmt):
    server = make_emulator(in_window=1000)
    truth = server.ids(GW, START, END)
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    server.faults.update(error_rate=0.2, drop_rate=0.05, latency_jitter_ms=4, seed=seed)

    summary = export(tmp_path, format=fmt)
    assert_exact(exported_ids(summary), truth)
    assert summary["count"] == len(truth) == 1000
    export_faults = server.stats["served_5xx"] + server.stats["dropped"]

    # limit=50: several DELETE batches, each of them faulted too
    assert delete(summary, limit=50) == len(truth)
    assert server.ids(GW) == outside  # the window is gone, nothing else
    assert server.stats["served_5xx"] > 0 and server.stats["dropped"] > 0
    assert server.stats["served_5xx"] + server.stats["dropped"] > export_faults  # the delete was faulted too
    assert not list(tmp_path.rglob("*.tmp"))


def test_bodies_survive_faults_and_record_absent_bodies_distinctly(make_emulator, tmp_path):
    server = make_emulator(in_window=0, before=0, after=0)
    at = [(START + timedelta(minutes=7 * i)).isoformat() for i in range(60)]
    ids = server.add_logs(
        GW,
        [
            {"created_at": t, "request_body": None, "response_body": None} if i % 4 == 0 else {"created_at": t}
            for i, t in enumerate(at)
        ],
    )
    server.faults.update(error_rate=0.2, drop_rate=0.05, latency_jitter_ms=2, seed=4)
    summary = export(tmp_path, include_bodies=True, format="jsonl")
    from airflow_provider_aigw.export import iter_manifest_records

    rows = {r["id"]: r for r in iter_manifest_records(summary, verify=True)}
    assert_exact(list(rows), ids)
    for log_id in ids:
        request, response = server.get_bodies(GW, log_id)
        row = rows[log_id]
        assert row["request_body_status"] == ("not_collected" if request is None else "collected")
        assert row["response_body_status"] == ("not_collected" if response is None else "collected")
    assert summary["body_stats"]["request_body_status"] == {"collected": 45, "not_collected": 15}
    # body fetches run in 4 threads, so which request fails varies; 5xx among ~120 is certain
    assert server.stats["served_5xx"] > 0


# ------------------------------------------------------------------------- 429 lock-out


def test_lockout_mid_export_is_waited_out_within_the_deadline(make_emulator, tmp_path):
    server = make_emulator()
    truth = server.ids(GW, START, END)
    # The 9th request (count + 7 pages, then the 8th page) trips a 1 s lock-out.
    server.faults.update(rate_limit_requests=8, rate_limit_period_s=3600, lockout_s=1)
    summary = export(tmp_path)
    assert_exact(exported_ids(summary), truth)
    assert server.stats["served_429"] >= 1


def test_lockout_beyond_the_deadline_fails_cleanly_and_a_retry_completes(make_emulator, tmp_path, monkeypatch):
    server = make_emulator()
    truth = server.ids(GW, START, END)
    use_connection(monkeypatch, server, retry_deadline=2)  # Retry-After 30 s > deadline: give up at once
    server.faults.update(rate_limit_requests=6, rate_limit_period_s=3600, lockout_s=30)
    dest, clean = tmp_path / "dest", tmp_path / "clean"

    with pytest.raises(AIGatewayRateLimitError) as failure:
        export(dest)
    assert failure.value.status == 429 and failure.value.retry_after == 30
    assert server.stats["served_429"] == 1  # no hammering during the lock-out
    assert not list((dest / f"gateway={GW}" / "_manifests").glob("*.json"))  # nothing committed
    # A failed attempt removes the parts it wrote and releases the window's lock.
    assert not [p for p in dest.rglob("*") if p.is_file()]

    server.reset_stats()  # the lock-out is over
    server.faults.update(rate_limit_requests=None)
    summary = export(dest)
    assert_exact(exported_ids(summary), truth)
    export(clean)
    assert comparable(files_of(dest)) == comparable(files_of(clean))  # no stale part, no leftover


# ------------------------------------------------------------------------------ churn


def test_no_log_present_throughout_is_skipped_or_repeated_while_the_gateway_churns(make_emulator, tmp_path):
    # The window holds the gateway's oldest logs; retention deletes them ahead of the cursor.
    server = make_emulator(in_window=1500, before=0, after=0)
    before = set(server.ids(GW, START, END))
    server.faults.update(churn_insert_per_request=30, capacity=1500)
    summary = export(tmp_path)
    after = set(server.ids(GW, START, END))
    ids = exported_ids(summary)
    assert len(before - after) > 500, "retention must delete logs ahead of the cursor"
    assert len(ids) == len(set(ids))
    assert before & after <= set(ids) <= before  # present throughout: exported; nothing invented

    # Retention keeps deleting exported logs (and, once the window is empty, the oldest logs
    # after it); the delete removes what is left of the window, all of it exported.
    created = {log["id"]: log["created_at"] for log in server.logs(GW)}
    fresh = set(server.ids(GW, END))
    remaining = set(server.ids(GW, START, END))
    server.reset_stats()
    deleted = delete(summary)
    assert server.ids(GW, START, END) == []
    assert deleted <= len(remaining) and remaining <= set(ids)
    for request in server.stats.requests:  # every DELETE named exported ids inside the window
        if request["kind"] == "delete":
            filters = json.loads(request["query"]["filters"][0])
            assert {i for f in filters if f["key"] == "id" for i in f["value"]} <= set(ids)
            bounds = [f["value"][0] for f in filters if f["key"] == "created_at"]
            assert min(bounds) >= "2026-01-08T23:59:59.999Z" and max(bounds) <= "2026-01-10T00:00:00.000Z"
    # logs after the window that vanished went by retention, oldest first: none newer than a survivor
    survivors = fresh & set(server.ids(GW))
    gone = fresh - survivors
    assert not gone or max(created[i] for i in gone) <= min(created[i] for i in survivors)


# ------------------------------------------------------------------------- late logs


def late_log(hours: float) -> dict[str, Any]:
    return {"created_at": (START + timedelta(hours=hours)).isoformat()}


def test_late_log_before_the_delete_makes_it_refuse_and_delete_nothing(make_emulator, tmp_path):
    server = make_emulator()
    summary = export(tmp_path)
    server.add_logs(GW, [late_log(3.5)])
    before = server.ids(GW)
    server.reset_stats()
    with pytest.raises(AIGatewayLateLogsError, match="Nothing was deleted"):
        delete(summary)
    assert server.ids(GW) == before and server.stats["delete"] == 0


def test_late_log_arriving_while_the_delete_runs_is_never_deleted(make_emulator, tmp_path):
    server = make_emulator()
    summary = export(tmp_path)
    exported = set(exported_ids(summary))
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    late_id = "0193a7c2-5e1f-7abc-8def-0000000000aa"
    # Visible once the delete has proved the window (a count, 600/50 pages and the empty one that
    # ends the walk) and listed the canary's slice: a window-wide DELETE would take it along.
    server.schedule_late_logs(GW, [{**late_log(0.1), "id": late_id}], after_requests=1 + 13 + 1)
    with pytest.raises(AIGatewayLateLogsError):
        delete(summary)
    remaining = server.ids(GW)
    assert late_id in remaining  # never exported, never deleted
    assert set(remaining) - {late_id} == set(outside)
    assert exported.isdisjoint(remaining)


def test_same_count_but_other_logs_deletes_no_unexported_log(make_emulator, tmp_path):
    """Retention removed one exported log and one late log arrived: the count matches, the ids do not."""
    server = make_emulator()
    summary = export(tmp_path)
    exported = exported_ids(summary)
    gw = server._gw(GW)
    gw.delete_positions([gw.find(exported[0])])
    (late_id,) = server.add_logs(GW, [late_log(5)])
    assert len(server.ids(GW, START, END)) == len(exported)
    before = server.ids(GW)
    with pytest.raises(AIGatewayLateLogsError, match=late_id):
        delete(summary)
    assert server.ids(GW) == before  # sets, not counts: refused before any DELETE


# -------------------------------------------------------------------- emulator restart


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_emulator_restarted_between_export_and_delete(make_emulator, tmp_path):
    server = make_emulator(port=free_port())
    truth = server.ids(GW, START, END)
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    summary = export(tmp_path)
    port = server.port
    server.stop()
    server.start()  # same port, same data
    assert server.port == port
    assert delete(summary) == len(truth)
    assert server.ids(GW) == outside


def test_emulator_restarted_with_other_logs_deletes_nothing(make_emulator, tmp_path):
    """After the restart the window holds as many logs as were exported, but none of them."""
    server = make_emulator(port=free_port())
    summary = export(tmp_path)
    server.stop()
    gw = server._gw(GW)
    gw.delete_positions(range(len(gw)))
    server.seed_logs(GW, 600, START, END, seed=99)
    server.start()
    before = server.ids(GW)
    assert len(server.ids(GW, START, END)) == summary["count"]
    with pytest.raises(AIGatewayLateLogsError):
        delete(summary)
    assert server.ids(GW) == before
    assert read_manifest(summary)["count"] == 600
