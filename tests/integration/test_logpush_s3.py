"""A day of Logpush files written by the emulator to S3 (a moto server on loopback), imported by
AIGatewayImportLogpushOperator and read back with DuckDB: the rows equal the emulator's ground
truth and the Logs API export of the same day; re-runs and a concurrent import keep them exact."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.logpush import write_logpush_files
from airflow_provider_aigw.exceptions import AIGatewayExportConflictError
from airflow_provider_aigw.export import read_manifest
from airflow_provider_aigw.logpush.run import import_logpush
from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator, AIGatewayImportLogpushOperator
from tests.s3_server import CREDS, duckdb_on_s3, moto_s3

pytestmark = pytest.mark.integration

UTC = timezone.utc
GW = "lp-gw"
BUCKET = "aigw-logpush"
START = datetime(2026, 4, 18, tzinfo=UTC)
END = datetime(2026, 4, 19, tzinfo=UTC)
CONN = "aws_moto_logpush"
#: Every column Logpush carries (the rest are null in its rows).
LOGPUSH_COLUMNS = (
    "created_at",
    "provider",
    "model",
    "path",
    "status_code",
    "success",
    "cached",
    "duration",
    "cost",
    "metadata",
    "metadata_raw",
    "request_body",
    "request_body_format",
    "request_body_status",
    "response_body",
    "response_body_format",
    "response_body_status",
)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3(BUCKET) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def emu(
    aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, key: rsa.RSAPrivateKey
) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 150, START, END, seed=21)
    server.seed_logs(GW, 20, END, END + timedelta(hours=2), seed=22)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json(GW))
    aws = {
        "conn_type": "aws",
        "login": CREDS["aws_access_key_id"],
        "password": CREDS["aws_secret_access_key"],
        "extra": {"endpoint_url": s3_endpoint, "region_name": CREDS["region_name"]},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(aws))
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key_conn = {"conn_type": "generic", "password": pem.decode(), "extra": {"gateway_id": GW}}
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_LOGPUSH_KEY_DEFAULT", json.dumps(key_conn))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    return server


def push(emu: EmulatorServer, key: rsa.RSAPrivateKey, endpoint: str, prefix: str, **options: Any) -> None:
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    storage = {"key": CREDS["aws_access_key_id"], "secret": CREDS["aws_secret_access_key"]}
    storage["client_kwargs"] = {"endpoint_url": endpoint, "region_name": CREDS["region_name"]}  # type: ignore[assignment]
    write_logpush_files(emu, GW, f"s3://{BUCKET}/{prefix}", public, storage_options=storage, **options)


@pytest.fixture
def con(s3_endpoint: str) -> Iterator[Any]:
    with duckdb_on_s3(s3_endpoint) as connection:
        yield connection


def duck_rows(con: Any, summary: dict[str, Any], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    uris = ", ".join(f"'{f['uri']}'" for f in read_manifest(summary["manifest_uri"])["files"])
    return con.execute(f"SELECT {', '.join(columns)} FROM read_parquet([{uris}])").fetchall()


def comparable(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted(json.dumps(row, default=str, sort_keys=True) for row in rows)


def test_a_day_imported_from_s3_equals_the_ground_truth_and_the_api_export(
    emu: EmulatorServer, key: rsa.RSAPrivateKey, s3_endpoint: str, con: Any
) -> None:
    push(emu, key, s3_endpoint, "day", batch_seconds=1800)
    summary = AIGatewayImportLogpushOperator(
        task_id="import",
        source=f"s3://{CONN}@{BUCKET}/day",
        destination=f"s3://{CONN}@{BUCKET}/archive/logpush",
        format="parquet",
    ).execute({"data_interval_start": START, "data_interval_end": END})
    truth = [log for log in emu.logs(GW) if log["id"] in set(emu.ids(GW, START, END))]
    assert summary["count"] == len(truth) == 150 and summary["unreadable"] == 0

    # the ground truth, column by column, for what Logpush carries
    names = ("created_at", "provider", "model", "path", "status_code", "cached", "duration", "cost")
    rows = duck_rows(con, summary, (*names, "requested_model", "rate_limited", "request_body", "response_body"))
    expected = []
    for log in truth:
        request, response = emu.get_bodies(GW, log["id"])
        created = datetime.fromisoformat(log["created_at"].replace("Z", "+00:00"))
        bodies = [
            None if b is None else b if isinstance(b, str) else json.dumps(b, separators=(",", ":"), ensure_ascii=False)
            for b in (request, response)
        ]
        values = (created, *(log.get(n) for n in names[1:]))
        expected.append((*values, log["model"], False, *bodies))
    assert comparable(rows) == comparable(expected)

    # the Logs API export of the same day agrees on every column both have
    api = AIGatewayExportLogsOperator(
        task_id="export",
        destination=f"s3://{CONN}@{BUCKET}/archive/api",
        format="parquet",
        include_bodies=True,
        start=START,
        end=END,
    ).execute({})
    assert api["count"] == 150
    assert comparable(duck_rows(con, summary, LOGPUSH_COLUMNS)) == comparable(duck_rows(con, api, LOGPUSH_COLUMNS))
    # the columns only the API has are null in the Logpush rows, the Logpush-only ones in the API rows
    assert duck_rows(con, summary, ("count(tokens_in)", "count(feedback)", "count(score)")) == [(0, 0, 0)]
    assert duck_rows(con, api, ("count(requested_model)", "count(rate_limited)")) == [(0, 0)]

    manifest = read_manifest(summary["manifest_uri"])
    assert manifest["source"] == "logpush" and "source" not in read_manifest(api["manifest_uri"])
    files = manifest["logpush"]["files"]
    assert all(f["uri"].startswith(f"s3://{BUCKET}/day/2026041") and len(f["sha256"]) == 64 for f in files)
    assert sum(f["rows"] for f in files) == 150


def test_reruns_late_files_and_a_concurrent_import_keep_the_day_exact(
    emu: EmulatorServer, key: rsa.RSAPrivateKey, s3_endpoint: str, con: Any
) -> None:
    noon = START + timedelta(hours=12)
    push(emu, key, s3_endpoint, "late", end=noon, batch_seconds=3600)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    options = {"private_pem": pem, "gateway_id": GW, "start": START, "end": END, "format": "parquet"}
    source, dest = f"s3://{CONN}@{BUCKET}/late", f"s3://{CONN}@{BUCKET}/archive/late"

    first = import_logpush(source, dest, **options).summary
    morning = {r[0] for r in duck_rows(con, first, ("id",))}
    assert len(morning) == len(emu.ids(GW, START, noon))
    # again, in worker processes (spawned: the moto server's thread runs here), reading S3 there
    again = import_logpush(source, dest, max_workers=2, **options).summary
    assert {r[0] for r in duck_rows(con, again, ("id",))} == morning and again["count"] == len(morning)

    push(emu, key, s3_endpoint, "late", start=noon, batch_seconds=3600)  # the afternoon's files arrive
    outcomes: list[Any] = []

    def run(owner: str) -> None:
        try:
            outcomes.append(import_logpush(source, dest, owner=owner, **options).summary)
        except AIGatewayExportConflictError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=run, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    summaries = [o for o in outcomes if isinstance(o, dict)]
    assert summaries and len(outcomes) == 2  # one won; the other conflicted or unioned after it
    final = read_manifest(summaries[-1]["manifest_uri"])
    ids = [r[0] for r in duck_rows(con, {"manifest_uri": summaries[-1]["manifest_uri"]}, ("id",))]
    assert len(ids) == len(set(ids)) == 150 == final["count"] and morning < set(ids)
