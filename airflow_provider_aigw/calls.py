"""Inputs and answers of the calls other than listings: one log's get and patch, its stored
bodies, and the bulk delete. Everything here is validated before any request goes out.
"""

from __future__ import annotations

from typing import Any

import requests

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.listing import LIST_ORDER_KEYS, ORDER_DIRECTIONS
from airflow_provider_aigw.patch import PATCH_FIELDS, UNSET, LogPatch
from airflow_provider_aigw.query import (
    encode_filters,
    normalize_filters,
    validate_delete_filter_keys,
    validate_window,
    window_filters,
)
from airflow_provider_aigw.timestamps import TimeLike
from airflow_provider_aigw.validation import validate_choice, validate_positive

MAX_DELETE_LIMIT = 10_000
DELETE_ORDER_KEYS = LIST_ORDER_KEYS | {"cost", "tokens_in", "tokens_out", "duration", "feedback"}
#: "Argument not given" for PATCH fields, where ``None`` means "clear the field".
_NOT_SET: Any = UNSET


def patch_values(*, feedback: Any = None, score: Any = None, metadata: Any = None, clear: Any = ()) -> dict[str, Any]:
    """The fields a PATCH sets: the given values (``None`` = leave unchanged) and the ``clear``-ed ones as null."""
    given = {name: v for name, v in zip(PATCH_FIELDS, (feedback, score, metadata), strict=True) if v is not None}
    return LogPatch.of(**given, clear=clear).body()


def build_patch_body(*, feedback: Any = _NOT_SET, score: Any = _NOT_SET, metadata: Any = _NOT_SET) -> dict[str, Any]:
    """Validate PATCH fields (before any request) and return the JSON body."""
    return LogPatch.of(feedback=feedback, score=score, metadata=metadata).body()


_ENVELOPE_KEYS = frozenset({"success", "result", "errors", "messages"})


def unwrap_envelope(body: Any) -> Any:
    """``body["result"]`` when ``body`` is exactly a successful Cloudflare envelope, else ``body``.

    Exactly: a JSON object holding ``success: true`` and ``result``, and besides them at most
    ``errors`` and ``messages``. A stored provider body with other keys is never unwrapped.
    """
    if isinstance(body, dict) and body.get("success") is True and "result" in body and _ENVELOPE_KEYS.issuperset(body):
        return body["result"]
    return body


def decode_body(response: requests.Response) -> Any:
    """A stored request/response body as the API returned it.

    Bodies come as stored (the OpenAPI spec): JSON when JSON, else text (e.g. SSE); or wrapped
    in the Cloudflare envelope (the seed API document), which is taken off.
    """
    content_type = response.headers.get("Content-Type", "")
    if not content_type or "json" in content_type:
        try:
            return unwrap_envelope(response.json())
        except ValueError:
            pass
    return response.text


def delete_query(
    filters: Any,
    start: TimeLike | None,
    end: TimeLike | None,
    *,
    limit: int | None,
    order_by: str | None,
    order_by_direction: str | None,
    allow_unfiltered: bool,
) -> dict[str, Any]:
    """The query parameters of ``DELETE .../logs``, refusing what could delete more than meant.

    Filter keys outside the documented set are refused (the API might ignore them and delete
    more); no filters and no window needs ``allow_unfiltered`` (the API deletes the oldest logs).
    """
    user_filters = normalize_filters(filters)
    validate_delete_filter_keys(user_filters)
    query_filters = user_filters + window_filters(*validate_window(start, end))
    if not query_filters and not allow_unfiltered:
        raise AIGatewayInputError(
            "delete_logs needs filters or a start/end window: without them the API deletes "
            "the gateway's oldest logs (pass allow_unfiltered=True if that is really meant)"
        )
    query: dict[str, Any] = {}
    if limit is not None:
        query["limit"] = validate_positive(limit, param="limit", maximum=MAX_DELETE_LIMIT)
    if order_by is not None:
        query["order_by"] = validate_choice(order_by, DELETE_ORDER_KEYS, param="order_by")
    if order_by_direction is not None:
        query["order_by_direction"] = validate_choice(order_by_direction, ORDER_DIRECTIONS, param="order_by_direction")
    if query_filters:
        query["filters"] = encode_filters(query_filters)
    return query
