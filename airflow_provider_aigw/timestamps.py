"""Instants: times given by users, ``created_at`` as the API writes it, and the compact form in archive names.

The API stores ``created_at`` with millisecond precision (``2026-11-26T13:04:05.123Z``) and answers
in UTC. Times given by users must carry a timezone: a naive one is refused, never guessed.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pendulum

from airflow_provider_aigw.exceptions import AIGatewayInputError

#: Granularity of ``created_at`` in the API; windows are shifted by this to be half-open.
CREATED_AT_RESOLUTION = dt.timedelta(milliseconds=1)

TimeLike = dt.datetime | str

# The time of day followed by "Z" or an offset: strings without one are refused, not guessed.
_AWARE_ISO_TIME = re.compile(r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)


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


def plain_utc(value: dt.datetime) -> dt.datetime:
    """An aware datetime as a stdlib one in UTC: pendulum's (:func:`parse_time`) compare 25x slower."""
    utc = value.astimezone(dt.timezone.utc)
    return dt.datetime(*utc.timetuple()[:6], utc.microsecond, tzinfo=dt.timezone.utc)


def utc_datetime(value: Any, *, param: str) -> dt.datetime:
    """A required instant as a UTC stdlib datetime (:func:`parse_time`'s rules; ``None`` refused)."""
    parsed = parse_time(value, param=param)
    if parsed is None:
        raise AIGatewayInputError(f"{param} is required: a timezone-aware datetime or ISO 8601 string")
    return plain_utc(parsed)


def format_time(value: dt.datetime) -> str:
    """UTC ISO 8601 with milliseconds and ``Z``, the form the API uses for ``created_at``."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def format_exact(value: dt.datetime) -> str:
    """Render an aware datetime exactly as ISO 8601 UTC with ``Z`` (fraction only when non-zero)."""
    value = value.astimezone(dt.timezone.utc)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond == 0:
        return base + "Z"
    if value.microsecond % 1000 == 0:
        return f"{base}.{value.microsecond // 1000:03d}Z"
    return f"{base}.{value.microsecond:06d}Z"


def format_bound(value: dt.datetime | None) -> str:
    """:func:`format_time` of a window bound, ``-`` for an open one (in messages)."""
    return format_time(value) if value is not None else "-"


def parse_created_at(value: Any) -> dt.datetime:
    """Parse a log's ``created_at`` (ISO 8601 string, ``Z`` or offset, or datetime) to an aware UTC datetime.

    Strings without an offset are taken as UTC (the API always answers in UTC).
    """
    if type(value) is str:
        # The API's form (``...T00:11:56.123Z``) parses at once on Python 3.11+ (3.10 refuses the "Z").
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if parsed.tzinfo is dt.timezone.utc:
                return parsed
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


def format_compact(value: dt.datetime) -> str:
    """A UTC datetime in the compact form of archive names, ``20261126T000000Z`` (fraction only when non-zero)."""
    text = value.strftime("%Y%m%dT%H%M%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def parse_compact(text: str) -> dt.datetime:
    """The UTC datetime of a :func:`format_compact` text."""
    fmt = "%Y%m%dT%H%M%S.%fZ" if "." in text else "%Y%m%dT%H%M%SZ"
    return dt.datetime.strptime(text, fmt).replace(tzinfo=dt.timezone.utc)
