"""An event watcher's memory of the logs it has emitted, so that each new log fires once.

A watcher must fire on *new* logs only, yet logs arrive late: one can become listable up to a
minute after its ``created_at``. So every poll re-reads an overlap behind the newest log seen,
and drops the ids it has already emitted there. The :class:`Watermark` holds exactly what that
takes, and stays small enough to live in an Airflow 3.3 asset's state:

- ``newest``: the ``created_at`` of the newest log emitted (``None`` before the first one);
- ``seen``: the ids emitted at each instant from the re-read start up to ``newest``;
- ``horizon``: where the re-read starts at the least. Nothing created before it is ever
  emitted: a fresh watermark's look-back start, else ``newest - overlap`` or later.

:func:`poll_once` lists the logs created at or after ``max(horizon, newest - overlap)``, oldest
first, emits those not in ``seen`` and returns the advanced watermark. A late log is caught
when it becomes listable while its ``created_at`` is still inside the overlap; one that
becomes listable later than that is missed (the documented bound). The listing comes from a
:data:`ListSince` callable, so this module knows neither the client nor Airflow.

Memory is bounded: when the ids in the overlap would make the state longer than
:data:`MAX_STATE_CHARS`, the oldest instants are forgotten and the horizon moves past them, so
the re-read never reaches a log it cannot recognise (a busy filter gets a shorter overlap, never
a repeat).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote_plus

from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayListingError
from airflow_provider_aigw.query import Filter
from airflow_provider_aigw.timestamps import CREATED_AT_RESOLUTION, format_time, parse_created_at
from airflow_provider_aigw.validation import validate_duration, validate_log_id, validate_positive

#: Logs created at or after an instant that also match the given extra filters (ANDed with the
#: watcher's own), oldest first; the watcher's listing. With the client: a keyset walk by
#: ``created_at`` ascending, ``per_page=50``, that ends on a short page.
ListSince = Callable[[dt.datetime, list[Filter]], Iterable[Mapping[str, Any]]]

#: Version of the JSON form of a :class:`Watermark` (:meth:`Watermark.to_state`).
STATE_VERSION = 1
#: Longest JSON form of a watermark, in characters: half of Airflow 3.3's default limit on an
#: asset state value (``[state_store] max_value_storage_bytes``, 65,535), about 800 UUID ids.
MAX_STATE_CHARS = 32_000
#: URL-encoded characters of the ``id neq [...]`` filter that keeps ids already emitted out of
#: a poll's listing (about 130 UUID ids, the newest first), so that a poll with nothing new costs
#: one request. It leaves most of the listing's own limit on the ``filters`` parameter
#: (:data:`~airflow_provider_aigw.listing.MAX_FILTERS_QUERY_CHARS`) to the watcher's filters and
#: the walk's own exclusions. Emitted ids beyond it are still dropped, after listing.
MAX_EXCLUDED_QUERY_CHARS = 6_000
#: Most logs in one batch (one event): the ids travel in the event's payload.
MAX_BATCH = 1_000
DEFAULT_MAX_BATCH = 500

_COMMA = quote_plus(",")


def _floor_ms(value: dt.datetime) -> dt.datetime:
    """An instant at the API's resolution of ``created_at`` (milliseconds), in UTC."""
    utc = value.astimezone(dt.timezone.utc)
    return utc.replace(microsecond=utc.microsecond // 1000 * 1000)


def _ms(delta: dt.timedelta) -> int:
    return delta // CREATED_AT_RESOLUTION


@dataclasses.dataclass(frozen=True)
class Watermark:
    """What a watcher has emitted: see the module's docstring. Build one with :meth:`fresh` or
    :meth:`from_state`; :func:`poll_once` returns the next one.

    :param horizon: nothing created before this instant is ever emitted.
    :param newest: ``created_at`` of the newest log emitted, or ``None``.
    :param seen: ``(instant, ids)`` of the logs emitted at or after the horizon, oldest first.
    """

    horizon: dt.datetime
    newest: dt.datetime | None = None
    seen: tuple[tuple[dt.datetime, tuple[str, ...]], ...] = ()

    @classmethod
    def fresh(cls, now: dt.datetime, lookback: Any) -> Watermark:
        """A watcher's first watermark: logs created from ``now - lookback`` on are new.

        :param now: the current time (timezone-aware).
        :param lookback: a ``timedelta`` or seconds (0 or more): how far behind ``now`` a watcher
            without a saved watermark starts. Logs created earlier never fire it; logs created
            in the look-back that an earlier run of the watcher emitted fire it again.
        """
        return cls(horizon=_floor_ms(now - validate_duration(lookback, param="lookback")))

    def since(self, overlap: dt.timedelta) -> dt.datetime:
        """Where the next poll's listing starts: ``overlap`` behind the newest log, never before the horizon."""
        if self.newest is None:
            return self.horizon
        return max(self.horizon, self.newest - overlap)

    def ids(self) -> set[str]:
        """Every id remembered as emitted."""
        return {log_id for _instant, ids in self.seen for log_id in ids}

    def advanced(self, logs: Sequence[tuple[dt.datetime, str]], overlap: dt.timedelta) -> Watermark:
        """This watermark after emitting ``logs`` (``(created_at, id)``), its memory cut to the overlap and bound."""
        by_instant: dict[dt.datetime, list[str]] = {instant: list(ids) for instant, ids in self.seen}
        for created, log_id in logs:
            by_instant.setdefault(_floor_ms(created), []).append(log_id)
        newest = max([*by_instant, *([self.newest] if self.newest is not None else [])], default=None)
        horizon = self.horizon if newest is None else max(self.horizon, newest - overlap)
        seen = tuple((instant, tuple(by_instant[instant])) for instant in sorted(by_instant) if instant >= horizon)
        return _bounded(Watermark(horizon=horizon, newest=newest, seen=seen))

    def skipped_to(self, newest: Iterable[Mapping[str, Any]], overlap: dt.timedelta) -> Watermark:
        """This watermark moved ahead to ``newest`` (the logs of a listing's newest page), without
        remembering the logs between: the shared change detector's skip past a burst.

        The horizon moves just past the oldest of ``newest`` (its instant may hold logs not on the
        page), so the next poll re-reads only logs it remembers.
        """
        logs = [
            (_floor_ms(parse_created_at(log.get("created_at"))), validate_log_id(log.get("id"), param="a listed id"))
            for log in newest
        ]
        if not logs:
            return self
        oldest = min(created for created, _id in logs)
        return dataclasses.replace(self, horizon=max(self.horizon, oldest + CREATED_AT_RESOLUTION)).advanced(
            logs, overlap
        )

    def excluded(self, since: dt.datetime) -> list[Filter]:
        """The ``id neq`` filter keeping the newest ids emitted at or after ``since`` out of a listing.

        At most :data:`MAX_EXCLUDED_QUERY_CHARS` URL-encoded characters; none when nothing is
        remembered there.
        """
        newest_first = (log_id for instant, ids in reversed(self.seen) if instant >= since for log_id in reversed(ids))
        chosen: list[str] = []
        length = 0
        for log_id in newest_first:
            length += len(quote_plus(json.dumps(log_id))) + len(_COMMA)
            if length > MAX_EXCLUDED_QUERY_CHARS:
                break
            chosen.append(log_id)
        return [{"key": "id", "operator": "neq", "value": chosen}] if chosen else []

    def to_state(self) -> dict[str, Any]:
        """The compact JSON form, for an asset's state: at most :data:`MAX_STATE_CHARS` characters.

        ``{"v": 1, "horizon": ..., "newest": ..., "seen": [[ms before newest, [ids]], ...]}``,
        instants as the API writes ``created_at``.
        """
        return {
            "v": STATE_VERSION,
            "horizon": format_time(self.horizon),
            "newest": format_time(self.newest) if self.newest is not None else None,
            "seen": [[_ms(self.newest - instant), list(ids)] for instant, ids in self.seen] if self.newest else [],
        }

    @classmethod
    def from_state(cls, state: Any) -> Watermark:
        """The watermark of a :meth:`to_state` value.

        :raises AIGatewayInputError: ``state`` is not such a value (another version included).
        """
        if not isinstance(state, Mapping) or state.get("v") != STATE_VERSION:
            raise AIGatewayInputError(f"the saved watermark is not a version {STATE_VERSION} watermark: {state!r:.200}")
        try:
            horizon = parse_created_at(state["horizon"])
            newest = parse_created_at(state["newest"]) if state["newest"] is not None else None
            seen = []
            for offset, ids in state["seen"]:
                if newest is None or not isinstance(offset, int) or offset < 0 or not isinstance(ids, list):
                    raise ValueError(f"bad entry {[offset, ids]!r:.200}")
                seen.append((newest - offset * CREATED_AT_RESOLUTION, tuple(validate_log_id(i) for i in ids)))
        except (KeyError, TypeError, ValueError) as err:
            raise AIGatewayInputError(f"the saved watermark cannot be read ({err}): {state!r:.200}") from None
        instants = [instant for instant, _ids in seen]
        if instants != sorted(set(instants)):
            raise AIGatewayInputError(f"the saved watermark's instants are not in order: {state!r:.200}")
        return cls(horizon=horizon, newest=newest, seen=tuple(seen))


def _state_chars(watermark: Watermark) -> int:
    """Characters of the state as Airflow measures a value against its limit (``json.dumps``, default separators)."""
    return len(json.dumps(watermark.to_state()))


def _bounded(watermark: Watermark) -> Watermark:
    """``watermark`` with its oldest instants forgotten until its state fits :data:`MAX_STATE_CHARS`.

    The horizon moves past each forgotten instant, so no poll lists a log it could not
    recognise as emitted.
    """
    excess = _state_chars(watermark) - MAX_STATE_CHARS
    newest = watermark.newest
    if excess <= 0 or newest is None:  # without a newest log nothing is remembered
        return watermark
    seen = list(watermark.seen)
    horizon = watermark.horizon
    while excess > 0 and seen:
        instant, ids = seen.pop(0)
        excess -= len(json.dumps([_ms(newest - instant), list(ids)])) + len(", ")
        horizon = instant + CREATED_AT_RESOLUTION
    return Watermark(horizon=horizon, newest=newest, seen=tuple(seen))


@dataclasses.dataclass(frozen=True)
class Batch:
    """The new logs one poll found: one event's worth.

    :param ids: their ids, in listing order (``created_at`` ascending); never truncated: a
        poll that finds more than ``max_batch`` new logs stops there and the next poll goes on.
    :param oldest: the oldest ``created_at`` among them.
    :param newest: the newest ``created_at`` among them.
    """

    ids: tuple[str, ...]
    oldest: dt.datetime
    newest: dt.datetime

    @property
    def count(self) -> int:
        return len(self.ids)

    @property
    def window(self) -> tuple[dt.datetime, dt.datetime]:
        """The half-open ``created_at`` window ``[oldest, newest + 1 ms)`` holding the batch."""
        return self.oldest, self.newest + CREATED_AT_RESOLUTION

    def to_payload(self) -> dict[str, Any]:
        """The batch as JSON: ``count``, ``ids``, the window's ``start`` and ``end``, ``newest_created_at``."""
        start, end = self.window
        return {
            "count": self.count,
            "ids": list(self.ids),
            "start": format_time(start),
            "end": format_time(end),
            "newest_created_at": format_time(self.newest),
        }


def poll_once(
    list_since: ListSince, watermark: Watermark, *, overlap: Any, max_batch: int = DEFAULT_MAX_BATCH
) -> tuple[Batch | None, Watermark]:
    """List what is new since ``watermark``: the batch (``None`` when nothing is) and the next watermark.

    Lists the logs created at or after :meth:`Watermark.since` (``overlap`` behind the newest
    log emitted), keeping the newest emitted ids out of the listing with an ``id neq`` filter
    (:meth:`Watermark.excluded`) and dropping any other emitted id it returns. With nothing new
    and no more than a page of emitted logs left unexcluded in the overlap, that is one request.
    Stops after ``max_batch`` new logs, so a backlog drains over several polls.

    :param list_since: the listing, see :data:`ListSince`.
    :param overlap: a ``timedelta`` or seconds: how far behind the newest log each poll re-reads,
        catching logs that become listable late.
    :param max_batch: most logs in one batch (1 to :data:`MAX_BATCH`).
    :raises AIGatewayListingError: the listing returned a log created before its start, or out
        of ``created_at`` order, so what is new cannot be told exactly.
    """
    overlap_delta = validate_duration(overlap, param="overlap")
    validate_positive(max_batch, param="max_batch", maximum=MAX_BATCH)
    since = watermark.since(overlap_delta)
    emitted = watermark.ids()
    new: list[tuple[dt.datetime, str]] = []
    new_ids: set[str] = set()
    previous = since
    logs = iter(list_since(since, watermark.excluded(since)))
    try:
        for log in logs:
            created = parse_created_at(log.get("created_at"))
            log_id = validate_log_id(log.get("id"), param="the id of a listed log")
            if created < previous:
                raise AIGatewayListingError(
                    f"The watcher's listing from {format_time(since)} returned log {log_id!r} created at "
                    f"{format_time(created)}, "
                    + ("before its start" if created < since else f"after a log created at {format_time(previous)}"),
                    method="GET",
                )
            previous = created
            if log_id in emitted or log_id in new_ids:
                continue
            new.append((created, log_id))
            new_ids.add(log_id)
            if len(new) >= max_batch:
                break
    finally:
        close = getattr(logs, "close", None)
        if close is not None:
            close()  # a generator walk stops requesting pages
    advanced = watermark.advanced(new, overlap_delta)
    if not new:
        return None, advanced
    return Batch(ids=tuple(i for _c, i in new), oldest=new[0][0], newest=new[-1][0]), advanced
