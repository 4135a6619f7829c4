"""Unit tests of airflow_provider_aigw.export (storage side of the export operator)."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import sys
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import fsspec
import pytest

from airflow_provider_aigw.compat import ObjectStoragePath
from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export import (
    SCHEMA_VERSION,
    ExportResult,
    arrow_schema,
    export_logs,
    iter_file_records,
    iter_manifest_records,
    manifest_schema,
    normalize_record,
    read_manifest,
    resolve_destination,
    validate_format,
    window_tag,
)
from airflow_provider_aigw.export.schema import COLUMN_NAMES

if TYPE_CHECKING:
    from collections.abc import Iterator

UTC = timezone.utc
START = datetime(2026, 11, 26, tzinfo=UTC)
END = datetime(2026, 11, 28, tzinfo=UTC)
TAG = "20261126T000000Z-20261128T000000Z"
FORMATS = ["jsonl", "jsonl.gz", "parquet"]


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_log(i: int, when: datetime, **extra: Any) -> dict[str, Any]:
    log: dict[str, Any] = {
        "id": f"01J{i:010d}",
        "created_at": ts(when),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "model_type": "chat",
        "path": "chat/completions",
        "duration": 100 + i,
        "success": i % 7 != 0,
        "cached": i % 5 == 0,
        "tokens_in": None if i % 11 == 0 else 10 + i,
        "tokens_out": 20 + i,
        "cost": 0.0001 * i,
        "metadata": json.dumps({"team": "a", "n": i}),
        "request_content_type": "application/json",
        "response_content_type": "application/json",
        "status_code": 200,
        "step": 0,
    }
    log.update(extra)
    return log


def spread_logs(n: int, start: datetime = START, step: timedelta = timedelta(minutes=13)) -> list[dict]:
    return [make_log(i, start + step * i) for i in range(n)]


class Dest:
    """A test destination (file:// under tmp_path or a private memory:// bucket)."""

    def __init__(self, kind: str, tmp_path: Any) -> None:
        self.kind = kind
        if kind == "file":
            self.root = str(tmp_path / "export")
            self.url = f"file://{self.root}"
            self.fs = fsspec.filesystem("file")
        else:
            self.root = f"/aigw-test-{uuid.uuid4().hex}/prefix"
            self.url = f"memory:/{self.root}"
            self.fs = fsspec.filesystem("memory")

    def files(self) -> dict[str, bytes]:
        """Relative path -> content of every file under the root (hidden files included)."""
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return {}
        root = self.root.rstrip("/") + "/"
        out = {}
        for p in found:
            p = str(p)
            rel = p[p.index(root) + len(root) :] if root in p else p
            out[rel] = self.fs.cat_file(p)
        return out

    def parts(self) -> dict[str, bytes]:
        return {k: v for k, v in self.files().items() if "/_manifests/" not in k}

    def cleanup(self) -> None:
        if self.kind == "memory":
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.root.rsplit("/", 1)[0], recursive=True)


@pytest.fixture(params=["file", "memory"])
def dest(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Dest]:
    d = Dest(request.param, tmp_path)
    yield d
    d.cleanup()


@pytest.fixture
def fdest(tmp_path: Any) -> Dest:
    return Dest("file", tmp_path)


def plain(path: str) -> str:
    """A part path without its attempt id (``-a<12 hex>``), to compare with fixed names."""
    return re.sub(r"-a[0-9a-f]{12}-", "-", path)


def paths(result: ExportResult) -> list[str]:
    return [plain(f["path"]) for f in result.manifest["files"]]


def manifest_path(fmt: str = "jsonl.gz", tag: str = TAG) -> str:
    return f"gateway=gw-1/_manifests/{tag}.{fmt}.json"


def read_records(uri: str) -> list[dict]:
    return list(iter_file_records(uri))


def all_ids(result: ExportResult) -> list[str]:
    return [r["id"] for r in iter_manifest_records(result.manifest_uri)]


def run(logs: Any, d: Dest, **kw: Any) -> ExportResult:
    kw.setdefault("gateway_id", "gw-1")
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    return export_logs(iter(logs), d.url, **kw)


class Tracking:
    """An iterator that records how many logs were consumed and can fail after N."""

    def __init__(self, logs: list[dict], fail_after: int | None = None) -> None:
        self.logs = logs
        self.fail_after = fail_after
        self.consumed = 0

    def __iter__(self) -> Iterator[dict]:
        for log in self.logs:
            if self.fail_after is not None and self.consumed >= self.fail_after:
                raise RuntimeError("simulated crash while fetching")
            self.consumed += 1
            yield log


