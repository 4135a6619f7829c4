"""Operators for the Cloudflare AI Gateway Logs API: list, export, delete and patch logs.

Each operator is a thin layer over :class:`~airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook`:
it validates its inputs before the first request, calls the hook, and pushes a small XCom.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_aigw.bodies import BodyFetcher, bounded_map
from airflow_provider_aigw.client import (
    DELETE_ORDER_KEYS,
    LIST_ORDER_KEYS,
    MAX_DELETE_LIMIT,
    MAX_PER_PAGE,
    build_patch_body,
)
from airflow_provider_aigw.compat import Asset, BaseOperator, ObjectStoragePath
from airflow_provider_aigw.deletion import delete_exported, delete_listed
from airflow_provider_aigw.exceptions import AIGatewayBodyError, AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export import (
    COLUMNS,
    DEFAULT_BYTES_PER_PART,
    DEFAULT_PARTITION_BY,
    DEFAULT_ROWS_PER_PART,
    PARTITION_BY,
    export_logs,
    read_manifest,
    resolve_destination,
    validate_format,
)
from airflow_provider_aigw.export.schema import TYPES
from airflow_provider_aigw.filters import (
    check_delete_filter_keys,
    format_time,
    normalize_filters,
    parse_time,
    validate_log_id,
    validate_window,
)
from airflow_provider_aigw.filters import (
    parse_literal as _literal,
)
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook

if TYPE_CHECKING:
    import pendulum

    from airflow_provider_aigw.compat import Context

__all__ = [
    "DEFAULT_SETTLE_LAG",
    "MAX_LIST_XCOM_BYTES",
    "AIGatewayDeleteLogsOperator",
    "AIGatewayExportLogsOperator",
    "AIGatewayListLogsOperator",
    "AIGatewayPatchLogOperator",
]

#: Logs can become listable up to a minute after they were created: an export window must
#: end at least this long ago (see ``settle_lag``).
DEFAULT_SETTLE_LAG = dt.timedelta(minutes=5)
#: The list operator refuses a ``max_results`` whose XCom could grow beyond this.
MAX_LIST_XCOM_BYTES = 2 * 1024 * 1024
#: Size assumed per log (full record) and per projected field when sizing the list XCom.
_BYTES_PER_LOG = 1024
_BYTES_PER_FIELD = 64
#: Upper bound of concurrent requests of one task (the client's connection pool holds 32).
MAX_CONCURRENCY = 32
#: Seconds between progress lines of a long export.
PROGRESS_INTERVAL = 30.0
#: Per-id failures listed in an error message before "... and N more".
_MAX_LISTED_FAILURES = 20

TimeArg = dt.datetime | str | None


# --------------------------------------------------------------------------------- helpers


def _is_template(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _positive_int(value: Any, *, param: str, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (maximum is not None and value > maximum):
        bound = f" from 1 to {maximum}" if maximum is not None else " >= 1"
        raise AIGatewayInputError(f"{param} must be an integer{bound}, got {value!r}")
    return value


def _choice(value: Any, allowed: Iterable[str], *, param: str) -> str:
    options = sorted(allowed)
    if value not in options:
        raise AIGatewayInputError(f"{param} must be one of {options}, got {value!r}")
    return str(value)


def _seconds(value: Any, *, param: str) -> dt.timedelta:
    if isinstance(value, dt.timedelta):
        delta = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        delta = dt.timedelta(seconds=value)
    else:
        raise AIGatewayInputError(f"{param} must be a timedelta or a number of seconds, got {value!r}")
    if delta < dt.timedelta(0):
        raise AIGatewayInputError(f"{param} must not be negative, got {value!r}")
    return delta


def _fmt_duration(seconds: float) -> str:
    total = round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _strip_userinfo(url: str) -> str:
    """``s3://aws_conn@bucket/prefix`` -> ``s3://bucket/prefix`` (the conn id is no part of the data's name)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url.rstrip("/")
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl().rstrip("/")


