"""export/writer.py: export_logs end to end: every log written once to its partition, the manifest
and its summary, bad arguments refused before anything is written, flat memory."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import fsspec
import pytest

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import SCHEMA_VERSION, export_logs, iter_manifest_records, read_manifest
from tests.export_helpers import (
    END,
    FORMATS,
    START,
    TAG,
    UTC,
    Dest,
    Tracking,
    all_ids,
    make_log,
    manifest_path,
    paths,
    plain,
    read_records,
    run,
    spread_logs,
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_ids_written_equal_input_no_duplicates(dest: Dest, fmt: str) -> None:
    logs = spread_logs(300)
    result = run(logs, dest, format=fmt, rows_per_part=7)
    ids = all_ids(result)
    assert len(ids) == len(set(ids)) == 300
    assert set(ids) == {log["id"] for log in logs}
    assert result.manifest["count"] == 300
    assert sum(f["rows"] for f in result.manifest["files"]) == 300
    assert set(dest.parts()) == {f["path"] for f in result.manifest["files"]}


def test_partition_paths_hourly_exact(dest: Dest) -> None:
    times = [
        datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 0, 59, 59, 999000, tzinfo=UTC),
        datetime(2026, 11, 26, 1, 0, tzinfo=UTC),
        datetime(2026, 11, 26, 23, 30, tzinfo=UTC),
        datetime(2026, 11, 27, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 11, 27, 13, 5, tzinfo=UTC),
    ]
    logs = [make_log(i, t) for i, t in enumerate(times)]
    result = run(logs, dest, format="jsonl", partition_by="hour")
    expected = [
        f"gateway=gw-1/date=2026-11-26/hour=00/part-{TAG}-00000.jsonl",
        f"gateway=gw-1/date=2026-11-26/hour=01/part-{TAG}-00000.jsonl",
        f"gateway=gw-1/date=2026-11-26/hour=23/part-{TAG}-00000.jsonl",
        f"gateway=gw-1/date=2026-11-27/hour=00/part-{TAG}-00000.jsonl",
        f"gateway=gw-1/date=2026-11-27/hour=13/part-{TAG}-00000.jsonl",
    ]
    assert paths(result) == expected
    assert [f["rows"] for f in result.manifest["files"]] == [2, 1, 1, 1, 1]
    assert sorted(plain(p) for p in dest.files()) == sorted([*expected, manifest_path("jsonl")])
    assert result.manifest_uri == f"{dest.url}/{manifest_path('jsonl')}"
    assert result.manifest["files"][0]["uri"] == f"{dest.url}/{result.manifest['files'][0]['path']}"
    attempt = result.manifest["attempt"]
    assert re.fullmatch(r"[0-9a-f]{12}", attempt)
    assert all(f"-a{attempt}-" in f["path"] and f["attempt"] == attempt for f in result.manifest["files"])
    first = result.manifest["files"][0]
    assert first["min_created_at"] == "2026-11-26T00:00:00Z"
    assert first["max_created_at"] == "2026-11-26T00:59:59.999Z"


def test_partition_by_day(dest: Dest) -> None:
    logs = spread_logs(200, step=timedelta(minutes=13))  # ~43 hours: two days
    result = run(logs, dest, format="jsonl.gz")  # the default
    assert paths(result) == [
        f"gateway=gw-1/date=2026-11-26/part-{TAG}-00000.jsonl.gz",
        f"gateway=gw-1/date=2026-11-27/part-{TAG}-00000.jsonl.gz",
    ]
    per_day = sum(1 for log in logs if log["created_at"].startswith("2026-11-26"))
    assert [f["rows"] for f in result.manifest["files"]] == [per_day, 200 - per_day]
    assert result.manifest["partition_by"] == "day"


def test_crash_on_bad_log_leaves_no_manifest(dest: Dest) -> None:
    logs: list[Any] = spread_logs(10)
    logs.insert(5, {"id": "x"})  # no created_at
    with pytest.raises(AIGatewayInputError, match="created_at"):
        run(logs, dest)
    assert not [k for k in dest.files() if "/_manifests/" in k]
    with pytest.raises(AIGatewayInputError, match="mapping"):
        run([*spread_logs(2), "nope"], dest)


def test_empty_export_writes_manifest_only(dest: Dest) -> None:
    result = run([], dest)
    assert dest.parts() == {}
    assert result.manifest["count"] == 0
    assert result.manifest["files"] == []
    assert result.manifest["bytes"] == 0
    assert read_manifest(result.manifest_uri)["complete"] is True
    assert result.summary()["paths"] == []


def test_manifest_contents(dest: Dest) -> None:
    logs = spread_logs(60)
    logs[0]["request_body_status"] = "collected"
    logs[0]["response_body_status"] = "not_collected"
    logs[1]["request_body_status"] = "failed"
    logs[1]["response_body_status"] = "collected"
    logs[2]["request_body_status"] = "collected"
    logs[2]["response_body_status"] = None
    filters = [{"key": "provider", "operator": "eq", "value": ["openai"]}]
    progress: list[int] = []
    result = run(logs, dest, filters=filters, format="jsonl.gz", rows_per_part=8, on_progress=progress.append)
    m = read_manifest(result.manifest_uri)
    assert m.pop("manifest_uri") == result.manifest_uri
    assert m == json.loads(json.dumps(result.manifest))
    from airflow_provider_aigw import __version__

    assert m["schema_version"] == SCHEMA_VERSION
    assert m["provider_version"] == __version__
    assert m["gateway_id"] == "gw-1"
    assert m["window"] == {"start": "2026-11-26T00:00:00Z", "end": "2026-11-28T00:00:00Z"}
    assert m["filters"] == filters
    assert m["format"] == "jsonl.gz"
    assert m["partition_by"] == "day"
    assert m["count"] == 60
    assert m["root"] == dest.url
    assert m["commit"] == {"mode": "create", "walked": 60, "added": 60, "kept": 0, "replaced": []}
    assert m["complete"] is True
    assert datetime.fromisoformat(m["created_at"].replace("Z", "+00:00")).tzinfo is not None
    assert m["body_stats"] == {
        "request_body_status": {"collected": 2, "failed": 1},
        "response_body_status": {"not_collected": 1, "collected": 1, "null": 1},
    }
    parts = dest.parts()
    assert m["bytes"] == sum(len(b) for b in parts.values())
    for f in m["files"]:
        data = parts[f["path"]]
        assert f["bytes"] == len(data)
        assert f["sha256"] == hashlib.sha256(data).hexdigest()
        assert f["uri"] == f"{dest.url}/{f['path']}"
        # fsspec, not ObjectStoragePath: Airflow < 3.2 registers no filesystem for memory://
        with fsspec.open(f["uri"], "rb") as fh:
            assert fh.read() == data
        rows = read_records(f["uri"])
        assert len(rows) == f["rows"]
        assert f["min_created_at"] == min(r["created_at"] for r in rows).replace(".000Z", "Z")
        assert f["max_created_at"] == max(r["created_at"] for r in rows).replace(".000Z", "Z")
    assert progress[-1] == 60
    assert list(iter_manifest_records(result.summary(), verify=True))


def test_summary_shape_and_json(dest: Dest) -> None:
    result = run(spread_logs(30), dest, filters=[{"key": "model", "operator": "eq", "value": ["m"]}])
    s = result.summary()
    assert set(s) == {
        "manifest_uri",
        "gateway_id",
        "start",
        "end",
        "filters",
        "format",
        "count",
        "files",
        "bytes",
        "commit",
        "paths",
        "usage",
    }
    assert s["commit"] == {"mode": "create", "added": 30, "kept": 0}
    assert s["count"] == 30
    assert s["files"] == len(result.manifest["files"]) == len(s["paths"])
    assert s["start"] == "2026-11-26T00:00:00Z" and s["end"] == "2026-11-28T00:00:00Z"
    assert s["format"] == "jsonl.gz"
    assert json.loads(json.dumps(s)) == s
    assert read_manifest(s) == read_manifest(s["manifest_uri"])


def test_summary_omits_paths_over_100_files(fdest: Dest) -> None:
    result = run(spread_logs(101, step=timedelta(minutes=1)), fdest, rows_per_part=1)
    s = result.summary()
    assert s["files"] == 101
    assert "paths" not in s


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"format": "csv"}, "format"),
        ({"start": datetime(2026, 11, 26)}, "start is a naive datetime"),
        ({"end": datetime(2026, 11, 28)}, "end is a naive datetime"),
        ({"start": END, "end": START}, "must be before end"),
        ({"partition_by": "minute"}, "partition_by"),
        ({"rows_per_part": 0}, "rows_per_part"),
        ({"gateway_id": "../escape"}, "gateway_id"),
        ({"gateway_id": ""}, "gateway_id"),
        ({"filters": "model=gpt"}, "filters"),
        ({"filters": [{"key": "model", "operator": "like", "value": "gpt"}]}, r"filters\[0\]\.operator"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_arguments_fail_before_anything_is_written(dest: Dest, kwargs: dict, match: str) -> None:
    tracking = Tracking(spread_logs(5))
    params: dict[str, Any] = {"gateway_id": "gw-1", "start": START, "end": END, **kwargs}
    with pytest.raises(AIGatewayInputError, match=match):
        export_logs(tracking, dest.url, **params)
    assert tracking.consumed == 0
    assert dest.files() == {}


def test_naive_created_at_is_taken_as_utc_and_offsets_are_converted(fdest: Dest) -> None:
    logs = [
        make_log(1, START, created_at="2026-11-26T05:10:00"),
        make_log(2, START, created_at="2026-11-26T08:30:00+02:00"),  # 06:30Z
    ]
    result = run(logs, fdest, format="jsonl", partition_by="hour")
    assert [f["path"].split("/")[2] for f in result.manifest["files"]] == ["hour=05", "hour=06"]


def test_memory_stays_flat(fdest: Dest) -> None:
    import tracemalloc

    n, pad = 20_000, "x" * 1000

    def gen() -> Iterator[dict]:
        for i in range(n):
            yield make_log(i, START + timedelta(seconds=5 * i), pad=pad + str(i))

    tracemalloc.start()
    try:
        result = export_logs(gen(), fdest.url, gateway_id="gw", start=START, end=END, format="jsonl.gz")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.count == n
    # ~20 MB of logs passed through; a non-streaming writer would hold them all.
    assert peak < 5 * 1024 * 1024, peak
