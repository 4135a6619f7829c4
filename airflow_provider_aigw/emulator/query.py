"""Requests to the emulated Logs API: the API's error shape and the validation of list and delete
queries, filters and PATCH bodies, with the messages the API gives.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.emulator import data

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DELETE_ORDER_KEYS",
    "FILTER_KEYS",
    "FILTER_OPERATORS",
    "LIST_ORDER_KEYS",
    "ApiError",
    "Filter",
    "ListQuery",
    "parse_delete_query",
    "parse_list_query",
    "validate_gateway_id",
    "validate_patch",
]

FILTER_KEYS: tuple[str, ...] = (
    "id",
    "created_at",
    "request_content_type",
    "response_content_type",
    "request_type",
    "success",
    "cached",
    "provider",
    "model",
    "model_type",
    "cost",
    "tokens",
    "tokens_in",
    "tokens_out",
    "duration",
    "feedback",
    "event_id",
    "metadata.key",
    "metadata.value",
    "prompts.prompt_id",
    "prompts.version_id",
    "authentication",
    "wholesale",
    "compatibilityMode",
    "dlp_action",
    "user_agent",
)
FILTER_OPERATORS: tuple[str, ...] = ("eq", "neq", "contains", "lt", "gt")
LIST_ORDER_KEYS: tuple[str, ...] = ("created_at", "provider", "model", "model_type", "success", "cached")
DELETE_ORDER_KEYS: tuple[str, ...] = (
    *LIST_ORDER_KEYS,
    "cost",
    "tokens_in",
    "tokens_out",
    "duration",
    "feedback",
)
DIRECTIONS: tuple[str, ...] = ("asc", "desc")
GATEWAY_ID_RE = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")


class ApiError(Exception):
    """An API error answer: HTTP status plus Cloudflare ``errors`` items."""

    def __init__(self, status: int, errors: list[dict[str, Any]], result: Any = None) -> None:
        super().__init__(f"{status}: {errors}")
        self.status = status
        self.errors = errors
        self.result = result

    def body(self) -> dict[str, Any]:
        """The JSON envelope of this error."""
        return {"success": False, "errors": self.errors, "messages": [], "result": self.result}


def not_found() -> ApiError:
    """404 / 7002."""
    return ApiError(404, [{"code": 7002, "message": "Not Found"}])


def auth_error() -> ApiError:
    """403 / 10000."""
    return ApiError(403, [{"code": 10000, "message": "Authentication error"}])


def issue(message: str, path: list[Any]) -> dict[str, Any]:
    return {"code": 7001, "message": message, "path": path}


def _invalid(issues: list[dict[str, Any]]) -> ApiError:
    return ApiError(400, issues, result={})


def _enum_message(options: Sequence[str], received: Any) -> str:
    opts = " | ".join(f"'{o}'" for o in options)
    return f"Invalid enum value. Expected {opts}, received '{received}'"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def validate_gateway_id(gateway_id: str) -> None:
    """Raise 400/7001 unless ``gateway_id`` matches the API's pattern (1-64 chars)."""
    if not (1 <= len(gateway_id) <= 64) or not GATEWAY_ID_RE.match(gateway_id):
        raise _invalid([issue("Invalid", ["gateway_id"])])


# --------------------------------------------------------------------------- query parsing


@dataclass
class Filter:
    """One parsed filter. ``op`` may also be ``gte``/``lte`` (from deprecated params)."""

    key: str
    op: str
    values: list[Any]


@dataclass
class ListQuery:
    """A validated list (or delete) query."""

    filters: list[Filter] = field(default_factory=list)
    search: str | None = None
    page: int = 1
    per_page: int = 20
    order_by: str = "created_at"
    direction: str = "desc"
    meta_info: bool = False
    limit: int = 10000


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _parse_int(
    query: dict[str, list[str]],
    name: str,
    default: int,
    lo: int,
    hi: int | None,
    issues: list[dict[str, Any]],
) -> int:
    raw = _first(query, name)
    if raw is None or raw == "":
        return default
    try:
        num = float(raw)
    except ValueError:
        issues.append(issue("Expected number, received nan", [name]))
        return default
    if num != num or num in (float("inf"), float("-inf")):
        issues.append(issue("Expected number, received nan", [name]))
        return default
    if not num.is_integer():
        issues.append(issue("Expected integer, received float", [name]))
        return default
    value = int(num)
    if value < lo:
        issues.append(issue(f"Number must be greater than or equal to {lo}", [name]))
    elif hi is not None and value > hi:
        issues.append(issue(f"Number must be less than or equal to {hi}", [name]))
    return value


