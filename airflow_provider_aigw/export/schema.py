"""The one schema of exported logs, for every format (JSON Lines and Parquet alike).

Declared once here as plain data, so JSON Lines users never need pyarrow: :func:`arrow_schema`
builds the Arrow schema from it (Parquet), :func:`duckdb_columns` the DuckDB ``read_json``
column spec, :func:`manifest_schema` the ``schema`` entry of every manifest and
:func:`to_row` turns one API log into one row.

A row is the same in both formats; only the physical encoding of two types differs:

- ``timestamp``: Arrow ``timestamp[ms, tz=UTC]`` in Parquet, ISO 8601 UTC with milliseconds and
  ``Z`` (``2026-11-26T08:15:00.123Z``) in JSON Lines;
- ``map``: Arrow ``map<string, string>`` in Parquet, a JSON object of strings in JSON Lines.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.jsoncodec import decode_json, encode_json
from airflow_provider_aigw.timestamps import format_time

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pyarrow

#: Version of the column layout below; bump it on any change a reader could notice.
SCHEMA_VERSION = 3
SCHEMA_NAME = "aigw.logs"

#: Column holding a JSON object (as text) of every log field without a column, and of values
#: that do not fit their column's type: nothing the API sends is dropped.
EXTRA_COLUMN = "extra"
#: Values of ``request_body_format`` / ``response_body_format``.
BODY_FORMATS: tuple[str, ...] = ("json", "sse", "text")


@dataclass(frozen=True)
class Column:
    """One column: its name, logical type, the API field it comes from and a note for readers."""

    name: str
    type: str
    source: str
    notes: str = ""


# Logical types -> (Arrow type name, DuckDB type, JSON Lines encoding).
TYPES: dict[str, tuple[str, str, str]] = {
    "string": ("string", "VARCHAR", "string"),
    "int64": ("int64", "BIGINT", "integer"),
    "float64": ("double", "DOUBLE", "number"),
    "bool": ("bool", "BOOLEAN", "boolean"),
    "timestamp": ("timestamp[ms, tz=UTC]", "TIMESTAMP WITH TIME ZONE", "string, ISO 8601 UTC with ms and Z"),
    "map": ("map<string, string>", "MAP(VARCHAR, VARCHAR)", "object of strings"),
}

COLUMNS: tuple[Column, ...] = (
    Column("id", "string", "id", "log id (ULID or UUIDv7); never sort by it"),
    Column("created_at", "timestamp", "created_at", "UTC, millisecond precision"),
    Column("provider", "string", "provider"),
    Column("model", "string", "model"),
    Column("model_type", "string", "model_type"),
    Column("path", "string", "path"),
    Column("request_type", "string", "request_type"),
    Column("status_code", "int64", "status_code", "HTTP status the provider answered"),
    Column("step", "int64", "step"),
    Column("success", "bool", "success"),
    Column("cached", "bool", "cached"),
    Column("duration", "int64", "duration", "milliseconds"),
    Column("tokens_in", "int64", "tokens_in", "null when the provider did not report usage"),
    Column("tokens_out", "int64", "tokens_out", "null when the provider did not report usage"),
    Column("cost", "float64", "cost", "USD, the gateway's estimate; null when absent"),
    Column("custom_cost", "bool", "custom_cost"),
    Column("feedback", "float64", "feedback", "-1..1 as set by PATCH (1 thumbs up, -1 thumbs down)"),
    Column("score", "float64", "score", "0..100 as set by PATCH"),
    Column(
        "metadata",
        "map",
        "metadata",
        "parsed from the API's JSON string; non-string values as JSON text (1, true)",
    ),
    Column("metadata_raw", "string", "metadata", "the API's text, only when it is not a JSON object"),
    Column("event_id", "string", "event_id"),
    Column("request_content_type", "string", "request_content_type"),
    Column("response_content_type", "string", "response_content_type"),
    Column("request_body", "string", "GET logs/{id}/request", "text; JSON bodies as compact JSON"),
    Column("request_body_format", "string", "(derived)", "json, sse or text; null when no body"),
    Column("request_body_status", "string", "(export)", "collected, not_collected or failed"),
    Column("response_body", "string", "GET logs/{id}/response", "text; JSON bodies as compact JSON"),
    Column("response_body_format", "string", "(derived)", "json, sse or text; null when no body"),
    Column("response_body_status", "string", "(export)", "collected, not_collected or failed"),
    Column("requested_model", "string", "RequestedModel (Logpush)", "the model asked for; null from the API"),
    Column("rate_limited", "bool", "RateLimited (Logpush)", "null from the API"),
    Column("routing_decision_id", "string", "RoutingDecisionID (Logpush)", "null without routing, and from the API"),
    Column("routing_reason", "string", "RoutingReason (Logpush)", "null without routing, and from the API"),
    Column(EXTRA_COLUMN, "string", "(any other field)", "JSON object text of fields without a column; null if none"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)
# Columns computed from a field rather than copied from the field of the same name.
_DERIVED = frozenset(
    {"created_at", "metadata", "metadata_raw", "request_body", "request_body_format"}
    | {"response_body", "response_body_format", EXTRA_COLUMN}
)
#: API fields with a column of their own; every other field goes to ``extra``.
KNOWN_FIELDS: frozenset[str] = frozenset(
    {c.name for c in COLUMNS} - {"metadata_raw", "request_body_format", "response_body_format", EXTRA_COLUMN}
)
# Columns no API field maps to: a field of that name goes to ``extra``.
_DERIVED_ONLY = frozenset(COLUMN_NAMES) - KNOWN_FIELDS
# Copied columns with the Python type a fitting value has (checked exactly first: the hot path).
_EXACT: dict[str, type[Any]] = {"string": str, "int64": int, "float64": float, "bool": bool}
_SIMPLE: tuple[tuple[str, str, type[Any]], ...] = tuple(
    (c.name, c.type, _EXACT[c.type]) for c in COLUMNS if c.name not in _DERIVED
)
# created_at exactly as the API renders it: then the text is already the column's value.
_CANONICAL_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", re.ASCII)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SSE_LINE = re.compile(r"(?:data|event|id|retry):")

#: Hive partition columns per ``partition_by`` and their types, for readers (DuckDB's
#: ``hive_types``, pyarrow's ``partitioning``): give them explicitly, both guess differently.
PARTITIONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "hour": (("gateway", "string", "VARCHAR"), ("date", "date32", "DATE"), ("hour", "int32", "INTEGER")),
    "day": (("gateway", "string", "VARCHAR"), ("date", "date32", "DATE")),
}


# --- the schema as others see it ---------------------------------------------------------------


def arrow_schema() -> pyarrow.Schema:
    """The Arrow schema of exported Parquet files (imports pyarrow)."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "map": pa.map_(pa.string(), pa.string()),
    }
    fields = [pa.field(c.name, types[c.type], nullable=True) for c in COLUMNS]
    metadata = {b"aigw.schema": SCHEMA_NAME.encode(), b"aigw.schema_version": str(SCHEMA_VERSION).encode()}
    return pa.schema(fields, metadata=metadata)


