"""One validator per kind of value; each names the parameter in its error.

Counts, sizes and numbers of seconds, choices, durations, the ids that go into a route (gateway,
account, log) and field names are checked here, before any request goes out; so are the lists and
dicts a Jinja template rendered to text.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError

_GATEWAY_ID = re.compile(r"^[a-z0-9_]+(?:-[a-z0-9_]+)*$")
_ACCOUNT_ID = re.compile(r"^[0-9a-f]{32}$")
# Log ids are opaque (ULIDs, UUIDv7, ...) but never contain path or query syntax.
_LOG_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


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


def is_templated(value: Any) -> bool:
    """Whether ``value`` is only known at run time: a Jinja template, an XComArg, or a list or dict holding one.

    Such a value is checked once rendered (in ``execute``); a static one when the task is created.
    """
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(is_templated(key) or is_templated(item) for key, item in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(is_templated(item) for item in value)
    return hasattr(value, "iter_references")  # an XComArg (Airflow's ResolveMixin), resolved at run time


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


def _number_in(value: Any, low: float, high: float) -> bool:
    """A finite int or float (never a bool) from ``low`` to ``high``."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and low <= value <= high


def validate_feedback(value: Any, *, param: str = "feedback") -> float:
    """A log's feedback: a number from -1 (thumbs down) to 1 (thumbs up)."""
    if not _number_in(value, -1, 1):
        raise AIGatewayInputError(f"{param} must be a number from -1 to 1 (or None), got {value!r}")
    return value


def validate_score(value: Any, *, param: str = "score") -> float:
    """A log's score: a number from 0 to 100."""
    if not _number_in(value, 0, 100):
        raise AIGatewayInputError(f"{param} must be a number from 0 to 100 (or None), got {value!r}")
    return value


#: Most entries of a log's metadata.
MAX_METADATA_ENTRIES = 5


def validate_metadata(value: Any, *, param: str = "metadata") -> dict[str, str | float | bool]:
    """A log's metadata: a dict of at most 5 non-empty string keys to strings, finite numbers or booleans.

    Returns a copy, so that the caller's dict changing later changes nothing.
    """
    if not isinstance(value, Mapping):
        raise AIGatewayInputError(f"{param} must be a dict (or None), got {type(value).__name__}")
    if len(value) > MAX_METADATA_ENTRIES:
        raise AIGatewayInputError(f"{param} holds at most {MAX_METADATA_ENTRIES} entries, got {len(value)}")
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise AIGatewayInputError(f"{param} keys must be non-empty strings, got {key!r}")
        if not isinstance(item, (str, int, float, bool)) or (isinstance(item, float) and not math.isfinite(item)):
            raise AIGatewayInputError(f"{param}[{key!r}] must be a string, finite number or boolean, got {item!r}")
    return dict(value)