class _Progress:
    """Logs throughput and ETA of a long export at most every ``interval`` seconds."""

    def __init__(
        self,
        log: Any,
        *,
        expected: int,
        requests: Callable[[], int],
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._log = log
        self._expected = expected
        self._requests = requests
        self._interval = interval
        self._started = time.monotonic()
        self._last = self._started
        self.count = 0

    def wrap(self, logs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in logs:
            self.count += 1
            yield item
            now = time.monotonic()
            if now - self._last >= self._interval:
                self._last = now
                self.report(now)

    def report(self, now: float | None = None) -> None:
        elapsed = (now or time.monotonic()) - self._started
        rate = self.count / elapsed if elapsed > 0 else 0.0
        pages = math.ceil(self.count / MAX_PER_PAGE)
        line = (
            f"exported {self.count:,} of {self._expected:,} logs, {pages:,} pages, "
            f"{self._requests():,} API requests"
        )
        if elapsed > 0:
            line += f", {rate:,.0f} logs/s, {_fmt_duration(elapsed)} elapsed"
        left = self._expected - self.count
        if left > 0 and rate > 0:
            line += f", ETA {_fmt_duration(left / rate)}"
        self._log.info(line)


# ------------------------------------------------------------------------------- base class


class _AIGatewayBaseOperator(BaseOperator):
    """Common parameters of the AI Gateway operators.

    :param aigw_conn_id: Airflow connection id (type ``cloudflare_ai_gateway``).
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
        """The hook (created on first use, after templates are rendered)."""
        return AIGatewayHook(aigw_conn_id=self.aigw_conn_id, gateway_id=self.gateway_id or None)

    def _gateway(self) -> str:
        """The gateway this task works on, validated (builds the client; sends nothing)."""
        gateway = self.hook.client.gateway_id
        if not gateway:
            raise AIGatewayInputError(
                f"gateway_id is required: pass gateway_id= to {type(self).__name__} or set 'gateway_id' "
                f"in the extra of connection {self.aigw_conn_id!r}"
            )
        return gateway


# ------------------------------------------------------------------------------------- list


class AIGatewayListLogsOperator(_AIGatewayBaseOperator):
    """List logs matching filters and an optional ``[start, end)`` window into XCom.

    Returns at most ``max_results`` log dicts (projected to ``fields`` when given) and logs a
    warning with the true number of matches when more matched (one extra request). For more
    logs than fit an XCom use :class:`AIGatewayExportLogsOperator`.

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
    :param aigw_conn_id: Airflow connection id.
    """

    template_fields: Sequence[str] = ("gateway_id", "filters", "start", "end", "search")
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
        self.max_results = _positive_int(max_results, param="max_results")
        if fields is not None:
            if isinstance(fields, str) or not isinstance(fields, Sequence) or not fields:
                raise AIGatewayInputError(f"fields must be a non-empty list of field names, got {fields!r}")
            for name in fields:
                if not isinstance(name, str) or not name:
                    raise AIGatewayInputError(f"fields must hold non-empty strings, got {name!r}")
            fields = list(dict.fromkeys(fields))
        self.fields = fields
        per_log = _BYTES_PER_LOG if fields is None else 16 + _BYTES_PER_FIELD * len(fields)
        if self.max_results * per_log > MAX_LIST_XCOM_BYTES:
            limit = MAX_LIST_XCOM_BYTES // per_log
            raise AIGatewayInputError(
                f"max_results={max_results} could push an XCom of about "
                f"{self.max_results * per_log / 1024 / 1024:.1f} MiB; the limit is {limit} "
                f"{'full logs' if fields is None else f'logs of {len(fields)} field(s)'}. Narrow the "
                "result with fields=[...], or write the logs to storage with AIGatewayExportLogsOperator"
            )
        self.order_by = _choice(order_by, LIST_ORDER_KEYS, param="order_by")
        self.order_by_direction = _choice(order_by_direction, ("asc", "desc"), param="order_by_direction")
        self.search = search

    def execute(self, context: Context) -> list[dict[str, Any]]:
        filters = normalize_filters(_literal(self.filters, param="filters"))
        start, end = validate_window(self.start, self.end)
        gateway = self._gateway()
        logs = self.hook.list_logs(
            filters=filters,
            start=start,
            end=end,
            order_by=self.order_by,
            order_by_direction=self.order_by_direction,
            search=self.search or None,
            max_results=self.max_results,
            gateway_id=gateway,
        )
        if len(logs) >= self.max_results:
            total = self.hook.count_logs(filters=filters, start=start, end=end, gateway_id=gateway)
            if total > self.max_results:
                self.log.warning(
                    "%d logs matched; returning the first %d (order_by=%s %s). Raise max_results, "
                    "narrow the filters or use AIGatewayExportLogsOperator for all of them",
                    total,
                    self.max_results,
                    self.order_by,
                    self.order_by_direction,
                )
        if self.fields is not None:
            logs = [{name: item.get(name) for name in self.fields} for item in logs]
        self.log.info("listed %d logs of gateway %r", len(logs), gateway)
        return logs


# ----------------------------------------------------------------------------------- export


class AIGatewayExportLogsOperator(_AIGatewayBaseOperator):
    """Export the logs of a ``[start, end)`` window to object storage, streaming.

    Pages flow straight into the writer (memory stays flat). Files are partitioned hive-style
    (``gateway=<id>/date=YYYY-MM-DD/`` or ``.../hour=HH/``) and rolled by rows and bytes. Each
    attempt writes parts under its own names and commits by writing the manifest
    (``gateway=<id>/_manifests/<window>.<format>.json``) last; the previous manifest stays valid
    until then, and superseded parts are removed afterwards. A concurrent export of the same
    window and format is refused (a lock object, created with a conditional write); a killed
    earlier try of the same task instance is taken over. A re-run over a window whose archived
    logs are gone from the gateway (exported and deleted) keeps them and adds the logs not
    archived yet (the union): the archive never shrinks. Returns the manifest summary:
    ``manifest_uri``, ``gateway_id``, ``start``, ``end``, ``filters``, ``format``, ``count``,
    ``files``, ``bytes``, ``commit`` (``mode``, ``added``, ``kept``), ``usage`` (per provider
    and model, without the duration buckets) and ``paths`` (up to 100 files). Every format has
    the columns of :mod:`airflow_provider_aigw.export.schema`.

    The window defaults to the run's data interval. Logs arrive late, so an ``end`` later than
    ``now - settle_lag`` is refused, or with ``clamp_end=True`` moved back with a warning.

    A static ``destination`` is declared as an outlet :class:`Asset` (unless ``outlets`` is
    given), so downstream DAGs can be scheduled on it; its events carry the manifest summary
    in ``extra`` (of the usage only the totals). OpenLineage facets (with a schema facet) are
    reported when the openlineage provider is installed.

    :param destination: ``ObjectStoragePath`` or URL: ``file:///data/aigw``,
        ``s3://aws_conn@bucket/prefix``, ``gs://bucket/prefix``, ``abfs://...``. Templated.
    :param filters: API filters selecting the logs. Templated.
    :param start: window start (inclusive); default the data interval start. Templated.
    :param end: window end (exclusive); default the data interval end. Templated.
    :param format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (needs the ``parquet`` extra).
        Templated.
    :param include_bodies: also fetch each log's request and response bodies (2 requests per
        log, within the request budget). Each row records ``request_body_status`` and
        ``response_body_status``: ``collected``, ``not_collected`` (absent by design) or
        ``failed`` (the row is still written). After a few 401/403 answers in a row no more
        bodies are fetched and the task fails.
    :param on_body_error: ``fail`` (default): when any body fetch failed, fail the task after
        writing every file and the manifest; ``warn``: only log a warning. Either way a delete
        with this manifest never deletes a log whose body fetch failed.
    :param body_concurrency: parallel body requests (1-32, default 4).
    :param partition_by: ``day`` (default) or ``hour`` (for windows of more than about a
        million logs a day; see the README).
    :param rows_per_part: rows per part file before it rolls (default 1,000,000).
    :param bytes_per_part: bytes per part file before it rolls (default 128 MiB).
    :param settle_lag: how long ago the window must end (timedelta or seconds; default 5 min).
    :param clamp_end: move a too-recent ``end`` back to ``now - settle_lag`` (warning) instead
        of failing.
    :param overwrite_smaller: replace the committed export of the window with exactly the logs
        that match now, dropping archived logs that are gone from the gateway. By default those
        are kept (union).
    :param gateway_id: gateway; default the connection's. Templated.
    :param aigw_conn_id: Airflow connection id.
    """

    template_fields: Sequence[str] = ("gateway_id", "filters", "start", "end", "destination", "format")
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
        overwrite_smaller: bool = False,
        **kwargs: Any,
    ) -> None:
        if "outlets" not in kwargs:
            asset = self._asset_for(destination)
            if asset is not None:
                kwargs["outlets"] = [asset]
        super().__init__(**kwargs)
        if not isinstance(destination, (str, ObjectStoragePath)) or not str(destination).strip():
            raise AIGatewayInputError(f"destination must be a storage URL or an ObjectStoragePath, got {destination!r}")
        self.destination = destination
        self.filters = filters
        self.start = start
        self.end = end
        self.format = format if _is_template(format) else validate_format(format)
        self.include_bodies = bool(include_bodies)
        self.on_body_error = _choice(on_body_error, ("fail", "warn"), param="on_body_error")
        self.body_concurrency = _positive_int(body_concurrency, param="body_concurrency", maximum=MAX_CONCURRENCY)
        self.partition_by = _choice(partition_by, PARTITION_BY, param="partition_by")
        self.rows_per_part = _positive_int(rows_per_part, param="rows_per_part")
        self.bytes_per_part = _positive_int(bytes_per_part, param="bytes_per_part")
        self.settle_lag = _seconds(settle_lag, param="settle_lag")
        self.clamp_end = bool(clamp_end)
        self.overwrite_smaller = bool(overwrite_smaller)
        self._lineage: tuple[str, str, str] | None = None

    @staticmethod
    def _asset_for(destination: Any) -> Asset | None:
        """The outlet asset of a static destination (``None`` when templated)."""
        text = str(destination).strip() if isinstance(destination, (str, ObjectStoragePath)) else ""
        if not text or _is_template(text) or "://" not in text:
            return None
        return Asset(_strip_userinfo(text))

    def _window(self, context: Context) -> tuple[pendulum.DateTime, pendulum.DateTime]:
        start: Any = self.start
        end: Any = self.end
        if start is None and end is None:
            start, end = context.get("data_interval_start"), context.get("data_interval_end")
            if start is None or end is None:
                raise AIGatewayInputError(
                    "this run has no data interval: pass start= and end= (e.g. for a backfill)"
                )
            if start == end:
                raise AIGatewayInputError(
                    f"the run's data interval is empty ({start} to {end}); schedule the DAG with a "
                    "data-interval timetable (e.g. schedule=CronDataIntervalTimetable('@daily', "
                    "timezone='UTC'); Airflow 3's plain cron and timedelta schedules give empty "
                    "intervals) or pass start= and end="
                )
        elif start is None or end is None:
            raise AIGatewayInputError("give both start and end, or neither to export the run's data interval")
        start_dt, end_dt = validate_window(start, end)
        assert start_dt is not None and end_dt is not None
        settled = dt.datetime.now(dt.timezone.utc) - self.settle_lag
        if end_dt > settled:
            if not self.clamp_end:
                raise AIGatewayInputError(
                    f"end {format_time(end_dt)} is later than now - settle_lag ({format_time(settled)}): "
                    "logs of that period may still arrive and would be missing from the export. "
                    "Export a window that ended longer ago, lower settle_lag, or pass clamp_end=True"
                )
            end_dt = parse_time(format_time(settled), param="end")  # whole milliseconds, like created_at
            assert end_dt is not None
            if end_dt <= start_dt:
                raise AIGatewayInputError(
                    f"the window [{format_time(start_dt)}, ...) starts less than settle_lag before now; "
                    "nothing has settled yet"
                )
            self.log.warning(
                "end clamped to %s (now - settle_lag %s): later logs may still arrive",
                format_time(end_dt),
                self.settle_lag,
            )
        return start_dt, end_dt

    def execute(self, context: Context) -> dict[str, Any]:
        fmt = validate_format(self.format)
        filters = normalize_filters(_literal(self.filters, param="filters"))
        start, end = self._window(context)
        # Probed now: an unwritable destination must fail before the first API request.
        destination = resolve_destination(self.destination, check_writable=True)
        gateway = self._gateway()
        client = self.hook.client
        sent_before = client.requests_sent

        expected = self.hook.count_logs(filters=filters, start=start, end=end, gateway_id=gateway)
        self.log.info(
            "exporting %d logs of gateway %r, [%s, %s), as %s to %s",
            expected,
            gateway,
            format_time(start),
            format_time(end),
            fmt,
            _strip_userinfo(str(destination)),
        )
        logs: Iterable[dict[str, Any]] = self.hook.iter_logs(
            filters=filters, start=start, end=end, gateway_id=gateway
        )
        bodies: BodyFetcher | None = None
        if self.include_bodies:
            bodies = BodyFetcher(
                self.hook.get_log_request,
                self.hook.get_log_response,
                gateway=gateway,
                concurrency=self.body_concurrency,
            )
            logs = bodies.rows(logs)
        progress = _Progress(self.log, expected=expected, requests=lambda: client.requests_sent - sent_before)
        result = export_logs(
            progress.wrap(logs),
            destination,
            gateway_id=gateway,
            start=start,
            end=end,
            filters=filters or None,
            account_id=client.account_id,
            format=fmt,
            partition_by=self.partition_by,
            rows_per_part=self.rows_per_part,
            bytes_per_part=self.bytes_per_part,
            overwrite_smaller=self.overwrite_smaller,
            owner=self._owner(context),
        )
        progress.report()
        summary = result.summary()
        if result.written != expected:
            self.log.warning(
                "%d logs matched when the export started, %d were read: the gateway changed during "
                "the export (late arrivals or automatic deletion of old logs)",
                expected,
                result.written,
            )
        if bodies is not None:
            summary["body_stats"] = result.manifest.get("body_stats", {})
        self.log.info(
            "export done: %d logs, %d files, %d bytes, manifest %s",
            result.count,
            summary["files"],
            summary["bytes"],
            summary["manifest_uri"],
        )
        self._record_outlets(context, summary)
        self._lineage = (client.account_id, gateway, _strip_userinfo(str(destination)))
        if bodies is not None and bodies.failed:
            # Files and manifest are written; a manifest delete never removes these logs anyway.
            if self.on_body_error == "fail":
                raise AIGatewayBodyError(
                    f"{bodies.summary()}. Files and manifest are written, their rows with body status 'failed'; "
                    "a delete with this manifest keeps those logs. Re-run the export to fetch them, or pass "
                    "on_body_error='warn' to accept the export as it is"
                )
            self.log.warning("%s; their rows are exported with body status 'failed'", bodies.summary())
        return summary

    def _owner(self, context: Context) -> str:
        """The task instance: a lock left by a killed earlier try of it is taken over on retry."""
        ti = context.get("ti") or context.get("task_instance")
        run_id = context.get("run_id") or getattr(ti, "run_id", None)
        map_index = getattr(ti, "map_index", -1)
        return f"{self.dag_id}/{self.task_id}/{run_id}/{map_index}"

    def _record_outlets(self, context: Context, summary: dict[str, Any]) -> None:
        """Attach the summary to the events of this task's outlet assets.

        Without file paths, and of the usage only the totals, so the event stays small.
        """
        events = context.get("outlet_events")
        if events is None:
            return
        extra = {k: v for k, v in summary.items() if k not in ("paths", "usage")}
        if "usage" in summary:
            extra["usage"] = summary["usage"]["totals"]
        for outlet in self.outlets:
            if isinstance(outlet, Asset):
                events[outlet].extra.update(extra)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """OpenLineage: the gateway's logs as input, the destination as output.

        Both datasets carry a schema facet built from the export's one schema
        (:data:`~airflow_provider_aigw.export.schema.COLUMNS`).
        """
        from airflow.providers.common.compat.openlineage.facet import (
            Dataset,
            SchemaDatasetFacet,
            SchemaDatasetFacetFields,
        )
        from airflow.providers.openlineage.extractors import OperatorLineage

        if self._lineage is None:
            return OperatorLineage()
        account_id, gateway, url = self._lineage
        parts = urlsplit(url)
        namespace = f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme
        schema = SchemaDatasetFacet(
            fields=[
                SchemaDatasetFacetFields(name=c.name, type=TYPES[c.type][0], description=c.notes or None)
                for c in COLUMNS
            ]
        )
        # OpenLineage naming: object stores name keys without a leading slash, file:// the absolute path.
        path = (parts.path.lstrip("/") or "/") if parts.netloc else (parts.path or "/")
        return OperatorLineage(
            inputs=[
                Dataset(
                    namespace=f"cloudflare-ai-gateway://{account_id}",
                    name=f"gateways/{gateway}/logs",
                    facets={"schema": schema},
                )
            ],
            outputs=[Dataset(namespace=namespace, name=path, facets={"schema": schema})],
        )


# ----------------------------------------------------------------------------------- delete


class AIGatewayDeleteLogsOperator(_AIGatewayBaseOperator):
    """Delete logs by listed id, each DELETE confined so that an ignored filter cannot widen it.

    Cloudflare silently ignores filters it does not apply, so no delete here trusts one filter:
    the logs to delete are first listed by id (a keyset walk, ceil(N/50) requests); every DELETE
    names up to about 320 of those ids AND a tight ``created_at`` slice (first to last id of its
    batch) AND the window and filters; the first DELETE is a small canary, checked by listing its
    slice before and after, and the task stops at once unless exactly the named ids went
    (:class:`~airflow_provider_aigw.exceptions.AIGatewayUnsafeDeleteError`). Returns how many
    logs were deleted.

    With ``manifest`` (the export task's XCom, its manifest URL, or the manifest itself) it
    deletes exactly the exported logs of the manifest's gateway, window and filters. It first
    proves by id that every log matching now is in the export, and refuses, deleting nothing,
    otherwise (late logs: re-run the export for that window, then the delete). A log whose body
    fetch failed during the export is never deleted: the others are, then the task fails listing
    the kept ones. The manifest must come from the connection's account.

    Without a manifest, filters other than ``created_at`` must narrow the window: when they match
    as many logs as the window alone the API may have ignored one, and the delete is refused
    unless ``allow_match_all=True``. Filter keys outside the documented set are refused.

    :param filters: API filters of the logs to delete (documented keys only). Templated.
    :param start: window start (inclusive). Templated.
    :param end: window end (exclusive). Templated.
    :param manifest: export summary / manifest URL / manifest. ``start``, ``end``, ``filters``
        and ``gateway_id`` may be given too, and must then equal the manifest's. Templated
        (``manifest=export_task.output``).
    :param dry_run: only count (and verify against the manifest) and report what would be
        deleted; returns that number. Stored as ``report_only`` (``dry_run`` is a BaseOperator method).
    :param limit: most logs named per DELETE, 1-10,000 (default 10,000; the URL length caps a
        DELETE at about 320 ids).
    :param allow_match_all: delete even when the filters match every log of the window.
    :param order_by: accepted for compatibility; deletes go by listed id, oldest first.
    :param order_by_direction: accepted for compatibility; see ``order_by``.
    :param gateway_id: gateway; default the connection's (or the manifest's). Templated.
    :param aigw_conn_id: Airflow connection id.
    """

    template_fields: Sequence[str] = ("gateway_id", "filters", "start", "end", "manifest")
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
        limit: int = MAX_DELETE_LIMIT,
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
        self.report_only = bool(dry_run)
        self.limit = _positive_int(limit, param="limit", maximum=MAX_DELETE_LIMIT)
        self.allow_match_all = bool(allow_match_all)
        if order_by is not None:
            _choice(order_by, DELETE_ORDER_KEYS, param="order_by")
        if order_by_direction is not None:
            _choice(order_by_direction, ("asc", "desc"), param="order_by_direction")
        if manifest is None and filters is None and start is None and end is None:
            raise AIGatewayInputError(self._UNFILTERED)
        if filters is not None and not _is_template(filters):
            check_delete_filter_keys(normalize_filters(_literal(filters, param="filters")))

    _UNFILTERED = (
        "refusing to delete with neither filters nor a start/end window nor a manifest: the API would "
        "delete the gateway's oldest logs"
    )

    def execute(self, context: Context) -> int:
        manifest = self._manifest()
        if manifest is None:
            filters = normalize_filters(_literal(self.filters, param="filters"))
            check_delete_filter_keys(filters)
            start, end = validate_window(self.start, self.end)
            if not filters and start is None and end is None:
                raise AIGatewayInputError(self._UNFILTERED)
            return delete_listed(
                self.hook.client,
                gateway=self._gateway(),
                filters=filters,
                start=start,
                end=end,
                limit=self.limit,
                allow_match_all=self.allow_match_all,
                report_only=self.report_only,
                logger=self.log,
            )
        filters, start, end = self._manifest_scope(manifest)
        return delete_exported(
            self.hook.client,
            manifest,
            gateway=self._gateway(),
            filters=filters,
            start=start,
            end=end,
            limit=self.limit,
            report_only=self.report_only,
            logger=self.log,
        )

    def _manifest(self) -> dict[str, Any] | None:
        if self.manifest is None:
            return None
        value = _literal(self.manifest, param="manifest")
        if not isinstance(value, (Mapping, str, ObjectStoragePath)):
            raise AIGatewayInputError(
                f"manifest must be the export task's XCom, a manifest URL or a manifest, got {type(value).__name__}"
            )
        manifest = read_manifest(value)
        for key in ("gateway_id", "window", "count"):
            if key not in manifest:
                raise AIGatewayInputError(f"manifest has no {key!r}: is it an AI Gateway export manifest?")
        return manifest

    def _manifest_scope(self, manifest: Mapping[str, Any]) -> tuple[list[dict[str, Any]], Any, Any]:
        """The manifest's filters and window, checked against what else was given (before any request)."""
        filters = normalize_filters(manifest.get("filters"), param="manifest filters")
        check_delete_filter_keys(filters, param="manifest filters")
        start, end = validate_window(manifest["window"]["start"], manifest["window"]["end"])
        if start is None or end is None:
            raise AIGatewayInputError("the manifest's window has no start or end: is it an AI Gateway export manifest?")
        exported = f"[{format_time(start)}, {format_time(end)})"
        given_start, given_end = validate_window(self.start, self.end)
        for name, given, own in (("start", given_start, start), ("end", given_end, end)):
            if given is not None and given != own:
                raise AIGatewayInputError(
                    f"{name} {format_time(given)} differs from the manifest's window {exported}: with manifest= "
                    "the delete covers exactly the exported window (pass the same window, or none)"
                )
        if self.filters is not None:
            given_filters = normalize_filters(_literal(self.filters, param="filters"))
            if _canonical(given_filters) != _canonical(filters):
                raise AIGatewayInputError(
                    f"filters {json.dumps(given_filters)} differ from the manifest's {json.dumps(filters)}: with "
                    "manifest= the delete covers exactly the exported filters (pass the same filters, or none)"
                )
        if self.gateway_id and self.gateway_id != manifest["gateway_id"]:
            raise AIGatewayInputError(
                f"gateway_id {self.gateway_id!r} differs from the manifest's {manifest['gateway_id']!r}"
            )
        self.gateway_id = manifest["gateway_id"]
        account = self.hook.client.account_id
        if "account_id" not in manifest:
            self.log.warning(
                "the manifest records no account_id (written by an older provider version); make sure it "
                "comes from account %s",
                account,
            )
        elif manifest["account_id"] != account:
            raise AIGatewayInputError(
                f"the manifest comes from account {manifest['account_id']!r}, but connection "
                f"{self.aigw_conn_id!r} is for account {account!r}: refusing to delete"
            )
        return filters, start, end


def _canonical(filters: list[dict[str, Any]]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in filters)


# ------------------------------------------------------------------------------------ patch


class AIGatewayPatchLogOperator(_AIGatewayBaseOperator):
    """Set ``feedback``, ``score`` and/or ``metadata`` on one log or a list of logs.

    Values and ids are validated before any request; calls go out with bounded concurrency
    within the connection's request budget. Every id is attempted; the task fails afterwards
    if any failed, naming them. Returns ``{"patched": n, "log_ids": n}``.

    :param log_id: one id, a list of ids, or a list of log dicts with ``id`` (e.g. the list
        operator's XCom: ``log_id=list_task.output``). Templated.
    :param feedback: -1 (thumbs down), 0 or 1 (thumbs up); ``None`` leaves it unchanged.
    :param score: 0 to 100; ``None`` leaves it unchanged.
    :param metadata: dict of up to 5 string/number/boolean values (replaces the log's
        metadata); ``None`` leaves it unchanged. Templated.
    :param clear: fields to reset to null: any of ``feedback``, ``score``, ``metadata``.
    :param max_concurrency: parallel PATCH requests (1-32, default 4).
    :param gateway_id: gateway; default the connection's. Templated.
    :param aigw_conn_id: Airflow connection id.
    """

    template_fields: Sequence[str] = ("gateway_id", "log_id", "metadata")
    template_fields_renderers = {"log_id": "json", "metadata": "json"}
    ui_color = "#5bc0de"

    _FIELDS = ("feedback", "score", "metadata")

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
        if isinstance(clear, str):
            clear = [clear]
        for name in clear:
            _choice(name, self._FIELDS, param="clear")
        self.clear = list(clear)
        given = [name for name in self._FIELDS if getattr(self, name) is not None]
        both = sorted(set(given) & set(self.clear))
        if both:
            raise AIGatewayInputError(f"{both} given both a value and in clear=")
        if not given and not self.clear:
            raise AIGatewayInputError("nothing to patch: give feedback, score, metadata or clear=")
        static = {name: getattr(self, name) for name in ("feedback", "score") if getattr(self, name) is not None}
        if static:
            build_patch_body(**static)
        self.max_concurrency = _positive_int(max_concurrency, param="max_concurrency", maximum=MAX_CONCURRENCY)

    def _ids(self) -> list[str]:
        value = _literal(self.log_id, param="log_id")
        items = [value] if isinstance(value, (str, Mapping)) else value
        if not isinstance(items, Sequence):
            raise AIGatewayInputError(f"log_id must be an id or a list of ids, got {type(value).__name__}")
        ids: list[str] = []
        for index, item in enumerate(items):
            raw = item.get("id") if isinstance(item, Mapping) else item
            ids.append(validate_log_id(raw, param=f"log_id[{index}]"))
        return list(dict.fromkeys(ids))

    def execute(self, context: Context) -> dict[str, int]:
        ids = self._ids()
        values: dict[str, Any] = {name: None for name in self.clear}
        metadata = _literal(self.metadata, param="metadata")
        for name, value in (("feedback", self.feedback), ("score", self.score), ("metadata", metadata)):
            if value is not None:
                values[name] = value
        build_patch_body(**values)  # all values checked before the first request
        gateway = self._gateway()
        if not ids:
            self.log.info("no log ids given: nothing to patch")
            return {"patched": 0, "log_ids": 0}
        self.log.info("patching %d log(s) of gateway %r with %s", len(ids), gateway, json.dumps(values))

        def patch(log_id: str) -> tuple[str, str | None]:
            try:
                self.hook.patch_log(log_id, gateway_id=gateway, **values)
            except AIGatewayError as err:
                return log_id, str(err)
            return log_id, None

        failed = [(i, err) for i, err in bounded_map(patch, ids, concurrency=self.max_concurrency) if err]
        patched = len(ids) - len(failed)
        if failed:
            listed = "; ".join(f"{i}: {err}" for i, err in failed[:_MAX_LISTED_FAILURES])
            more = f" ... and {len(failed) - _MAX_LISTED_FAILURES} more" if len(failed) > _MAX_LISTED_FAILURES else ""
            raise AIGatewayError(f"{len(failed)} of {len(ids)} patch(es) failed ({patched} succeeded): {listed}{more}")
        self.log.info("patched %d log(s)", patched)
        return {"patched": patched, "log_ids": len(ids)}
