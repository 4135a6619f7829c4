"""export/formats.py: JSON Lines (plain, gzip) and Parquet written and read back as the same records."""

from __future__ import annotations

import gzip
import json
import os
import sys
from datetime import timedelta

import pytest

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export import export_logs, iter_manifest_records, normalize_record, validate_format
from airflow_provider_aigw.export.formats import ParquetRecordWriter
from airflow_provider_aigw.export.schema import COLUMN_NAMES
from tests.export_helpers import END, START, Dest, Tracking, make_log, run, spread_logs, tricky_logs


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


def test_validate_format() -> None:
    assert validate_format("JSONL.GZ") == "jsonl.gz"
    assert validate_format(".jsonl") == "jsonl"
    with pytest.raises(AIGatewayInputError, match="format") as err:
        validate_format("csv")
    assert isinstance(err.value, ValueError)


def test_parquet_row_group_cap_counts_utf8_bytes() -> None:
    import io

    import pyarrow.parquet as pq

    buf = io.BytesIO()
    writer = ParquetRecordWriter(buf, row_group_rows=1000, row_group_bytes=10_000)
    for i in range(12):
        writer.write(make_log(i, START, response_body="漢" * 1000), START)  # 3,000 bytes, 1,000 chars
    writer.close()
    meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata
    # Counting bytes flushes every 4 rows (>= 10,000 bytes); counting characters every 10.
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4, 4, 4]


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz"])
def test_a_lone_surrogate_is_archived_as_its_escape_and_reads_back(fdest: Dest, fmt: str) -> None:
    # The API may send JSON's "\ud800" (JavaScript writes a lone surrogate so): a string that has
    # no UTF-8 form. The part is written all the same, with the escape.
    logs = [make_log(1, START, model="broken \ud800 pair"), make_log(2, START + timedelta(seconds=1))]
    result = run(logs, fdest, format=fmt)
    raw = fdest.parts()[result.manifest["files"][0]["path"]]
    assert b'"model":"broken \\ud800 pair"' in (gzip.decompress(raw) if fmt == "jsonl.gz" else raw)
    back = list(iter_manifest_records(result.manifest_uri, verify=True))
    assert back == [normalize_record(log) for log in logs]


def test_parquet_refuses_a_lone_surrogate_naming_the_log_and_commits_nothing(fdest: Dest) -> None:
    pytest.importorskip("pyarrow")
    logs = [make_log(1, START), make_log(2, START + timedelta(seconds=1), metadata='{"note":"x \\ud800"}')]
    with pytest.raises(AIGatewayError, match=r"log '.*', column 'metadata': .*lone surrogate.* jsonl"):
        run(logs, fdest, format="parquet")
    assert fdest.parts() == {}
