"""export/commit.py: the commit protocol on file:// and memory://: attempt-owned parts, the window
lock, the shrink guard at commit time, unions over archived windows, overlapping windows,
collection.

Two processes and S3 (moto) are in tests/integration/test_export_commit_stores.py.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayExportConflictError
from airflow_provider_aigw.export import export_logs, iter_manifest_records, read_manifest
from airflow_provider_aigw.export.commit import IdIndex, WindowLock
from airflow_provider_aigw.export.destination import Destination, open_destination
from tests.export_helpers import (
    END,
    FORMATS,
    START,
    TAG,
    Dest,
    Gate,
    Tracking,
    all_ids,
    assert_exact,
    assert_exact_manifest_only,
    lock_path,
    make_log,
    manifest_path,
    plain,
    run,
    spread_logs,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("fmt", FORMATS)
def test_rerun_same_input_same_files_and_checksums(dest: Dest, fmt: str) -> None:
    logs = spread_logs(120)
    first = run(logs, dest, format=fmt, rows_per_part=9)
    content1 = {plain(k): v for k, v in dest.parts().items()}
    second = run(logs, dest, format=fmt, rows_per_part=9)
    content2 = {plain(k): v for k, v in dest.parts().items()}
    # Each attempt writes its own names; the content is byte-identical and the first attempt's
    # parts are gone.
    assert content1 == content2
    assert set(dest.parts()) == {f["path"] for f in second.manifest["files"]}
    assert first.manifest["attempt"] != second.manifest["attempt"]
    assert [(plain(f["path"]), f["sha256"], f["bytes"]) for f in first.manifest["files"]] == [
        (plain(f["path"]), f["sha256"], f["bytes"]) for f in second.manifest["files"]
    ]
    assert first.manifest_uri == second.manifest_uri
    assert second.manifest["commit"]["mode"] == "replace"


def test_rerun_with_fewer_logs_removes_stale_parts(dest: Dest) -> None:
    logs = spread_logs(150)  # ~32 hours
    first = run(logs, dest, format="jsonl.gz", rows_per_part=3, partition_by="hour")
    assert len(first.manifest["files"]) > 20
    fewer = logs[:10]
    second = run(fewer, dest, format="jsonl.gz", rows_per_part=3, partition_by="hour", allow_shrink=True)
    parts = dest.parts()
    assert set(parts) == {f["path"] for f in second.manifest["files"]}
    assert sorted(all_ids(second)) == sorted(log["id"] for log in fewer)
    manifests = [k for k in dest.files() if "/_manifests/" in k]
    assert manifests == [manifest_path()]
    # emptied partition directories are pruned where directories exist
    hours = {k.rsplit("/", 1)[0] for k in parts}
    assert set(dest.fs.ls(f"{dest.root}/gateway=gw-1/date=2026-11-26", detail=False)) == {
        f"{dest.root}/gateway=gw-1/{h.split('/', 1)[1]}" for h in hours
    }
    assert not dest.fs.exists(f"{dest.root}/gateway=gw-1/date=2026-11-27")


def test_formats_side_by_side_keep_both(dest: Dest) -> None:
    logs = spread_logs(40)
    first = run(logs, dest, format="jsonl.gz", rows_per_part=7)
    second = run(logs, dest, format="parquet", rows_per_part=7)
    again = run(logs, dest, format="jsonl.gz", rows_per_part=7)  # re-run of one format leaves the other
    assert first.manifest_uri != second.manifest_uri == read_manifest(second.manifest_uri)["manifest_uri"]
    assert set(dest.parts()) == {f["path"] for r in (second, again) for f in r.manifest["files"]}
    for result in (second, again):
        assert sorted(r["id"] for r in iter_manifest_records(result.manifest_uri, verify=True)) == sorted(
            log["id"] for log in logs
        )
    assert {k for k in dest.files() if "/_manifests/" in k} == {manifest_path("jsonl.gz"), manifest_path("parquet")}


def test_other_windows_are_left_alone(dest: Dest) -> None:
    logs = spread_logs(30)
    a = run(logs, dest, format="jsonl")
    b = run(logs[:5], dest, format="jsonl", start=END, end=END + timedelta(days=1))
    files = dest.parts()
    assert {f["path"] for f in a.manifest["files"]} <= set(files)
    assert {f["path"] for f in b.manifest["files"]} <= set(files)
    assert a.manifest_uri != b.manifest_uri
    # And the earlier window's manifest is still readable and valid.
    assert read_manifest(a.manifest_uri)["count"] == 30


@pytest.mark.parametrize("fmt", FORMATS)
def test_crash_mid_export_leaves_no_manifest_then_rerun_is_exact(dest: Dest, fmt: str) -> None:
    logs = spread_logs(200)
    # An earlier complete attempt with different (more) logs: its manifest must not survive.
    earlier = run([*logs, make_log(5000, END - timedelta(minutes=1))], dest, format=fmt, rows_per_part=4)
    assert earlier.manifest["count"] == 201

    crashing = Tracking(logs, fail_after=77)
    committed = dest.files()
    with pytest.raises(RuntimeError, match="simulated crash"):
        export_logs(crashing, dest.url, gateway_id="gw-1", start=START, end=END, format=fmt, rows_per_part=4)
    assert crashing.consumed == 77
    # The committed export is untouched: same manifest, same files, no lock, no temp files.
    assert dest.files() == committed
    assert sorted(r["id"] for r in iter_manifest_records(earlier.manifest_uri, verify=True)) == sorted(
        log["id"] for log in [*logs, make_log(5000, END - timedelta(minutes=1))]
    )

    final = run(logs, dest, format=fmt, rows_per_part=4, allow_shrink=True)
    assert final.manifest["count"] == 200
    assert set(dest.parts()) == {f["path"] for f in final.manifest["files"]}
    assert all("/." not in k for k in dest.files()), "no temp files left"
    ids = all_ids(final)
    assert sorted(ids) == sorted(log["id"] for log in logs) and len(ids) == len(set(ids))
    for f in final.manifest["files"]:
        assert hashlib.sha256(dest.parts()[f["path"]]).hexdigest() == f["sha256"]


def test_empty_rerun_removes_earlier_parts(dest: Dest) -> None:
    run(spread_logs(20), dest)
    assert dest.parts()
    result = run([], dest, allow_shrink=True)
    assert dest.parts() == {}
    assert result.manifest["count"] == 0


def test_manifest_without_body_fields_has_no_body_stats(fdest: Dest) -> None:
    assert "body_stats" not in run(spread_logs(3), fdest).manifest


@pytest.mark.parametrize("fmt", FORMATS)
def test_concurrent_export_of_one_window_is_refused_and_the_first_commits(dest: Dest, fmt: str) -> None:
    logs_a = spread_logs(60)
    logs_b = [make_log(1000 + i, START + timedelta(minutes=7 * i)) for i in range(40)]
    gate = Gate(logs_a, after=25)
    outcome: dict[str, Any] = {}

    def export_a() -> None:
        try:
            outcome["a"] = export_logs(gate, dest.url, gateway_id="gw-1", start=START, end=END, format=fmt,
                                       rows_per_part=7)
        except BaseException as exc:  # pragma: no cover - reported below
            outcome["a"] = exc

    thread = threading.Thread(target=export_a)
    thread.start()
    assert gate.reached.wait(60)
    before = dest.files()
    with pytest.raises(AIGatewayExportConflictError, match=r"another export of this window and format is running"):
        run(logs_b, dest, format=fmt, rows_per_part=7)
    assert dest.files() == before, "the refused export wrote nothing and removed nothing"
    gate.go.set()
    thread.join(60)
    assert not isinstance(outcome["a"], BaseException), outcome["a"]
    assert_exact(outcome["a"], logs_a, dest)


def test_export_running_inside_another_cannot_corrupt_the_committed_one(dest: Dest) -> None:
    """Issue 15's interleaving: A commits, B starts re-exporting, A' starts inside B."""
    logs = spread_logs(30)
    first = run(logs, dest, rows_per_part=4)
    gate = Gate([*logs, make_log(99, START + timedelta(hours=20))], after=10)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault(
            "b", export_logs(gate, dest.url, gateway_id="gw-1", start=START, end=END, rows_per_part=4)
        )
    )
    thread.start()
    assert gate.reached.wait(60)
    # Meanwhile the committed manifest still verifies against its own rows.
    assert_exact_manifest_only(first.manifest_uri, logs)
    with pytest.raises(AIGatewayExportConflictError):
        run(logs[:2], dest, rows_per_part=4)
    assert_exact_manifest_only(first.manifest_uri, logs)
    gate.go.set()
    thread.join(60)
    assert_exact(outcome["b"], gate.logs, dest)
    assert outcome["b"].manifest["commit"]["mode"] == "replace"


def test_leftover_lock_of_another_owner_is_refused_until_its_lease_ends(dest: Dest) -> None:
    run(spread_logs(5), dest, owner="dag/task/run-1/-1")
    lock = {"attempt": "0123456789ab", "owner": "dag/task/run-1/-1", "acquired_at": "2026-11-28T00:00:00Z",
            "expires_at": "2999-01-01T00:00:00Z"}
    dest.fs.pipe(f"{dest.root}/{lock_path()}", json.dumps(lock).encode())
    with pytest.raises(AIGatewayExportConflictError, match=r"held by attempt '0123456789ab'.*delete that lock"):
        run(spread_logs(6), dest, owner="dag/task/manual-run/-1")
    # A later try of the same task instance takes the lock over (its earlier try was killed).
    result = run(spread_logs(6), dest, owner="dag/task/run-1/-1")
    assert_exact(result, spread_logs(6), dest)
    # An expired lease is taken over by anyone.
    dest.fs.pipe(f"{dest.root}/{lock_path()}", json.dumps({**lock, "expires_at": "2020-01-01T00:00:00Z"}).encode())
    result = run(spread_logs(7), dest, owner="someone-else")
    assert_exact(result, spread_logs(7), dest)


KILL_SCRIPT = """
import os, sys
from datetime import datetime, timezone
from airflow_provider_aigw.export import commit, export_logs
from tests.export_helpers import START, END, spread_logs

