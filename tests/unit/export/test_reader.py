"""export/reader.py: reading an archive back: manifests, part files, verification."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayError
from airflow_provider_aigw.export import file_uri, iter_file_records, iter_manifest_records, read_manifest, verify_file
from tests.export_helpers import Dest, run, spread_logs


def test_read_manifest_missing_or_incomplete(fdest: Dest, tmp_path: Any) -> None:
    with pytest.raises(AIGatewayError, match="does not exist"):
        read_manifest(f"file://{tmp_path}/nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"files": []}))
    with pytest.raises(AIGatewayError, match="not a complete"):
        read_manifest(f"file://{bad}")


def test_files_are_opened_next_to_the_manifest_with_its_connection() -> None:
    entry = {"path": "gateway=gw/date=2026-11-26/part-x.jsonl", "uri": "s3://bucket/p/gateway=gw/date=2026-11-26/part-x.jsonl"}
    manifest = {"gateway_id": "gw", "manifest_uri": "s3://aws_conn@bucket/p/gateway=gw/_manifests/t.jsonl.json"}
    assert file_uri(manifest, entry) == "s3://aws_conn@bucket/p/gateway=gw/date=2026-11-26/part-x.jsonl"
    # a manifest loaded from elsewhere (or a copy without its location) uses the plain URI
    assert file_uri({"gateway_id": "gw"}, entry) == entry["uri"]
    assert file_uri({**manifest, "manifest_uri": "file:///copies/m.json"}, entry) == entry["uri"]


def test_read_back_verifies_each_file_against_its_entry(dest: Dest) -> None:
    logs = spread_logs(40)
    result = run(logs, dest, rows_per_part=15)
    assert sorted(r["id"] for r in iter_manifest_records(result.summary(), verify=True)) == sorted(
        log["id"] for log in logs
    )
    changed, missing = result.manifest["files"][1], result.manifest["files"][2]
    dest.fs.pipe(f"{dest.root}/{changed['path']}", b"tampered")
    with pytest.raises(AIGatewayError, match=r"does not match its manifest entry \(bytes 8 vs"):
        verify_file(changed)
    with pytest.raises(AIGatewayError, match="does not match"):
        list(iter_manifest_records(result.manifest_uri, verify=True))
    dest.fs.rm_file(f"{dest.root}/{missing['path']}")
    with pytest.raises(AIGatewayError, match="is named by the manifest but does not exist"):
        verify_file(missing)
    with pytest.raises(AIGatewayError, match="does not exist"):
        list(iter_file_records(missing["uri"]))
