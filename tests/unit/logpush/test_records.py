"""One Logpush record to one export row: each Timestamp form, the column mapping, ``extra``, the
columns Logpush lacks, and rows from emulator-written files against the rows the API export makes."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.logpush import write_logpush_files
from airflow_provider_aigw.exceptions import AIGatewayDecryptError
from airflow_provider_aigw.export.schema import COLUMN_NAMES
from airflow_provider_aigw.export.schema import to_row as api_to_row
from airflow_provider_aigw.logpush.decrypt import EnvelopeDecryptor, LogpushPrivateKey
from airflow_provider_aigw.logpush.files import iter_records, select_files
from airflow_provider_aigw.logpush.records import parse_timestamp_ns, record_time_ns, to_log, to_row
from tests.unit.logpush.conftest import KeyPair, seal

UTC = timezone.utc
NS = 1_776_470_530_123_000_000  # 2026-04-18T00:02:10.123Z

REQUEST = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Où est la gare ?"}]}
RESPONSE_SSE = 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: [DONE]\n\n'


def plain_record(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "Cached": False,
        "Endpoint": "chat/completions",
        "Gateway": "my-gateway",
        "Metadata": {"team": "search", "release": 3},
        "Metrics": {"cost": 0.0042, "durationMs": 1234},
        "Model": "gpt-4o-mini",
        "Provider": "openai",
        "RateLimited": False,
        "RequestBody": REQUEST,
        "RequestedModel": "gpt-4o",
        "ResponseBody": RESPONSE_SSE,
        "RoutingDecisionID": "",
        "RoutingReason": "",
        "StatusCode": 200,
        "Timestamp": NS,
    }
    record.update(changes)
    return record


EXPECTED_ROW: dict[str, Any] = {
    **dict.fromkeys(COLUMN_NAMES),
    "created_at": "2026-04-18T00:02:10.123Z",
    "provider": "openai",
    "model": "gpt-4o-mini",
    "path": "chat/completions",
    "status_code": 200,
    "success": True,
    "cached": False,
    "duration": 1234,
    "cost": 0.0042,
    "metadata": {"team": "search", "release": "3"},
    "request_body": json.dumps(REQUEST, separators=(",", ":"), ensure_ascii=False),
    "request_body_format": "json",
    "request_body_status": "collected",
    "response_body": RESPONSE_SSE,
    "response_body_format": "sse",
    "response_body_status": "collected",
    "requested_model": "gpt-4o",
    "rate_limited": False,
}
#: Columns Logpush has no field for: null in every row.
ABSENT = ("id", "model_type", "request_type", "step", "tokens_in", "tokens_out", "custom_cost", "feedback", "score")
ABSENT += ("event_id", "request_content_type", "response_content_type")


# --- Timestamp -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        (NS, NS),  # unixnano (the default)
        (str(NS), NS),
        (1_776_470_530, 1_776_470_530_000_000_000),  # unix
        ("2026-04-18T00:02:10Z", 1_776_470_530_000_000_000),  # rfc3339
        ("2026-04-18T00:02:10.123Z", NS),  # rfc3339ms
        ("2026-04-18T00:02:10.123456789Z", 1_776_470_530_123_456_789),  # rfc3339ns
        ("2026-04-18T02:02:10.123+02:00", NS),
        ("2026-04-17T19:32:10.123-0430", NS),
        ("2026-04-18 00:02:10.123", NS),  # no offset: UTC
        (1_776_470_530_123, NS),  # milliseconds
        (1_776_470_530_123_000, NS),  # microseconds
        (1_776_470_530.5, 1_776_470_530_500_000_000),
    ],
)
def test_each_timestamp_form_parses_to_the_same_instant(value: Any, ns: int) -> None:
    assert parse_timestamp_ns(value) == ns
    assert record_time_ns({"Timestamp": value}) == ns


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "the record has no Timestamp"),
        ("yesterday", "the record has a Timestamp in no known form (str)"),
        ("2026-02-30T00:00:00Z", "the record has a Timestamp in no known form (str)"),
        (True, "the record has a Timestamp in no known form (bool)"),
        ({"s": 1}, "the record has a Timestamp in no known form (dict)"),
        (float("nan"), "the record has a Timestamp in no known form (float)"),
    ],
)
def test_a_record_without_a_usable_timestamp_is_an_error(value: Any, says: str) -> None:
    record = plain_record(Timestamp=value) if value is not None else {"Provider": "openai"}
    with pytest.raises(AIGatewayDecryptError, match=f"^{re.escape(says)}$") as info:
        to_row(record)
    assert info.value.field == "Timestamp"


@pytest.mark.parametrize(
    ("value", "created_at"),
    [
        (1_776_470_530, "2026-04-18T00:02:10.000Z"),
        ("2026-04-18T00:02:10Z", "2026-04-18T00:02:10.000Z"),
        (NS, "2026-04-18T00:02:10.123Z"),
    ],
    ids=["unix", "rfc3339", "unixnano"],
)
def test_created_at_of_each_form(value: Any, created_at: str) -> None:
    row = to_row(plain_record(Timestamp=value))
    assert row["created_at"] == created_at
    assert row["extra"] is None  # no Timestamp finer than the column to keep


def test_a_timestamp_finer_than_a_millisecond_keeps_its_original_in_extra() -> None:
    row = to_row(plain_record(Timestamp=NS + 456_789))
    assert row["created_at"] == "2026-04-18T00:02:10.123Z"
    assert json.loads(row["extra"])["Timestamp"] == NS + 456_789


# --- the mapping -----------------------------------------------------------------------------


def test_a_plain_record_maps_column_by_column() -> None:
    assert to_row(plain_record()) == EXPECTED_ROW


def test_an_encrypted_record_maps_to_the_same_row(key_pair: KeyPair) -> None:
    record = plain_record(
        Metadata=seal(json.dumps({"team": "search", "release": 3}).encode(), key_pair),
        RequestBody=seal(json.dumps(REQUEST).encode(), key_pair),
        ResponseBody=seal(RESPONSE_SSE.encode(), key_pair),
    )
    decryptor = EnvelopeDecryptor(LogpushPrivateKey(key_pair.private))
    assert to_row(record, decryptor) == EXPECTED_ROW
    assert decryptor.unwraps == 3


def test_unknown_fields_and_other_metrics_go_to_extra_and_missing_ones_are_null() -> None:
    record = plain_record(
        Metrics={"cost": 0.5, "durationMs": 10, "tokensIn": 12},
        RequestId="r-1",
        DlpResults=[{"Action": "FLAG"}],
        StatusCode="200",  # not an integer: the column stays null, the value is kept
    )
    del record["Cached"], record["ResponseBody"], record["Metadata"]
    row = to_row(record)
    assert json.loads(row["extra"]) == {
        "Metrics": {"tokensIn": 12},
        "RequestId": "r-1",
        "DlpResults": [{"Action": "FLAG"}],
        "status_code": "200",
    }
    assert (row["cost"], row["duration"]) == (0.5, 10)
    assert row["status_code"] is None and row["success"] is None and row["cached"] is None
    assert row["metadata"] is None and row["metadata_raw"] is None
    assert (row["response_body"], row["response_body_format"], row["response_body_status"]) == (
        None,
        None,
        "not_collected",
    )
    assert all(row[column] is None for column in ABSENT)
    assert "Gateway" not in row["extra"]  # the partition, not a column nor extra


@pytest.mark.parametrize(("status", "success"), [(200, True), (204, True), (299, True), (301, False), (429, False)])
def test_success_is_a_2xx_status(status: int, success: bool) -> None:
    assert to_row(plain_record(StatusCode=status))["success"] is success


def test_metadata_that_is_not_an_object_is_kept_raw(key_pair: KeyPair) -> None:
    decryptor = EnvelopeDecryptor(LogpushPrivateKey(key_pair.private))
    row = to_row(plain_record(Metadata=seal(b"not json", key_pair)), decryptor)
    assert (row["metadata"], row["metadata_raw"]) == (None, "not json")


def test_bodies_as_text_and_json_text() -> None:
    row = to_row(plain_record(RequestBody='{ "a" : [1, 2] }', ResponseBody="just text"))
    assert (row["request_body"], row["request_body_format"]) == ('{"a":[1,2]}', "json")
    assert (row["response_body"], row["response_body_format"]) == ("just text", "text")


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\\u00e9t\\u00e9 \xe2\x9c\x93"}]}',
        b'{"temperature": 0.7, "max_tokens": 1e3, "seed": 12345678901234567890123}',  # floats: the stdlib's path
        b'  [1, 2, {"a": null}]  ',
        b'{"cut": "off',  # not JSON: kept as text
        b'{"bad": "\xff\xfe"}',  # not UTF-8: replaced, then JSON
        b'"a JSON string"',
        RESPONSE_SSE.encode(),
    ],
)
def test_compact_bodies_make_the_row_the_decoded_bodies_make(key_pair: KeyPair, body: bytes) -> None:
    # the import hands the export each JSON body as its compact text instead of decoded: same row
    decryptor = EnvelopeDecryptor(LogpushPrivateKey(key_pair.private))
    record = plain_record(RequestBody=seal(body, key_pair), ResponseBody=body.decode("utf-8", errors="replace"))
    created = datetime(2026, 4, 18, 0, 2, 10, 123000, tzinfo=UTC)
    decoded = api_to_row(to_log(record, decryptor), created)
    compact = to_log(record, decryptor, compact_bodies=True)
    assert api_to_row(compact, created) == to_row(record, decryptor) == decoded
    for which in ("request", "response"):
        if decoded[f"{which}_body_format"] == "json":
            assert compact[f"{which}_body"] == decoded[f"{which}_body"]


@pytest.mark.parametrize("as_text", [False, True])
def test_an_encrypted_field_without_a_key_is_an_error(key_pair: KeyPair, as_text: bool) -> None:
    envelope = seal(b"secret answer", key_pair)
    record = plain_record(ResponseBody=json.dumps(envelope) if as_text else envelope)
    with pytest.raises(AIGatewayDecryptError, match=r"^ResponseBody is encrypted and no private key was given$"):
        to_row(record)


def test_a_field_that_does_not_decrypt_names_the_field(key_pair: KeyPair, other_key_pair: KeyPair) -> None:
    record = plain_record(Metadata=seal(b'{"team": "search"}', other_key_pair))
    with pytest.raises(AIGatewayDecryptError, match=r"^Metadata: the AES key does not unwrap") as info:
        to_row(record, EnvelopeDecryptor(LogpushPrivateKey(key_pair.private)))
    assert info.value.field == "Metadata" and "search" not in str(info.value)


def test_to_log_is_the_api_shape_the_export_maps() -> None:
    log = to_log(plain_record())
    assert log["created_at"] == "2026-04-18T00:02:10.123Z"
    assert (log["provider"], log["path"], log["duration"], log["request_body"]) == (
        "openai",
        "chat/completions",
        1234,
        REQUEST,
    )
    assert api_to_row(log, datetime(2026, 4, 18, 0, 2, 10, 123000, tzinfo=UTC)) == EXPECTED_ROW


# --- emulator-written files against the API export's rows ------------------------------------

#: Columns both paths carry: a Logpush row must equal the API export's row in each.
SHARED = ("created_at", "provider", "model", "path", "status_code", "success", "cached", "duration", "cost")
SHARED += ("metadata", "metadata_raw", "request_body", "request_body_format", "request_body_status")
SHARED += ("response_body", "response_body_format", "response_body_status")


def api_row(log: dict[str, Any], bodies: tuple[Any, Any]) -> dict[str, Any]:
    """The row the API export makes of a log: bodies as the client returns them, with their status."""
    item = dict(log)
    for which, body in zip(("request", "response"), bodies, strict=True):
        item[f"{which}_body"] = body
        item[f"{which}_body_status"] = "not_collected" if body is None else "collected"
    created = datetime.strptime(log["created_at"], "%Y-%m-%dT%H:%M:%S.%f%z")
    return api_to_row(item, created)


@pytest.mark.parametrize("shared_key", [False, True])
def test_rows_of_emulator_files_equal_the_api_exports_rows(tmp_path: Path, key_pair: KeyPair, shared_key: bool) -> None:
    emu = EmulatorServer()
    start, end = datetime(2026, 4, 18, tzinfo=UTC), datetime(2026, 4, 18, 1, tzinfo=UTC)
    emu.seed_logs("gw", 300, start, end, seed=5)
    write_logpush_files(emu, "gw", str(tmp_path), key_pair.public_pem, batch_seconds=60, shared_key=shared_key)
    decryptor = EnvelopeDecryptor(LogpushPrivateKey.from_pem(key_pair.private_pem))
    fs = fsspec.filesystem("file")
    records = [
        (ns, record)
        for file in select_files(fs, str(tmp_path), start, end)
        for _line, ns, record in iter_records(fs, file, start, end)
    ]
    rows = [to_row(record, decryptor, time_ns=ns) for ns, record in records]
    truth = [api_row(log, emu.get_bodies("gw", log["id"])) for log in emu.logs("gw")]
    assert len(rows) == len(truth) == 300
    # ids aside (Logpush has none): same order (created_at, then the order the gateway wrote them)
    for row, expected in zip(rows, truth, strict=True):
        assert {c: row[c] for c in SHARED} == {c: expected[c] for c in SHARED}
        assert all(row[c] is None for c in ABSENT)
        assert (row["requested_model"], row["rate_limited"]) == (expected["model"], False)
        assert row["routing_decision_id"] is None and row["routing_reason"] is None  # empty: no routing
        assert row["extra"] is None
    # the data is varied enough to mean something: metadata, SSE, uncollected bodies, failures
    assert {r["response_body_format"] for r in rows} == {"json", "sse", None}
    assert any(r["metadata"] for r in rows) and any(r["metadata"] is None for r in rows)
    assert {r["success"] for r in rows} == {True, False}
    # one RSA operation per envelope, or per log when its fields share their key
    sealed = [sum(record[f] is not None for f in ("Metadata", "RequestBody", "ResponseBody")) for _, record in records]
    assert decryptor.unwraps == (sum(n > 0 for n in sealed) if shared_key else sum(sealed))
