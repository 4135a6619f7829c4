"""export/schema.py: the one schema of exported rows, and the fast path of ``schema.to_row`` (a
planned copy per log shape) against the field-by-field reference, on realistic and odd logs alike:
same rows, same column order, same types read back, same bytes written."""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import random
from datetime import datetime, timezone
from typing import Any

import pytest

from airflow_provider_aigw.export import SCHEMA_VERSION, arrow_schema, manifest_schema
from airflow_provider_aigw.export.formats import make_writer, parquet_row_to_record
from airflow_provider_aigw.export.schema import COLUMN_NAMES, to_json_line, to_row, to_row_reference
from airflow_provider_aigw.jsoncodec import encode_json
from airflow_provider_aigw.timestamps import parse_created_at
from tests.export_helpers import Dest, run, tricky_logs

BASE: dict[str, Any] = {
    "id": "019b76da-fb9f-7dd8-800e-f1ab9c3d8b9f",
    "created_at": "2026-01-01T00:00:21.407Z",
    "provider": "workers-ai",
    "model": "@cf/baai/bge-base-en-v1.5",
    "model_type": "embeddings",
    "path": "@cf/baai/bge-base-en-v1.5",
    "duration": 220,
    "success": True,
    "cached": False,
    "tokens_in": 525,
    "tokens_out": 0,
    "cost": 3.675e-05,
    "custom_cost": False,
    "request_content_type": "application/json",
    "response_content_type": "application/json",
    "request_type": "provider",
    "status_code": 200,
    "step": 0,
}

# One change to BASE per case: nulls, metadata in every form, fields without a column, values that
# do not fit their column, non-canonical timestamps, bodies, non-ASCII text.
VARIANTS: list[dict[str, Any]] = [
    {},
    {"tokens_in": None, "tokens_out": None, "cost": None},
    {"metadata": '{"release":2,"feature":"chat","user_id":"user-0300","beta":true,"ratio":0.5}'},
    {"metadata": '{"nested":{"a":[1,2]},"none":null,"big":12345678901234567890}'},
    {"metadata": {"team": "search", "n": 3, "flag": False}},
    {"metadata": "not json"},
    {"metadata": "[1, 2]"},
    {"metadata": '"just a string"'},
    {"metadata": None},
    {"metadata": [1, 2]},
    {"event_id": "evt-1", "feedback": 1.0, "score": 87.5},
    {"feedback": -1, "score": 100},
    {"new_field": {"x": 1}, "another": [1, "two"]},
    {"extra": "a field named like the extra column"},
    {"metadata_raw": "x", "request_body_format": "json"},
    {"status_code": "200"},
    {"status_code": True},
    {"duration": 220.0},
    {"duration": 220.5},
    {"duration": 2**63},
    {"tokens_in": -(2**63) - 1},
    {"tokens_in": 2**63 - 1, "tokens_out": -(2**63)},
    {"cost": float("nan")},
    {"cost": float("inf")},
    {"cost": 2**53 + 1},
    {"cost": 3},
    {"success": 1, "cached": "false"},
    {"model": 42, "provider": None},
    {"created_at": "2026-01-01T00:00:21.407123Z"},
    {"created_at": "2026-01-01T01:00:21.407+01:00"},
    {"created_at": "2026-01-01T00:00:21Z"},
    {"request_body": '{"messages":[{"role":"user","content":"héllo ✓"}]}', "response_body": "data: {}\n\n"},
    {"request_body": {"prompt": "hi", "n": 1}, "response_body": b"plain bytes"},
    {"request_body": "[not json", "response_body": None, "request_body_status": "collected"},
    {"response_body_status": "not_collected", "request_body_status": None},
    {"model": "模型-🚀", "path": 'quote " and \\ backslash\nnewline'},
]


def _logs() -> list[dict[str, Any]]:
    logs = [{**BASE, **variant} for variant in VARIANTS]
    # Random mixes of the variants, and logs missing some fields entirely.
    rng = random.Random(20261207)
    for i in range(300):
        log = dict(BASE)
        for variant in rng.sample(VARIANTS, k=rng.randint(1, 4)):
            log.update(variant)
        for key in rng.sample(sorted(BASE), k=rng.randint(0, 3)):
            if key != "created_at":
                log.pop(key, None)
        log["id"] = f"log-{i:04d}"
        logs.append(log)
    return logs