# --- content and layout ------------------------------------------------------------------------


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


@pytest.mark.parametrize("fmt", FORMATS)
def test_rows_per_part_rolling(dest: Dest, fmt: str) -> None:
    logs = spread_logs(25, step=timedelta(seconds=10))  # all in hour 00
    result = run(logs, dest, format=fmt, rows_per_part=10)
    ext = {"jsonl": "jsonl", "jsonl.gz": "jsonl.gz", "parquet": "parquet"}[fmt]
    assert [(plain(f["path"]), f["rows"]) for f in result.manifest["files"]] == [
        (f"gateway=gw-1/date=2026-11-26/part-{TAG}-{i:05d}.{ext}", rows)
        for i, rows in enumerate([10, 10, 5])
    ]
    # Order is kept within and across parts.
    assert all_ids(result) == [log["id"] for log in logs]


def test_jsonl_lines_are_compact_and_keep_every_field(fdest: Dest) -> None:
    log = make_log(1, START, usage_metadata={"x": 1}, brand_new_field=[1, "é"])
    result = run([log], fdest, format="jsonl")
    data = fdest.parts()[result.manifest["files"][0]["path"]]
    row = normalize_record(log)
    assert data == (json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    # one line per log, every column of the schema, unknown fields kept in extra
    assert list(row) == list(COLUMN_NAMES)
    assert json.loads(row["extra"]) == {"usage_metadata": {"x": 1}, "brand_new_field": [1, "é"]}
    assert row["metadata"] == {"team": "a", "n": "1"}


def test_jsonl_gz_is_valid_gzip(fdest: Dest) -> None:
    logs = spread_logs(50)
    result = run(logs, fdest, format="jsonl.gz")
    lines = []
    for f in result.manifest["files"]:
        lines += gzip.decompress(fdest.parts()[f["path"]]).decode().splitlines()
    assert [json.loads(line) for line in lines] == [normalize_record(log) for log in logs]


def test_out_of_order_log_goes_to_new_part_of_its_partition(dest: Dest) -> None:
    logs = spread_logs(20, step=timedelta(minutes=20))  # hours 00..06
    late = make_log(999, START + timedelta(minutes=5))  # belongs to hour 00, arrives last
    result = run([*logs, late], dest, format="jsonl", partition_by="hour")
    names = paths(result)
    assert names[-1] == f"gateway=gw-1/date=2026-11-26/hour=00/part-{TAG}-00001.jsonl"
    assert names[0] == f"gateway=gw-1/date=2026-11-26/hour=00/part-{TAG}-00000.jsonl"
    assert len(names) == len(set(names))
    assert sorted(all_ids(result)) == sorted(log["id"] for log in [*logs, late])


# --- determinism, re-runs, crashes ------------------------------------------------------------


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
    second = run(fewer, dest, format="jsonl.gz", rows_per_part=3, partition_by="hour", overwrite_smaller=True)
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

    final = run(logs, dest, format=fmt, rows_per_part=4, overwrite_smaller=True)
    assert final.manifest["count"] == 200
    assert set(dest.parts()) == {f["path"] for f in final.manifest["files"]}
    assert all("/." not in k for k in dest.files()), "no temp files left"
    ids = all_ids(final)
    assert sorted(ids) == sorted(log["id"] for log in logs) and len(ids) == len(set(ids))
    for f in final.manifest["files"]:
        assert hashlib.sha256(dest.parts()[f["path"]]).hexdigest() == f["sha256"]


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


def test_empty_rerun_removes_earlier_parts(dest: Dest) -> None:
    run(spread_logs(20), dest)
    assert dest.parts()
    result = run([], dest, overwrite_smaller=True)
    assert dest.parts() == {}
    assert result.manifest["count"] == 0


# --- filters in names --------------------------------------------------------------------------


def test_filters_change_names_and_do_not_collide(dest: Dest) -> None:
    logs = spread_logs(10)
    f1 = [{"key": "model", "operator": "eq", "value": ["gpt-4o-mini"]}]
    f2 = [{"key": "success", "operator": "eq", "value": [False]}]
    a = run(logs, dest, filters=f1)
    b = run(logs[:3], dest, filters=f2)
    c = run(logs, dest)
    tags = {a.manifest["window_tag"], b.manifest["window_tag"], c.manifest["window_tag"]}
    assert len(tags) == 3
    assert c.manifest["window_tag"] == TAG
    assert a.manifest["window_tag"].startswith(TAG + "-f")
    # Each export's parts all survive the others (different tags never clean each other up).
    files = set(dest.parts())
    for r in (a, b, c):
        assert {f["path"] for f in r.manifest["files"]} <= files
    assert len(files) == sum(len(r.manifest["files"]) for r in (a, b, c))
    assert a.manifest["filters"] == f1


def test_window_tag_is_stable_for_equivalent_filters() -> None:
    f1 = {"key": "model", "operator": "eq", "value": "gpt"}
    f2 = {"operator": "neq", "key": "provider", "value": ["openai"]}
    one = window_tag(START, END, [f1, f2])
    assert one == window_tag(START, END, [f2, {**f1, "value": ["gpt"]}])
    assert one != window_tag(START, END, [f1])
    assert window_tag(START, END) == window_tag(START, END, []) == TAG
    other_tz = timezone(timedelta(hours=2))
    assert window_tag(START.astimezone(other_tz), END.astimezone(other_tz)) == TAG
    assert window_tag(START + timedelta(microseconds=500), END).startswith("20261126T000000.000500Z-")


# --- manifest and summary ----------------------------------------------------------------------


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


def test_manifest_without_body_fields_has_no_body_stats(fdest: Dest) -> None:
    assert "body_stats" not in run(spread_logs(3), fdest).manifest


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


def test_read_manifest_missing_or_incomplete(fdest: Dest, tmp_path: Any) -> None:
    with pytest.raises(AIGatewayError, match="does not exist"):
        read_manifest(f"file://{tmp_path}/nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"files": []}))
    with pytest.raises(AIGatewayError, match="not a complete"):
        read_manifest(f"file://{bad}")


# --- parquet -----------------------------------------------------------------------------------


def tricky_logs() -> list[dict]:
    logs = spread_logs(30)
    logs[0]["metadata"] = {"team": "a", "n": 1}  # object instead of JSON string
    logs[1]["request_body"] = {"messages": [{"role": "user", "content": "héllo"}]}
    logs[1]["response_body"] = "data: streamed text"
    logs[1]["request_body_status"] = "collected"
    logs[1]["response_body_status"] = "collected"
    logs[2]["request_body"] = None
    logs[2]["request_body_status"] = "not_collected"
    logs[3]["usage_metadata"] = {"cache": {"read": 3}}
    logs[3]["extra"] = "a field literally called extra"
    logs[4]["duration"] = 12.5  # does not fit int64
    logs[5]["status_code"] = "200"  # does not fit int64
    logs[6]["created_at"] = "2026-11-26T01:02:03.123456+00:00"  # non-canonical created_at
    logs[7]["cost"] = 3  # int cost
    logs[8]["custom_cost"] = True
    logs[9]["tokens_out"] = 2**70  # too big for int64
    logs[10]["success"] = 1  # not a bool
    logs[11]["event_id"] = "evt-1"
    logs[12]["model_type"] = None
    del logs[13]["cost"]
    logs[14]["metadata"] = '{"team": "a", "n": 14}'
    logs[15]["metadata"] = "not json {"
    logs[16].update(feedback=1, score=87.5)
    return logs


def test_parquet_and_jsonl_round_trip_to_same_records(dest: Dest) -> None:
    logs = tricky_logs()
    pq_result = run(logs, dest, format="parquet", gateway_id="gw-pq")
    js_result = run(logs, dest, format="jsonl", gateway_id="gw-js")
    from_parquet = list(iter_manifest_records(pq_result.manifest_uri, verify=True))
    from_jsonl = list(iter_manifest_records(js_result.manifest_uri, verify=True))
    assert from_jsonl == from_parquet
    assert [normalize_record(r) for r in logs] == from_parquet
    assert all(list(r) == list(COLUMN_NAMES) for r in from_jsonl)
    # exact values where the columns are typed; what does not fit is kept in extra
    by_id = {r["id"]: r for r in from_parquet}

    def extra(i: int) -> dict:
        return json.loads(by_id[logs[i]["id"]]["extra"])

    assert by_id[logs[4]["id"]]["duration"] is None and extra(4) == {"duration": 12.5}
    assert by_id[logs[5]["id"]]["status_code"] is None and extra(5) == {"status_code": "200"}
    assert by_id[logs[6]["id"]]["created_at"] == "2026-11-26T01:02:03.123Z"
    assert extra(6) == {"created_at": "2026-11-26T01:02:03.123456+00:00"}
    assert by_id[logs[7]["id"]]["cost"] == 3.0
    assert by_id[logs[9]["id"]]["tokens_out"] is None and extra(9) == {"tokens_out": 2**70}
    assert by_id[logs[10]["id"]]["success"] is None and extra(10) == {"success": 1}
    assert extra(3) == {"usage_metadata": {"cache": {"read": 3}}, "extra": "a field literally called extra"}
    assert by_id[logs[0]["id"]]["metadata"] == {"team": "a", "n": "1"}
    assert by_id[logs[14]["id"]]["metadata"] == {"team": "a", "n": "14"}
    assert by_id[logs[15]["id"]]["metadata"] is None
    assert by_id[logs[15]["id"]]["metadata_raw"] == "not json {"
    first = by_id[logs[1]["id"]]
    assert first["request_body"] == '{"messages":[{"role":"user","content":"héllo"}]}'
    assert (first["request_body_format"], first["response_body_format"]) == ("json", "sse")
    assert by_id[logs[2]["id"]]["request_body_format"] is None
    assert by_id[logs[2]["id"]]["request_body_status"] == "not_collected"
    assert by_id[logs[16]["id"]]["feedback"] == 1.0 and by_id[logs[16]["id"]]["score"] == 87.5
    assert by_id[logs[20]["id"]]["extra"] is None


def test_parquet_schema_and_typed_columns(fdest: Dest) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    logs = tricky_logs()
    result = run(logs, fdest, format="parquet")
    path = os.path.join(fdest.root, result.manifest["files"][0]["path"])
    table = pq.read_table(path)
    schema = table.schema
    assert schema.equals(arrow_schema())
    assert schema.field("created_at").type == pa.timestamp("ms", tz="UTC")
    for name in ("duration", "tokens_in", "tokens_out", "status_code", "step"):
        assert schema.field(name).type == pa.int64()
    for name in ("success", "cached", "custom_cost"):
        assert schema.field(name).type == pa.bool_()
    for name in ("cost", "feedback", "score"):
        assert schema.field(name).type == pa.float64()
    assert schema.field("metadata").type == pa.map_(pa.string(), pa.string())
    for name in (
        "id",
        "provider",
        "model",
        "model_type",
        "path",
        "metadata_raw",
        "request_content_type",
        "response_content_type",
        "request_type",
        "event_id",
        "request_body",
        "response_body",
        "request_body_format",
        "response_body_format",
        "request_body_status",
        "response_body_status",
        "extra",
    ):
        assert schema.field(name).type == pa.string(), name
    assert all(f.nullable for f in schema)
    assert schema.metadata[b"aigw.schema_version"] == str(SCHEMA_VERSION).encode()
    assert result.manifest["schema"] == manifest_schema(result.manifest["partition_by"])
    assert [c["name"] for c in result.manifest["schema"]["columns"]] == schema.names
    row = table.slice(1, 1).to_pylist()[0]
    assert row["request_body"] == '{"messages":[{"role":"user","content":"héllo"}]}'
    assert row["request_body_status"] == "collected"
    assert row["tokens_in"] == 11 and row["extra"] is None
    # the hive layout is readable as one dataset; manifests and hidden files are skipped
    import pyarrow.dataset as ds

    dataset = ds.dataset(os.path.join(fdest.root, "gateway=gw-1"), format="parquet", partitioning="hive")
    assert dataset.to_table().num_rows == len(logs)


def test_parquet_row_groups_are_bounded(fdest: Dest, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    from airflow_provider_aigw.export import formats

    monkeypatch.setattr(formats, "PARQUET_ROW_GROUP_ROWS", 10)
    logs = spread_logs(35, step=timedelta(seconds=1))
    result = run(logs, fdest, format="parquet")
    meta = pq.ParquetFile(os.path.join(fdest.root, result.manifest["files"][0]["path"])).metadata
    assert meta.num_row_groups == 4 and meta.num_rows == 35


def test_parquet_without_pyarrow_gives_clear_error(monkeypatch: pytest.MonkeyPatch, fdest: Dest) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(AIGatewayInputError, match=r"pip install 'airflow-provider-aigw\[parquet\]'"):
        validate_format("parquet")
    tracking = Tracking(spread_logs(3))
    with pytest.raises(AIGatewayInputError, match="parquet"):
        export_logs(tracking, fdest.url, gateway_id="gw", start=START, end=END, format="parquet")
    assert tracking.consumed == 0
    assert fdest.files() == {}
    assert validate_format("jsonl") == "jsonl"


# --- validation: clear errors before anything is written ----------------------------------------


def test_validate_format() -> None:
    assert validate_format("JSONL.GZ") == "jsonl.gz"
    assert validate_format(".jsonl") == "jsonl"
    with pytest.raises(AIGatewayInputError, match="format") as err:
        validate_format("csv")
    assert isinstance(err.value, ValueError)


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


def test_unregistered_scheme_is_a_clear_error() -> None:
    tracking = Tracking(spread_logs(5))
    with pytest.raises(AIGatewayInputError) as err:
        export_logs(tracking, "abfs://azure_default@container/aigw", gateway_id="gw", start=START, end=END)
    msg = str(err.value)
    assert "destination" in msg and "'abfs'" in msg and "apache-airflow-providers-microsoft-azure" in msg
    assert tracking.consumed == 0
    with pytest.raises(AIGatewayInputError, match="adlfs"):
        resolve_destination("abfs://container/prefix")
    with pytest.raises(AIGatewayInputError, match="destination"):
        resolve_destination("no-scheme/path")
    with pytest.raises(AIGatewayInputError, match="destination"):
        resolve_destination("")


def test_resolve_destination_accepts_urls_and_paths(tmp_path: Any) -> None:
    p = resolve_destination(f"file://{tmp_path}")
    assert isinstance(p, ObjectStoragePath) and p.protocol == "file"
    same = ObjectStoragePath(f"file://{tmp_path}")
    assert resolve_destination(same) is same
    mem = resolve_destination("memory://bucket/x")
    assert isinstance(mem, ObjectStoragePath) and mem.protocol == "memory"


def test_resolve_destination_check_writable(tmp_path: Any) -> None:
    assert resolve_destination(f"file://{tmp_path}/new/dir", check_writable=True).protocol == "file"
    assert list((tmp_path / "new" / "dir").iterdir()) == []
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(AIGatewayInputError, match="not writable"):
        resolve_destination(f"file://{blocker}/sub", check_writable=True)


def test_object_storage_path_destination(tmp_path: Any) -> None:
    path = ObjectStoragePath(f"file://{tmp_path}/osp")
    result = export_logs(spread_logs(5), path, gateway_id="gw", start=START, end=END)
    assert result.manifest_uri.startswith(f"file://{tmp_path}/osp/gateway=gw/_manifests/")
    assert result.count == 5


def test_unwritable_destination_is_a_clear_error(tmp_path: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    tracking = Tracking(spread_logs(5))
    with pytest.raises(AIGatewayInputError, match="not writable"):
        export_logs(tracking, f"file://{blocker}/sub", gateway_id="gw", start=START, end=END)
    assert tracking.consumed == 0


def test_naive_created_at_is_taken_as_utc_and_offsets_are_converted(fdest: Dest) -> None:
    logs = [
        make_log(1, START, created_at="2026-11-26T05:10:00"),
        make_log(2, START, created_at="2026-11-26T08:30:00+02:00"),  # 06:30Z
    ]
    result = run(logs, fdest, format="jsonl", partition_by="hour")
    assert [f["path"].split("/")[2] for f in result.manifest["files"]] == ["hour=05", "hour=06"]


# --- memory ------------------------------------------------------------------------------------


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


def test_union_rerun_usage_is_the_usage_of_all_archived_logs(fdest: Dest) -> None:
    """A re-run over a window whose archived logs are gone adds the new ones; usage covers both."""
    from airflow_provider_aigw.export import UsageSummary

    logs = spread_logs(30)
    first = run(logs[:20], fdest)
    again = run(logs[20:], fdest)  # the first 20 were deleted from the gateway meanwhile
    assert again.manifest["commit"]["mode"] == "union" and again.count == 30
    whole = UsageSummary()
    for log in logs:
        whole.add(log)
    expected = whole.to_dict()
    got = again.manifest["usage"]
    assert got["totals"]["logs"] == 30 and first.manifest["usage"]["totals"]["logs"] == 20
    assert {k: v for k, v in got["totals"].items() if k != "cost"} == {
        k: v for k, v in expected["totals"].items() if k != "cost"
    }
    assert got["totals"]["cost"] == pytest.approx(expected["totals"]["cost"], rel=1e-12)
    assert [g["durations"] for g in got["by_model"]] == [g["durations"] for g in expected["by_model"]]
