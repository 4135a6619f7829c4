"""The listing walks: keyset by ``created_at``, or page numbers for the other orders.

The walks know nothing about HTTP: they take a :data:`PageFetcher` (one ``GET .../logs``
returning the rows and ``result_info``), so they import only the filter helpers below them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from airflow_provider_aigw.filters import (
    CREATED_AT_RESOLUTION,
    Filter,
    created_at_filter,
    parse_created_at,
    validate_choice,
    validate_positive,
    window_filters,
)

MAX_PER_PAGE = 50
LIST_ORDER_KEYS = frozenset({"created_at", "provider", "model", "model_type", "success", "cached"})
ORDER_DIRECTIONS = ("asc", "desc")
#: Above this many logs sharing one ``created_at``, stop excluding them by id (the URL
#: would grow) and walk that instant by page numbers instead.
MAX_EXCLUDED_IDS = MAX_PER_PAGE

#: One listing request: ``(filters, query params) -> (rows, result_info)``.
PageFetcher = Callable[[list[Filter], Mapping[str, Any]], tuple[list[dict[str, Any]], dict[str, Any]]]


def listing_params(order_by: str, order_by_direction: str, per_page: int, search: str | None) -> dict[str, Any]:
    """Validate the ordering and page size of a listing; the query parameters they make."""
    validate_positive(per_page, param="per_page", maximum=MAX_PER_PAGE)
    validate_choice(order_by, LIST_ORDER_KEYS, param="order_by")
    validate_choice(order_by_direction, ORDER_DIRECTIONS, param="order_by_direction")
    params: dict[str, Any] = {"order_by": order_by, "order_by_direction": order_by_direction}
    if search:
        params["search"] = search
    return params


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
    fetch_page: PageFetcher,
    filters: list[Filter],
    per_page: int,
    params: Mapping[str, Any],
    *,
    skip_ids: set[str] | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Walk by page numbers (stable only while the gateway is unchanged), skipping ``skip_ids``."""
    page = 1
    while True:
        rows, info = fetch_page(filters, {**params, "page": page, "per_page": per_page})
        for row in rows:
            if skip_ids is None or row.get("id") not in skip_ids:
                yield row
        total = info.get("total_count")
        if len(rows) < per_page or (isinstance(total, int) and page * per_page >= total):
            return
        page += 1


def iter_keyset(
    fetch_page: PageFetcher,
    user_filters: list[Filter],
    start: dt.datetime | None,
    end: dt.datetime | None,
    descending: bool,
    per_page: int,
    params: Mapping[str, Any],
) -> Generator[dict[str, Any], None, None]:
    """Walk by ``created_at`` from the last instant seen, excluding the ids already seen there.

    See :meth:`~airflow_provider_aigw.client.AIGatewayClient.iter_logs` for the guarantees and costs.
    """
    # The moving bound: inclusive at the last instant seen (minus the ids seen there),
    # or exclusive once that instant has been walked completely.
    cursor: dt.datetime | None = None
    cursor_inclusive = True
    tie_at: str | None = None
    tie_ids: set[str] = set()
    window = window_filters(start, end)
    while True:
        bounds = list(window)
        if cursor is not None:
            bounds = [f for f in bounds if f["operator"] != ("lt" if descending else "gt")]
            if descending:
                edge = cursor + CREATED_AT_RESOLUTION if cursor_inclusive else cursor
                bounds.append(created_at_filter("lt", edge))
            else:
                edge = cursor - CREATED_AT_RESOLUTION if cursor_inclusive else cursor
                bounds.append(created_at_filter("gt", edge))
        excluded = [{"key": "id", "operator": "neq", "value": sorted(tie_ids)}] if tie_ids else []
        filters = user_filters + bounds + excluded
        rows, info = fetch_page(filters, {**params, "page": 1, "per_page": per_page})
        fresh = 0
        for row in rows:
            log_id, created = row.get("id"), row.get("created_at")
            if log_id in tie_ids:
                continue  # the API ignored the exclusion; never yield twice
            fresh += 1
            if created != tie_at:
                tie_at, tie_ids = created, set()
            tie_ids.add(log_id)  # type: ignore[arg-type]
            yield row
        total = info.get("total_count")
        if len(rows) < per_page or (isinstance(total, int) and len(rows) >= total):
            return
        if tie_at is None:
            return
        cursor, cursor_inclusive = parse_created_at(tie_at), True
        if fresh == 0 or len(tie_ids) > MAX_EXCLUDED_IDS:
            # Many logs share one instant: walk it by page numbers, then move past it.
            instant = [
                *user_filters,
                created_at_filter("gt", cursor - CREATED_AT_RESOLUTION),
                created_at_filter("lt", cursor + CREATED_AT_RESOLUTION),
            ]
            # Repeated until a pass brings no new id: oldest-first retention deleting logs of
            # this instant mid-pass shifts the pages, and a single pass could skip some.
            while True:
                fresh = 0
                for row in iter_pages(fetch_page, instant, per_page, params, skip_ids=tie_ids):
                    tie_ids.add(row.get("id"))  # type: ignore[arg-type]
                    fresh += 1
                    yield row
                if not fresh:
                    break
            cursor_inclusive, tie_at, tie_ids = False, None, set()