def _created(log: dict[str, Any]) -> datetime:
    return parse_created_at(log["created_at"])


@pytest.mark.parametrize("log", _logs(), ids=lambda log: str(log.get("id")))
def test_fast_row_equals_reference_row_in_column_order(log: dict[str, Any]) -> None:
    expected = to_row_reference(dict(log), _created(log))
    # twice: the first call plans the log's shape, the second takes the planned copy
    for _ in range(2):
        row = to_row(dict(log), _created(log))
        assert list(row) == list(COLUMN_NAMES)
        assert json.dumps(row, allow_nan=True) == json.dumps(expected, allow_nan=True)
        assert row.keys() == expected.keys()


def test_fast_path_is_taken_for_plain_logs_and_leaves_the_log_untouched() -> None:
    log = {**BASE, "metadata": '{"a":1}', "unknown": [1]}
    before = json.dumps(log)
    row = to_row(log, _created(log))
    assert json.dumps(log) == before
    assert row["metadata"] == {"a": "1"} and row["metadata_raw"] is None
    assert row["extra"] == '{"unknown":[1]}'
    assert row["created_at"] == "2026-01-01T00:00:21.407Z"


def _reference_jsonl(logs: list[dict[str, Any]]) -> bytes:
    return b"".join(encode_json(to_row_reference(log, _created(log))) + b"\n" for log in logs)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz"])
def test_jsonl_bytes_equal_the_reference_encoding(fmt: str) -> None:
    logs = _logs()
    raw = io.BytesIO()
    writer = make_writer(fmt, raw)
    for log in logs:
        writer.write(log, _created(log))
    writer.close()
    data = raw.getvalue()
    if fmt == "jsonl.gz":
        data = gzip.decompress(data)
    assert data == _reference_jsonl(logs)


def test_parquet_rows_equal_the_reference_rows() -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    logs = _logs()
    raw = io.BytesIO()
    writer = make_writer("parquet", raw)
    for log in logs:
        writer.write(log, _created(log))
    writer.close()
    raw.seek(0)
    got = [parquet_row_to_record(r) for r in pq.read_table(raw).to_pylist()]
    expected = [to_row_reference(log, _created(log)) for log in logs]
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        for name in COLUMN_NAMES:
            a, b = g[name], e[name]
            if isinstance(b, float) and math.isnan(b):
                assert isinstance(a, float) and math.isnan(a)
            else:
                assert a == b, (name, a, b)


def test_created_at_is_utc_aware() -> None:
    log = {**BASE, "created_at": "2026-01-01T01:00:21.407+01:00"}
    row = to_row(log, _created(log))
    assert row["created_at"] == "2026-01-01T00:00:21.407Z"
    assert _created(log).tzinfo == timezone.utc
    assert json.loads(row["extra"]) == {"created_at": "2026-01-01T01:00:21.407+01:00"}


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


@pytest.mark.parametrize("log", _logs(), ids=lambda log: str(log.get("id")))
def test_json_line_reads_back_as_the_reference_row_with_its_types(log: dict[str, Any]) -> None:
    expected = to_row_reference(dict(log), _created(log))
    # twice: the first call plans the log's shape, the second reuses the plan
    for _ in range(2):
        line = to_json_line(dict(log), _created(log))
        assert b"\n" not in line
        back = json.loads(line)
        assert list(back) == list(COLUMN_NAMES)
        assert back == expected
        # 1.0 stays a float and 1 an int: DuckDB and pyarrow type the columns from the text
        assert [type(v) for v in back.values()] == [type(v) for v in expected.values()]


def test_json_line_keeps_non_ascii_and_escapes_only_what_json_must() -> None:
    log = {**BASE, "path": 'tab\there "q" \\ \x00', "model": "模型-🚀 é\u2028\x7f"}
    line = to_json_line(log, _created(log))
    assert '"model":"模型-🚀 é\u2028\x7f"'.encode() in line
    assert b'"path":"tab\\there \\"q\\" \\\\ \\u0000"' in line


def test_json_line_of_a_lone_surrogate_is_an_escape_that_reads_back() -> None:
    # JSON.stringify writes a lone surrogate as "\ud800"; such a string has no UTF-8 form.
    log = {**BASE, "model": "broken \ud800 pair"}
    line = to_json_line(log, _created(log))
    assert line.isascii() and b"\\ud800" in line
    assert json.loads(line) == to_row_reference(log, _created(log))
