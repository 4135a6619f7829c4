"""Validation of an export's gateway, window and filters, and the window tag in every name."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.filters import validate_gateway_id

# One gateway-id check for the whole provider: the API's own (lowercase) pattern.
check_gateway_id = validate_gateway_id


def check_datetime(name: str, value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise AIGatewayInputError(f"{name} must be a timezone-aware datetime, got {value!r}") from exc
    if not isinstance(value, datetime):
        raise AIGatewayInputError(f"{name} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise AIGatewayInputError(
            f"{name} must be timezone-aware (got naive {value.isoformat()}); e.g. use "
            "datetime(..., tzinfo=timezone.utc) or pendulum.datetime(...)"
        )
    u = value.astimezone(timezone.utc)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=timezone.utc)


def check_filters(filters: Any) -> list[dict[str, Any]]:
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        filters = [filters]
    if not isinstance(filters, (list, tuple)):
        raise AIGatewayInputError(f"filters must be a list of filter dicts, got {type(filters).__name__}")
    result: list[dict[str, Any]] = []
    for item in filters:
        if not isinstance(item, Mapping):
            raise AIGatewayInputError(f"filters must be a list of filter dicts, got item {item!r}")
        result.append(dict(item))
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise AIGatewayInputError(f"filters must be JSON-serialisable: {exc}") from exc
    return result


def _filters_hash(filters: list[dict[str, Any]]) -> str:
    canon = []
    for f in filters:
        item = dict(f)
        if "value" in item and not isinstance(item["value"], list):
            item["value"] = [item["value"]]
        canon.append(json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
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
    flt = check_filters(filters)
    if flt:
        tag += f"-f{_filters_hash(flt)}"
    return tag
