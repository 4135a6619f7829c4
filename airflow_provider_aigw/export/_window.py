"""Validation of an export's gateway, window and filters, and the window tag in every name."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.filters import normalize_filters, parse_time, plain_utc, validate_gateway_id

# One gateway-id check for the whole provider: the API's own (lowercase) pattern.
check_gateway_id = validate_gateway_id


def check_datetime(name: str, value: Any) -> datetime:
    """A window bound as a UTC stdlib datetime (:func:`filters.parse_time`'s rules; ``None`` refused)."""
    parsed = parse_time(value, param=name)
    if parsed is None:
        raise AIGatewayInputError(f"{name} is required: a timezone-aware datetime or ISO 8601 string")
    return plain_utc(parsed)


def _filters_hash(filters: list[dict[str, Any]]) -> str:
    # normalized filters: ``value`` is always a list, so a scalar and a one-item list hash alike
    canon = [json.dumps(f, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for f in filters]
    digest = hashlib.sha256("\n".join(sorted(canon)).encode("utf-8")).hexdigest()
    return digest[:10]


def _compact_ts(dt: datetime) -> str:
    text = dt.strftime("%Y%m%dT%H%M%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def window_tag(start: datetime, end: datetime, filters: list[dict[str, Any]] | None = None) -> str:
    """Deterministic tag of an export window, e.g. ``20261126T000000Z-20261127T000000Z[-f<hash>]``.

    The optional ``-f<hash>`` is a short stable hash of the filters (their order and a scalar
    versus one-item ``value`` do not matter).
    """
    s = check_datetime("start", start)
    e = check_datetime("end", end)
    tag = f"{_compact_ts(s)}-{_compact_ts(e)}"
    flt = normalize_filters(filters)
    if flt:
        tag += f"-f{_filters_hash(flt)}"
    return tag
