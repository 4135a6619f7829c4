"""Inputs and answers of the calls other than listings: one log's get and patch, its stored
bodies, and the bulk delete. Everything here is validated before any request goes out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import requests

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.listing import LIST_ORDER_KEYS, ORDER_DIRECTIONS
from airflow_provider_aigw.query import encode_filters, normalize_filters, validate_delete_filter_keys, window_filters
from airflow_provider_aigw.timestamps import TimeLike
from airflow_provider_aigw.validation import validate_choice, validate_positive

MAX_DELETE_LIMIT = 10_000
DELETE_ORDER_KEYS = LIST_ORDER_KEYS | {"cost", "tokens_in", "tokens_out", "duration", "feedback"}
#: The fields a PATCH can set.
PATCH_FIELDS = ("feedback", "score", "metadata")
#: "Argument not given" for PATCH fields, where ``None`` means "clear the field".
_NOT_SET: Any = object()


def patch_values(*, feedback: Any = None, score: Any = None, metadata: Any = None, clear: Any = ()) -> dict[str, Any]:
    """The fields a PATCH sets: the given values (``None`` = leave unchanged) and the ``clear``-ed ones as null.

    Validated before any request, with :func:`build_patch_body`.
    """
    cleared = [clear] if isinstance(clear, str) else list(clear)
    for name in cleared:
        validate_choice(name, PATCH_FIELDS, param="clear")
    given = {name: v for name, v in zip(PATCH_FIELDS, (feedback, score, metadata), strict=True) if v is not None}
    both = sorted(set(given) & set(cleared))
    if both:
        raise AIGatewayInputError(f"{both} given both a value and in clear=")
    if not given and not cleared:
        raise AIGatewayInputError("nothing to patch: give feedback, score, metadata or clear=")
    values = {name: None for name in cleared} | given
    build_patch_body(**values)
    return values


def build_patch_body(*, feedback: Any = _NOT_SET, score: Any = _NOT_SET, metadata: Any = _NOT_SET) -> dict[str, Any]:
    """Validate PATCH fields (before any request) and return the JSON body."""
    body: dict[str, Any] = {}
    if feedback is not _NOT_SET:
        if feedback is not None and (
            isinstance(feedback, bool) or not isinstance(feedback, (int, float)) or not -1 <= feedback <= 1
        ):
            raise AIGatewayInputError(f"feedback must be a number from -1 to 1 (or None), got {feedback!r}")
        body["feedback"] = feedback
    if score is not _NOT_SET:
        if score is not None and (
            isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 100
        ):
            raise AIGatewayInputError(f"score must be a number from 0 to 100 (or None), got {score!r}")
        body["score"] = score
    if metadata is not _NOT_SET:
        if metadata is not None:
            if not isinstance(metadata, Mapping):
                raise AIGatewayInputError(f"metadata must be a dict (or None), got {type(metadata).__name__}")
            if len(metadata) > 5:
                raise AIGatewayInputError(f"metadata holds at most 5 entries, got {len(metadata)}")
            for key, value in metadata.items():
                if not isinstance(key, str) or not key:
                    raise AIGatewayInputError(f"metadata keys must be non-empty strings, got {key!r}")
                if not isinstance(value, (str, int, float, bool)) or (
                    isinstance(value, float) and not math.isfinite(value)
                ):
                    raise AIGatewayInputError(
                        f"metadata[{key!r}] must be a string, finite number or boolean, got {value!r}"
                    )
            metadata = dict(metadata)
        body["metadata"] = metadata
    if not body:
        raise AIGatewayInputError("nothing to patch: give at least one of feedback, score, metadata")
    return body


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
    query_filters = user_filters + window_filters(start, end)
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
