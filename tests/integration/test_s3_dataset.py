"""Export to s3:// (a moto S3 server on loopback), read back with DuckDB through the manifest's URIs,
then delete exactly the exported logs with the manifest read from S3."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.export import duckdb_columns, read_manifest
from airflow_provider_aigw.operators.ai_gateway import AIGatewayDeleteLogsOperator, AIGatewayExportLogsOperator
from tests.s3_server import CREDS, duckdb_on_s3, moto_s3

pytestmark = pytest.mark.integration

UTC = timezone.utc
GW = "s3-gw"
BUCKET = "aigw-archive"
START = datetime(2026, 2, 1, tzinfo=UTC)
END = datetime(2026, 2, 2, tzinfo=UTC)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 150, START, END, seed=11)
    server.seed_logs(GW, 25, END, END + timedelta(hours=3), seed=12)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json(GW))
    aws = {
        "conn_type": "aws",
        "login": CREDS["aws_access_key_id"],
        "password": CREDS["aws_secret_access_key"],
        "extra": {"endpoint_url": s3_endpoint, "region_name": CREDS["region_name"]},
    }
    # Its own connection id: Airflow caches one filesystem per (scheme, conn id) for the process,
    # and other modules point aws_moto at their own moto server.
    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO_DATASET", json.dumps(aws))
    # Nothing may reach for real AWS credentials.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return server


@pytest.fixture
def con(s3_endpoint: str) -> Iterator[Any]:
    with duckdb_on_s3(s3_endpoint) as connection:
        yield connection


@pytest.mark.parametrize("fmt", ["parquet", "jsonl.gz"])
def test_s3_export_read_by_duckdb_from_manifest_uris_then_manifest_delete(
    emu: EmulatorServer, con: Any, fmt: str
) -> None:
    window_ids = emu.ids(GW, START, END)
    later_ids = emu.ids(GW, END)
    summary = AIGatewayExportLogsOperator(
        task_id="export", destination=f"s3://aws_moto_dataset@{BUCKET}/archive/{fmt}", format=fmt, start=START, end=END
    ).execute({})
    assert summary["count"] == len(window_ids)
    assert summary["manifest_uri"].startswith(f"s3://aws_moto_dataset@{BUCKET}/")  # Airflow's own reference

    manifest = read_manifest(summary["manifest_uri"])
    # What DuckDB, Spark or Athena open: plain s3://bucket/key, no Airflow connection id.
    uris = [f["uri"] for f in manifest["files"]]
    assert uris and all(u.startswith(f"s3://{BUCKET}/archive/{fmt}/gateway={GW}/") for u in uris), uris
    listing = ", ".join(f"'{u}'" for u in uris)
    if fmt == "parquet":
        source = f"read_parquet([{listing}])"
    else:
        cols = ", ".join(f"'{k}': '{v}'" for k, v in duckdb_columns().items())
        source = f"read_json([{listing}], columns = {{{cols}}}, format = 'newline_delimited')"
    rows = con.execute(f"SELECT id, created_at, cost, model FROM {source}").fetchall()
    assert sorted(r[0] for r in rows) == sorted(window_ids)
    truth = {log["id"]: log for log in emu.logs(GW)}
    for log_id, created_at, cost, model in rows:
        assert created_at == datetime.fromisoformat(truth[log_id]["created_at"].replace("Z", "+00:00"))
        assert (cost, model) == (truth[log_id].get("cost"), truth[log_id]["model"])
    total = con.execute(f"SELECT sum(cost) FROM {source}").fetchone()[0]
    assert total == pytest.approx(sum(truth[i].get("cost") or 0.0 for i in window_ids), rel=1e-9)

    deleted = AIGatewayDeleteLogsOperator(task_id="delete", manifest=summary["manifest_uri"]).execute({})
    assert deleted == len(window_ids)
    assert emu.ids(GW) == later_ids  # exactly the exported logs went; the later ones stay
