"""File formats of the export: JSON Lines (plain or gzip) and Parquet.

Every writer takes log dicts one at a time and writes them onto an already open binary file
object, so memory stays flat: JSONL writes line by line, Parquet buffers one bounded row group.
"""

from __future__ import annotations

import gzip
import json
import math
from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.filters import parse_created_at as parse_created_at  # the one parser; re-exported

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pyarrow

FORMATS: tuple[str, ...] = ("jsonl", "jsonl.gz", "parquet")
DEFAULT_FORMAT = "jsonl.gz"
EXTENSIONS: dict[str, str] = {"jsonl": "jsonl", "jsonl.gz": "jsonl.gz", "parquet": "parquet"}

#: Version of the Parquet column layout and of the manifest layout.
SCHEMA_VERSION = 1

#: Rows buffered per Parquet row group (also bounded by :data:`PARQUET_ROW_GROUP_BYTES`).
PARQUET_ROW_GROUP_ROWS = 10_000
#: UTF-8 bytes of string data buffered before a Parquet row group is flushed.
PARQUET_ROW_GROUP_BYTES = 64 * 1024 * 1024

_PARQUET_HINT = "format='parquet' needs the 'parquet' extra: pip install 'airflow-provider-aigw[parquet]'"

# (column, kind) in schema order. Kinds: str, int, bool, float, ts, json (string column whose
# non-string values are JSON-encoded).
PARQUET_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "str"),
    ("created_at", "ts"),
    ("provider", "str"),
    ("model", "str"),
    ("model_type", "str"),
    ("path", "str"),
    ("duration", "int"),
    ("success", "bool"),
    ("cached", "bool"),
    ("custom_cost", "bool"),
    ("tokens_in", "int"),
    ("tokens_out", "int"),
    ("cost", "float"),
    ("metadata", "json"),
    ("request_content_type", "str"),
    ("response_content_type", "str"),
    ("request_type", "str"),
    ("status_code", "int"),
    ("step", "int"),
    ("event_id", "str"),
    ("request_body", "json"),
    ("response_body", "json"),
    ("request_body_status", "str"),
    ("response_body_status", "str"),
)
#: Column holding a JSON object of every log field that has no column (or did not fit its type).
EXTRA_COLUMN = "extra"
KNOWN_FIELDS: frozenset[str] = frozenset(name for name, _ in PARQUET_COLUMNS)
_JSON_FIELDS = frozenset(name for name, kind in PARQUET_COLUMNS if kind == "json")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def validate_format(format: str) -> str:
    """Return the canonical export format or raise :class:`AIGatewayInputError`.

    Accepted: ``jsonl``, ``jsonl.gz`` (default), ``parquet`` (case-insensitive, a leading dot
    is ignored). ``parquet`` also checks that pyarrow is importable.
    """
    if not isinstance(format, str):
        raise AIGatewayInputError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    fmt = format.strip().lower().lstrip(".")
    if fmt not in FORMATS:
        raise AIGatewayInputError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")
    if fmt == "parquet":
        _import_pyarrow()
    return fmt


def _import_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise AIGatewayInputError(_PARQUET_HINT) from exc
    return pyarrow


# --- timestamps -------------------------------------------------------------------------------


def format_ts(dt: datetime) -> str:
    """Render an aware datetime as ISO 8601 UTC with ``Z`` (fraction only when non-zero)."""
    dt = dt.astimezone(timezone.utc)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond == 0:
        return base + "Z"
    if dt.microsecond % 1000 == 0:
        return f"{base}.{dt.microsecond // 1000:03d}Z"
    return f"{base}.{dt.microsecond:06d}Z"


