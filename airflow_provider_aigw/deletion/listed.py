"""Delete the logs matching filters and a window: counted, proven to narrow, listed, deleted by id."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from airflow_provider_aigw.client import MAX_DELETE_LIMIT, AIGatewayClient
from airflow_provider_aigw.deletion.confined import ConfinedDelete, announce, listed_ids
from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayUnsafeDeleteError
from airflow_provider_aigw.query import LogQuery, validate_delete_filter_keys
from airflow_provider_aigw.validation import validate_gateway_id

__all__ = ["UNFILTERED_DELETE", "delete_listed", "validate_delete_query"]

log = logging.getLogger(__name__)

#: Why a delete with neither filters nor a window is refused.
UNFILTERED_DELETE = (
    "refusing to delete with neither filters nor a start/end window nor a manifest: the API would "
    "delete the gateway's oldest logs"
)


def validate_delete_query(query: LogQuery) -> None:
    """Refuse a query a delete cannot keep exact: undocumented filter keys, a search, or no filters and no window.

    :raises AIGatewayInputError: naming what is wrong (before any request).
    """
    validate_delete_filter_keys(query.filters)
    if query.search:
        raise AIGatewayInputError("a delete takes no search: the DELETE endpoint has none")
    if not query.filters and query.start is None and query.end is None:
        raise AIGatewayInputError(UNFILTERED_DELETE)


def delete_listed(
    client: AIGatewayClient,
    query: LogQuery,
    *,
    batch_size: int = MAX_DELETE_LIMIT,
    allow_match_all: bool = False,
    dry_run: bool = False,
    logger: Any = log,
) -> int:
    """Delete the logs of ``query`` by listed id; returns how many were named.

    When filters other than ``created_at`` are given they must narrow: if they match as many logs
    as the window alone, the API may have ignored one, and the delete is refused unless
    ``allow_match_all``. The matching logs are then listed (keyset walk) and deleted by
    :class:`ConfinedDelete` as they are listed, so the set deleted is the set listed.

    :param query: the gateway (default: the client's), filters (documented keys only) and window.
    :param batch_size: most ids per DELETE.
    :param dry_run: only count and report what would be deleted; returns that number.
    :param logger: where progress goes (the task's logger).
    :raises AIGatewayInputError: an undocumented filter key, a search, or neither filters nor a window
        (checked before any request).
    :raises AIGatewayUnsafeDeleteError: the filters do not narrow the window, or the API did not
        apply a filter of a DELETE.
    """
    validate_delete_query(query)
    query = query.with_gateway(client.gateway_id)
    validate_gateway_id(query.gateway_id)
    scope = query.describe()
    matching = client.count_logs(query)
    narrowing = [f for f in query.filters if f["key"] != "created_at"]
    if narrowing and matching and not allow_match_all:
        window_only = client.count_logs(
            replace(query, filters=tuple(f for f in query.filters if f["key"] == "created_at"))
        )
        if matching >= window_only:
            raise AIGatewayUnsafeDeleteError(
                f"refusing to delete: the filters {json.dumps(narrowing)} match {matching} logs, as many as the "
                f"window alone ({window_only}). The API may have ignored a filter (Cloudflare ignores filters "
                "it does not apply, without an error), and the DELETE would then take every log of the window. "
                "If the filters really match every log, pass allow_match_all=True. Nothing was deleted"
            )
    if not announce(scope, matching, matching, dry_run=dry_run, logger=logger):
        return matching if dry_run else 0
    deleter = ConfinedDelete(client, query, batch_size=batch_size, logger=logger, expected=matching)
    deleter.run(listed_ids(client, query))
    left = client.count_logs(query)
    if left:
        logger.warning(
            "%d log(s) match now that were not listed when the delete walked the window (they arrived "
            "meanwhile); they were not deleted",
            left,
        )
    logger.info("deleted %d logs (%s) in %d DELETE call(s)", deleter.named, scope, deleter.calls)
    return deleter.named
