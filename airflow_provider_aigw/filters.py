"""Filters in the AI Gateway's own shape, ``created_at`` windows, and the one validator of each kind of value.

A filter is ``{"key": K, "operator": "eq"|"neq"|"contains"|"lt"|"gt", "value": [v, ...]}``.
Filters go on the wire as ONE query parameter ``filters`` holding a JSON array: the
bracket and dotted forms the official SDKs send are ignored by the API, which then
lists (or deletes) everything.

Time windows are half-open ``[start, end)`` on ``created_at``. The API only offers
``gt``/``lt``, so ``created_at >= start`` is sent as ``created_at > start - 1 ms``: the
API stores ``created_at`` with millisecond precision (``2026-11-26T13:04:05.123Z``).
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pendulum

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError

OPERATORS = frozenset({"eq", "neq", "contains", "lt", "gt"})
#: Granularity of ``created_at`` in the API; windows are shifted by this to be half-open.
CREATED_AT_RESOLUTION = dt.timedelta(milliseconds=1)

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
TimeLike = dt.datetime | str

_GATEWAY_ID = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")
# Log ids are opaque (ULIDs, UUIDv7, ...) but never contain path or query syntax.
# The time of day followed by "Z" or an offset: strings without one are refused, not guessed.
_AWARE_ISO_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_LOG_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_literal(value: Any, *, param: str) -> Any:
    """Turn a rendered Jinja string holding a list or dict back into the object.

    Without ``render_template_as_native_obj`` a template such as ``"{{ params.filters }}"``
    renders to the object's text; JSON and Python literals are accepted. Other values are
    returned unchanged.
    """
    if not isinstance(value, str):
        return value
    text = value.strip()
    if not text.startswith(("[", "{")):
        return value
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise AIGatewayInputError(f"{param} looks like a list or dict but cannot be parsed: {text[:200]!r}") from None


def normalize_filters(filters: Any, *, param: str = "filters") -> list[Filter]:
    """Validate filters and return them in wire shape (``value`` always a list).

    Accepts ``None``, one filter dict, or a sequence of filter dicts. Unknown keys are
    allowed on purpose for reads: the API adds keys over time (a DELETE checks them with
    :func:`check_delete_filter_keys`).

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


def check_delete_filter_keys(filters: Sequence[Filter], *, param: str = "filters") -> None:
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


def parse_time(value: TimeLike | None, *, param: str) -> pendulum.DateTime | None:
    """Parse a timezone-aware datetime or ISO 8601 string into UTC; naive values are refused."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = pendulum.parse(text, strict=True)
        except Exception as err:
            raise AIGatewayInputError(f"{param} must be an ISO 8601 timestamp with a timezone, got {value!r}") from err
        if not isinstance(parsed, dt.datetime):
            raise AIGatewayInputError(f"{param} must be a timestamp, not a date or duration: {value!r}")
        # pendulum assumes UTC for strings without an offset; we refuse to guess.
        if not _AWARE_ISO_TIME.search(text):
            raise AIGatewayInputError(f"{param} has no timezone ({value!r}); add 'Z' or an offset such as '+00:00'")
        return pendulum.instance(parsed).in_timezone("UTC")
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise AIGatewayInputError(f"{param} is a naive datetime ({value.isoformat()}); pass a timezone-aware one")
        return pendulum.instance(value).in_timezone("UTC")
    raise AIGatewayInputError(
        f"{param} must be a timezone-aware datetime or ISO 8601 string, got {type(value).__name__}"
    )


def format_time(value: dt.datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, the form the API uses for ``created_at``."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def plain_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime as a stdlib one in UTC: pendulum's (:func:`parse_time`) compare 25x slower."""
    utc = value.astimezone(dt.timezone.utc)
    return dt.datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=dt.timezone.utc)


def format_bound(value: dt.datetime | None) -> str:
    """:func:`format_time` of a window bound, ``-`` for an open one (in messages)."""
    return format_time(value) if value is not None else "-"


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


