"""The listing walks: keyset by ``created_at``, or page numbers for the other orders.

The walks know nothing about HTTP: they take a :data:`PageFetcher` (one ``GET .../logs``
returning the rows and ``result_info``) and the :class:`~airflow_provider_aigw.query.LogQuery`
to walk, so they import only the values below them, never the client.
They end on a short or empty page, never on ``result_info.total_count``, and stop with
:class:`~airflow_provider_aigw.exceptions.AIGatewayListingError` at the first page that
contradicts what they asked for.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any
from urllib.parse import quote_plus

from airflow_provider_aigw.exceptions import AIGatewayListingError
from airflow_provider_aigw.query import Filter, LogQuery, created_at_filter, encode_filters, window_filters
from airflow_provider_aigw.timestamps import CREATED_AT_RESOLUTION, format_bound, format_time, parse_created_at

#: Most characters the URL-encoded ``filters`` query parameter of one listing request may take.
#: The keyset walk excludes the ids it has seen at its cursor's millisecond in that parameter;
#: it leaves 2,000 characters for the path and the other parameters under the client's cap on a
#: whole URL (:data:`~airflow_provider_aigw.transport.MAX_URL_CHARS`, half of the 32 KB above which
#: Cloudflare's edge answers 414): about 300 UUID ids with a window.
MAX_FILTERS_QUERY_CHARS = 14_000

#: One listing request: ``(filters, query params) -> (rows, result_info)``.
PageFetcher = Callable[[list[Filter], Mapping[str, Any]], tuple[list[dict[str, Any]], dict[str, Any]]]


def limited(walk: Generator[dict[str, Any], None, None], max_results: int | None) -> Iterator[dict[str, Any]]:
    """The first ``max_results`` items of ``walk`` (all when ``None``), closing it early."""
    if max_results is None:
        yield from walk
        return
    for count, item in enumerate(walk, start=1):
        yield item
        if count >= max_results:
            walk.close()
            return


def iter_pages(
    fetch_page: PageFetcher, query: LogQuery, per_page: int, params: Mapping[str, Any]
) -> Generator[dict[str, Any], None, None]:
    """Walk by page numbers (stable only while the gateway is unchanged) until a short or empty page.

    ``result_info.total_count`` never ends the walk (an aggregate nothing guarantees exact): N
    logs cost ceil(N / per_page) requests, one more when N is a multiple of ``per_page``.
    """
    filters = query.api_filters()
    page = 1
    while True:
        rows, _info = fetch_page(filters, {**params, "page": page, "per_page": per_page})
        yield from rows
        if len(rows) < per_page:
            return
        page += 1


def _misbehaved(message: str) -> AIGatewayListingError:
    """The error of a walk that cannot go on exactly (every listing is a GET)."""
    return AIGatewayListingError(message, method="GET")


def iter_keyset(
    fetch_page: PageFetcher,
    query: LogQuery,
    descending: bool,
    per_page: int,
    params: Mapping[str, Any],
) -> Generator[dict[str, Any], None, None]:
    """Walk by ``created_at`` from the last instant seen, excluding the ids already seen there.

    Every request asks for page 1 of the logs at or beyond the cursor (the last ``created_at``
    yielded) minus the ids yielded at that millisecond (``id neq [...]``), so the walk assumes
    no order among logs sharing a millisecond, and logs inserted or deleted meanwhile never
    make it skip or repeat a log that exists throughout. It ends on a short or empty page only,
    never on ``result_info.total_count``: N logs cost ceil(N / per_page) requests, one more
    (the empty page) when N is a multiple of ``per_page``, however many share a millisecond.

    Each page is checked before any of its rows is passed on.

    :raises AIGatewayListingError: a row earlier than the cursor (later, walking ``desc``) or
        beyond the window's far end; a full page holding no log not yielded yet (no progress);
        or more logs in one millisecond than :data:`MAX_FILTERS_QUERY_CHARS` lets one request
        exclude by id.
    """
    near = "lt" if descending else "gt"
    user_filters, start, end = list(query.filters), query.start, query.end
    window = window_filters(start, end)
    cursor: dt.datetime | None = None  # created_at of the last row yielded
    tie_ids: list[str] = []  # the ids yielded at the cursor's millisecond
    while True:
        bounds = list(window)
        if cursor is not None:
            edge = cursor + CREATED_AT_RESOLUTION if descending else cursor - CREATED_AT_RESOLUTION
            bounds = [f for f in bounds if f["operator"] != near] + [created_at_filter(near, edge)]
        excluded = [{"key": "id", "operator": "neq", "value": list(tie_ids)}] if tie_ids else []
        filters = user_filters + bounds + excluded
        if excluded and len(quote_plus(encode_filters(filters))) > MAX_FILTERS_QUERY_CHARS:
            raise _misbehaved(
                f"{len(tie_ids)} logs share created_at {format_bound(cursor)}, more than one listing request "
                f"can exclude by id (the filters would exceed {MAX_FILTERS_QUERY_CHARS:,} URL characters): "
                "list them in smaller sets with filters (e.g. by provider or model)"
            )
        rows, _info = fetch_page(filters, {**params, "page": 1, "per_page": per_page})
        fresh: list[dict[str, Any]] = []
        seen_here = set(tie_ids)
        for row in rows:
            created = parse_created_at(row.get("created_at"))
            if cursor is not None and (created > cursor if descending else created < cursor):
                raise _misbehaved(
                    f"The API did not apply the keyset cursor: the listing went back from created_at "
                    f"{format_time(cursor)} to log {row.get('id')!r} created at {row.get('created_at')}"
                )
            beyond = (start is not None and created < start) if descending else (end is not None and created >= end)
            if beyond:
                raise _misbehaved(
                    "The API did not apply the created_at filter: listing "
                    f"[{format_bound(start)}, {format_bound(end)}) returned log {row.get('id')!r} "
                    f"created at {row.get('created_at')}"
                )
            log_id = str(row.get("id"))
            if created == cursor and log_id in seen_here:
                continue  # the API did not apply the id exclusion: never yield a log twice
            if created != cursor:
                cursor, seen_here, tie_ids = created, set(), []
            seen_here.add(log_id)
            tie_ids.append(log_id)
            fresh.append(row)
        if len(rows) >= per_page and not fresh:  # a short page ends the walk anyway
            raise _misbehaved(
                f"The API answered {len(rows)} logs it had listed already: the listing made no progress "
                f"(it did not apply the id exclusion at created_at {format_bound(cursor)})"
            )
        yield from fresh
        if len(rows) < per_page:
            return
