"""One Logpush ``ai_gateway_events`` record to one row of the export schema.

The record is first put in the shape of a Logs API log (:func:`to_log`), then mapped by the
export's own :func:`~airflow_provider_aigw.export.schema.to_row`, so a row from Logpush and a
row from the API are made by the same code:

======================================  ======================================================
export column                           Logpush
======================================  ======================================================
``created_at``                          ``Timestamp`` (``unixnano``, ``unix`` or ``rfc3339``)
``provider``, ``model``                 ``Provider``, ``Model``
``path``                                ``Endpoint``
``status_code``, ``cached``             ``StatusCode``, ``Cached``
``success``                             ``StatusCode`` is 2xx
``duration``, ``cost``                  ``Metrics.durationMs``, ``Metrics.cost``
``metadata``, ``metadata_raw``          ``Metadata``, decrypted
``request_body``, ``response_body``     ``RequestBody``, ``ResponseBody``, decrypted
``request_body_status`` (and response)  ``collected`` with a body, ``not_collected`` without
``requested_model``, ``rate_limited``   ``RequestedModel``, ``RateLimited``
``routing_decision_id``,                ``RoutingDecisionID``, ``RoutingReason`` (null when empty:
``routing_reason``                      no routing decision)
``extra``                               every other field (unknown ones), other ``Metrics`` keys,
                                        a ``Timestamp`` finer than 1 ms
======================================  ======================================================

``Gateway`` is the gateway partition, not a column (:data:`GATEWAY_FIELD`). Logpush lists no
``id``, ``model_type``, ``request_type``, ``step``, token counts, ``custom_cost``, ``feedback``,
``score``, ``event_id`` nor content types: those columns are null.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayDecryptError
from airflow_provider_aigw.export.schema import dumps_compact
from airflow_provider_aigw.export.schema import to_row as schema_to_row
from airflow_provider_aigw.jsoncodec import decode_json, recode_compact
from airflow_provider_aigw.logpush.decrypt import EnvelopeDecryptor, is_envelope
from airflow_provider_aigw.timestamps import format_time

__all__ = [
    "ENCRYPTED_FIELDS",
    "FIELD_NAMES",
    "GATEWAY_FIELD",
    "TIMESTAMP_FIELD",
    "parse_timestamp_ns",
    "record_time_ns",
    "to_log",
    "to_row",
]

TIMESTAMP_FIELD = "Timestamp"
GATEWAY_FIELD = "Gateway"
#: The fields Cloudflare encrypts under the gateway's public key.
ENCRYPTED_FIELDS: tuple[str, ...] = ("Metadata", "RequestBody", "ResponseBody")
#: Logpush field -> Logs API field (the export maps those to columns).
_COPIED: tuple[tuple[str, str], ...] = (
    ("Provider", "provider"),
    ("Model", "model"),
    ("Endpoint", "path"),
    ("StatusCode", "status_code"),
    ("Cached", "cached"),
    ("RequestedModel", "requested_model"),
    ("RateLimited", "rate_limited"),
)
#: Routing fields, empty when no routing decision was made (then null in their columns).
_ROUTING: tuple[tuple[str, str], ...] = (
    ("RoutingDecisionID", "routing_decision_id"),
    ("RoutingReason", "routing_reason"),
)
#: ``Metrics`` key -> Logs API field.
_METRICS: tuple[tuple[str, str], ...] = (("durationMs", "duration"), ("cost", "cost"))
#: The fields of ``ai_gateway_events`` as the dataset page lists them.
FIELD_NAMES: tuple[str, ...] = (
    "Cached",
    "Endpoint",
    "Gateway",
    "Metadata",
    "Metrics",
    "Model",
    "Provider",
    "RateLimited",
    "RequestBody",
    "RequestedModel",
    "ResponseBody",
    "RoutingDecisionID",
    "RoutingReason",
    "StatusCode",
    "Timestamp",
)
# Fields to_log consumes; every other one is passed on under its own name (the export's `extra`).
_CONSUMED = frozenset(
    {name for name, _ in (*_COPIED, *_ROUTING)} | {"Metrics", GATEWAY_FIELD, TIMESTAMP_FIELD, *ENCRYPTED_FIELDS}
)
_BODIES: tuple[tuple[str, str], ...] = (("RequestBody", "request"), ("ResponseBody", "response"))

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_NS_PER_MS = 1_000_000
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9})\d*)?([Zz]|[+-]\d\d:?\d\d)?", re.ASCII
)
_DIGITS = re.compile(r"-?\d+", re.ASCII)


def _unit_ns(value: int) -> int:
    """Nanoseconds per unit of an epoch count in seconds, milliseconds, microseconds or
    nanoseconds, told apart by magnitude (years 1973 to 5138 in each)."""
    size = abs(value)
    if size < 10**11:
        return 1_000_000_000
    if size < 10**14:
        return 1_000_000
    if size < 10**17:
        return 1_000
    return 1


def parse_timestamp_ns(value: Any) -> int | None:
    """Nanoseconds since the epoch of a ``Timestamp`` in any form a Logpush job writes, or None.

    Integers (and digit strings) are ``unixnano`` or ``unix`` (also milli- and microseconds, by
    magnitude); strings are RFC 3339 with any fraction (``rfc3339``, ``rfc3339ms``, ...), without
    an offset taken as UTC.
    """
    if type(value) is int:
        return value * _unit_ns(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        whole = int(value)
        unit = _unit_ns(whole)
        return whole * unit + round((value - whole) * unit)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DIGITS.fullmatch(text):
        count = int(text)
        return count * _unit_ns(count)
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    except ValueError:
        return None
    seconds = (moment.replace(tzinfo=dt.timezone.utc) - _EPOCH) // dt.timedelta(seconds=1)
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds * 1_000_000_000 + (int(fraction.ljust(9, "0")) if fraction else 0)


def record_time_ns(record: Mapping[str, Any]) -> int:
    """The record's ``Timestamp`` in nanoseconds since the epoch.

    :raises AIGatewayDecryptError: the record has no ``Timestamp`` in a known form.
    """
    value = record.get(TIMESTAMP_FIELD)
    ns = parse_timestamp_ns(value)
    if ns is None:
        what = "no Timestamp" if value is None else f"a Timestamp in no known form ({type(value).__name__})"
        raise AIGatewayDecryptError(f"the record has {what}", field=TIMESTAMP_FIELD)
    return ns


def _time_of(ns: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=ns // 1000)


def _open(record: Mapping[str, Any], field: str, decryptor: EnvelopeDecryptor | None) -> Any:
    value = record.get(field)
    if decryptor is not None:
        return decryptor.open(value, field=field)
    if is_envelope(value):
        raise AIGatewayDecryptError(f"{field} is encrypted and no private key was given", field=field)
    return value


def _body(plain: Any, compact: bool) -> Any:
    """A decrypted body as the API would give it: JSON decoded (with ``compact``, its compact JSON
    text instead, what the export's row holds of it), anything else as text."""
    if isinstance(plain, (bytes, bytearray)):
        plain = bytes(plain).decode("utf-8", errors="replace")
    if isinstance(plain, str) and plain.lstrip()[:1] in ("{", "["):
        if compact:
            text = recode_compact(plain)
            if text is not None:
                return text
        try:
            value = decode_json(plain)
        except ValueError:
            return plain
        return dumps_compact(value) if compact else value
    return plain


def to_log(
    record: Mapping[str, Any],
    decryptor: EnvelopeDecryptor | None = None,
    *,
    time_ns: int | None = None,
    opened: list[Any] | None = None,
    compact_bodies: bool = False,
) -> dict[str, Any]:
    """The record in the shape of a Logs API log, its encrypted fields opened.

    What the export's ``to_row`` takes: the mapped fields under their API names, the bodies as the
    client returns them (JSON decoded, else text) with their body status, and every field without
    an API counterpart under its Logpush name.

    :param record: one line of a Logpush file, JSON-decoded.
    :param decryptor: opens the encrypted fields; without one, an encrypted field is an error.
    :param time_ns: the record's time when the caller parsed it already (:func:`record_time_ns`).
    :param opened: receives the opened value of each of :data:`ENCRYPTED_FIELDS`, in that order:
        the plaintext bytes of an envelope, else the field's value as it is (None when absent).
    :param compact_bodies: JSON bodies as their compact JSON text (the export's ``to_row`` keeps
        such a text as it is) instead of decoded: the same row, without decoding each body into
        objects and encoding them again.
    :raises AIGatewayDecryptError: a field does not decrypt, or the record has no usable
        ``Timestamp``; names the field, never its content.
    """
    ns = record_time_ns(record) if time_ns is None else time_ns
    log: dict[str, Any] = {"created_at": format_time(_time_of(ns))}
    if ns % _NS_PER_MS:
        log[TIMESTAMP_FIELD] = record[TIMESTAMP_FIELD]  # finer than the column: kept in extra
    for field, name in _COPIED:
        value = record.get(field)
        if value is not None:
            log[name] = value
    for field, name in _ROUTING:
        value = record.get(field)
        if value is not None and value != "":
            log[name] = value
    status = log.get("status_code")
    if type(status) is int:
        log["success"] = 200 <= status < 300
    metrics = record.get("Metrics")
    if isinstance(metrics, Mapping):
        rest = dict(metrics)
        for key, name in _METRICS:
            value = rest.pop(key, None)
            if value is not None:
                log[name] = value
        if rest:
            log["Metrics"] = rest
    elif metrics is not None:
        log["Metrics"] = metrics
    metadata = _open(record, "Metadata", decryptor)
    if opened is not None:
        opened.append(metadata)
    if isinstance(metadata, (bytes, bytearray)):
        metadata = bytes(metadata).decode("utf-8", errors="replace")
    if metadata is not None:
        log["metadata"] = metadata
    for field, which in _BODIES:
        plain = _open(record, field, decryptor)
        if opened is not None:
            opened.append(plain)
        body = _body(plain, compact_bodies)
        log[f"{which}_body"] = body
        log[f"{which}_body_status"] = "not_collected" if body is None else "collected"
    for key, value in record.items():
        if key not in _CONSUMED:
            log[key] = value
    return log


def to_row(
    record: Mapping[str, Any], decryptor: EnvelopeDecryptor | None = None, *, time_ns: int | None = None
) -> dict[str, Any]:
    """One export-schema row of the record (:func:`to_log`, then the export's ``to_row``).

    :raises AIGatewayDecryptError: as :func:`to_log`.
    """
    ns = record_time_ns(record) if time_ns is None else time_ns
    return schema_to_row(to_log(record, decryptor, time_ns=ns, compact_bodies=True), _time_of(ns))