def _format_ms(dt: datetime) -> str:
    """The canonical rendering of ``created_at`` as the API sends it (milliseconds, ``Z``)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _epoch_ms(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# --- writers -----------------------------------------------------------------------------------


def dumps_line(log: Mapping[str, Any]) -> bytes:
    """One JSON Lines record, compact, UTF-8, with trailing newline."""
    return (_LINE_ENCODER.encode(log) + "\n").encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_ts(value) if value.tzinfo else value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# One encoder for every line: json.dumps with options builds a new one per call.
_LINE_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, default=_json_default)


class RecordWriter:
    """Base of the per-file writers: ``write(log, created_at)`` then ``close()``."""

    def write(self, log: Mapping[str, Any], created_at: datetime) -> None:
        """Append one log."""
        raise NotImplementedError

    def close(self) -> None:
        """Flush everything onto the file object (which the caller closes)."""
        raise NotImplementedError


class JsonlWriter(RecordWriter):
    """JSON Lines, optionally gzip-compressed with a fixed header (byte-identical re-runs)."""

    _BUFFER = 256 * 1024

    def __init__(self, raw: IO[bytes] | Any, *, gzip_compress: bool, compresslevel: int = 6) -> None:
        self._gz: gzip.GzipFile | None = None
        self._out: Any = raw
        if gzip_compress:
            self._gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0)
            self._out = self._gz
        self._buf: list[bytes] = []
        self._size = 0

    def write(self, log: Mapping[str, Any], created_at: datetime) -> None:
        """Append ``log`` as one compact JSON line."""
        line = dumps_line(log)
        self._buf.append(line)
        self._size += len(line)
        if self._size >= self._BUFFER:
            self._drain()

    def _drain(self) -> None:
        if self._buf:
            self._out.write(b"".join(self._buf))
            self._buf = []
            self._size = 0

    def close(self) -> None:
        """Flush and finish the gzip stream (does not close the file object)."""
        self._drain()
        if self._gz is not None:
            self._gz.close()


def _fits(kind: str, value: Any) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and _INT64_MIN <= value <= _INT64_MAX
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "float":
        return (
            isinstance(value, (int, float))
            and not isinstance(value, bool)
            and not (isinstance(value, int) and abs(value) > 2**53)
        )
    return True


def _encode_json_field(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def to_parquet_row(log: Mapping[str, Any], created_at: datetime) -> dict[str, Any]:
    """Map a log to the Parquet columns (``created_at`` as epoch milliseconds).

    Fields without a column, and values that do not fit their column's type, go into ``extra``
    (a JSON object) so nothing is lost. ``metadata`` and the bodies are stored as strings,
    JSON-encoded when they are not strings already.
    """
    row: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for name, kind in PARQUET_COLUMNS:
        value = log.get(name)
        if kind == "ts":
            row[name] = _epoch_ms(created_at)
            raw = log.get(name)
            if not (isinstance(raw, str) and raw == _format_ms(created_at)):
                extra[name] = raw if not isinstance(raw, datetime) else _json_default(raw)
            continue
        if value is None:
            row[name] = None
        elif kind == "json":
            row[name] = _encode_json_field(value)
        elif _fits(kind, value):
            row[name] = float(value) if kind == "float" else value
        else:
            row[name] = None
            extra[name] = value
        if kind == "float" and row[name] is not None and not math.isfinite(row[name]):
            row[name] = None
            extra[name] = value
    for key, value in log.items():
        if key not in KNOWN_FIELDS:
            extra[key] = value
    row[EXTRA_COLUMN] = (
        json.dumps(extra, separators=(",", ":"), ensure_ascii=False, default=_json_default, allow_nan=True)
        if extra
        else None
    )
    return row


def parquet_schema() -> pyarrow.Schema:
    """The stable Arrow schema of exported Parquet files (see :data:`SCHEMA_VERSION`)."""
    pa = _import_pyarrow()
    types = {
        "str": pa.string(),
        "int": pa.int64(),
        "bool": pa.bool_(),
        "float": pa.float64(),
        "ts": pa.timestamp("ms", tz="UTC"),
        "json": pa.string(),
    }
    fields = [pa.field(name, types[kind], nullable=True) for name, kind in PARQUET_COLUMNS]
    fields.append(pa.field(EXTRA_COLUMN, pa.string(), nullable=True))
    metadata = {
        b"aigw.schema_version": str(SCHEMA_VERSION).encode(),
        b"aigw.json_columns": json.dumps(sorted([*_JSON_FIELDS, EXTRA_COLUMN])).encode(),
    }
    return pa.schema(fields, metadata=metadata)


class ParquetRecordWriter(RecordWriter):
    """Parquet via ``pyarrow.parquet.ParquetWriter`` on an open file object, bounded row groups."""

    def __init__(
        self,
        raw: IO[bytes] | Any,
        *,
        row_group_rows: int | None = None,
        row_group_bytes: int | None = None,
    ) -> None:
        pa = _import_pyarrow()
        self._pa = pa
        self._schema = parquet_schema()
        self._writer = pa.parquet.ParquetWriter(raw, self._schema, compression="zstd")
        self._names = [f.name for f in self._schema]
        self._cols: dict[str, list[Any]] = {n: [] for n in self._names}
        self._rows = 0
        self._bytes = 0
        self._row_group_rows = row_group_rows or PARQUET_ROW_GROUP_ROWS
        self._row_group_bytes = row_group_bytes or PARQUET_ROW_GROUP_BYTES

    def write(self, log: Mapping[str, Any], created_at: datetime) -> None:
        """Buffer one row; flush a row group when the buffer is full."""
        row = to_parquet_row(log, created_at)
        cols = self._cols
        size = 0
        for name in self._names:
            value = row[name]
            cols[name].append(value)
            if isinstance(value, str):
                # UTF-8 bytes, not characters (CJK/emoji take 3-4 bytes); isascii() is O(1)
                size += len(value) if value.isascii() else len(value.encode("utf-8"))
        self._rows += 1
        self._bytes += size
        if self._rows >= self._row_group_rows or self._bytes >= self._row_group_bytes:
            self._flush()

    def _flush(self) -> None:
        if not self._rows:
            return
        batch = self._pa.RecordBatch.from_pydict(self._cols, schema=self._schema)
        self._writer.write_batch(batch)
        self._cols = {n: [] for n in self._names}
        self._rows = 0
        self._bytes = 0

    def close(self) -> None:
        """Write the last row group and the Parquet footer (does not close the file object)."""
        self._flush()
        self._writer.close()


def make_writer(format: str, raw: IO[bytes] | Any) -> RecordWriter:
    """The writer for ``format`` on the open binary file object ``raw``."""
    if format == "jsonl":
        return JsonlWriter(raw, gzip_compress=False)
    if format == "jsonl.gz":
        return JsonlWriter(raw, gzip_compress=True)
    if format == "parquet":
        return ParquetRecordWriter(raw)
    raise AIGatewayInputError(f"format must be one of {', '.join(FORMATS)}; got {format!r}")


# --- readers -----------------------------------------------------------------------------------


def parquet_row_to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one Parquet row (as read by pyarrow) back into a log dict.

    Columns holding null are omitted, ``created_at`` is rendered as the API does
    (``YYYY-MM-DDTHH:MM:SS.mmmZ``) unless ``extra`` holds the original, and the fields kept in
    ``extra`` are merged back. Compare with :func:`normalize_record` of the original log.
    """
    record: dict[str, Any] = {}
    for name, kind in PARQUET_COLUMNS:
        value = row.get(name)
        if value is None:
            continue
        if kind == "ts":
            if isinstance(value, datetime):
                dt = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
            else:
                dt = datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
            record[name] = _format_ms(dt.astimezone(timezone.utc))
        else:
            record[name] = value
    extra = row.get(EXTRA_COLUMN)
    if extra:
        record.update(json.loads(extra))
    return record


