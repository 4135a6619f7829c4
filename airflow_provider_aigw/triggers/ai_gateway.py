"""The triggers: a deferrable wait for AI Gateway logs that match filters, and an asset watcher's.

:class:`AIGatewayLogsTrigger` is the deferrable twin of
:class:`~airflow_provider_aigw.sensors.ai_gateway.AIGatewayLogsSensor`. Both make the same
check, :meth:`AIGatewayHook.check_logs <airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook.check_logs>`
(one HTTP code path), so poke, reschedule and deferrable modes decide and report identically;
here every blocking step - the connection lookup and each HTTP call with the client's own
retries - runs in a worker thread via :func:`asyncio.to_thread`, and every wait is an
:func:`asyncio.sleep`, so the triggerer's event loop is never blocked.

:class:`AIGatewayLogsEventTrigger` is the trigger of an Airflow 3 ``AssetWatcher``: it runs
until the DAG changes and yields an event per batch of *new* matching logs, each log once in
the normal case (:mod:`airflow_provider_aigw.watermark`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

from airflow_provider_aigw.compat import BaseEventTrigger, BaseTrigger, TriggerEvent
from airflow_provider_aigw.events import EVENT_KIND
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayError,
    AIGatewayInputError,
    is_transient,
    outage_message,
)
from airflow_provider_aigw.hooks.ai_gateway import (
    AIGatewayHook,
    settled_message,
    validate_max_matches,
    validate_min_count,
)
from airflow_provider_aigw.query import LogQuery, encode_filters
from airflow_provider_aigw.timestamps import TimeLike, format_time
from airflow_provider_aigw.validation import validate_duration, validate_positive
from airflow_provider_aigw.watermark import Watermark

#: Longest wait between polls after transient failures when no ``max_interval`` is given.
DEFAULT_MAX_BACKOFF = 300.0


def _seconds_or_none(value: Any, name: str) -> float | None:
    """A duration argument in seconds (JSON-serialisable), or None when not given."""
    return None if value is None else validate_duration(value, param=name).total_seconds()


def transient_backoff(poll_interval: float, failures: int, retry_after: float | None, cap: float) -> float:
    """Seconds to wait after ``failures`` transient failures in a row: doubling from
    ``poll_interval`` up to ``cap`` (never below ``poll_interval``), at least ``Retry-After``."""
    wait = min(poll_interval * 2 ** (failures - 1), max(cap, poll_interval))
    return max(wait, retry_after) if retry_after else wait


def _bound(value: dt.datetime | None) -> str | None:
    """A window bound as a serialised kwarg (the form ``created_at`` takes), or None when open."""
    return None if value is None else format_time(value)


class AIGatewayLogsTrigger(BaseTrigger):
    """Poll the AI Gateway Logs API until at least ``min_count`` logs match, off the event loop.

    .. seealso::
        The sensor's deferrable mode, which runs this trigger: :doc:`/sensors`.

    Every keyword argument is JSON-serialisable and :meth:`serialize` round-trips them. It
    yields exactly one event:

    * ``{"status": "success", "result": {...}}`` - ``result`` is the sensor's XCom value
      (``count``, ``min_count``, ``gateway_id``, ``start``, ``end``, ``matches``); with
      ``settled_at``, a poll made after it succeeds whatever the count;
    * ``{"status": "error", "message": ..., "http_status": ..., "error_type": ...}`` - a
      permanent failure (400, 403, 404, bad connection or input), sent at once;
    * ``{"status": "timeout", "message": ..., "count": ...}`` - ``deadline`` passed first
      (``count`` is the last count seen, ``None`` if no check succeeded).

    Transient failures (429, 5xx, timeouts, dropped connections) that persist past the
    client's own retries are retried at the next poll, backing off exponentially (honouring
    ``Retry-After``) up to ``max_interval``. The client's retry budget and request timeout
    are capped by the time left before ``deadline``, so a poll ends by the deadline plus at
    most one request's time. If the last poll before the deadline failed that way, the
    event is an ``error`` (an outage), not a ``timeout``: the sensor then fails even with
    ``soft_fail``.

    :param aigw_conn_id: Airflow connection id.
    :param gateway_id: gateway to watch; ``None`` means the connection's default.
    :param filters: filters in the API's shape (validated and normalised here).
    :param start: window start (inclusive), ISO 8601 with timezone or aware datetime.
    :param end: window end (exclusive).
    :param min_count: succeed once at least this many logs match (>= 1).
    :param max_matches: newest matches to return (0 to 50).
    :param poll_interval: seconds between polls.
    :param deadline: absolute deadline as epoch seconds; ``None`` waits forever.
    :param not_before: epoch seconds before which no poll is made (e.g. window end plus
        settle lag); ``None`` polls at once.
    :param settled_at: epoch seconds after which the window has settled (its end plus the
        settle lag): a poll made from then on is final and succeeds with whatever count, 0
        included (the sensor's ``succeed_when_settled``); ``None`` waits for ``min_count``.
    :param exponential_backoff: double the wait after every unsuccessful poll.
    :param max_interval: cap of one wait in seconds (``None``: no cap for the backoff of
        unsuccessful polls, 300 s for transient failures).
    """

    def __init__(
        self,
        *,
        aigw_conn_id: str = AIGatewayHook.default_conn_name,
        gateway_id: str | None = None,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        min_count: int = 1,
        max_matches: int = 5,
        poll_interval: float = 60.0,
        deadline: float | None = None,
        not_before: float | None = None,
        exponential_backoff: bool = False,
        max_interval: float | None = None,
        settled_at: float | None = None,
    ) -> None:
        super().__init__()
        self.aigw_conn_id = aigw_conn_id
        #: The logs polled for, validated here (the kwargs crossed a process boundary).
        self.query = LogQuery.of(gateway_id=gateway_id, filters=filters, start=start, end=end)
        self.min_count = validate_min_count(min_count)
        self.max_matches = validate_max_matches(max_matches)
        self.poll_interval = validate_duration(poll_interval, param="poll_interval").total_seconds()
        self.deadline = _seconds_or_none(deadline, "deadline")
        self.not_before = _seconds_or_none(not_before, "not_before")
        self.exponential_backoff = bool(exponential_backoff)
        self.max_interval = _seconds_or_none(max_interval, "max_interval")
        self.settled_at = _seconds_or_none(settled_at, "settled_at")
        self._hook: AIGatewayHook | None = None
        # Injectable for tests (deterministic time); production uses wall clock + asyncio.sleep.
        self._clock: Callable[[], float] = time.time
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def __repr__(self) -> str:
        return (
            f"AIGatewayLogsTrigger(aigw_conn_id={self.aigw_conn_id!r}, {self.query.describe()}, "
            f"min_count={self.min_count}, deadline={self.deadline!r})"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-serialisable kwargs that re-create this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "aigw_conn_id": self.aigw_conn_id,
                "gateway_id": self.query.gateway_id,
                "filters": list(self.query.filters),
                "start": _bound(self.query.start),
                "end": _bound(self.query.end),
                "min_count": self.min_count,
                "max_matches": self.max_matches,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
                "not_before": self.not_before,
                "exponential_backoff": self.exponential_backoff,
                "max_interval": self.max_interval,
                "settled_at": self.settled_at,
            },
        )

    # ------------------------------------------------------------ blocking part

    def _check(self, remaining: float | None) -> dict[str, Any]:
        """One poll; runs in a worker thread (connection lookup + HTTP with retries)."""
        if self._hook is None:
            # The connection is fetched by the first check, here, off the event loop.
            self._hook = AIGatewayHook(aigw_conn_id=self.aigw_conn_id)
        return self._hook.check_logs(
            self.query, min_count=self.min_count, max_matches=self.max_matches, time_left=remaining
        )

    # ---------------------------------------------------------------- the loop

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - self._clock()

    def _wait_after(self, polls: int, failures: int, retry_after: float | None) -> float:
        """Seconds to wait after ``polls`` unsuccessful polls, ``failures`` of them transient in a row."""
        if failures:
            cap = self.max_interval if self.max_interval is not None else DEFAULT_MAX_BACKOFF
            wait = transient_backoff(self.poll_interval, failures, retry_after, cap)
        elif self.exponential_backoff:
            wait = self.poll_interval * 2 ** min(polls - 1, 62)
            if self.max_interval is not None:
                wait = min(wait, self.max_interval)
        else:
            wait = self.poll_interval
        return wait

    def _timeout_event(self, last_count: int | None) -> TriggerEvent:
        seen = "no successful check" if last_count is None else f"{last_count} matching log(s)"
        return TriggerEvent(
            {
                "status": "timeout",
                "message": (
                    f"Timed out waiting for at least {self.min_count} matching log(s) "
                    f"in gateway {self.query.gateway_id or '(connection default)'}: {seen}"
                ),
                "count": last_count,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until enough logs match (success), a permanent error, or the deadline."""
        polls = failures = 0
        last_count: int | None = None
        last_failure: AIGatewayAPIError | None = None
        while True:
            if self.not_before is not None and self._clock() < self.not_before:
                until = self.not_before if self.deadline is None else min(self.not_before, self.deadline)
                self.log.info("Waiting %.1fs for the window to settle", until - self._clock())
                await self._sleep(max(0.0, until - self._clock()))
                if self.deadline is not None and self._clock() >= self.deadline:
                    yield self._timeout_event(last_count)
                    return
                continue
            retry_after: float | None = None
            checked_at = self._clock()
            try:
                result = await asyncio.to_thread(self._check, self._remaining())
            except AIGatewayAPIError as err:
                if not is_transient(err):
                    yield self._error_event(err)
                    return
                failures += 1
                last_failure = err
                retry_after = err.retry_after
                self.log.warning("Transient failure checking for logs (%d in a row): %s", failures, err)
            except Exception as err:  # bad connection or input, or a bug: never leave the task hanging
                yield self._error_event(err)
                return
            else:
                failures = 0
                last_count = result["count"]
                if result["count"] >= self.min_count:
                    yield TriggerEvent({"status": "success", "result": result})
                    return
                if self.settled_at is not None and checked_at >= self.settled_at:
                    self.log.info(settled_message(result))
                    yield TriggerEvent({"status": "success", "result": result})
                    return
                self.log.info("%d matching log(s), waiting for %d", result["count"], self.min_count)
            polls += 1
            wait = self._wait_after(polls, failures, retry_after)
            remaining = self._remaining()
            if remaining is not None:
                if remaining <= 0:
                    if failures and last_failure is not None:
                        # An outage is not "too few logs": fail, even with soft_fail.
                        yield self._error_event(last_failure, outage_message(last_failure))
                    else:
                        yield self._timeout_event(last_count)
                    return
                wait = min(wait, remaining)
            await self._sleep(wait)

    @staticmethod
    def _error_event(err: BaseException, message: str | None = None) -> TriggerEvent:
        # Non-provider errors (e.g. an unknown connection id) get their type name prepended.
        if message is None:
            message = str(err) if isinstance(err, AIGatewayError) else f"{type(err).__name__}: {err}"
        return TriggerEvent(
            {
                "status": "error",
                "message": message,
                "error_type": type(err).__name__,
                "http_status": err.status if isinstance(err, AIGatewayAPIError) else None,
            }
        )


#: Shortest poll interval of an event watcher, in seconds: 360 requests an hour when idle, 2.5%
#: of the 14,400 an hour Cloudflare allows a user, so that tens of watchers fit the budget.
MIN_EVENT_POLL_INTERVAL = 10.0
#: Default re-read behind the newest log emitted: above Cloudflare's ingestion delay (0.3 to 60 s).
DEFAULT_OVERLAP = 120.0
#: Default look-back of a watcher without a saved watermark (a first start, or Airflow 3.0 to 3.2).
DEFAULT_LOOKBACK = 300.0
#: Most logs in one event: their ids must fit one ``id eq`` filter of a listing with a window
#: (about 300 UUID ids, :data:`~airflow_provider_aigw.listing.MAX_FILTERS_QUERY_CHARS`).
MAX_EVENT_BATCH = 250
DEFAULT_EVENT_BATCH = 200
#: Seconds from yielding an event to saving the watermark past it. Airflow 3.3.2's triggerer
#: stores a yielded event 1 to 2 s later, but commits a state write at once: a watermark saved
#: sooner could outlive an event lost with the triggerer. A kill in this gap repeats the batch.
STATE_SAVE_DELAY = 5.0
#: Prefix of the asset-state key holding a watcher's watermark (then its fingerprint).
STATE_KEY_PREFIX = "aigw.watermark."
#: First item of a watcher's shared-stream key: the stream is "changes of one gateway".
SHARED_STREAM_TAG = "airflow_provider_aigw.gateway_changes"

#: Orders the listings of one triggerer process: a watcher whose poll began after the shared poll's
#: listing ended has listed everything that listing saw, so it skips that poll's signal.
_listings = itertools.count()

_Result = TypeVar("_Result")


@dataclasses.dataclass
class _Watch:
    """One running watcher: how it polls, and what it has emitted (:meth:`AIGatewayLogsEventTrigger._poll`).

    :param hook: the connection's hook (its client and request budget).
    :param query: the watched logs, gateway resolved.
    :param key: the asset-state key of its watermark.
    :param watermark: what it has emitted.
    :param listing: the place in :data:`_listings` of its last poll's start.
    :param slept: seconds already waited since that poll (the state-save delay).
    """

    hook: AIGatewayHook
    query: LogQuery
    key: str
    watermark: Watermark
    listing: int = -1
    slept: float = 0.0


class AIGatewayLogsEventTrigger(BaseEventTrigger):
    """Fire on **new** AI Gateway logs that match filters: the trigger of an ``AssetWatcher`` (Airflow 3).

    .. seealso::
        How to attach it, what each Airflow version guarantees and what it costs: :doc:`/event_driven`.

    It polls every ``poll_interval`` seconds through
    :meth:`AIGatewayHook.poll_new_logs <airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook.poll_new_logs>`
    (the client, its retries and the request budget of the connection, a Redis
    ``budget_storage`` included), off the event loop. Each poll re-reads ``overlap`` behind the
    newest log emitted, drops the ids already emitted, and yields one event per batch of new
    logs; a full batch polls again at once, an idle poll costs one request. The payload:
    ``{"kind": "aigw.new_logs", "gateway_id", "count", "ids", "start", "end",
    "newest_created_at"}``, the ``[start, end)`` window holding the batch; read it in the DAG
    with :func:`~airflow_provider_aigw.events.triggered_logs`.

    The watermark lives in the watched asset's state on Airflow 3.3 (key
    ``aigw.watermark.<fingerprint of gateway, filters and search>``), saved
    :data:`STATE_SAVE_DELAY` seconds after its event was yielded; a triggerer restart resumes
    from it. Without a state (Airflow 3.0 to 3.2, or one trigger watched by several assets) a
    (re)start lists from ``now - lookback``. Transient failures past the client's retries back
    off like :class:`AIGatewayLogsTrigger`'s (up to 300 s, honouring ``Retry-After``); a
    permanent one (bad token, unknown gateway) raises.

    On Airflow 3.3 the watchers of one gateway share one poll (:meth:`shared_stream_key`): one
    unfiltered request per ``poll_interval`` for all of them while nothing is new
    (:meth:`open_shared_stream`), and each watcher polls its own filters, exactly as above, only
    when that poll saw new logs (:meth:`filter_shared_stream`). Airflow 3.0 to 3.2 (and 2.11)
    never call these methods: every watcher runs :meth:`run`.

    Every argument is static (no templating): the kwargs are hashed to find the trigger's row,
    so they must be equal at every parse; the filters are serialised as one JSON string.

    :param aigw_conn_id: Airflow connection id.
    :param gateway_id: gateway to watch; ``None`` means the connection's default.
    :param filters: filters in the API's shape, e.g. ``{"key": "feedback", "operator": "eq", "value": [-1]}``.
    :param search: free-text search over metadata, or ``None``.
    :param poll_interval: seconds between polls, at least :data:`MIN_EVENT_POLL_INTERVAL`.
    :param overlap: seconds re-read behind the newest log emitted, to catch logs listable late.
    :param lookback: seconds behind now a watcher without a saved watermark starts.
    :param max_batch: most logs in one event (1 to :data:`MAX_EVENT_BATCH`).
    """

    def __init__(
        self,
        *,
        aigw_conn_id: str = AIGatewayHook.default_conn_name,
        gateway_id: str | None = None,
        filters: Any = None,
        search: str | None = None,
        poll_interval: float = 60.0,
        overlap: float = DEFAULT_OVERLAP,
        lookback: float = DEFAULT_LOOKBACK,
        max_batch: int = DEFAULT_EVENT_BATCH,
    ) -> None:
        super().__init__()
        if not isinstance(aigw_conn_id, str) or not aigw_conn_id:
            raise AIGatewayInputError(f"aigw_conn_id must be a connection id, got {aigw_conn_id!r}")
        self.aigw_conn_id = aigw_conn_id
        #: The logs watched (no window: the watermark sets where each poll starts).
        self.query = LogQuery.of(gateway_id=gateway_id, filters=filters, search=search)
        self.poll_interval = validate_duration(poll_interval, param="poll_interval").total_seconds()
        if self.poll_interval < MIN_EVENT_POLL_INTERVAL:
            raise AIGatewayInputError(
                f"poll_interval must be at least {MIN_EVENT_POLL_INTERVAL:g} seconds (the API's request budget "
                f"is shared by every watcher and task of the account), got {self.poll_interval:g}"
            )
        self.overlap = validate_duration(overlap, param="overlap").total_seconds()
        self.lookback = validate_duration(lookback, param="lookback").total_seconds()
        self.max_batch = validate_positive(max_batch, param="max_batch", maximum=MAX_EVENT_BATCH)
        #: Where the watermark is saved: the asset's state, once :meth:`run` found it usable.
        self._store: Any = None
        # Injectable for tests (deterministic time); production uses wall clock + asyncio.sleep.
        self._clock: Callable[[], float] = time.time
        self._sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    def __repr__(self) -> str:
        return (
            f"AIGatewayLogsEventTrigger(aigw_conn_id={self.aigw_conn_id!r}, {self.query.describe()}, "
            f"poll_interval={self.poll_interval:g})"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs: JSON scalars only (the filters as one compact JSON string)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "aigw_conn_id": self.aigw_conn_id,
                "gateway_id": self.query.gateway_id,
                "filters": encode_filters(self.query.filters),
                "search": self.query.search,
                "poll_interval": self.poll_interval,
                "overlap": self.overlap,
                "lookback": self.lookback,
                "max_batch": self.max_batch,
            },
        )

    def state_key(self, gateway_id: str) -> str:
        """The asset-state key of this watcher's watermark: a fingerprint of what it watches.

        Watchers of other filters on the same asset keep their own watermark; changing the
        filters starts a new one (from the look-back).
        """
        watched = {"gateway_id": gateway_id, "filters": list(self.query.filters), "search": self.query.search}
        digest = hashlib.sha256(json.dumps(watched, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        return STATE_KEY_PREFIX + digest[:16]

    # ------------------------------------------------------------ state

    async def _load(self, key: str) -> Watermark | None:
        """The saved watermark, or ``None`` (no state, nothing saved, or unreadable); drops the store when unusable."""
        store = getattr(self, "asset_state_store", None)  # set by Airflow 3.3's triggerer only
        if store is None:
            self.log.info("no asset state (Airflow before 3.3): starting %gs back", self.lookback)
            return None
        try:
            saved = await store.aget(key)
        except ValueError as err:  # several assets watch this trigger: no single state to use
            self.log.warning(
                "several assets watch this trigger, so its watermark cannot be saved (%s); it runs without state "
                "and a restart starts %gs back",
                err,
                self.lookback,
            )
            self._store = None
            return None
        self._store = store
        if saved is None:
            return None
        try:
            return Watermark.from_state(saved)
        except AIGatewayInputError as err:
            self.log.warning("ignoring the saved watermark %s: %s", key, err)
            return None

    async def _save(self, key: str, watermark: Watermark) -> None:
        if self._store is not None:
            await self._store.aset(key, watermark.to_state())

    # ------------------------------------------------------------ one watcher's polls

    def _connect(self) -> tuple[AIGatewayHook, LogQuery]:
        """The hook and the query naming its gateway; blocking (the connection lookup)."""
        hook = AIGatewayHook(aigw_conn_id=self.aigw_conn_id)
        return hook, hook.with_gateway(self.query)

    async def _off_loop(self, what: str, call: Callable[..., _Result], *args: Any, **kwargs: Any) -> _Result:
        """``call(*args, **kwargs)`` in a worker thread, again after a backoff while it fails transiently.

        The backoff doubles from ``poll_interval`` up to :data:`DEFAULT_MAX_BACKOFF`, at least
        ``Retry-After``; a permanent failure (bad token, unknown gateway) raises.
        """
        failures = 0
        while True:
            try:
                return await asyncio.to_thread(call, *args, **kwargs)
            except AIGatewayAPIError as err:
                if not is_transient(err):
                    raise
                failures += 1
                self.log.warning("Transient failure %s (%d in a row): %s", what, failures, err)
                await self._sleep(transient_backoff(self.poll_interval, failures, err.retry_after, DEFAULT_MAX_BACKOFF))

    async def _watch(self) -> _Watch:
        """Start watching: the connection, and the saved watermark (or a fresh one, saved at once)."""
        hook, query = await asyncio.to_thread(self._connect)
        key = self.state_key(str(query.gateway_id))
        saved = await self._load(key)
        watermark = saved or Watermark.fresh(dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc), self.lookback)
        if saved is None:
            await self._save(key, watermark)
        self.log.info("watching %s for new logs, %s", query.describe(), watermark.to_state()["newest"] or "none yet")
        return _Watch(hook, query, key, watermark)

    async def _poll(self, watch: _Watch) -> AsyncIterator[TriggerEvent]:
        """Poll until nothing more is new: one event per batch, its watermark saved
        :data:`STATE_SAVE_DELAY` after it. The one poll step of :meth:`run` and :meth:`filter_shared_stream`."""
        while True:
            watch.listing, watch.slept = next(_listings), 0.0
            batch, watch.watermark = await self._off_loop(
                "polling for new logs",
                watch.hook.poll_new_logs,
                watch.query,
                watch.watermark,
                overlap=self.overlap,
                max_batch=self.max_batch,
            )
            if batch is None:
                return
            self.log.info("%d new log(s), created up to %s", batch.count, format_time(batch.newest))
            yield TriggerEvent({"kind": EVENT_KIND, "gateway_id": str(watch.query.gateway_id), **batch.to_payload()})
            if self._store is not None:
                await self._sleep(STATE_SAVE_DELAY)
                await self._save(watch.key, watch.watermark)
                watch.slept = STATE_SAVE_DELAY
            if batch.count < self.max_batch:
                return  # else a backlog: the next batch at once

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll forever, yielding one event per batch of new logs (every watcher polls on its own)."""
        watch = await self._watch()
        while True:
            async for event in self._poll(watch):
                yield event
            await self._sleep(self.poll_interval - watch.slept)

    # ------------------------------------------------------------ Airflow 3.3's shared stream

    def shared_stream_key(self) -> Hashable:
        """The watchers polling one gateway alike share one poll, whatever their filters (Airflow 3.3).

        Equal connection, gateway, ``poll_interval`` and ``overlap``: the shared poll
        (:meth:`open_shared_stream`) gets the kwargs of one of them, and uses only these. A
        ``gateway_id`` of ``None`` (the connection's) and the same gateway named explicitly
        are two groups.
        """
        return (SHARED_STREAM_TAG, self.aigw_conn_id, self.query.gateway_id, self.poll_interval, self.overlap)

    @classmethod
    async def open_shared_stream(cls, kwargs: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """The shared poll of a group (Airflow 3.3's triggerer runs one per :meth:`shared_stream_key`).

        A change detector, not a filter: every ``poll_interval`` one listing of all the
        gateway's logs (:meth:`AIGatewayHook.poll_gateway_changes
        <airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook.poll_gateway_changes>`, the
        client and the connection's request budget, off the event loop) with its own watermark,
        started ``overlap`` back when it opens. It yields ``{"gateway_id", "new_logs",
        "changed_through", "listing"}`` when the gateway holds logs it had not seen (late ones in
        the overlap included), and after its first poll whatever it found. Nothing is new: one
        request, no signal. Transient failures back off like :meth:`run`'s; a permanent one raises
        (every watcher of the group fails with it, as each would alone).

        :param kwargs: the serialised kwargs of one watcher of the group.
        """
        detector = cls(**kwargs)
        async for change in detector._changes():
            yield change

    async def _changes(self) -> AsyncIterator[dict[str, Any]]:
        hook, query = await asyncio.to_thread(self._connect)
        gateway = str(query.gateway_id)
        seen = Watermark.fresh(dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc), self.overlap)
        first = True
        while True:
            batch, seen = await self._off_loop(
                "polling the gateway for changes", hook.poll_gateway_changes, gateway, seen, overlap=self.overlap
            )
            if batch is not None or first:
                yield {
                    "gateway_id": gateway,
                    "new_logs": batch.count if batch else 0,
                    "changed_through": format_time(batch.newest) if batch else None,
                    "listing": next(_listings),
                }
            first = False
            await self._sleep(self.poll_interval)

    async def filter_shared_stream(self, shared_stream: AsyncIterator[Any]) -> AsyncIterator[TriggerEvent]:
        """This watcher's events in a group (Airflow 3.3, instead of :meth:`run`).

        On joining it polls at once from its watermark (the asset's state), then again after
        each signal of the shared poll, unless its own poll began after that signal's listing
        ended; each poll is :meth:`run`'s, so its filters are evaluated by the API, and its
        events, watermark and state saves are exactly :meth:`run`'s. No ack mode is needed: the
        watermark lives in each watcher's asset state and the shared poll only says "look now",
        so a signal lost with a restart costs nothing (the restarted watcher polls on joining).
        """
        watch = await self._watch()
        async for event in self._poll(watch):
            yield event
        async for change in shared_stream:
            if change["listing"] < watch.listing:
                continue  # listed since that signal: nothing it saw is new here
            async for event in self._poll(watch):
                yield event
