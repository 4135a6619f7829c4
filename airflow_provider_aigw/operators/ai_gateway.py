"""Operators for the Cloudflare AI Gateway Logs API: list, export, delete and patch logs.

Each operator is a thin layer: it validates its inputs before the first request (into a
:class:`~airflow_provider_aigw.query.LogQuery` or :class:`~airflow_provider_aigw.patch.LogPatch`,
when the task is created or, for templated values, once they are rendered), calls one method of
:class:`~airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook`, and pushes a small XCom.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.client import DELETE_ORDER_KEYS, LIST_ORDER_KEYS, MAX_DELETE_LIMIT, ORDER_DIRECTIONS
from airflow_provider_aigw.compat import Asset, BaseOperator, ObjectStoragePath
from airflow_provider_aigw.concurrency import MAX_CONCURRENCY
from airflow_provider_aigw.deletion import UNFILTERED_DELETE, validate_delete_query
from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import (
    DEFAULT_BYTES_PER_PART,
    DEFAULT_PARTITION_BY,
    DEFAULT_ROWS_PER_PART,
    PARTITION_BY,
)
from airflow_provider_aigw.export.formats import validate_format
from airflow_provider_aigw.export.lineage import export_lineage
from airflow_provider_aigw.export.run import DEFAULT_SETTLE_LAG, ON_BODY_ERROR, destination_assets
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.logpush.run import MAX_WORKERS, ON_DECRYPT_ERROR
from airflow_provider_aigw.patch import LogPatch
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.validation import (
    is_templated,
    parse_literal,
    validate_choice,
    validate_duration,
    validate_log_ids,
    validate_names,
    validate_positive,
)

if TYPE_CHECKING:
    from airflow_provider_aigw.compat import Context

__all__ = [
    "MAX_LIST_XCOM_BYTES",
    "AIGatewayDeleteLogsOperator",
    "AIGatewayExportLogsOperator",
    "AIGatewayImportLogpushOperator",
    "AIGatewayListLogsOperator",
    "AIGatewayPatchLogOperator",
]

#: The list operator refuses a ``max_results`` whose XCom could grow beyond this.
MAX_LIST_XCOM_BYTES = 2 * 1024 * 1024
#: Size assumed per log (full record) and per projected field when sizing the list XCom.
_BYTES_PER_LOG = 1024
_BYTES_PER_FIELD = 64

TimeArg = dt.datetime | str | None
#: The connection :class:`AIGatewayImportLogpushOperator` reads the Logpush private key from.
DEFAULT_KEY_CONN_ID = "cloudflare_logpush_key_default"


def _renamed(new: str, new_value: Any, old: str, old_value: Any) -> tuple[str, Any]:
    """The one given of a renamed parameter's two names, as ``(name, value)``; ``value`` None when neither was.

    :raises AIGatewayInputError: both names were given.
    """
    if new_value is not None and old_value is not None:
        raise AIGatewayInputError(f"pass {new}= or its old name {old}=, not both")
    return (old, old_value) if old_value is not None else (new, new_value)


def _task_owner(task: BaseOperator, context: Context) -> str:
    """The task instance: a lock left by a killed earlier try of it is taken over on retry."""
    ti = context.get("ti") or context.get("task_instance")
    run_id = context.get("run_id") or getattr(ti, "run_id", None)
    map_index = getattr(ti, "map_index", -1)
    return f"{task.dag_id}/{task.task_id}/{run_id}/{map_index}"


class _AIGatewayBaseOperator(BaseOperator):
    """Common parameters of the AI Gateway operators.

    :param aigw_conn_id: Airflow connection id (type ``cloudflare_ai_gateway``). Templated.
    :param gateway_id: gateway; default the connection's ``gateway_id`` extra. Templated.
    """

    def __init__(
        self,
        *,
        aigw_conn_id: str = AIGatewayHook.default_conn_name,
        gateway_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aigw_conn_id = aigw_conn_id
        self.gateway_id = gateway_id

    @cached_property
    def hook(self) -> AIGatewayHook:
        """The hook (created on first use, in ``execute``: after ``aigw_conn_id`` and ``gateway_id`` are rendered)."""
        return AIGatewayHook(aigw_conn_id=self.aigw_conn_id, gateway_id=self.gateway_id or None)


class AIGatewayListLogsOperator(_AIGatewayBaseOperator):
    """List logs matching filters and an optional ``[start, end)`` window into XCom.

    .. seealso::
        The how-to guide: :doc:`/operators/list`.

    Returns at most ``max_results`` log dicts (only ``fields`` when given), warning when more
    matched. For more logs than fit an XCom use :class:`AIGatewayExportLogsOperator`.

    :param filters: API filters, e.g. ``[{"key": "success", "operator": "eq", "value": [False]}]``
        (one dict or a list; a scalar ``value`` is wrapped). Templated.
    :param start: window start (inclusive), aware datetime or ISO 8601 string. Templated.
    :param end: window end (exclusive). Templated.
    :param max_results: most logs to return (default 1,000). Refused when the XCom could
        exceed 2 MiB (about 2,000 full logs; more with ``fields``).
    :param fields: keep only these fields of each log (e.g. ``["id", "model", "cost"]``).
    :param order_by: ``created_at`` (default), ``provider``, ``model``, ``model_type``,
        ``success`` or ``cached``.
    :param order_by_direction: ``asc`` (default) or ``desc``.
    :param search: free-text search over metadata. Templated.
    :param gateway_id: gateway; default the connection's. Templated.
    :param aigw_conn_id: Airflow connection id. Templated.
    """

    template_fields: Sequence[str] = ("aigw_conn_id", "gateway_id", "filters", "start", "end", "search")
    template_fields_renderers = {"filters": "json"}
    ui_color = "#f6821f"

    def __init__(
        self,
        *,
        filters: Any = None,
        start: TimeArg = None,
        end: TimeArg = None,
        max_results: int = 1000,
        fields: Sequence[str] | None = None,
        order_by: str = "created_at",
        order_by_direction: str = "asc",
        search: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.start = start
        self.end = end
        self.max_results = validate_positive(max_results, param="max_results")
        self.fields = fields = None if fields is None else validate_names(fields, param="fields")
        per_log = _BYTES_PER_LOG if fields is None else 16 + _BYTES_PER_FIELD * len(fields)
        if self.max_results * per_log > MAX_LIST_XCOM_BYTES:
            limit = MAX_LIST_XCOM_BYTES // per_log
            raise AIGatewayInputError(
                f"max_results={max_results} could push an XCom of about "
                f"{self.max_results * per_log / 1024 / 1024:.1f} MiB; the limit is {limit} "
                f"{'full logs' if fields is None else f'logs of {len(fields)} field(s)'}. Narrow the "
                "result with fields=[...], or write the logs to storage with AIGatewayExportLogsOperator"
            )
        self.order_by = validate_choice(order_by, LIST_ORDER_KEYS, param="order_by")
        self.order_by_direction = validate_choice(order_by_direction, ORDER_DIRECTIONS, param="order_by_direction")
        self.search = search
        #: The query, validated here unless a part of it is templated (then in execute, once rendered).
        self._static_query = None if is_templated([filters, start, end, search]) else self._query()

    def _query(self) -> LogQuery:
        return LogQuery.of(filters=self.filters, start=self.start, end=self.end, search=self.search or None)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        query = self.hook.with_gateway(self._static_query or self._query())
        logs = self.hook.list_logs(
            query=query,
            order_by=self.order_by,
            order_by_direction=self.order_by_direction,
            max_results=self.max_results,
        )
        # A full page of results costs one more request: the count, to say how many matched.
        total = len(logs)
        if total >= self.max_results:
            total = self.hook.count_logs(query=query)
        if total > self.max_results:
            self.log.warning(
                "%d logs matched; returning the first %d (order_by=%s %s). Raise max_results, narrow the "
                "filters or use AIGatewayExportLogsOperator for all of them",
                total,
                self.max_results,
                self.order_by,
                self.order_by_direction,
            )
        if self.fields is not None:
            logs = [{name: item.get(name) for name in self.fields} for item in logs]
        self.log.info("listed %d logs of gateway %r", len(logs), query.gateway_id)
        return logs


class AIGatewayExportLogsOperator(_AIGatewayBaseOperator):
    """Export the logs of a ``[start, end)`` window to object storage, streaming (memory stays flat).

    .. seealso::
        The how-to guide: :doc:`/operators/export`; querying what it wrote: :doc:`/archive`.

    Files are partitioned hive-style (``gateway=<id>/date=YYYY-MM-DD/``) with the columns of
    :mod:`airflow_provider_aigw.export.schema`; the manifest is written last, so a re-run
    overwrites and the archive never shrinks (see :func:`airflow_provider_aigw.export.export_logs`).
    Returns the manifest summary (``manifest_uri``, ``count``, ``files``, ``bytes``, window,
    ``usage``, ...). The window defaults to the run's data interval and must have ended
    ``settle_lag`` ago. A static ``destination`` is declared as an outlet :class:`Asset` whose
    events carry the summary; OpenLineage facets are reported when that provider is installed.

    :param destination: ``ObjectStoragePath`` or URL: ``file:///data/aigw``,
        ``s3://aws_conn@bucket/prefix``, ``gs://bucket/prefix``, ``abfs://...``. Templated.
    :param filters: API filters selecting the logs. Templated.
    :param start: window start (inclusive); default the data interval start. Templated.
    :param end: window end (exclusive); default the data interval end. Templated.
    :param format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (needs the ``parquet`` extra).
        Templated.
    :param include_bodies: also fetch each log's request and response bodies (2 requests per log);
        each row records their status: ``collected``, ``not_collected`` or ``failed``.
    :param on_body_error: ``fail`` (default: fail the task after writing everything) or ``warn``
        when a body fetch failed; a manifest delete never deletes such a log.
    :param body_concurrency: parallel body requests (1-32, default 4).
    :param partition_by: ``day`` (default) or ``hour`` (for more than about a million logs a day).
    :param rows_per_part: rows per part file before it rolls (default 1,000,000).
    :param bytes_per_part: bytes per part file before it rolls (default 128 MiB).
    :param settle_lag: how long ago the window must end (timedelta or seconds; default 5 min).
    :param clamp_end: move a too-recent ``end`` back to ``now - settle_lag`` (warning), not fail.
    :param allow_shrink: replace the window's archive with exactly the logs that match now,
        dropping archived logs gone from the gateway (by default they are kept: the union).
    :param overwrite_smaller: the old name of ``allow_shrink``, still accepted (not both).
    :param gateway_id: gateway; default the connection's. Templated.
    :param aigw_conn_id: Airflow connection id. Templated.
    """

    template_fields: Sequence[str] = ("aigw_conn_id", "gateway_id", "filters", "start", "end", "destination", "format")
    template_fields_renderers = {"filters": "json"}
    ui_color = "#f6821f"

    def __init__(
        self,
        *,
        destination: str | ObjectStoragePath,
        filters: Any = None,
        start: TimeArg = None,
        end: TimeArg = None,
        format: str = "jsonl.gz",
        include_bodies: bool = False,
        on_body_error: str = "fail",
        body_concurrency: int = 4,
        partition_by: str = DEFAULT_PARTITION_BY,
        rows_per_part: int = DEFAULT_ROWS_PER_PART,
        bytes_per_part: int = DEFAULT_BYTES_PER_PART,
        settle_lag: dt.timedelta | float = DEFAULT_SETTLE_LAG,
        clamp_end: bool = False,
        allow_shrink: bool | None = None,
        overwrite_smaller: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and not is_templated(str(destination)):
            kwargs["outlets"] = destination_assets(destination)
        super().__init__(**kwargs)
        if not isinstance(destination, (str, ObjectStoragePath)) or not str(destination).strip():
            raise AIGatewayInputError(f"destination must be a storage URL or an ObjectStoragePath, got {destination!r}")
        self.destination = destination
        self.filters = filters
        self.start = start
        self.end = end
        self.format = format
        self.include_bodies = bool(include_bodies)
        self.on_body_error = validate_choice(on_body_error, ON_BODY_ERROR, param="on_body_error")
        self.body_concurrency = validate_positive(body_concurrency, param="body_concurrency", maximum=MAX_CONCURRENCY)
        self.partition_by = validate_choice(partition_by, PARTITION_BY, param="partition_by")
        self.rows_per_part = validate_positive(rows_per_part, param="rows_per_part")
        self.bytes_per_part = validate_positive(bytes_per_part, param="bytes_per_part")
        self.settle_lag = validate_duration(settle_lag, param="settle_lag")
        self.clamp_end = bool(clamp_end)
        self.allow_shrink = bool(_renamed("allow_shrink", allow_shrink, "overwrite_smaller", overwrite_smaller)[1])
        # Validated here unless templated (then in execute, once rendered).
        self._static_format = None if is_templated(format) else validate_format(format)
        self._static_query = None if is_templated([filters, start, end]) else self._query()
        #: What the export wrote (the hook's ``ExportRun``), for lineage.
        self._run: Any = None

    def _query(self) -> LogQuery:
        return LogQuery.of(filters=self.filters, start=self.start, end=self.end)

    def execute(self, context: Context) -> dict[str, Any]:
        self._run = self.hook.run_export(
            self._static_query or self._query(),
            self.destination,
            format=self._static_format or validate_format(self.format),
            data_interval=(context.get("data_interval_start"), context.get("data_interval_end")),
            settle_lag=self.settle_lag,
            clamp_end=self.clamp_end,
            include_bodies=self.include_bodies,
            body_concurrency=self.body_concurrency,
            logger=self.log,
            partition_by=self.partition_by,
            rows_per_part=self.rows_per_part,
            bytes_per_part=self.bytes_per_part,
            allow_shrink=self.allow_shrink,
            owner=_task_owner(self, context),
        )
        _record_outlet_events(self, context, self._run.event_extra())
        self._run.check_bodies(self.on_body_error, self.log)
        return self._run.summary

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the gateway's logs as input, the destination as output, with schema facets."""
        return export_lineage(self._run)