def _parse_enum(
    query: dict[str, list[str]], name: str, default: str, options: Sequence[str], issues: list[dict[str, Any]]
) -> str:
    raw = _first(query, name)
    if raw is None:
        return default
    if raw not in options:
        issues.append(issue(_enum_message(options, raw), [name]))
        return default
    return raw


def _parse_bool(raw: str, name: str, issues: list[dict[str, Any]]) -> bool | None:
    low = raw.strip().lower()
    if low in ("true", "1"):
        return True
    if low in ("false", "0"):
        return False
    issues.append(issue("Expected boolean, received string", [name]))
    return None


def parse_filters(raw: str | None, issues: list[dict[str, Any]]) -> list[Filter]:
    """Parse and validate the ``filters`` query parameter (a JSON array)."""
    if raw is None:
        return []
    try:
        parsed = json.loads(raw)
    except ValueError:
        issues.append(issue("Expected array, received string", ["filters"]))
        return []
    if not isinstance(parsed, list):
        issues.append(issue(f"Expected array, received {_type_name(parsed)}", ["filters"]))
        return []
    result: list[Filter] = []
    for i, item in enumerate(parsed):
        base: list[Any] = ["filters", i]
        if not isinstance(item, dict):
            issues.append(issue(f"Expected object, received {_type_name(item)}", base))
            continue
        ok = True
        key, op, values = item.get("key"), item.get("operator"), item.get("value")
        for name, val in (("key", key), ("operator", op), ("value", values)):
            if name not in item:
                issues.append(issue("Required", [*base, name]))
                ok = False
            elif name != "value" and not isinstance(val, str):
                issues.append(issue(f"Expected string, received {_type_name(val)}", [*base, name]))
                ok = False
        if isinstance(key, str) and key not in FILTER_KEYS:
            issues.append(issue(_enum_message(FILTER_KEYS, key), [*base, "key"]))
            ok = False
        if isinstance(op, str) and op not in FILTER_OPERATORS:
            issues.append(issue(_enum_message(FILTER_OPERATORS, op), [*base, "operator"]))
            ok = False
        if "value" in item and not isinstance(values, list):
            issues.append(issue(f"Expected array, received {_type_name(values)}", [*base, "value"]))
            ok = False
        if isinstance(values, list):
            for j, v in enumerate(values):
                if isinstance(v, (dict, list)):
                    issues.append(issue("Invalid input", [*base, "value", j]))
                    ok = False
        if not ok:
            continue
        assert isinstance(key, str) and isinstance(op, str) and isinstance(values, list)
        if key == "created_at" and op != "contains":
            converted: list[Any] = []
            for j, v in enumerate(values):
                try:
                    if not isinstance(v, str):
                        raise ValueError
                    converted.append(data.parse_ts_ms(v))
                except ValueError:
                    issues.append(issue("Invalid datetime", [*base, "value", j]))
                    ok = False
            values = converted
        if ok:
            result.append(Filter(key, op, list(values)))
    return result


_DEPRECATED_EQ = ("model", "model_type", "provider", "request_content_type", "response_content_type")
_DEPRECATED_RANGE = {
    "cost": "cost",
    "duration": "duration",
    "tokens_in": "tokens_in",
    "tokens_out": "tokens_out",
    "total_tokens": "tokens",
}