def window_filters(start: TimeLike | None = None, end: TimeLike | None = None) -> list[Filter]:
    """Filters selecting ``start <= created_at < end`` (either bound optional)."""
    start_dt, end_dt = validate_window(start, end)
    result: list[Filter] = []
    if start_dt is not None:
        result.append(created_at_filter("gt", start_dt - CREATED_AT_RESOLUTION))
    if end_dt is not None:
        result.append(created_at_filter("lt", end_dt))
    return result


def created_at_filter(operator: str, value: dt.datetime) -> Filter:
    return {"key": "created_at", "operator": operator, "value": [format_time(value)]}


def parse_created_at(value: Any) -> dt.datetime:
    """Parse a log's ``created_at`` (ISO 8601 string, ``Z`` or offset, or datetime) to an aware UTC datetime.

    Strings without an offset are taken as UTC (the API always answers in UTC).
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            parsed = _parse_iso_slow(text, value)
    else:
        raise AIGatewayInputError(f"log created_at must be an ISO 8601 string, got {value!r}")
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.timezone.utc)
    return parsed.astimezone(dt.timezone.utc)


_ISO_SLOW = re.compile(r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2})(?:\.(\d+))?([+-]\d{2}:?\d{2})?")


def _parse_iso_slow(text: str, original: Any) -> dt.datetime:
    # Python 3.10's fromisoformat accepts only 3 or 6 fractional digits.
    m = _ISO_SLOW.fullmatch(text)
    if not m:
        raise AIGatewayInputError(f"log created_at is not ISO 8601: {original!r}")
    frac = (m.group(2) or "").ljust(6, "0")[:6]
    tz = m.group(3) or ""
    if tz and ":" not in tz:
        tz = f"{tz[:3]}:{tz[3:]}"
    try:
        return dt.datetime.fromisoformat(f"{m.group(1)}.{frac}{tz}")
    except ValueError as exc:
        raise AIGatewayInputError(f"log created_at is not ISO 8601: {original!r}") from exc


def validate_positive(
    value: Any,
    *,
    param: str,
    integer: bool = True,
    maximum: int | None = None,
    allow_zero: bool = False,
    unit: str = "",
    error: type[AIGatewayError] = AIGatewayInputError,
) -> Any:
    """The one check of counts, sizes and numbers of seconds: a number (never a bool, NaN or infinity) above zero.

    :param param: the name the error gives (e.g. ``"timeout in connection 'x'"``).
    :param integer: require an ``int``; otherwise any int or float.
    :param maximum: inclusive upper bound (integers only).
    :param allow_zero: accept 0 too.
    :param unit: appended to "number" in the error, e.g. ``" of seconds"``.
    :param error: exception class (:class:`AIGatewayConfigError` for connection settings).
    """
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    ok = ok and (isinstance(value, int) or math.isfinite(value))
    if ok:
        ok = (value >= 0 if allow_zero else value > 0) and (maximum is None or value <= maximum)
    if not ok:
        if integer and maximum is not None:
            what = f"an integer from {0 if allow_zero else 1} to {maximum}"
        elif integer:
            what = "an integer >= 0" if allow_zero else "a positive integer"
        else:
            what = f"a non-negative number{unit}" if allow_zero else f"a positive number{unit}"
        raise error(f"{param} must be {what}, got {value!r}")
    return value


def validate_choice(value: Any, allowed: Iterable[str], *, param: str) -> str:
    """The one check of a value picked from a fixed set (an order key, a format, a mode)."""
    options = sorted(allowed)
    if not isinstance(value, str) or value not in options:
        raise AIGatewayInputError(f"{param} must be one of {options}, got {value!r}")
    return value


def validate_duration(value: Any, *, param: str, allow_zero: bool = True) -> dt.timedelta:
    """The one check of durations: a ``timedelta`` or a finite number of seconds, never negative.

    :param allow_zero: accept a zero duration (otherwise it must be above zero).
    """
    delta: dt.timedelta | None = None
    try:
        if isinstance(value, dt.timedelta):
            delta = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            delta = dt.timedelta(seconds=value)
    except OverflowError:
        delta = None
    if delta is None or delta < dt.timedelta(0) or (not allow_zero and delta == dt.timedelta(0)):
        bound = ">= 0" if allow_zero else "> 0"
        raise AIGatewayInputError(f"{param} must be a timedelta or a number of seconds {bound}, got {value!r}")
    return delta


def validate_gateway_id(gateway_id: Any, *, param: str = "gateway_id") -> str:
    """Check a gateway id against the API's pattern, so it can never alter the route."""
    if not isinstance(gateway_id, str) or not gateway_id:
        raise AIGatewayInputError(
            f"{param} is required: pass it to the hook/operator or set 'gateway_id' in the "
            f"connection extra (got {gateway_id!r})"
        )
    if len(gateway_id) > 64 or not _GATEWAY_ID.fullmatch(gateway_id):
        raise AIGatewayInputError(
            f"{param} {gateway_id!r} is not a valid gateway id: 1-64 characters of lowercase "
            "letters, digits and '_', optionally joined by single '-'"
        )
    return gateway_id


