"""``dag.test()`` runs of the example DAGs against the emulator, asserting exact outcomes.

Ground truth comes from the emulator (``server.ids(gateway, start, end)``); exported data is
read back through the manifest.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.export import iter_manifest_records, normalize_record, read_manifest
from tests.compat_helpers import dag_test, get_xcom

pytestmark = pytest.mark.dags

UTC = timezone.utc
GW = "my-gateway"
ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
LOGICAL = datetime(2026, 1, 10, tzinfo=UTC)  # daily: data interval [2026-01-09, 2026-01-10)
START, END = LOGICAL - timedelta(days=1), LOGICAL
IN_WINDOW = 300
TAG = "20260109T000000Z-20260110T000000Z"
ARCHIVE_TASKS = ("wait_for_logs", "export_logs", "delete_exported_logs")


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """300 logs in the window, 40 the day before and 40 the day after; no client retries."""
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 40, START - timedelta(days=1), START, seed=1)
    server.seed_logs(GW, IN_WINDOW, START, END, seed=2)
    server.seed_logs(GW, 40, END, END + timedelta(days=1), seed=3)
    monkeypatch.setenv(ENV, server.airflow_conn_json(GW, max_retries=0))
    server.reset_stats()
    return server


def states(run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def manifest_uri(root: Path | str, gateway: str = GW, fmt: str = "jsonl.gz") -> str:
    return f"{str(root).rstrip('/')}/gateway={gateway}/_manifests/{TAG}.{fmt}.json"


def plain(name: str) -> str:
    """A part name without its attempt id (each export attempt writes its own names)."""
    return re.sub(r"-a[0-9a-f]{12}-", "-", name)


def archive(load_dag: Any, dest: str, *, fmt: str = "jsonl.gz", skip_delete: bool = False) -> Any:
    return dag_test(
        load_dag("aigw_archive_logs"),
        logical_date=LOGICAL,
        run_conf={"destination": dest, "format": fmt},
        mark_success_pattern="delete_exported_logs" if skip_delete else None,
    )


def test_archive_exports_the_window_exactly_then_deletes_it(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    truth = emu.ids(GW, START, END)
    outside = emu.ids(GW, None, START) + emu.ids(GW, END)
    run = archive(load_dag, f"file://{tmp_path}")
    assert states(run) == dict.fromkeys(ARCHIVE_TASKS, "success")
    manifest = read_manifest(manifest_uri(f"file://{tmp_path}"))
    ids = [r["id"] for r in iter_manifest_records(manifest, verify=True)]
    assert ids == truth and manifest["count"] == IN_WINDOW
    per_file = [r["id"] for f in manifest["files"] for r in iter_manifest_records({**manifest, "files": [f]})]
    assert not [i for i, n in Counter(per_file).items() if n > 1]  # no duplicates across parts
    assert emu.ids(GW, START, END) == []
    assert emu.ids(GW) == outside  # logs outside the window untouched
    assert not list(tmp_path.rglob("*.tmp"))
    # sensor 1, count 1, pages 300/50 + the empty page ending the walk = 7; delete: count 1, walk
    # proving every match exported 7, canary (slice listed, DELETE of 5 ids, slice listed),
    # 1 DELETE of 295 ids, count 1
    assert emu.stats["total"] == 1 + 1 + 7 + (1 + 7 + 3 + 1 + 1) and emu.stats["delete"] == 2


def test_archive_window_param_overrides_the_data_interval(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    # Airflow 3 takes a manual run's data interval from the current time; params.window picks the day.
    day_before = START - timedelta(days=1)
    truth = emu.ids(GW, day_before, START)
    others = emu.ids(GW, START)
    run = dag_test(
        load_dag("aigw_archive_logs"),
        logical_date=LOGICAL,
        run_conf={"destination": f"file://{tmp_path}", "window": day_before.date().isoformat()},
    )
    assert states(run) == dict.fromkeys(ARCHIVE_TASKS, "success")
    tag = "20260108T000000Z-20260109T000000Z"
    manifest = read_manifest(f"file://{tmp_path}/gateway={GW}/_manifests/{tag}.jsonl.gz.json")
    assert [r["id"] for r in iter_manifest_records(manifest, verify=True)] == truth and len(truth) == 40
    assert emu.ids(GW) == others  # that day deleted, the data interval and later untouched


def test_archive_bad_window_param_fails_before_any_request(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    run = dag_test(
        load_dag("aigw_archive_logs"),
        logical_date=LOGICAL,
        run_conf={"destination": f"file://{tmp_path}", "window": "yesterday"},
    )
    assert states(run)["wait_for_logs"] == "failed"
    assert emu.stats["total"] == 0 and not list(tmp_path.iterdir())


def test_archive_rerun_leaves_the_same_content(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    assert set(states(archive(load_dag, f"file://{tmp_path}", skip_delete=True)).values()) == {"success"}
    first = files_of(tmp_path)
    assert set(states(archive(load_dag, f"file://{tmp_path}", skip_delete=True)).values()) == {"success"}
    second = files_of(tmp_path)
    manifest_name = f"gateway={GW}/_manifests/{TAG}.jsonl.gz.json"
    parts = {plain(k): v for k, v in first.items() if k != manifest_name}
    assert parts == {plain(k): v for k, v in second.items() if k != manifest_name}
    assert not set(first) & set(second) - {manifest_name}, "the re-run wrote its own names, the old ones are gone"

    def content(manifest: dict[str, Any]) -> dict[str, Any]:
        files = [{k: v for k, v in f.items() if k not in ("path", "uri", "attempt")} for f in manifest["files"]]
        rest = {k: v for k, v in manifest.items() if k not in ("created_at", "attempt", "commit", "files")}
        return {**rest, "files": files}

    m1, m2 = json.loads(first[manifest_name]), json.loads(second[manifest_name])
    assert content(m1) == content(m2)
    assert m2["commit"]["mode"] == "replace" and m2["commit"]["replaced"] == [m1["attempt"]]


def test_archive_rerun_after_delete_adds_late_logs_and_deletes_exactly_them(
    load_dag: Any, emu: EmulatorServer, tmp_path: Path
) -> None:
    """Issue 12: 50 late logs arrive in a day that was archived and deleted; the re-run archives
    them as extra parts, publishes the union, and its delete removes exactly those 50."""
    archived = emu.ids(GW, START, END)
    outside = emu.ids(GW, None, START) + emu.ids(GW, END)
    assert set(states(archive(load_dag, f"file://{tmp_path}")).values()) == {"success"}
    kept = files_of(tmp_path)
    late = emu.add_logs(GW, [{"created_at": (START + timedelta(minutes=25 * i + 3)).isoformat()} for i in range(50)])
    run = archive(load_dag, f"file://{tmp_path}")
    assert states(run) == dict.fromkeys(ARCHIVE_TASKS, "success")
    summary = get_xcom(run, "export_logs")
    assert summary["commit"] == {"mode": "union", "added": 50, "kept": IN_WINDOW}
    assert summary["count"] == IN_WINDOW + 50
    manifest = read_manifest(manifest_uri(f"file://{tmp_path}"))
    ids = [r["id"] for r in iter_manifest_records(manifest, verify=True)]
    assert sorted(ids) == sorted([*archived, *late]) and len(ids) == len(set(ids))
    now = files_of(tmp_path)
    assert {k: v for k, v in now.items() if k in kept and "/_manifests/" not in k} == {
        k: v for k, v in kept.items() if "/_manifests/" not in k
    }, "the archived parts are kept as they were"
    assert get_xcom(run, "delete_exported_logs") == 50
    assert emu.ids(GW, START, END) == [] and emu.ids(GW) == outside


def test_export_failing_midway_then_retried_leaves_exact_data(
    load_dag: Any, emu: EmulatorServer, tmp_path: Path
) -> None:
    clean_root = tmp_path / "clean"
    retried_root = tmp_path / "retried"
    truth = emu.ids(GW, START, END)
    # The 5th request (sensor, count, 2 pages, then the 3rd page) is refused with 429 and,
    # with max_retries=0, fails the export after 100 logs were written to part files. The
    # client then holds every request back for Retry-After (1 s), as Cloudflare locks out.
    emu.faults.update(rate_limit_requests=4, rate_limit_period_s=3600, lockout_s=1)
    failed = archive(load_dag, f"file://{retried_root}", skip_delete=True)
    assert states(failed)["export_logs"] == "failed"
    assert not Path(manifest_uri(retried_root)).exists()
    # The failed attempt removed what it wrote and released the window's lock.
    assert not [p for p in retried_root.rglob("*") if p.is_file()]
    emu.faults.reset()
    emu.reset_stats()
    retried = archive(load_dag, f"file://{retried_root}", skip_delete=True)
    assert states(retried)["export_logs"] == "success"
    archive(load_dag, f"file://{clean_root}", skip_delete=True)
    assert {plain(k) for k in files_of(retried_root)} == {plain(k) for k in files_of(clean_root)}
    manifest = read_manifest(manifest_uri(f"file://{retried_root}"))
    ids = [r["id"] for r in iter_manifest_records(manifest, verify=True)]
    assert ids == truth and len(set(ids)) == len(ids)
    assert not list(retried_root.rglob("*.tmp"))


def test_late_logs_make_the_delete_refuse(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    late = [{"created_at": (START + timedelta(hours=7)).isoformat()}]
    # after the sensor (1), the export's count (1) and its 6 pages
    emu.schedule_late_logs(GW, late, after_requests=8)
    before = emu.ids(GW)
    run = archive(load_dag, f"file://{tmp_path}")
    assert states(run) == {"wait_for_logs": "success", "export_logs": "success", "delete_exported_logs": "failed"}
    assert read_manifest(manifest_uri(f"file://{tmp_path}"))["count"] == IN_WINDOW
    after = emu.ids(GW)
    assert len(after) == len(before) + 1 and set(before) <= set(after)  # nothing deleted
    assert emu.stats["delete"] == 0


def test_parquet_and_jsonl_round_trip_to_the_same_records(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    records = {}
    for fmt in ("parquet", "jsonl"):
        root = tmp_path / fmt.replace(".", "_")
        assert states(archive(load_dag, f"file://{root}", fmt=fmt, skip_delete=True))["export_logs"] == "success"
        manifest = read_manifest(manifest_uri(f"file://{root}", fmt=fmt))
        assert manifest["format"] == fmt and all(f["path"].endswith(f".{fmt}") for f in manifest["files"])
        records[fmt] = list(iter_manifest_records(manifest))
    # Both formats read back as the same rows of the one schema: the API log's normal form.
    originals = {x["id"]: x for x in emu.logs(GW)}
    assert records["jsonl"] == [normalize_record(originals[i]) for i in emu.ids(GW, START, END)]
    assert records["parquet"] == records["jsonl"]


def test_memory_destination(load_dag: Any, emu: EmulatorServer) -> None:
    dest = "memory://aigw-dag-test/archive"
    run = archive(load_dag, dest)
    assert set(states(run).values()) == {"success"}
    manifest = read_manifest(manifest_uri(dest))
    assert manifest["files"][0]["uri"].startswith(f"{dest}/gateway={GW}/date=2026-01-09/part-")
    assert manifest["count"] == IN_WINDOW and emu.ids(GW, START, END) == []


def test_feedback_tags_failed_and_expensive_calls(load_dag: Any, emu: EmulatorServer) -> None:
    logical = datetime(2026, 1, 9, 12, tzinfo=UTC)  # every 6 h: [06:00, 12:00), listed 5 minutes back
    window = [x for x in emu.logs(GW) if "2026-01-09T05:55:00" <= x["created_at"] < "2026-01-09T11:55:00"]
    failed = {x["id"] for x in window if x["success"] is False}
    expensive = {x["id"] for x in window if (x.get("cost") or 0) > 0.01}
    assert failed and expensive
    run = dag_test(load_dag("aigw_feedback"), logical_date=logical)
    assert set(states(run).values()) == {"success"}
    assert emu.stats["patch"] == len(failed) + len(expensive)
    for x in emu.logs(GW):
        detail = emu.get_log(GW, x["id"])
        assert detail is not None
        if x["id"] in failed:
            assert (detail["feedback"], detail["score"]) == (-1, 0)
        else:
            assert detail.get("feedback") is None and detail.get("score") is None
        meta = json.loads(detail["metadata"]) if x["id"] in expensive else None
        if meta is not None:
            assert meta["review"] == "expensive" and meta["tagged_by"] == "aigw_feedback"
            assert meta["run"] == run.run_id
        else:
            assert "review" not in (detail.get("metadata") or "")


def test_multi_gateway_export_maps_over_gateways(load_dag: Any, emu: EmulatorServer, tmp_path: Path) -> None:
    gateways = {"gw-a": 120, "gw-b": 0, "gw-c": 75}
    for gateway, count in gateways.items():
        emu.create_gateway(gateway)
        if count:
            emu.seed_logs(gateway, count, START, END)
        emu.seed_logs(gateway, 10, END, END + timedelta(hours=1))
    run = dag_test(
        load_dag("aigw_multi_gateway_export"),
        logical_date=LOGICAL,
        run_conf={"gateways": list(gateways), "destination": f"file://{tmp_path}"},
    )
    tis = run.get_task_instances()
    exports = sorted((ti.map_index, str(ti.state)) for ti in tis if ti.task_id == "export_gateway")
    assert exports == [(0, "success"), (1, "success"), (2, "success")]
    assert {ti.pool for ti in tis} == {"default_pool"}  # no pool to create by hand
    for gateway, count in gateways.items():
        manifest = read_manifest(manifest_uri(f"file://{tmp_path}", gateway))
        assert [r["id"] for r in iter_manifest_records(manifest)] == emu.ids(gateway, START, END)
        assert manifest["count"] == count
    assert get_xcom(run, "summarize") == {
        "gateways": 3,
        "count": sum(gateways.values()),
        "files": sum(get_xcom(run, "export_gateway", map_index=i)["files"] for i in range(3)),
        "bytes": sum(get_xcom(run, "export_gateway", map_index=i)["bytes"] for i in range(3)),
    }


def test_triage_thumbs_down_loads_with_its_watcher_on_airflow_3_and_defines_no_dag_on_2() -> None:
    from airflow_provider_aigw.compat import AssetWatcher
    from tests.compat_helpers import DagBag
    from tests.dags.conftest import EXAMPLE_DAGS

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS / "aigw_triage_thumbs_down.py"))
    assert not bag.import_errors, bag.import_errors
    if AssetWatcher is None:  # Airflow 2.x
        assert bag.dags == {}
        return
    dag = bag.dags["aigw_triage_thumbs_down"]
    assert [t.task_id for t in dag.tasks] == ["fired", "list_thumbs_down", "tag_for_review", "write_thumbs_down"]
    (asset,) = dag.timetable.asset_condition.objects
    (watcher,) = asset.watchers
    classpath, kwargs = watcher.trigger.serialize()
    assert classpath == "airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger"
    assert kwargs["filters"] == '[{"key":"feedback","operator":"eq","value":[-1]}]'  # a string: hashes stably
    assert kwargs["poll_interval"] == 60.0