def _deprecated_filters(query: dict[str, list[str]], issues: list[dict[str, Any]]) -> list[Filter]:
    out: list[Filter] = []
    for name, op in (("start_date", "gte"), ("end_date", "lte")):
        raw = _first(query, name)
        if raw:
            try:
                out.append(Filter("created_at", op, [data.parse_ts_ms(raw)]))
            except ValueError:
                issues.append(issue("Invalid datetime", [name]))
    for name in _DEPRECATED_EQ:
        raw = _first(query, name)
        if raw:
            out.append(Filter(name, "eq", [raw]))
    for name in ("success", "cached"):
        raw = _first(query, name)
        if raw:
            b = _parse_bool(raw, name, issues)
            if b is not None:
                out.append(Filter(name, "eq", [b]))
    raw = _first(query, "feedback")
    if raw:
        try:
            out.append(Filter("feedback", "eq", [float(raw)]))
        except ValueError:
            issues.append(issue("Expected number, received nan", ["feedback"]))
    for suffix, key in _DEPRECATED_RANGE.items():
        for prefix, op in (("min_", "gte"), ("max_", "lte")):
            raw = _first(query, prefix + suffix)
            if raw:
                try:
                    out.append(Filter(key, op, [float(raw)]))
                except ValueError:
                    issues.append(issue("Expected number, received nan", [prefix + suffix]))
    return out


def parse_list_query(query: dict[str, list[str]]) -> ListQuery:
    """Validate the query parameters of GET .../logs; raises 400/7001 :class:`ApiError`."""
    issues: list[dict[str, Any]] = []
    q = ListQuery()
    q.page = _parse_int(query, "page", 1, 1, None, issues)
    q.per_page = _parse_int(query, "per_page", 20, 1, 50, issues)
    q.order_by = _parse_enum(query, "order_by", "created_at", LIST_ORDER_KEYS, issues)
    if "order_by_direction" in query:
        q.direction = _parse_enum(query, "order_by_direction", "desc", DIRECTIONS, issues)
    else:
        q.direction = _parse_enum(query, "direction", "desc", DIRECTIONS, issues)
    q.filters = parse_filters(_first(query, "filters"), issues) + _deprecated_filters(query, issues)
    search = _first(query, "search")
    q.search = search if search else None
    meta = _first(query, "meta_info")
    if meta:
        q.meta_info = bool(_parse_bool(meta, "meta_info", issues))
    if issues:
        raise _invalid(issues)
    return q


def parse_delete_query(query: dict[str, list[str]]) -> ListQuery:
    """Validate the query parameters of DELETE .../logs; raises 400/7001 :class:`ApiError`."""
    issues: list[dict[str, Any]] = []
    q = ListQuery(direction="asc")
    q.limit = _parse_int(query, "limit", 10000, 1, 10000, issues)
    q.order_by = _parse_enum(query, "order_by", "created_at", DELETE_ORDER_KEYS, issues)
    q.direction = _parse_enum(query, "order_by_direction", "asc", DIRECTIONS, issues)
    q.filters = parse_filters(_first(query, "filters"), issues)
    if issues:
        raise _invalid(issues)
    return q


def validate_patch(body: bytes) -> dict[str, Any]:
    """Validate a PATCH body; returns the fields to set (value None = clear)."""
    try:
        parsed = json.loads(body.decode("utf-8") or "null")
    except (ValueError, UnicodeDecodeError):
        raise _invalid([issue("Invalid JSON body", [])]) from None
    if not isinstance(parsed, dict):
        raise _invalid([issue(f"Expected object, received {_type_name(parsed)}", [])])
    issues: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for name, lo, hi in (("feedback", -1, 1), ("score", 0, 100)):
        if name not in parsed:
            continue
        v = parsed[name]
        if v is None:
            out[name] = None
        elif isinstance(v, bool) or not isinstance(v, (int, float)):
            issues.append(issue(f"Expected number, received {_type_name(v)}", [name]))
        elif v < lo:
            issues.append(issue(f"Number must be greater than or equal to {lo}", [name]))
        elif v > hi:
            issues.append(issue(f"Number must be less than or equal to {hi}", [name]))
        else:
            out[name] = v
    if "metadata" in parsed:
        meta = parsed["metadata"]
        if meta is None:
            out["metadata"] = None
        elif not isinstance(meta, dict):
            issues.append(issue(f"Expected object, received {_type_name(meta)}", ["metadata"]))
        else:
            bad = [k for k, v in meta.items() if not isinstance(v, (str, int, float, bool))]
            for k in bad:
                issues.append(issue("Invalid input", ["metadata", k]))
            if not bad:
                out["metadata"] = meta
    if issues:
        raise _invalid(issues)
    return out
