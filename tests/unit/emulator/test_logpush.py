"""The emulator writes the logs it holds as Logpush files: layout, fields, encryption (opened here
with ``cryptography`` directly, not the provider), timestamp forms, S3 (moto), CLI and admin route."""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import s3fs
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.data import body_text, to_ms
from airflow_provider_aigw.emulator.logpush import write_logpush_files
from tests.s3_server import CREDS, moto_s3

UTC = timezone.utc
GW = "lp-gw"
START = datetime(2026, 4, 18, 23, 50, tzinfo=UTC)
END = datetime(2026, 4, 19, 0, 10, tzinfo=UTC)
FIELDS = {
    "Cached", "Endpoint", "Gateway", "Metadata", "Metrics", "Model", "Provider", "RateLimited", "RequestBody",
    "RequestedModel", "ResponseBody", "RoutingDecisionID", "RoutingReason", "StatusCode", "Timestamp",
}  # fmt: skip
NAME = re.compile(r"^(\d{8})/(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)_[0-9a-f]{8}\.log\.gz$")
OAEP = padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


@pytest.fixture(scope="module")
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def public_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def emu() -> EmulatorServer:
    server = EmulatorServer()
    server.seed_logs(GW, 200, START, END, seed=3)
    return server


def open_envelope(envelope: dict[str, str], key: rsa.RSAPrivateKey) -> bytes:
    aes_key = key.decrypt(base64.b64decode(envelope["key"]), OAEP)
    assert len(aes_key) == 32
    iv = base64.b64decode(envelope["iv"])
    assert len(iv) == 12
    return AESGCM(aes_key).decrypt(iv, base64.b64decode(envelope["data"]), None)


def read_tree(root: Path) -> list[tuple[str, list[dict[str, Any]]]]:
    """(path under root, records) of every file, in name order."""
    tree = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        lines = gzip.decompress(path.read_bytes()).splitlines()
        tree.append((path.relative_to(root).as_posix(), [json.loads(line) for line in lines]))
    return tree


