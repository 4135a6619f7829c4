"""Export of AI Gateway logs to Airflow object storage: a typed, partitioned dataset and its manifest.

One home per concept (``docs/architecture.rst``, "The export package"): :mod:`.schema` (the
rows), :mod:`.usage` (the usage summary), :mod:`.formats` (JSON Lines, Parquet),
:mod:`.destination` (where the archive lives, atomic writes), :mod:`.naming` (every name and
path), :mod:`.parts` (part files), :mod:`.commit` (lock, manifest, collection), :mod:`.writer`
(:func:`export_logs`), :mod:`.reader` (reading an archive back), :mod:`.run` (one export from the
API) and :mod:`.lineage` (its OpenLineage facets). The writing side never imports operators,
hooks or the HTTP client: it receives an iterable of log dicts and writes them.

Public API::

    validate_format(format) -> str
    resolve_destination(destination) -> ObjectStoragePath
    export_logs(logs, destination, *, gateway_id, start, end, filters=None, account_id=None,
                format="jsonl.gz", partition_by="day", rows_per_part=1_000_000,
                bytes_per_part=128 MiB, allow_shrink=False, owner=None,
                lock_lease=timedelta(minutes=5), on_progress=None, total_count=None) -> ExportResult
    read_manifest(uri_or_path) -> dict
    iter_manifest_records(manifest, *, verify=False) -> Iterator[dict]
    COLUMNS, SCHEMA_VERSION, arrow_schema(), arrow_partitioning(), manifest_schema()
    duckdb_columns(), duckdb_hive_types()
    UsageSummary, merge_usage(usages) -> dict
"""

from __future__ import annotations

from airflow_provider_aigw.export.destination import resolve_destination
from airflow_provider_aigw.export.formats import (
    DEFAULT_FORMAT,
    FORMATS,
    normalize_record,
    parquet_schema,
    read_parquet_records,
    validate_format,
)
from airflow_provider_aigw.export.naming import window_tag
from airflow_provider_aigw.export.reader import (
    file_uri,
    iter_file_records,
    iter_manifest_records,
    read_manifest,
    verify_file,
)
from airflow_provider_aigw.export.schema import (
    COLUMNS,
    SCHEMA_VERSION,
    arrow_partitioning,
    arrow_schema,
    duckdb_columns,
    duckdb_hive_types,
    manifest_schema,
)
from airflow_provider_aigw.export.usage import UsageSummary, merge_usage
from airflow_provider_aigw.export.writer import (
    DEFAULT_BYTES_PER_PART,
    DEFAULT_PARTITION_BY,
    DEFAULT_ROWS_PER_PART,
    PARTITION_BY,
    ExportResult,
    export_logs,
)

__all__ = [
    "COLUMNS",
    "DEFAULT_BYTES_PER_PART",
    "DEFAULT_FORMAT",
    "DEFAULT_PARTITION_BY",
    "DEFAULT_ROWS_PER_PART",
    "FORMATS",
    "PARTITION_BY",
    "SCHEMA_VERSION",
    "ExportResult",
    "UsageSummary",
    "arrow_partitioning",
    "arrow_schema",
    "duckdb_columns",
    "duckdb_hive_types",
    "export_logs",
    "file_uri",
    "iter_file_records",
    "iter_manifest_records",
    "manifest_schema",
    "merge_usage",
    "normalize_record",
    "parquet_schema",
    "read_manifest",
    "read_parquet_records",
    "resolve_destination",
    "validate_format",
    "verify_file",
    "window_tag",
]
