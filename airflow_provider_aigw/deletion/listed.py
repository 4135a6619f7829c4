"""Delete the logs matching filters and a window: counted, proven to narrow, listed, deleted by id."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.calls import MAX_DELETE_LIMIT
from airflow_provider_aigw.deletion.confined import ConfinedDelete, announce, describe, listed_ids
from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayUnsafeDeleteError
from airflow_provider_aigw.query import normalize_filters, validate_delete_filter_keys, validate_window
from airflow_provider_aigw.timestamps import TimeLike

if TYPE_CHECKING:
    from airflow_provider_aigw.client import AIGatewayClient

__all__ = ["UNFILTERED_DELETE", "delete_listed"]

log = logging.getLogger(__name__)

#: Why a delete with neither filters nor a window is refused.
UNFILTERED_DELETE = (
    "refusing to delete with neither filters nor a start/end window nor a manifest: the API would "
    "delete the gateway's oldest logs"
)


def delete_listed(
    client: AIGatewayClient,
    *,
    gateway: str,
    filters: Any,
    start: TimeLike | None,
    end: TimeLike | None,
    limit: int = MAX_DELETE_LIMIT,
    allow_match_all: bool = False,
    report_only: bool = False,
    logger: Any = log,
) -> int:
    """Delete the logs matching filters and window, by listed id; returns how many were named.

    When filters other than ``created_at`` are given they must narrow: if they match as many logs
    as the window alone, the API may have ignored one, and the delete is refused unless
    ``allow_match_all``. The matching logs are then listed (keyset walk) and deleted by
    :class:`ConfinedDelete` as they are listed, so the set deleted is the set listed.

    :param filters: filters in the API's shape (documented keys only).
    :param start: window start (inclusive), aware datetime or ISO 8601 string.
    :param end: window end (exclusive).
    :param logger: where progress goes (the task's logger).
    :raises AIGatewayInputError: invalid filters or window, or neither of them (checked before any request).
    :raises AIGatewayUnsafeDeleteError: the filters do not narrow the window, or the API did not
        apply a filter of a DELETE.
    """
    filters = normalize_filters(filters)
    validate_delete_filter_keys(filters)
    start, end = validate_window(start, end)
    if not filters and start is None and end is None:
        raise AIGatewayInputError(UNFILTERED_DELETE)
    scope = describe(gateway, filters, start, end)
    matching = client.count_logs(gateway, filters=filters, start=start, end=end)
    narrowing = [f for f in filters if f["key"] != "created_at"]
    if narrowing and matching and not allow_match_all:
        window_only = client.count_logs(
            gateway, filters=[f for f in filters if f["key"] == "created_at"], start=start, end=end
        )
        if matching >= window_only:
            raise AIGatewayUnsafeDeleteError(
                f"refusing to delete: the filters {json.dumps(narrowing)} match {matching} logs, as many as the "
                f"window alone ({window_only}). The API may have ignored a filter (Cloudflare ignores filters "
                "it does not apply, without an error), and the DELETE would then take every log of the window. "
                "If the filters really match every log, pass allow_match_all=True. Nothing was deleted"
            )
    if not announce(scope, matching, matching, report_only=report_only, logger=logger):
        return matching if report_only else 0
    deleter = ConfinedDelete(client, gateway, filters, start, end, limit=limit, logger=logger, expected=matching)
    deleter.run(listed_ids(client, gateway, filters, start, end))
    left = client.count_logs(gateway, filters=filters, start=start, end=end)
    if left:
        logger.warning(
            "%d log(s) match now that were not listed when the delete walked the window (they arrived "
            "meanwhile); they were not deleted",
            left,
        )
    logger.info("deleted %d logs (%s) in %d DELETE call(s)", deleter.named, scope, deleter.calls)
    return deleter.named