def die(*args, **kwargs):
    os._exit(9)  # SIGKILL-like: no cleanup, no finally

commit.check_unchanged = die  # runs after the last part is written, before the manifest
export_logs(iter(spread_logs(int(sys.argv[2]))), sys.argv[1], gateway_id="gw-1", start=START, end=END,
            format=sys.argv[3], rows_per_part=5, owner="dag/export/run-1/-1")
"""


@pytest.mark.parametrize("fmt", FORMATS)
def test_kill_between_parts_and_manifest_then_retry_is_exact(fdest: Dest, fmt: str) -> None:
    committed = run(spread_logs(12), fdest, format=fmt, rows_per_part=5)
    before = fdest.files()
    proc = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, fdest.url, "40", fmt],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 9, proc.stderr
    after = fdest.files()
    orphans = set(after) - set(before)
    assert lock_path(fmt) in orphans and len(orphans) > 5, "the killed attempt left its parts and lock"
    assert {k: v for k, v in after.items() if k in before} == before, "the committed export is untouched"
    assert_exact_manifest_only(committed.manifest_uri, spread_logs(12))
    # Another job is refused while the lease holds; the retry of the killed task takes over.
    with pytest.raises(AIGatewayExportConflictError):
        run(spread_logs(40), fdest, format=fmt, rows_per_part=5, owner="dag/export/manual/-1")
    retry = run(spread_logs(40), fdest, format=fmt, rows_per_part=5, owner="dag/export/run-1/-1")
    assert_exact(retry, spread_logs(40), fdest)
    assert retry.manifest["commit"]["mode"] == "replace"


def test_shrink_guard_walk_yields_fewer_rows_than_archived(dest: Dest) -> None:
    """Retention drops the oldest log while the re-export walks: the archive keeps all 3."""
    logs = spread_logs(3)
    first = run(logs, dest)
    second = run(logs[1:], dest)
    assert second.manifest["commit"] == {
        "mode": "union", "walked": 2, "added": 0, "kept": 3, "replaced": [first.manifest["attempt"]]
    }
    assert second.count == 3
    assert [f["path"] for f in second.manifest["files"]] == [f["path"] for f in first.manifest["files"]]
    assert_exact(second, logs, dest)


def test_shrink_guard_holds_across_a_failed_attempt(dest: Dest) -> None:
    logs = spread_logs(20)
    run(logs, dest, rows_per_part=3)

    def crashing() -> Iterator[dict]:
        yield from logs[:4]
        raise RuntimeError("API outage")

    with pytest.raises(RuntimeError, match="API outage"):
        export_logs(crashing(), dest.url, gateway_id="gw-1", start=START, end=END, rows_per_part=3)
    retry = run(logs[10:], dest, rows_per_part=3)
    assert retry.count == 20 and retry.manifest["commit"]["mode"] == "union"
    assert_exact(retry, logs, dest)


def test_late_logs_after_archive_and_delete_are_added_as_a_union(dest: Dest) -> None:
    archived = spread_logs(30)
    first = run(archived, dest, rows_per_part=8)
    late = [make_log(500 + i, START + timedelta(hours=3, minutes=i)) for i in range(5)]
    second = run(late, dest, rows_per_part=8)  # the archived logs were deleted from the gateway
    assert second.manifest["commit"]["mode"] == "union"
    assert (second.manifest["commit"]["added"], second.manifest["commit"]["kept"]) == (5, 30)
    assert second.count == 35
    first_paths = [f["path"] for f in first.manifest["files"]]
    assert [f["path"] for f in second.manifest["files"]][: len(first_paths)] == first_paths
    assert_exact(second, [*archived, *late], dest)
    # Once more with two more late logs: the union grows, nothing is duplicated.
    later = [make_log(900, START + timedelta(hours=30)), make_log(901, START + timedelta(hours=31))]
    third = run([*late[:2], *later], dest, rows_per_part=8)
    assert third.count == 37 and third.manifest["commit"]["added"] == 2
    assert_exact(third, [*archived, *late, *later], dest)


def test_allow_shrink_replaces_with_exactly_the_logs_read(dest: Dest) -> None:
    run(spread_logs(10), dest)
    result = run(spread_logs(4), dest, allow_shrink=True)
    assert result.manifest["commit"]["mode"] == "replace"
    assert_exact(result, spread_logs(4), dest)


def test_rerun_with_everything_still_there_refreshes_rows(dest: Dest) -> None:
    logs = spread_logs(10)
    run(logs, dest)
    patched = [dict(log, feedback=1) if i == 3 else log for i, log in enumerate(logs)]
    result = run([*patched, make_log(77, START + timedelta(hours=40))], dest)
    assert result.manifest["commit"]["mode"] == "replace"
    rows = {r["id"]: r for r in iter_manifest_records(result.manifest_uri)}
    assert rows[logs[3]["id"]]["feedback"] == 1 and len(rows) == 11


def test_clamped_window_then_full_window_replaces_it(dest: Dest) -> None:
    logs = spread_logs(100, step=timedelta(minutes=25))  # to ~17:15 on day 2
    short_end = END - timedelta(hours=12)
    short = run([x for x in logs if x["created_at"] < "2026-11-27T12"], dest, end=short_end)
    assert short.count < 100
    full = run(logs, dest)
    assert full.manifest["commit"]["mode"] == "replace"
    assert full.manifest["commit"]["replaced"] == [short.manifest["attempt"]]
    assert [k for k in dest.files() if "/_manifests/" in k] == [manifest_path()]
    assert_exact(full, logs, dest)


def test_clamped_window_archived_and_deleted_then_full_window_is_a_union(dest: Dest) -> None:
    logs = spread_logs(100, step=timedelta(minutes=25))
    early = [x for x in logs if x["created_at"] < "2026-11-27T12"]
    run(early, dest, end=END - timedelta(hours=12))
    rest = logs[len(early):]  # the early ones were deleted after their export
    full = run(rest, dest)
    assert full.manifest["commit"]["mode"] == "union"
    assert (full.manifest["commit"]["added"], full.manifest["commit"]["kept"]) == (len(rest), len(early))
    assert [k for k in dest.files() if "/_manifests/" in k] == [manifest_path()]
    assert_exact(full, logs, dest)


@pytest.mark.parametrize(
    ("start", "end"),
    [(START, END - timedelta(hours=1)), (START + timedelta(hours=1), END + timedelta(hours=1))],
    ids=["inside", "partial"],
)
def test_window_overlapping_an_exported_one_without_containing_it_is_refused(dest: Dest, start: Any, end: Any) -> None:
    run(spread_logs(20), dest)
    before = dest.files()
    with pytest.raises(AIGatewayExportConflictError, match="overlaps the exported window"):
        run(spread_logs(5), dest, start=start, end=end)
    assert dest.files() == before


def test_other_filters_and_formats_do_not_overlap(dest: Dest) -> None:
    run(spread_logs(20), dest)
    flt = [{"key": "model", "operator": "eq", "value": ["gpt-4o-mini"]}]
    run(spread_logs(5), dest, start=START, end=END - timedelta(hours=1), filters=flt)
    run(spread_logs(5), dest, start=START, end=END - timedelta(hours=1), format="jsonl")
    assert len([k for k in dest.files() if "/_manifests/" in k]) == 3


def test_sweep_lists_only_the_window_partitions(fdest: Dest, monkeypatch: pytest.MonkeyPatch) -> None:
    for day in range(10):  # an archive of 10 other days
        s = START - timedelta(days=day + 1)
        run(spread_logs(3, start=s), fdest, start=s, end=s + timedelta(days=1))
    listed: list[str] = []
    original = Destination.find

    def find(self: Destination, rel_dir: str) -> list[str]:
        listed.append(rel_dir)
        return original(self, rel_dir)

    monkeypatch.setattr(Destination, "find", find)
    run(spread_logs(5), fdest)
    run(spread_logs(5), fdest)
    assert set(listed) == {"gateway=gw-1/date=2026-11-26", "gateway=gw-1/date=2026-11-27"}


def test_legacy_manifest_of_the_same_format_is_replaced(fdest: Dest) -> None:
    """An export written by an earlier provider version (<tag>.json, parts without attempt)."""
    result = run(spread_logs(8), fdest, format="jsonl")
    root = fdest.root
    legacy = dict(read_manifest(result.manifest_uri))
    legacy.pop("manifest_uri")
    for f in legacy["files"]:
        old = f["path"].replace(f"-a{result.manifest['attempt']}-", "-")
        fdest.fs.mv(f"{root}/{f['path']}", f"{root}/{old}")
        f["path"], f["uri"] = old, f"{fdest.url}/{old}"
    fdest.fs.rm_file(f"{root}/{manifest_path('jsonl')}")
    fdest.fs.pipe(f"{root}/gateway=gw-1/_manifests/{TAG}.json", json.dumps(legacy).encode())
    other = dict(legacy, format="parquet", files=[])  # a legacy export of another format is left alone
    fdest.fs.pipe(f"{root}/gateway=gw-1/_manifests/{TAG}-fffffffff0.json", json.dumps(other).encode())
    again = run(spread_logs(8), fdest, format="jsonl")
    assert again.manifest["commit"]["mode"] == "replace"
    assert sorted(k for k in fdest.files() if "/_manifests/" in k) == sorted(
        [manifest_path("jsonl"), f"gateway=gw-1/_manifests/{TAG}-fffffffff0.json"]
    )
    assert_exact(again, spread_logs(8), fdest)


def test_refused_commit_when_the_committed_export_changed_meanwhile(dest: Dest) -> None:
    """Optimistic check: a manifest of an inner window committed while this attempt ran."""
    gate = Gate(spread_logs(10), after=3)
    outcome: dict[str, Any] = {}

    def full() -> None:
        try:
            export_logs(gate, dest.url, gateway_id="gw-1", start=START, end=END)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=full)
    thread.start()
    assert gate.reached.wait(60)
    inner = run(spread_logs(2), dest, end=START + timedelta(hours=1))
    gate.go.set()
    thread.join(60)
    assert isinstance(outcome.get("error"), AIGatewayExportConflictError)
    assert_exact(inner, spread_logs(2), dest)


def test_errors_name_the_lock_and_nothing_is_lost(dest: Dest) -> None:
    result = run(spread_logs(4), dest)
    dest.fs.pipe(f"{dest.root}/{lock_path()}", b"not json")
    with pytest.raises(AIGatewayExportConflictError, match=lock_path()):
        run(spread_logs(4), dest)
    assert_exact_manifest_only(result.manifest_uri, spread_logs(4))
    with pytest.raises(AIGatewayError):
        read_manifest(f"{dest.url}/{lock_path()}")
    # An unreadable lock (its writer died creating it) is judged by its age against the lease.
    retry = run(spread_logs(5), dest, lock_lease=timedelta(milliseconds=1))
    assert_exact(retry, spread_logs(5), dest)


def test_the_holder_renews_its_lock_while_the_walk_stalls(dest: Dest, monkeypatch: pytest.MonkeyPatch) -> None:
    renewed = threading.Event()
    original = WindowLock.renew

    def renew(self: WindowLock) -> None:
        original(self)
        renewed.set()

    monkeypatch.setattr(WindowLock, "renew", renew)
    gate = Gate(spread_logs(10), after=5)
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.setdefault(
            "result",
            export_logs(gate, dest.url, gateway_id="gw-1", start=START, end=END, lock_lease=timedelta(seconds=3)),
        )
    )
    thread.start()
    assert gate.reached.wait(60)
    first = json.loads(dest.fs.cat_file(f"{dest.root}/{lock_path()}"))
    renewed.clear()
    assert renewed.wait(60), "the lock is renewed while the walk waits"
    second = json.loads(dest.fs.cat_file(f"{dest.root}/{lock_path()}"))
    assert second["attempt"] == first["attempt"] and second["expires_at"] > first["expires_at"]
    # A renewed lock is not taken over by another job.
    with pytest.raises(AIGatewayExportConflictError):
        run(spread_logs(3), dest)
    gate.go.set()
    thread.join(60)
    assert_exact(outcome["result"], spread_logs(10), dest)


def test_body_stats_cover_the_committed_rows_in_replace_and_union(dest: Dest) -> None:
    def with_status(logs: list[dict], status: str) -> list[dict]:
        return [dict(log, request_body_status=status, response_body_status="collected") for log in logs]

    first = with_status(spread_logs(6), "collected")
    run(first, dest)
    replaced = run(first, dest).manifest
    assert replaced["commit"]["mode"] == "replace"
    assert replaced["body_stats"] == {"request_body_status": {"collected": 6}, "response_body_status": {"collected": 6}}
    late = with_status([make_log(700 + i, START + timedelta(hours=i)) for i in range(3)], "failed")
    union = run(late, dest).manifest
    assert union["commit"]["mode"] == "union"
    assert union["body_stats"] == {
        "request_body_status": {"collected": 6, "failed": 3},
        "response_body_status": {"collected": 9},
    }


def test_a_window_lock_is_released_and_no_longer_renewed_when_its_block_raises(dest: Dest) -> None:
    target = open_destination(dest.url)
    with pytest.raises(RuntimeError, match="walk failed"), WindowLock(
        target, "0123456789ab", None, timedelta(minutes=5)
    ) as lock:
        lock.acquire(lock_path())
        lock.keep_alive()
        assert json.loads(dest.files()[lock_path()])["attempt"] == "0123456789ab"
        raise RuntimeError("walk failed")
    assert dest.files() == {}
    assert "aigw-export-lock-0123456789ab" not in {t.name for t in threading.enumerate()}
    assert lock.held == []


def test_the_id_index_knows_the_archived_ids_and_whether_each_was_read_again() -> None:
    index = IdIndex(["a", "b", "b", 3])
    assert len(index) == 3
    assert not index.mark("x")
    assert index.mark("a") and index.mark("a") and index.seen == 1 and not index.all_seen
    assert index.mark("b") and index.mark("3")  # ids compare as text
    assert index.seen == 3 and index.all_seen
    empty = IdIndex([])
    assert not empty.mark("a") and empty.all_seen