def duckdb_columns() -> dict[str, str]:
    """Column name -> DuckDB type, for ``read_json(..., columns=...)`` of JSON Lines parts.

    DuckDB guesses JSON types from values (UUID-looking ids become ``UUID``); pass these to get
    exactly the types it reads from the Parquet parts.
    """
    return {c.name: TYPES[c.type][1] for c in COLUMNS}


def duckdb_hive_types(partition_by: str = "hour") -> dict[str, str]:
    """Partition column -> DuckDB type, for ``hive_types=`` (DuckDB guesses ``hour=07`` as text)."""
    return {name: duck for name, _arrow, duck in PARTITIONS[partition_by] if name != "gateway"}


def arrow_partitioning(partition_by: str = "hour") -> Any:
    """The pyarrow ``partitioning=`` of the hive layout (pyarrow guesses ``date`` as a string)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    types = {"string": pa.string(), "date32": pa.date32(), "int32": pa.int32()}
    fields = [(name, types[arrow]) for name, arrow, _duck in PARTITIONS[partition_by]]
    return ds.partitioning(pa.schema(fields), flavor="hive")


def manifest_schema(partition_by: str = "hour") -> dict[str, Any]:
    """The ``schema`` entry of a manifest: name, version, columns and partition columns."""
    return {
        "name": SCHEMA_NAME,
        "version": SCHEMA_VERSION,
        "columns": [
            {
                "name": c.name,
                "type": TYPES[c.type][0],
                "duckdb_type": TYPES[c.type][1],
                "jsonl": TYPES[c.type][2],
                "source": c.source,
                "nullable": True,
            }
            for c in COLUMNS
        ],
        "partitions": [
            {"name": name, "type": arrow, "duckdb_type": duck} for name, arrow, duck in PARTITIONS[partition_by]
        ],
    }


# --- one log -> one row ------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_compact(value: Any) -> str:
    """Compact JSON text (UTF-8 kept, NaN allowed) of any value the API or a caller can produce."""
    return _COMPACT.encode(value)


# One encoder for every call: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _fit(kind: str, value: Any) -> tuple[bool, Any]:
    """``(fits, column value)`` of ``value`` in a column of logical type ``kind``."""
    if kind == "string":
        return isinstance(value, str), value
    if kind == "bool":
        return isinstance(value, bool), value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False, None
    if kind == "int64":
        if isinstance(value, float):
            if not value.is_integer():
                return False, None
            value = int(value)
        return _INT64_MIN <= value <= _INT64_MAX, value
    # float64: lossless only for finite floats and integers up to 2**53
    if isinstance(value, int):
        return abs(value) <= 2**53, float(value)
    return math.isfinite(value), value


def parse_metadata(value: Any) -> tuple[dict[str, str] | None, str | None]:
    """``(map, raw)`` of the API's ``metadata``: a JSON-encoded object (or an object).

    Values that are not strings become their JSON text (``1``, ``true``). Anything that is not a
    JSON object comes back as ``(None, raw text)``.
    """
    if value is None:
        return None, None
    parsed = value
    if isinstance(value, str):
        try:
            parsed = decode_json(value)
        except ValueError:
            return None, value
        # The usual case, returned as decoded: an object's keys are strings, and so are its values.
        if type(parsed) is dict and all(type(v) is str for v in parsed.values()):
            return parsed, None
    if not isinstance(parsed, dict):
        return None, value if isinstance(value, str) else dumps_compact(value)
    return {
        str(k): v if isinstance(v, str) else int.__repr__(v) if type(v) is int else dumps_compact(v)
        for k, v in parsed.items()
    }, None


def body_text(body: Any) -> tuple[str | None, str | None]:
    """``(text, format)`` of a stored body as the client returns it (JSON-decoded when JSON).

    ``format`` is ``json`` for a decoded JSON value or text that parses as JSON, ``sse`` for a
    server-sent event stream (first line a ``data:``/``event:``/``id:``/``retry:`` field),
    ``text`` otherwise, and ``None`` when there is no body.
    """
    if body is None:
        return None, None
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", errors="replace")
    if not isinstance(body, str):
        return dumps_compact(body), "json"
    stripped = body.lstrip()
    if _SSE_LINE.match(stripped):
        return body, "sse"
    if stripped[:1] in ("{", "["):
        try:
            decode_json(body)
        except ValueError:
            return body, "text"
        return body, "json"
    return body, "text"


def to_row(log: Mapping[str, Any], created_at: datetime) -> dict[str, Any]:
    """Map one API log to one row of :data:`COLUMNS`, JSON-ready (the JSON Lines record).

    ``created_at`` is the log's parsed timestamp (aware, UTC). Fields without a column, and
    values that do not fit their column (kept there as null), go into ``extra`` as JSON text, so
    nothing is lost: e.g. a ``created_at`` with more than millisecond precision keeps its
    original text in ``extra``.
    """
    # The hot path of an export. Logs of one gateway come in a few shapes (field names and value
    # types); a shape whose fields all fit their columns by type is planned once, its rows then
    # copied from the log onto the column template, checked for what types cannot tell (int64
    # range, finite floats, canonical created_at). Anything else takes to_row_reference.
    if type(log) is not dict:
        return to_row_reference(log, created_at)
    shape = (tuple(log), tuple(map(type, log.values())))
    plan = _PLANS.get(shape, _UNPLANNED)
    if plan is _UNPLANNED:
        plan = _plan(log)
        if len(_PLANS) < _MAX_PLANS:
            _PLANS[shape] = plan
    if plan is None:
        return to_row_reference(log, created_at)
    for name in plan.ints:
        value = log[name]
        if not _INT64_MIN <= value <= _INT64_MAX:
            return to_row_reference(log, created_at)
    for name in plan.floats:
        if not math.isfinite(log[name]):
            return to_row_reference(log, created_at)
    if not _CANONICAL_TS.fullmatch(log["created_at"]):
        return to_row_reference(log, created_at)
    row = _TEMPLATE.copy()
    row.update(log)
    if plan.unknown:
        row[EXTRA_COLUMN] = dumps_compact({name: row.pop(name) for name in plan.unknown})
    if plan.metadata:
        row["metadata"], row["metadata_raw"] = parse_metadata(row["metadata"])
    for which in plan.bodies:
        row[f"{which}_body"], row[f"{which}_body_format"] = body_text(row[f"{which}_body"])
    return row


def to_json_line(log: Mapping[str, Any], created_at: datetime) -> bytes:
    """The JSON Lines record of one log (:func:`to_row`, compact UTF-8 JSON), without the newline."""
    return encode_json(to_row(log, created_at))


@dataclass(frozen=True)
class _Plan:
    """How rows of one log shape are made: fields to check, to move to ``extra``, to derive."""

    ints: tuple[str, ...]
    floats: tuple[str, ...]
    unknown: tuple[str, ...]
    metadata: bool
    bodies: tuple[str, ...]


# (field names, value types) of a log -> its plan, or None for the reference path; bounded: a
# gateway's logs come in a handful of shapes.
_PLANS: dict[tuple[tuple[Any, ...], tuple[type[Any], ...]], _Plan | None] = {}
_UNPLANNED: Any = object()
_MAX_PLANS = 1024
_TEMPLATE: dict[str, Any] = dict.fromkeys(COLUMN_NAMES)
_SIMPLE_TYPES: dict[str, type[Any]] = {name: exact for name, _kind, exact in _SIMPLE}


def _plan(log: dict[str, Any]) -> _Plan | None:
    """The plan of ``log``'s shape, or None when it takes :func:`to_row_reference`."""
    ints: list[str] = []
    floats: list[str] = []
    unknown: list[str] = []
    for name, value in log.items():
        if not isinstance(name, str) or name in _DERIVED_ONLY:
            return None
        exact = _SIMPLE_TYPES.get(name)
        if exact is not None:
            if value is None:
                continue
            if type(value) is not exact:
                return None
            if exact is int:
                ints.append(name)
            elif exact is float:
                floats.append(name)
        elif name == "created_at":
            if type(value) is not str:
                return None
        elif name not in KNOWN_FIELDS:
            unknown.append(name)
    if "created_at" not in log:
        return None
    bodies = tuple(which for which in ("request", "response") if f"{which}_body" in log)
    return _Plan(tuple(ints), tuple(floats), tuple(unknown), "metadata" in log, bodies)


