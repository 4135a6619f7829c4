"""File formats of the export: JSON Lines (plain or gzip) and Parquet.

Every writer takes log dicts one at a time, maps each to a row of the one schema
(:mod:`~airflow_provider_aigw.export.schema`) and writes it onto an already open binary file
object, so memory stays flat: JSONL writes line by line, Parquet buffers one bounded row group.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import IO, TYPE_CHECKING, Any

from zlib_ng import gzip_ng

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export.schema import arrow_schema, to_json_line, to_row
from airflow_provider_aigw.jsoncodec import decode_json
from airflow_provider_aigw.timestamps import format_time, parse_created_at
from airflow_provider_aigw.validation import validate_choice

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pyarrow

FORMATS: tuple[str, ...] = ("jsonl", "jsonl.gz", "parquet")
DEFAULT_FORMAT = "jsonl.gz"

#: Deflate level of ``jsonl.gz`` parts, written by zlib-ng: the same size as zlib's level 6 in
#: half its CPU (3 us a log). Measured on emulator logs: level 3 would save 1 us of CPU a log for
#: parts a fifth larger; level 9 (gzip's default) would cost 3 us more for parts 4% smaller.
GZIP_LEVEL = 6
#: Rows buffered per Parquet row group (also bounded by :data:`PARQUET_ROW_GROUP_BYTES`).
PARQUET_ROW_GROUP_ROWS = 10_000
#: UTF-8 bytes of string data buffered before a Parquet row group is flushed.
PARQUET_ROW_GROUP_BYTES = 64 * 1024 * 1024

_PARQUET_HINT = "format='parquet' needs the 'parquet' extra: pip install 'airflow-provider-aigw[parquet]'"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def validate_format(format: str) -> str:
    """Return the canonical export format or raise :class:`AIGatewayInputError`.

    Accepted: ``jsonl``, ``jsonl.gz`` (default), ``parquet`` (case-insensitive, a leading dot
    is ignored). ``parquet`` also checks that pyarrow is importable.
    """
    canonical = format.strip().lower().lstrip(".") if isinstance(format, str) else format
    fmt = validate_choice(canonical, FORMATS, param="format")
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


def _epoch_ms(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


# --- writers -----------------------------------------------------------------------------------


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

    def __init__(self, raw: IO[bytes] | Any, *, gzip_compress: bool, compresslevel: int = GZIP_LEVEL) -> None:
        self._gz: gzip_ng.GzipNGFile | None = None
        self._out: Any = raw
        if gzip_compress:
            self._gz = gzip_ng.GzipNGFile(filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0)
            self._out = self._gz
        self._buf: list[bytes] = []
        self._size = 0

    def write(self, log: Mapping[str, Any], created_at: datetime) -> None:
        """Append ``log`` as one compact JSON line (a row of the schema)."""
        line = to_json_line(log, created_at)
        self._buf.append(line)
        self._size += len(line) + 1
        if self._size >= self._BUFFER:
            self._drain()

    def _drain(self) -> None:
        if self._buf:
            self._buf.append(b"")
            self._out.write(b"\n".join(self._buf))
            self._buf = []
            self._size = 0

    def close(self) -> None:
        """Flush and finish the gzip stream (does not close the file object)."""
        self._drain()
        if self._gz is not None:
            self._gz.close()


def parquet_schema() -> pyarrow.Schema:
    """The Arrow schema of exported Parquet files: :func:`~.schema.arrow_schema`."""
    _import_pyarrow()
    return arrow_schema()


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
        self._cols: dict[str, list[Any]] = {}
        self._appends: list[Any] = []
        self._new_columns()
        self._rows = 0
        self._bytes = 0
        self._row_group_rows = row_group_rows or PARQUET_ROW_GROUP_ROWS
        self._row_group_bytes = row_group_bytes or PARQUET_ROW_GROUP_BYTES

    def write(self, log: Mapping[str, Any], created_at: datetime) -> None:
        """Buffer one row; flush a row group when the buffer is full."""
        row = to_row(log, created_at)
        row["created_at"] = _epoch_ms(created_at)
        if row["metadata"] is not None:
            row["metadata"] = list(row["metadata"].items())
        size = 0
        # a row's keys are the columns in schema order (schema.to_row)
        for append, value in zip(self._appends, row.values(), strict=True):
            append(value)
            if isinstance(value, str):
                # UTF-8 bytes, not characters (CJK/emoji take 3-4 bytes); isascii() is O(1)
                size += len(value) if value.isascii() else len(value.encode("utf-8"))
        self._rows += 1
        self._bytes += size
        if self._rows >= self._row_group_rows or self._bytes >= self._row_group_bytes:
            self._flush()

    def _new_columns(self) -> None:
        self._cols = {n: [] for n in self._names}
        self._appends = [self._cols[n].append for n in self._names]

    def _flush(self) -> None:
        if not self._rows:
            return
        try:
            batch = self._pa.RecordBatch.from_pydict(self._cols, schema=self._schema)
        except UnicodeEncodeError:
            raise AIGatewayError(self._lone_surrogate()) from None
        self._writer.write_batch(batch)
        self._new_columns()
        self._rows = 0
        self._bytes = 0

    def _lone_surrogate(self) -> str:
        """The error of a buffered row with text Parquet cannot store, naming its log and column."""
        where = next(
            (
                f"log {self._cols['id'][row]!r}, column {name!r}"
                for name, values in self._cols.items()
                for row, value in enumerate(values)
                if not all(map(_is_utf8, _texts(value)))
            ),
            "a log",
        )
        return (
            f"{where}: its text holds a lone surrogate (JSON's \\ud800 without its pair), which Parquet's "
            "UTF-8 strings cannot store; export this window as jsonl or jsonl.gz, which keep it as its escape"
        )

    def close(self) -> None:
        """Write the last row group and the Parquet footer (does not close the file object)."""
        self._flush()
        self._writer.close()


def _texts(value: Any) -> list[str]:
    """The strings of one buffered Parquet cell: a text, or the keys and values of a map's pairs."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for pair in value for text in pair]
    return []


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def make_writer(format: str, raw: IO[bytes] | Any) -> RecordWriter:
    """The writer for ``format`` on the open binary file object ``raw``."""
    if validate_choice(format, FORMATS, param="format") == "parquet":
        return ParquetRecordWriter(raw)
    return JsonlWriter(raw, gzip_compress=format == "jsonl.gz")


