"""Export of AI Gateway logs to Airflow object storage: writers, partitioning and manifest.

This package never imports operators, hooks or the HTTP client: it receives an iterator of
log dicts and writes them.

Public API::

    validate_format(format) -> str
    resolve_destination(destination) -> ObjectStoragePath
    export_logs(logs, destination, *, gateway_id, start, end, filters=None, format="jsonl.gz",
                partition_by="hour", rows_per_part=100_000, on_progress=None) -> ExportResult
    read_manifest(uri_or_path) -> dict
    iter_manifest_records(manifest, *, verify=False) -> Iterator[dict]
"""

from __future__ import annotations

from airflow_provider_aigw.export._storage import resolve_destination
from airflow_provider_aigw.export.formats import (
    DEFAULT_FORMAT,
    FORMATS,
    SCHEMA_VERSION,
    normalize_record,
    parquet_schema,
    read_parquet_records,
    validate_format,
)
from airflow_provider_aigw.export.writer import (
    DEFAULT_ROWS_PER_PART,
    PARTITION_BY,
    ExportResult,
    export_logs,
    iter_file_records,
    iter_manifest_records,
    read_manifest,
    verify_file,
    window_tag,
)

__all__ = [
    "DEFAULT_FORMAT",
    "DEFAULT_ROWS_PER_PART",
    "FORMATS",
    "PARTITION_BY",
    "SCHEMA_VERSION",
    "ExportResult",
    "export_logs",
    "iter_file_records",
    "iter_manifest_records",
    "normalize_record",
    "parquet_schema",
    "read_manifest",
    "read_parquet_records",
    "resolve_destination",
    "validate_format",
    "verify_file",
    "window_tag",
]