def _record_outlet_events(task: BaseOperator, context: Context, extra: dict[str, Any]) -> None:
    """Attach a (small) summary to the events of ``task``'s outlet assets."""
    events = context.get("outlet_events")
    for outlet in task.outlets:
        if events is not None and isinstance(outlet, Asset):
            events[outlet].extra.update(extra)


class AIGatewayImportLogpushOperator(BaseOperator):
    """Import the Cloudflare Logpush files of a ``[start, end)`` window into an export archive.

    .. seealso::
        The how-to guide: :doc:`/logpush`.

    Reads the files an ``ai_gateway_events`` Logpush job wrote under ``source`` (date folders,
    names), keeps the records whose own ``Timestamp`` lies in the window, decrypts ``Metadata``,
    ``RequestBody`` and ``ResponseBody`` with the private key of connection ``key_conn_id``, and
    writes the export's dataset and manifest (``source: "logpush"``, each file read with its size
    and SHA-256) through the export's commit protocol: a re-run unions late files, a concurrent
    import of the window is refused. No Logs API request is made. Returns the manifest summary
    with ``source``, ``source_files`` and ``unreadable``. The window defaults to the run's data
    interval and must have ended ``settle_lag`` ago.

    The key connection (any type): the PEM private key in ``password``; for an encrypted PEM its
    passphrase in the ``passphrase`` extra or in ``login``; optionally ``gateway_id`` in the extra.

    :param source: the Logpush job's destination, the parent of its date folders: URL or
        ``ObjectStoragePath`` (``s3://aws_conn@bucket/prefix`` for R2 and S3, ``gs://...``,
        ``file://...``). Templated.
    :param destination: the archive: URL or ``ObjectStoragePath``. Templated.
    :param start: window start (inclusive); default the data interval start. Templated.
    :param end: window end (exclusive); default the data interval end. Templated.
    :param key_conn_id: connection holding the private key. Templated.
    :param gateway_id: the gateway whose logs are imported (records of others are skipped);
        default the key connection's ``gateway_id`` extra. Templated.
    :param on_decrypt_error: ``fail`` (default: fail the task after writing every row that
        decrypts, naming the count and the files and lines) or ``warn``. An unreadable record is
        never written.
    :param max_workers: processes decrypting (1-64, default 1: one that only does the RSA
        operations, beside the task on another core; a thread of the task when it cannot be forked).
    :param format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet``. Templated.
    :param partition_by: ``day`` (default) or ``hour``.
    :param rows_per_part: rows per part file before it rolls (default 1,000,000).
    :param bytes_per_part: bytes per part file before it rolls (default 128 MiB).
    :param settle_lag: how long ago the window must end (timedelta or seconds; default 5 min).
    :param clamp_end: move a too-recent ``end`` back to ``now - settle_lag`` (warning), not fail.
    :param allow_shrink: replace the window's archive with exactly the rows read now (by default
        rows archived before are kept: the union).
    """

    template_fields: Sequence[str] = (
        "source",
        "destination",
        "start",
        "end",
        "key_conn_id",
        "gateway_id",
        "format",
    )
    ui_color = "#f6821f"

    def __init__(
        self,
        *,
        source: str | ObjectStoragePath,
        destination: str | ObjectStoragePath,
        start: TimeArg = None,
        end: TimeArg = None,
        key_conn_id: str = DEFAULT_KEY_CONN_ID,
        gateway_id: str | None = None,
        on_decrypt_error: str = "fail",
        max_workers: int = 1,
        format: str = "jsonl.gz",
        partition_by: str = DEFAULT_PARTITION_BY,
        rows_per_part: int = DEFAULT_ROWS_PER_PART,
        bytes_per_part: int = DEFAULT_BYTES_PER_PART,
        settle_lag: dt.timedelta | float = DEFAULT_SETTLE_LAG,
        clamp_end: bool = False,
        allow_shrink: bool = False,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs and not is_templated(str(destination)):
            kwargs["outlets"] = destination_assets(destination)
        super().__init__(**kwargs)
        for name, value in (("source", source), ("destination", destination)):
            if not isinstance(value, (str, ObjectStoragePath)) or not str(value).strip():
                raise AIGatewayInputError(f"{name} must be a storage URL or an ObjectStoragePath, got {value!r}")
        self.source = source
        self.destination = destination
        self.start = start
        self.end = end
        self.key_conn_id = key_conn_id
        self.gateway_id = gateway_id
        self.on_decrypt_error = validate_choice(on_decrypt_error, ON_DECRYPT_ERROR, param="on_decrypt_error")
        self.max_workers = validate_positive(max_workers, param="max_workers", maximum=MAX_WORKERS)
        self.format = format
        self.partition_by = validate_choice(partition_by, PARTITION_BY, param="partition_by")
        self.rows_per_part = validate_positive(rows_per_part, param="rows_per_part")
        self.bytes_per_part = validate_positive(bytes_per_part, param="bytes_per_part")
        self.settle_lag = validate_duration(settle_lag, param="settle_lag")
        self.clamp_end = bool(clamp_end)
        self.allow_shrink = bool(allow_shrink)
        self._static_format = None if is_templated(format) else validate_format(format)

    @cached_property
    def hook(self) -> AIGatewayHook:
        """The hook (no Logs API connection is read: the import sends no API request)."""
        return AIGatewayHook(gateway_id=self.gateway_id or None)

    def execute(self, context: Context) -> dict[str, Any]:
        run = self.hook.import_logpush(
            self.source,
            self.destination,
            key_conn_id=self.key_conn_id,
            format=self._static_format or validate_format(self.format),
            start=self.start,
            end=self.end,
            data_interval=(context.get("data_interval_start"), context.get("data_interval_end")),
            settle_lag=self.settle_lag,
            clamp_end=self.clamp_end,
            max_workers=self.max_workers,
            logger=self.log,
            partition_by=self.partition_by,
            rows_per_part=self.rows_per_part,
            bytes_per_part=self.bytes_per_part,
            allow_shrink=self.allow_shrink,
            owner=_task_owner(self, context),
        )
        _record_outlet_events(self, context, {k: v for k, v in run.summary.items() if k not in ("paths", "usage")})
        run.check_unreadable(self.on_decrypt_error, self.log)
        return run.summary


class AIGatewayDeleteLogsOperator(_AIGatewayBaseOperator):
    """Delete logs by listed id, each DELETE confined so that an ignored filter cannot widen it.

    .. seealso::
        The how-to guide: :doc:`/operators/delete`.

    The logs are listed first and deleted by id, led by a checked canary
    (:mod:`airflow_provider_aigw.deletion`). With ``manifest`` it deletes exactly the exported
    logs, after proving by id that every log matching now is in the export (refusing otherwise),
    and never one whose body fetch failed (:func:`~airflow_provider_aigw.deletion.delete_exported`).
    Without, filters must narrow the window unless ``allow_match_all=True``
    (:func:`~airflow_provider_aigw.deletion.delete_listed`). Returns how many logs were deleted.

    :param filters: API filters of the logs to delete (documented keys only). Templated.
    :param start: window start (inclusive). Templated.
    :param end: window end (exclusive). Templated.
    :param manifest: export summary / manifest URL / manifest (``manifest=export_task.output``);
        a ``start``, ``end``, ``filters`` or ``gateway_id`` given too must equal its. Templated.
    :param dry_run: only count (and verify) and report what would be deleted; returns that
        number. Stored as ``is_dry_run`` (``dry_run`` is a BaseOperator method).
    :param batch_size: most logs named per DELETE, 1-10,000 (the URL length caps it at about 320).
    :param limit: the old name of ``batch_size``, still accepted (not both).
    :param allow_match_all: delete even when the filters match every log of the window.
    :param order_by: accepted for compatibility; deletes go by listed id, oldest first.
    :param order_by_direction: accepted for compatibility; see ``order_by``.
    :param gateway_id: gateway; default the connection's (or the manifest's). Templated.
    :param aigw_conn_id: Airflow connection id. Templated.
    """

    template_fields: Sequence[str] = ("aigw_conn_id", "gateway_id", "filters", "start", "end", "manifest")
    template_fields_renderers = {"filters": "json", "manifest": "json"}
    ui_color = "#d9534f"

    def __init__(
        self,
        *,
        filters: Any = None,
        start: TimeArg = None,
        end: TimeArg = None,
        manifest: Any = None,
        dry_run: bool = False,
        batch_size: int | None = None,
        limit: int | None = None,
        allow_match_all: bool = False,
        order_by: str | None = None,
        order_by_direction: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.start = start
        self.end = end
        self.manifest = manifest
        # ``dry_run`` is also a BaseOperator method (render-only run); keep that intact.
        self.is_dry_run = bool(dry_run)
        param, size = _renamed("batch_size", batch_size, "limit", limit)
        self.batch_size = (
            MAX_DELETE_LIMIT if size is None else validate_positive(size, param=param, maximum=MAX_DELETE_LIMIT)
        )
        self.allow_match_all = bool(allow_match_all)
        if order_by is not None:
            validate_choice(order_by, DELETE_ORDER_KEYS, param="order_by")
        if order_by_direction is not None:
            validate_choice(order_by_direction, ORDER_DIRECTIONS, param="order_by_direction")
        if manifest is None and filters is None and start is None and end is None:
            raise AIGatewayInputError(UNFILTERED_DELETE)
        #: What to delete, validated here unless templated (then in execute, once rendered).
        self._static_query = None if is_templated([filters, start, end, self.gateway_id]) else self._query()

    def _query(self) -> LogQuery | None:
        """The filters and window to delete; with a manifest, what must agree with it (None: nothing given)."""
        if self.manifest is None:
            query = LogQuery.of(filters=self.filters, start=self.start, end=self.end)
            validate_delete_query(query)  # documented filter keys only, and filters or a window
            return query
        if self.filters is None and self.start is None and self.end is None and not self.gateway_id:
            return None
        return LogQuery.of(gateway_id=self.gateway_id or None, filters=self.filters, start=self.start, end=self.end)

    def execute(self, context: Context) -> int:
        query = self._static_query or self._query()
        if self.manifest is None:
            assert query is not None  # without a manifest there is always a query
            return self.hook.delete_matching(
                query,
                batch_size=self.batch_size,
                dry_run=self.is_dry_run,
                allow_match_all=self.allow_match_all,
                logger=self.log,
            )
        return self.hook.delete_exported(
            parse_literal(self.manifest, param="manifest"),
            query,
            batch_size=self.batch_size,
            dry_run=self.is_dry_run,
            logger=self.log,
        )


class AIGatewayPatchLogOperator(_AIGatewayBaseOperator):
    """Set ``feedback``, ``score`` and/or ``metadata`` on one log or a list of logs.

    .. seealso::
        The how-to guide: :doc:`/operators/patch`.

    Every id is attempted (:meth:`~airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook.patch_logs`);
    the task fails afterwards if any failed, naming them. Returns ``{"patched": n, "log_ids": n}``.

    :param log_id: one id, a list of ids, or a list of log dicts with ``id`` (e.g. the list
        operator's XCom: ``log_id=list_task.output``). Templated.
    :param feedback: -1 (thumbs down), 0 or 1 (thumbs up); ``None`` leaves it unchanged.
    :param score: 0 to 100; ``None`` leaves it unchanged.
    :param metadata: dict of up to 5 string/number/boolean values (replaces the log's
        metadata); ``None`` leaves it unchanged. Templated.
    :param clear: fields to reset to null: any of ``feedback``, ``score``, ``metadata``.
    :param max_concurrency: parallel PATCH requests (1-32, default 4).
    :param gateway_id: gateway; default the connection's. Templated.
    :param aigw_conn_id: Airflow connection id. Templated.
    """

    template_fields: Sequence[str] = ("aigw_conn_id", "gateway_id", "log_id", "metadata")
    template_fields_renderers = {"log_id": "json", "metadata": "json"}
    ui_color = "#5bc0de"

    def __init__(
        self,
        *,
        log_id: str | Sequence[Any],
        feedback: float | None = None,
        score: float | None = None,
        metadata: Mapping[str, Any] | str | None = None,
        clear: Sequence[str] = (),
        max_concurrency: int = 4,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.log_id = log_id
        self.feedback = feedback
        self.score = score
        self.metadata = metadata
        self.clear = [clear] if isinstance(clear, str) else list(clear)
        #: What to set, validated here unless the metadata is templated (then in execute, once rendered).
        self._static_patch = None if is_templated(metadata) else self._patch()
        self.max_concurrency = validate_positive(max_concurrency, param="max_concurrency", maximum=MAX_CONCURRENCY)

    def _patch(self) -> LogPatch:
        # The operator's None leaves a field unchanged; clear= sets it to null.
        metadata = parse_literal(self.metadata, param="metadata")
        given = {"feedback": self.feedback, "score": self.score, "metadata": metadata}
        return LogPatch.of(**{name: value for name, value in given.items() if value is not None}, clear=self.clear)

    def execute(self, context: Context) -> dict[str, int]:
        ids = validate_log_ids(parse_literal(self.log_id, param="log_id"), param="log_id")
        patch = self._static_patch or self._patch()
        gateway = self.hook.resolve_gateway_id()
        if not ids:
            self.log.info("no log ids given: nothing to patch")
            return {"patched": 0, "log_ids": 0}
        self.log.info("patching %d log(s) of gateway %r with %s", len(ids), gateway, json.dumps(patch.body()))
        patched = self.hook.patch_logs(ids, patch, max_concurrency=self.max_concurrency)
        self.log.info("patched %d log(s)", patched)
        return {"patched": patched, "log_ids": len(ids)}