# --- readers -----------------------------------------------------------------------------------


def parquet_row_to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one Parquet row (as read by pyarrow) into the JSON Lines record of the same log.

    ``created_at`` becomes ISO 8601 text (ms, ``Z``) and the ``metadata`` map a dict, so both
    formats read back as equal dicts (compare with :func:`normalize_record` of the API log).
    """
    record = dict(row)
    value = record.get("created_at")
    if isinstance(value, datetime):
        record["created_at"] = format_time(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    meta = record.get("metadata")
    if meta is not None:
        record["metadata"] = dict(meta)
    return record


def normalize_record(log: Mapping[str, Any]) -> dict[str, Any]:
    """The record an export stores for the API log ``log`` (in either format, read back)."""
    return to_row(log, parse_created_at(log.get("created_at")))


def read_parquet_records(source: Any) -> Iterator[dict[str, Any]]:
    """Yield the records stored in one exported Parquet file, batch by batch.

    :param source: a binary file object, or a local path.
    """
    pa = _import_pyarrow()
    pf = pa.parquet.ParquetFile(source)
    for batch in pf.iter_batches(batch_size=PARQUET_ROW_GROUP_ROWS):
        for row in batch.to_pylist():
            yield parquet_row_to_record(row)


def read_jsonl_records(raw: IO[bytes], *, gzipped: bool) -> Iterator[dict[str, Any]]:
    """Yield the records of a JSON Lines stream (gzip-compressed when ``gzipped``)."""
    stream: Any = gzip_ng.GzipNGFile(fileobj=raw, mode="rb") if gzipped else raw
    for line in stream:
        line = line.strip()
        if line:
            yield decode_json(line)
