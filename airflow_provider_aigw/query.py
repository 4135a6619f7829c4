"""What logs a call is about: filters in the API's own shape, ``created_at`` windows, :class:`LogQuery`.

A filter is ``{"key": K, "operator": "eq"|"neq"|"contains"|"lt"|"gt", "value": [v, ...]}``.
Filters go on the wire as ONE query parameter ``filters`` holding a JSON array: the
bracket and dotted forms the official SDKs send are ignored by the API, which then
lists (or deletes) everything.

Time windows are half-open ``[start, end)`` on ``created_at``. The API only offers
``gt``/``lt``, so ``created_at >= start`` is sent as ``created_at > start - 1 ms``: the
API stores ``created_at`` with millisecond precision (:mod:`~airflow_provider_aigw.timestamps`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pendulum

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.timestamps import (
    CREATED_AT_RESOLUTION,
    TimeLike,
    format_exact,
    format_time,
    parse_created_at,
    parse_time,
)
from airflow_provider_aigw.validation import parse_literal, validate_gateway_id

OPERATORS = frozenset({"eq", "neq", "contains", "lt", "gt"})

#: The documented filter keys (union over API versions). Reads pass other keys through (the API
#: adds keys over time); a DELETE refuses them, because nothing proves that the API rejects a key
#: it does not know rather than ignoring it, and an ignored filter widens a DELETE.
DELETE_FILTER_KEYS = frozenset(
    {
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
    }
)

Filter = dict[str, Any]

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def normalize_filters(filters: Any, *, param: str = "filters") -> list[Filter]:
    """Validate filters and return them in wire shape (``value`` always a list).

    Accepts ``None``, one filter dict, or a sequence of filter dicts. Unknown keys are
    allowed on purpose for reads: the API adds keys over time (a DELETE checks them with
    :func:`validate_delete_filter_keys`).

    :raises AIGatewayInputError: naming ``param`` and the offending item.
    """
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        filters = [filters]
    if isinstance(filters, (str, bytes)) or not isinstance(filters, Sequence):
        raise AIGatewayInputError(
            f"{param} must be a list of filter dicts like "
            '{"key": "model", "operator": "eq", "value": ["gpt-4o"]}, '
            f"got {type(filters).__name__}"
        )
    normalized: list[Filter] = []
    for index, item in enumerate(filters):
        where = f"{param}[{index}]"
        if not isinstance(item, Mapping):
            raise AIGatewayInputError(f"{where} must be a dict, got {type(item).__name__}. {_shape_hint(item)}")
        unknown = set(item) - {"key", "operator", "value"}
        if unknown:
            raise AIGatewayInputError(
                f"{where} has unexpected field(s) {sorted(unknown)}; allowed: key, operator, value. {_shape_hint(item)}"
            )
        key = item.get("key")
        if not isinstance(key, str) or not key.strip():
            raise AIGatewayInputError(f"{where}.key must be a non-empty string, got {key!r}. {_shape_hint(item)}")
        operator = item.get("operator")
        if operator not in OPERATORS:
            raise AIGatewayInputError(f"{where}.operator must be one of {sorted(OPERATORS)}, got {operator!r}")
        if "value" not in item:
            raise AIGatewayInputError(f"{where}.value is required")
        value = item["value"]
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        if not values:
            raise AIGatewayInputError(f"{where}.value must not be empty")
        for v in values:
            if v is not None and not isinstance(v, (str, int, float, bool)):
                raise AIGatewayInputError(
                    f"{where}.value items must be strings, numbers, booleans or null "
                    f"(timestamps as ISO strings), got {type(v).__name__}"
                )
            if isinstance(v, float) and not math.isfinite(v):
                raise AIGatewayInputError(f"{where}.value items must be finite numbers, got {v!r}")
        normalized.append({"key": key, "operator": operator, "value": values})
    return normalized


def _shape_hint(item: Any) -> str:
    """The right shape of a filter, as the fix of ``item`` when it is ``{field: value}``."""
    # Only a dict with none of the three fields reads as {field: value}.
    plain = isinstance(item, Mapping) and not set(item) & {"key", "operator", "value"}
    fields = dict(item) if plain else {}
    examples = [
        {"key": k, "operator": "eq", "value": list(v) if isinstance(v, (list, tuple)) else [v]}
        for k, v in fields.items()
        if isinstance(k, str)
    ] or [{"key": "model", "operator": "eq", "value": ["gpt-4o"]}]
    shown = json.dumps(examples if len(examples) > 1 else examples[0], default=str)
    lead = "Write it as" if fields else "A filter has the shape"
    return f"{lead} {shown} (operator: {', '.join(sorted(OPERATORS))}; value: a list)"


def validate_delete_filter_keys(filters: Sequence[Filter], *, param: str = "filters") -> None:
    """Refuse filter keys outside :data:`DELETE_FILTER_KEYS` (normalized filters)."""
    for index, item in enumerate(filters):
        if item["key"] not in DELETE_FILTER_KEYS:
            raise AIGatewayInputError(
                f"{param}[{index}].key {item['key']!r} is not a documented filter key, and a DELETE only takes "
                "documented keys: the API may ignore a key it does not apply and then delete more than asked. "
                f"Documented keys: {', '.join(sorted(DELETE_FILTER_KEYS))}"
            )


def encode_filters(filters: Sequence[Filter]) -> str:
    """The value of the single ``filters`` query parameter: a compact JSON array."""
    return json.dumps(list(filters), separators=(",", ":"), ensure_ascii=False)


def validate_window(
    start: TimeLike | None, end: TimeLike | None
) -> tuple[pendulum.DateTime | None, pendulum.DateTime | None]:
    """Parse ``start``/``end`` and check that the end is after the start."""
    start_dt = parse_time(start, param="start")
    end_dt = parse_time(end, param="end")
    if start_dt is not None and end_dt is not None and end_dt <= start_dt:
        raise AIGatewayInputError(
            f"end ({end_dt.isoformat()}) must be after start ({start_dt.isoformat()}); "
            "windows are half-open [start, end)"
        )
    return start_dt, end_dt


def run_window(window: Any, default_start: TimeLike | None, default_end: TimeLike | None) -> tuple[str, str]:
    """The ``[start, end)`` a run covers: ``window`` when set, else the default (the data interval).

    ``window`` is a UTC day ``"2026-11-27"`` or an ISO 8601 interval ``"START/END"`` with
    timezones; ``None`` or ``""`` keeps the default. Returns both bounds as ISO 8601 strings, so
    it serves as a template macro (the archive example DAG's ``params.window``).
    """
    if window is None or (isinstance(window, str) and not window.strip()):
        start, end = validate_window(default_start, default_end)
    elif isinstance(window, str) and _DAY.fullmatch(window.strip()):
        try:
            day = dt.date.fromisoformat(window.strip())
        except ValueError:
            raise AIGatewayInputError(f"window {window!r} is not a calendar day") from None
        start = pendulum.datetime(day.year, day.month, day.day, tz="UTC")
        end = start.add(days=1)
    elif isinstance(window, str) and window.count("/") == 1:
        first, second = window.split("/")
        start, end = validate_window(first, second)
    else:
        raise AIGatewayInputError(
            f"window must be a UTC day 'YYYY-MM-DD' or an ISO 8601 interval 'START/END', got {window!r}"
        )
    if start is None or end is None:
        raise AIGatewayInputError("the run has no data interval: set window, e.g. '2026-11-27'")
    return start.isoformat(), end.isoformat()


def window_filters(start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[Filter]:
    """Filters selecting ``start <= created_at < end`` (either bound optional; validated bounds)."""
    result: list[Filter] = []
    if start is not None:
        result.append(created_at_filter("gt", start - CREATED_AT_RESOLUTION))
    if end is not None:
        result.append(created_at_filter("lt", end))
    return result


def created_at_filter(operator: str, value: dt.datetime) -> Filter:
    return {"key": "created_at", "operator": operator, "value": [format_time(value)]}


@dataclass(frozen=True)
class LogQuery:
    """What logs a call is about, validated once (:meth:`of`) and passed down as it is.

    Build it with :meth:`of`; the constructor takes the fields as they are, unchecked.

    :param gateway_id: the gateway, or ``None`` for the client's default (:meth:`with_gateway`).
    :param filters: filters in the API's wire shape (``value`` always a list), without the window.
    :param start: window start (inclusive), an aware UTC datetime, or ``None`` (open).
    :param end: window end (exclusive), an aware UTC datetime, or ``None`` (open).
    :param search: free-text search over metadata, or ``None``.
    """

    gateway_id: str | None = None
    # Dicts do not hash: a query hashes by its other fields.
    filters: tuple[Filter, ...] = field(default=(), hash=False)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    search: str | None = None

    @classmethod
    def of(
        cls,
        *,
        gateway_id: str | None = None,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        search: str | None = None,
    ) -> LogQuery:
        """Validate the parts of a query, before any request.

        :param filters: one filter dict or a list of them, also as the text a Jinja template
            rendered (JSON or a Python literal); a scalar ``value`` is wrapped in a list.
        :param start: window start, an aware datetime or ISO 8601 string with a timezone.
        :param end: window end, after ``start``.
        :param search: free-text search; ``""`` counts as none.
        :raises AIGatewayInputError: naming the parameter at fault.
        """
        if gateway_id is not None:
            validate_gateway_id(gateway_id)
        normalized = normalize_filters(parse_literal(filters, param="filters"))
        start_dt, end_dt = validate_window(start, end)
        if search is not None and not isinstance(search, str):
            raise AIGatewayInputError(f"search must be a string, got {type(search).__name__}")
        return cls(gateway_id, tuple(normalized), start_dt, end_dt, search or None)

    def api_filters(self) -> list[Filter]:
        """The ``filters`` the API gets: the query's filters, then the window's ``created_at`` bounds."""
        return [*self.filters, *window_filters(self.start, self.end)]

    def with_gateway(self, default: str | None) -> LogQuery:
        """This query, with ``default`` as its gateway when it names none."""
        return self if self.gateway_id or not default else replace(self, gateway_id=default)

    def to_json(self) -> dict[str, Any]:
        """The query as JSON scalars (trigger kwargs); :meth:`from_json` reads it back.

        The filters are one JSON string: a list of dicts in trigger kwargs breaks the hashing
        of asset watchers (Airflow 3.3).
        """
        return {
            "gateway_id": self.gateway_id,
            "filters": encode_filters(self.filters),
            "start": format_exact(self.start) if self.start is not None else None,
            "end": format_exact(self.end) if self.end is not None else None,
            "search": self.search,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LogQuery:
        """The query of :meth:`to_json`, validated again (it crossed a process boundary)."""
        return cls.of(
            gateway_id=data.get("gateway_id"),
            filters=data.get("filters"),
            start=data.get("start"),
            end=data.get("end"),
            search=data.get("search"),
        )

    def describe(self) -> str:
        """``gateway 'g', window [a, b), filters [...]`` for messages."""
        gateway = f"gateway {self.gateway_id!r}" if self.gateway_id else "the default gateway"
        start = format_time(self.start) if self.start is not None else "-inf"
        end = format_time(self.end) if self.end is not None else "now"
        text = f"{gateway}, window [{start}, {end})"
        if self.filters:
            text += f", filters {json.dumps(list(self.filters))}"
        if self.search:
            text += f", search {self.search!r}"
        return text


#: Keys a listed row can be checked against: its own fields, compared as the API documents.
_ROW_CHECKED_KEYS = frozenset(
    {"id", "created_at", "provider", "model", "model_type", "success", "cached", "request_type", "event_id"}
    | {"request_content_type", "response_content_type", "cost", "tokens_in", "tokens_out", "duration"}
)


def _same(field: Any, value: Any) -> bool | None:
    """Whether a row's field equals a filter value; None when the types leave it undecidable."""
    if isinstance(field, bool) or isinstance(value, bool):
        if isinstance(field, bool) and isinstance(value, bool):
            return field == value
        return None
    if isinstance(field, (int, float)) and isinstance(value, (int, float)):
        return field == value
    if isinstance(field, str) and isinstance(value, str):
        return field == value
    return None


def _order(field: Any, value: Any, key: str) -> tuple[Any, Any] | None:
    """The row's field and a filter value as comparable values, or None."""
    if key == "created_at":
        try:
            return parse_created_at(field), parse_created_at(value)
        except AIGatewayInputError:
            return None
    if isinstance(field, (int, float)) and isinstance(value, (int, float)) and not isinstance(field, bool):
        return field, value
    return None


def contradicted_filter(row: Mapping[str, Any], filters: Sequence[Filter]) -> Filter | None:
    """The first filter that ``row`` plainly contradicts, or None.

    Only what the row itself shows is judged: keys of its own fields (not ``metadata.*``,
    ``tokens`` or ``prompts.*``), fields present and not null, values of comparable types.
    Several values: ``eq`` and ``contains`` match any of them (case-insensitive substring for
    ``contains``), ``neq`` none of them; ``lt``/``gt`` compare numbers, and timestamps for
    ``created_at``. Whatever cannot be judged counts as matching.
    """
    for flt in filters:
        key, operator, values = flt["key"], flt["operator"], flt["value"]
        field = row.get(key)
        if key not in _ROW_CHECKED_KEYS or field is None or (key == "created_at" and operator == "contains"):
            continue
        verdicts: list[bool | None]
        if operator in ("eq", "neq"):
            verdicts = [_same(field, v) for v in values]
            hit = any(verdicts) if operator == "eq" else not any(verdicts)
            if not hit and (operator == "neq" or None not in verdicts):
                return flt
        elif operator == "contains":
            judged = isinstance(field, str) and all(isinstance(v, str) for v in values)
            if judged and not any(v.lower() in field.lower() for v in values):
                return flt
        else:
            ordered = [_order(field, v, key) for v in values]
            pairs = [p for p in ordered if p is not None]
            if pairs and len(pairs) == len(ordered):
                below = operator == "lt"
                if not any((a < b) if below else (a > b) for a, b in pairs):
                    return flt
    return None
