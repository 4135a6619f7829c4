"""Deferrable trigger waiting for AI Gateway logs that match filters.

:class:`AIGatewayLogsTrigger` is the deferrable twin of
:class:`~airflow_provider_aigw.sensors.ai_gateway.AIGatewayLogsSensor`. Both make the same
check, :meth:`AIGatewayHook.check_logs <airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook.check_logs>`
(one HTTP code path), so poke, reschedule and deferrable modes decide and report identically;
here every blocking step - the connection lookup and each HTTP call with the client's own
retries - runs in a worker thread via :func:`asyncio.to_thread`, and every wait is an
:func:`asyncio.sleep`, so the triggerer's event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow_provider_aigw.compat import BaseTrigger, TriggerEvent
from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayError, is_transient, outage_message
from airflow_provider_aigw.hooks.ai_gateway import (
    AIGatewayHook,
    settled_message,
    validate_max_matches,
    validate_min_count,
)
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.timestamps import TimeLike, format_time
from airflow_provider_aigw.validation import validate_duration

#: Longest wait between polls after transient failures when no ``max_interval`` is given.
DEFAULT_MAX_BACKOFF = 300.0


def _seconds_or_none(value: Any, name: str) -> float | None:
    """A duration argument in seconds (JSON-serialisable), or None when not given."""
    return None if value is None else validate_duration(value, param=name).total_seconds()


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
            wait = min(self.poll_interval * 2 ** (failures - 1), max(cap, self.poll_interval))
            if retry_after:
                wait = max(wait, retry_after)
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
