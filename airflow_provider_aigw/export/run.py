"""One export run: its window, the counted walk, optional bodies, progress lines and the summary.

:class:`~airflow_provider_aigw.operators.ai_gateway.AIGatewayExportLogsOperator` resolves its
arguments and calls :func:`export_window` and :func:`run_export`; the files themselves are
written by :func:`~airflow_provider_aigw.export.writer.export_logs`. The logs are read with the
client passed in, so the export package never imports operators or hooks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.client import MAX_PER_PAGE, AIGatewayClient
from airflow_provider_aigw.compat import Asset, ObjectStoragePath
from airflow_provider_aigw.exceptions import AIGatewayBodyError, AIGatewayInputError, AIGatewayListingError
from airflow_provider_aigw.export.bodies import BodyFetcher
from airflow_provider_aigw.export.destination import resolve_destination, strip_userinfo
from airflow_provider_aigw.export.writer import export_logs
from airflow_provider_aigw.progress import Progress
from airflow_provider_aigw.query import LogQuery, contradicted_filter, validate_window
from airflow_provider_aigw.timestamps import format_time, parse_time
from airflow_provider_aigw.validation import validate_choice

if TYPE_CHECKING:
    import pendulum

__all__ = [
    "DEFAULT_SETTLE_LAG",
    "ON_BODY_ERROR",
    "ExportRun",
    "checked_rows",
    "destination_assets",
    "export_window",
    "run_export",
]

log = logging.getLogger(__name__)

#: Logs can become listable up to a minute after they were created: an export window must
#: end at least this long ago (the operator's ``settle_lag``).
DEFAULT_SETTLE_LAG = dt.timedelta(minutes=5)
#: What a failed body fetch does to the task: fail it (after writing everything) or warn.
ON_BODY_ERROR = ("fail", "warn")


def destination_assets(destination: Any) -> list[Asset]:
    """The outlet asset of a static destination URL, named without user info; none for a local path."""
    text = str(destination).strip() if isinstance(destination, (str, ObjectStoragePath)) else ""
    return [Asset(strip_userinfo(text))] if "://" in text else []


def export_window(
    start: Any,
    end: Any,
    *,
    interval: tuple[Any, Any],
    settle_lag: dt.timedelta,
    clamp_end: bool = False,
    logger: Any = log,
) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """The ``[start, end)`` to export: the given one, else the run's data interval.

    An ``end`` later than ``now - settle_lag`` is refused, or with ``clamp_end`` moved back to
    it with a warning (logs of that period may still arrive).

    :param interval: the run's ``(data_interval_start, data_interval_end)``, either may be None.
    :raises AIGatewayInputError: no usable window.
    """
    if start is None and end is None:
        start, end = interval
        if start is None or end is None:
            raise AIGatewayInputError("this run has no data interval: pass start= and end= (e.g. for a backfill)")
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
    settled = dt.datetime.now(dt.timezone.utc) - settle_lag
    if end_dt <= settled:
        return start_dt, end_dt
    if not clamp_end:
        raise AIGatewayInputError(
            f"end {format_time(end_dt)} is later than now - settle_lag ({format_time(settled)}): "
            "logs of that period may still arrive and would be missing from the export. "
            "Export a window that ended longer ago, lower settle_lag, or pass clamp_end=True"
        )
    clamped = parse_time(format_time(settled), param="end")  # whole milliseconds, like created_at
    assert clamped is not None
    if clamped <= start_dt:
        raise AIGatewayInputError(
            f"the window [{format_time(start_dt)}, ...) starts less than settle_lag before now; nothing has settled yet"
        )
    logger.warning(
        "end clamped to %s (now - settle_lag %s): later logs may still arrive", format_time(clamped), settle_lag
    )
    return start_dt, clamped


@dataclass
class ExportRun:
    """What one export run wrote.

    :param summary: the manifest summary (the operator's XCom).
    :param account_id: the account the logs came from.
    :param gateway: the gateway the logs came from.
    :param url: the destination, without user info (no Airflow connection id).
    :param body_failures: a summary of the failed body fetches, or None when none failed.
    """

    summary: dict[str, Any]
    account_id: str
    gateway: str
    url: str
    body_failures: str | None = None

    def event_extra(self) -> dict[str, Any]:
        """The summary for an asset event: without file paths, and of the usage only the totals."""
        extra = {k: v for k, v in self.summary.items() if k not in ("paths", "usage")}
        if "usage" in self.summary:
            extra["usage"] = self.summary["usage"]["totals"]
        return extra

    def check_bodies(self, on_body_error: str, logger: Any = log) -> None:
        """Fail (``"fail"``) or warn (``"warn"``) when a body fetch failed.

        :raises AIGatewayBodyError: with ``"fail"``, when any body fetch failed.
        """
        if self.body_failures is None:
            return
        # Files and manifest are written; a manifest delete never removes these logs anyway.
        if validate_choice(on_body_error, ON_BODY_ERROR, param="on_body_error") == "fail":
            raise AIGatewayBodyError(
                f"{self.body_failures}. Files and manifest are written, their rows with body status 'failed'; "
                "a delete with this manifest keeps those logs. Re-run the export to fetch them, or pass "
                "on_body_error='warn' to accept the export as it is"
            )
        logger.warning("%s; their rows are exported with body status 'failed'", self.body_failures)


def checked_rows(logs: Iterable[dict[str, Any]], query: LogQuery) -> Iterator[dict[str, Any]]:
    """Pass ``logs`` through, stopping at the first row outside the query's window or against its filters.

    Only what a row shows is judged (:func:`~airflow_provider_aigw.query.contradicted_filter`).

    :raises AIGatewayListingError: naming the row and the filter the API did not apply.
    """
    filters = query.api_filters()
    for row in logs:
        flt = contradicted_filter(row, filters)
        if flt is not None:
            raise AIGatewayListingError(
                f"The API did not apply the filter {flt['key']} {flt['operator']} {flt['value']}: listing "
                f"the window {_window(query)} returned log {row.get('id')!r} ({flt['key']}={row.get(flt['key'])!r}). "
                "Nothing was committed",
                method="GET",
            )
        yield row


def _window(query: LogQuery) -> str:
    """``[start, end)`` of an export's query, for messages."""
    return f"[{format_time(query.start)}, {format_time(query.end)})" if query.start and query.end else "[-, -)"


def _export_query(client: AIGatewayClient, query: LogQuery) -> tuple[LogQuery, str, dt.datetime, dt.datetime]:
    """The query of an export, its gateway (the client's when it names none) and its closed window.

    :raises AIGatewayInputError: no gateway, an open window, or a search (a manifest cannot record it).
    """
    query = query.with_gateway(client.gateway_id)
    if not query.gateway_id:
        raise AIGatewayInputError("an export needs a gateway: name it in the query or the client's gateway_id")
    if query.start is None or query.end is None:
        raise AIGatewayInputError("an export needs a closed window: give the query both start and end")
    if query.search:
        raise AIGatewayInputError(
            "an export takes no search: its manifest records filters and window only, and a delete by "
            "that manifest would cover more than was exported"
        )
    return query, query.gateway_id, query.start, query.end


def run_export(
    client: AIGatewayClient,
    query: LogQuery,
    destination: Any,
    *,
    format: str,
    include_bodies: bool = False,
    body_concurrency: int = 4,
    logger: Any = log,
    **writer_options: Any,
) -> ExportRun:
    """Export the logs of one window: count, walk (with bodies), write, log progress and the summary.

    The destination is probed for writability before the first API request.

    :param client: the client the logs are read with.
    :param query: the gateway (default: the client's), filters and closed ``[start, end)`` window.
    :param destination: storage URL or ``ObjectStoragePath``.
    :param format: a format :func:`~airflow_provider_aigw.export.validate_format` accepted.
    :param include_bodies: also fetch each log's request and response bodies.
    :param body_concurrency: parallel body fetches.
    :param logger: where progress goes (the task's logger).
    :param writer_options: ``partition_by``, ``rows_per_part``, ``bytes_per_part``,
        ``allow_shrink`` and ``owner`` of :func:`~airflow_provider_aigw.export.export_logs`.
    """
    query, gateway, start, end = _export_query(client, query)
    target = resolve_destination(destination, check_writable=True)
    url = strip_userinfo(str(target))
    sent_before = client.requests_sent
    expected = client.count_logs(query)
    logger.info("exporting %d logs of gateway %r, %s, as %s to %s", expected, gateway, _window(query), format, url)
    logs: Iterable[dict[str, Any]] = checked_rows(client.iter_logs(query), query)
    bodies: BodyFetcher | None = None
    if include_bodies:
        bodies = BodyFetcher(
            client.get_log_request, client.get_log_response, gateway=gateway, concurrency=body_concurrency
        )
        logs = bodies.rows(logs)
    progress = Progress(
        logger, expected=expected, requests=lambda: client.requests_sent - sent_before, per_page=MAX_PER_PAGE
    )
    result = export_logs(
        progress.wrap(logs),
        target,
        gateway_id=gateway,
        start=start,
        end=end,
        filters=list(query.filters) or None,
        account_id=client.account_id,
        format=format,
        total_count=expected,
        **writer_options,
    )
    progress.report()
    summary = result.summary()
    if result.written != expected:
        logger.warning(
            "%d logs matched when the export started, %d were read (every page, to a short one): the "
            "gateway changed during the export (late arrivals or automatic deletion of old logs) or the "
            "API's total_count is inexact; the manifest's count_check records both",
            expected,
            result.written,
        )
    if bodies is not None:
        summary["body_stats"] = result.manifest.get("body_stats", {})
    logger.info(
        "export done: %d logs, %d files, %d bytes, manifest %s",
        result.count,
        summary["files"],
        summary["bytes"],
        summary["manifest_uri"],
    )
    failures = bodies.summary() if bodies is not None and bodies.failed else None
    return ExportRun(summary, client.account_id, gateway, url, failures)