def validate_account_id(account_id: Any, *, source: str) -> str:
    """Check an account id (32 hex characters)."""
    if not account_id:
        raise AIGatewayInputError(f"account_id is missing: set 'account_id' in the extra of {source}")
    if not isinstance(account_id, str) or not _ACCOUNT_ID.fullmatch(account_id):
        raise AIGatewayInputError(f"account_id in {source} must be 32 lowercase hex characters, got {account_id!r}")
    return account_id


def validate_log_id(log_id: Any, *, param: str = "log_id") -> str:
    """Check a log id holds no path, query or encoding syntax."""
    if not isinstance(log_id, str) or not _LOG_ID.fullmatch(log_id):
        raise AIGatewayInputError(
            f"{param} {log_id!r} is not a valid log id: expected 1-128 letters, digits, '-' or '_'"
        )
    return log_id


def validate_log_ids(value: Any, *, param: str = "log_ids") -> list[str]:
    """One log id, or a list of ids or of log dicts with ``id`` (a list operator's XCom): the ids, once each."""
    items = [value] if isinstance(value, (str, Mapping)) else value
    if not isinstance(items, Sequence):
        raise AIGatewayInputError(f"{param} must be an id or a list of ids, got {type(value).__name__}")
    ids: list[str] = []
    for index, item in enumerate(items):
        raw = item.get("id") if isinstance(item, Mapping) else item
        ids.append(validate_log_id(raw, param=f"{param}[{index}]"))
    return list(dict.fromkeys(ids))


def validate_names(value: Any, *, param: str) -> list[str]:
    """A non-empty list of non-empty names (e.g. fields to keep), without repeats, in order."""
    if isinstance(value, str) or not isinstance(value, Sequence) or not value:
        raise AIGatewayInputError(f"{param} must be a non-empty list of field names, got {value!r}")
    for name in value:
        if not isinstance(name, str) or not name:
            raise AIGatewayInputError(f"{param} must hold non-empty strings, got {name!r}")
    return list(dict.fromkeys(value))


#: Keys a listed row can be checked against: its own fields, compared as the API documents.
_ROW_CHECKED_KEYS = frozenset(
    {"id", "created_at", "provider", "model", "model_type", "success", "cached", "request_type", "event_id"}
    | {"request_content_type", "response_content_type", "cost", "tokens_in", "tokens_out", "duration"}
)


def _same(field: Any, value: Any) -> bool | None:
    """Whether a row's field equals a filter value; None when the types leave it undecidable."""
    if isinstance(field, bool) or isinstance(value, bool):
        return field == value if isinstance(field, bool) and isinstance(value, bool) else None
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