def test_files_are_daily_folders_of_named_gzip_ndjson_batches(
    emu: EmulatorServer, public_pem: bytes, tmp_path: Path
) -> None:
    written = write_logpush_files(emu, GW, str(tmp_path), public_pem, batch_seconds=70)
    tree = read_tree(tmp_path)
    assert [w["path"] for w in written] == [str(tmp_path / name) for name, _ in tree]
    assert [w["records"] for w in written] == [len(records) for _, records in tree]
    assert sum(w["records"] for w in written) == 200
    assert {name[:8] for name, _ in tree} == {"20260418", "20260419"}
    for name, records in tree:
        folder, first, last = NAME.match(name).groups()  # type: ignore[union-attr]
        start = datetime.strptime(first, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        end = datetime.strptime(last, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        assert folder == first[:8] and (end - start).total_seconds() == 70
        assert int(start.timestamp()) % 70 == 0  # batches aligned on the epoch
        for record in records:
            assert set(record) == FIELDS
            assert start.timestamp() * 1e9 <= record["Timestamp"] < end.timestamp() * 1e9
    # 70 s does not divide a day: the batch across midnight lands in the folder of its start
    across = [name for name, _ in tree if NAME.match(name).group(3)[:8] != name[:8]]  # type: ignore[union-attr]
    assert [name[:35] for name in across] == ["20260418/20260418T235900Z_20260419T"]


def test_records_decrypt_to_the_emulators_ground_truth_field_by_field(
    emu: EmulatorServer, public_pem: bytes, private_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    write_logpush_files(emu, GW, str(tmp_path), public_pem)
    records = [r for _, rs in read_tree(tmp_path) for r in rs]
    truth = emu.logs(GW)
    assert len(records) == len(truth) == 200
    wrapped: set[str] = set()
    for record, log in zip(records, truth, strict=True):  # ids aside: Logpush has none
        request, response = emu.get_bodies(GW, log["id"])
        assert record["Timestamp"] == to_ms(log["created_at"]) * 1_000_000
        assert (record["Gateway"], record["Provider"], record["Model"], record["Endpoint"]) == (
            GW,
            log["provider"],
            log["model"],
            log["path"],
        )
        assert (record["StatusCode"], record["Cached"]) == (log["status_code"], log["cached"])
        assert record["Metrics"] == {
            **({"cost": log["cost"]} if "cost" in log else {}),
            "durationMs": log["duration"],
        }
        assert (record["RequestedModel"], record["RateLimited"]) == (log["model"], False)
        assert (record["RoutingDecisionID"], record["RoutingReason"]) == ("", "")
        for field, plain in (
            ("Metadata", log.get("metadata")),
            ("RequestBody", None if request is None else body_text(request)),
            ("ResponseBody", None if response is None else body_text(response)),
        ):
            if plain is None:
                assert record[field] is None
            else:
                assert set(record[field]) == {"type", "key", "iv", "data"} and record[field]["type"] == "encrypted"
                assert open_envelope(record[field], private_key) == plain.encode()
                wrapped.add(record[field]["key"])
    # one fresh AES key per field: no wrapped key repeats
    assert len(wrapped) == sum(
        record[f] is not None for record in records for f in ("Metadata", "RequestBody", "ResponseBody")
    )
    assert any(r["Metadata"] is None for r in records) and any(r["ResponseBody"] is None for r in records)


def test_shared_key_mode_uses_one_aes_key_per_log(
    emu: EmulatorServer, public_pem: bytes, private_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    write_logpush_files(emu, GW, str(tmp_path), public_pem, shared_key=True)
    records = [r for _, rs in read_tree(tmp_path) for r in rs]
    full = [r for r in records if r["Metadata"] and r["RequestBody"] and r["ResponseBody"]]
    assert full
    for record in full:
        envelopes = [record[f] for f in ("Metadata", "RequestBody", "ResponseBody")]
        assert len({e["key"] for e in envelopes}) == 1 and len({e["iv"] for e in envelopes}) == 3
        assert open_envelope(envelopes[1], private_key).startswith(b"{")
    assert len({r["RequestBody"]["key"] for r in full}) == len(full)


@pytest.mark.parametrize(
    ("timestamp_format", "expected"),
    [
        ("unixnano", lambda ms: ms * 1_000_000),
        ("unix", lambda ms: ms // 1000),
        ("rfc3339", lambda ms: datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
    ],
)
def test_each_timestamp_format(
    emu: EmulatorServer, public_pem: bytes, tmp_path: Path, timestamp_format: str, expected: Any
) -> None:
    write_logpush_files(emu, GW, str(tmp_path), public_pem, timestamp_format=timestamp_format)
    stamps = [r["Timestamp"] for _, rs in read_tree(tmp_path) for r in rs]
    assert stamps == [expected(to_ms(log["created_at"])) for log in emu.logs(GW)]


def test_a_window_of_the_logs_and_refusals(emu: EmulatorServer, public_pem: bytes, tmp_path: Path) -> None:
    start, end = "2026-04-19T00:00:00Z", "2026-04-19T00:05:00Z"
    written = write_logpush_files(emu, GW, str(tmp_path), public_pem, start=start, end=end)
    assert sum(w["records"] for w in written) == len(emu.ids(GW, start, end)) > 0
    with pytest.raises(ValueError, match="timestamp_format must be one of unixnano, unix, rfc3339"):
        write_logpush_files(emu, GW, str(tmp_path / "x"), public_pem, timestamp_format="iso")
    with pytest.raises(ValueError, match="batch_seconds must be at least 1"):
        write_logpush_files(emu, GW, str(tmp_path / "x"), public_pem, batch_seconds=0)
    assert not (tmp_path / "x").exists()


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


def test_files_go_to_s3(
    emu: EmulatorServer, public_pem: bytes, private_key: rsa.RSAPrivateKey, s3_endpoint: str
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **CREDS)
    s3.create_bucket(Bucket="logpush")
    options = {"key": "testing", "secret": "testing", "client_kwargs": {"endpoint_url": s3_endpoint}}
    written = write_logpush_files(emu, GW, "s3://logpush/ai-gateway", public_pem, storage_options=options)
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="logpush")["Contents"])
    assert [w["path"] for w in written] == [f"s3://logpush/{key}" for key in listed]
    assert all(NAME.match(key.removeprefix("ai-gateway/")) for key in listed)
    body = s3.get_object(Bucket="logpush", Key=listed[0])["Body"].read()
    first = json.loads(gzip.decompress(body).splitlines()[0])
    log = emu.logs(GW)[0]
    assert first["Timestamp"] == to_ms(log["created_at"]) * 1_000_000
    request, _ = emu.get_bodies(GW, log["id"])
    if request is not None:
        assert open_envelope(first["RequestBody"], private_key) == body_text(request).encode()

    # and the provider reads them back from the bucket: the logs of a window, exactly
    from airflow_provider_aigw.logpush.decrypt import EnvelopeDecryptor, LogpushPrivateKey
    from airflow_provider_aigw.logpush.files import iter_records, select_files
    from airflow_provider_aigw.logpush.records import to_row

    fs = s3fs.S3FileSystem(**options)
    start, end = datetime(2026, 4, 18, 23, 58, 30, 500000, tzinfo=UTC), datetime(2026, 4, 19, 0, 3, 7, tzinfo=UTC)
    decryptor = EnvelopeDecryptor(LogpushPrivateKey(private_key))
    files = select_files(fs, "logpush/ai-gateway", start, end)
    rows = [to_row(r, decryptor, time_ns=ns) for f in files for _l, ns, r in iter_records(fs, f, start, end)]
    expected = [log for log in emu.logs(GW) if start <= datetime.fromisoformat(log["created_at"][:-1] + "+00:00") < end]
    assert [(r["created_at"], r["model"], r["duration"]) for r in rows] == [
        (log["created_at"], log["model"], log["duration"]) for log in expected
    ]
    assert len(rows) > 10 and {f.path.split("/")[2] for f in files} == {"20260418", "20260419"}


def test_cli_writes_the_same_logs_the_emulator_serves(public_pem: bytes, tmp_path: Path) -> None:
    key_file = tmp_path / "public.pem"
    key_file.write_bytes(public_pem)
    command = [sys.executable, "-m", "airflow_provider_aigw.emulator", "logpush", "--public-key", str(key_file)]
    command += ["--destination", str(tmp_path / "push"), "--timestamp-format", "unix"]
    command += ["--gateway", "gw-a:30", "--gateway", "gw-b:20", "--start", "2026-04-18T00:00:00Z"]
    command += ["--end", "2026-04-18T01:00:00Z", "--seed", "7"]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    files = json.loads(out)["files"]
    assert {g: sum(f["records"] for f in fs) for g, fs in files.items()} == {"gw-a": 30, "gw-b": 20}
    records = [r for _, rs in read_tree(tmp_path / "push") for r in rs]
    # the serving command seeded the same way holds the same logs
    serving = EmulatorServer(seed=7)
    for gateway, count in (("gw-a", 30), ("gw-b", 20)):
        serving.seed_logs(gateway, count, "2026-04-18T00:00:00.000Z", "2026-04-18T01:00:00.000Z", return_ids=False)
        expected = sorted((to_ms(log["created_at"]) // 1000, log["model"]) for log in serving.logs(gateway))
        got = sorted((r["Timestamp"], r["Model"]) for r in records if r["Gateway"] == gateway)
        assert got == expected


def test_cli_help_lists_the_logpush_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow_provider_aigw.emulator", "logpush", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for flag in ("--public-key", "--destination", "--batch-seconds", "--timestamp-format", "--shared-key", "--gateway"):
        assert flag in out


def test_admin_route_writes_the_files_of_a_running_emulator(
    emu: EmulatorServer, public_pem: bytes, private_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    with emu:
        url = f"{emu.base_url}/__emulator__/gateways/{GW}/logpush"
        spec = {"destination": str(tmp_path), "public_key_pem": public_pem.decode(), "timestamp_format": "rfc3339"}
        answer = requests.post(url, json={**spec, "start": "2026-04-19T00:00:00Z"}, timeout=30)
        assert answer.status_code == 200, answer.text
        files = answer.json()["files"]
        assert sum(f["records"] for f in files) == len(emu.ids(GW, "2026-04-19T00:00:00Z")) > 0
        records = [r for _, rs in read_tree(tmp_path) for r in rs]
        assert all(r["Timestamp"].startswith("2026-04-19T") for r in records)
        bad = requests.post(url, json={**spec, "timestamp_format": "iso"}, timeout=30)
        assert bad.status_code == 400 and "timestamp_format" in bad.json()["error"]
        unknown = requests.post(url.replace(GW, "nope"), json=spec, timeout=30)
        assert unknown.status_code == 400


def test_writing_logpush_files_imports_neither_the_provider_nor_airflow(public_pem: bytes, tmp_path: Path) -> None:
    # The emulator shares no code with the provider, so that a bug cannot hide in both.
    code = (
        "import sys, json;"
        "from airflow_provider_aigw.emulator import EmulatorServer;"
        "from airflow_provider_aigw.emulator.logpush import write_logpush_files;"
        "emu = EmulatorServer(); emu.seed_logs('g', 5, '2026-01-01T00:00:00Z', '2026-01-01T01:00:00Z');"
        f"write_logpush_files(emu, 'g', {str(tmp_path)!r}, sys.stdin.read());"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('airflow', 'airflow_provider_aigw'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=public_pem.decode(), capture_output=True, text=True, timeout=60, check=True
    )
    loaded = json.loads(out.stdout)
    assert "airflow_provider_aigw.emulator.logpush" in loaded
    outside = [m for m in loaded if not m.startswith("airflow_provider_aigw.emulator")]
    assert outside == ["airflow_provider_aigw"]  # the package's __init__: its version only
    assert len(read_tree(tmp_path)) > 0