def to_row_reference(log: Mapping[str, Any], created_at: datetime) -> dict[str, Any]:
    """:func:`to_row` field by field: the definition of a row, and the path of every log whose
    shape the fast path does not take (values that do not fit their column, fields named like a
    derived column)."""
    extra: dict[str, Any] = {}
    row: dict[str, Any] = dict.fromkeys(COLUMN_NAMES)
    get = log.get
    for name, kind, exact in _SIMPLE:
        value = get(name)
        if value is None:
            continue
        if type(value) is exact and (
            exact is str
            or exact is bool
            or (exact is int and _INT64_MIN <= value <= _INT64_MAX)
            or (exact is float and math.isfinite(value))
        ):
            row[name] = value
            continue
        fits, cast = _fit(kind, value)
        if fits:
            row[name] = cast
        else:
            extra[name] = value
    raw_created = get("created_at")
    if isinstance(raw_created, str) and _CANONICAL_TS.fullmatch(raw_created):
        row["created_at"] = raw_created
    else:
        row["created_at"] = format_time(created_at)
        extra["created_at"] = raw_created
    row["metadata"], row["metadata_raw"] = parse_metadata(log.get("metadata"))
    for which in ("request", "response"):
        row[f"{which}_body"], row[f"{which}_body_format"] = body_text(log.get(f"{which}_body"))
    for key, value in log.items():
        if key not in KNOWN_FIELDS:
            extra[key] = value
    if extra:
        row[EXTRA_COLUMN] = dumps_compact(extra)
    return row