def normalize_record(log: Mapping[str, Any]) -> dict[str, Any]:
    """What a log looks like after a Parquet round trip, for comparisons.

    Known fields holding null are dropped, ``metadata`` and the bodies become strings
    (JSON-encoded when they were not strings), integer ``cost`` becomes float; everything else is
    unchanged.
    """
    out: dict[str, Any] = {}
    kinds = dict(PARQUET_COLUMNS)
    for key, value in log.items():
        kind = kinds.get(key)
        if kind is None:
            out[key] = value
        elif value is None:
            continue
        elif kind == "json":
            out[key] = _encode_json_field(value)
        elif kind == "float" and _fits(kind, value) and math.isfinite(value):
            out[key] = float(value)
        else:
            out[key] = value
    return out


def read_parquet_records(source: Any) -> Iterator[dict[str, Any]]:
    """Yield the log dicts stored in one exported Parquet file, batch by batch.

    :param source: a binary file object, or a local path.
    """
    pa = _import_pyarrow()
    pf = pa.parquet.ParquetFile(source)
    for batch in pf.iter_batches(batch_size=PARQUET_ROW_GROUP_ROWS):
        for row in batch.to_pylist():
            yield parquet_row_to_record(row)


def read_jsonl_records(raw: IO[bytes], *, gzipped: bool) -> Iterator[dict[str, Any]]:
    """Yield the log dicts of a JSON Lines stream (gzip-compressed when ``gzipped``)."""
    stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
    for line in stream:
        line = line.strip()
        if line:
            yield json.loads(line)


def format_of(name: str) -> str:
    """The export format of a part file, from its name."""
    if name.endswith(".jsonl.gz"):
        return "jsonl.gz"
    if name.endswith(".jsonl"):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise AIGatewayInputError(f"not an export part file: {name!r}")
