"""Deferrable trigger waiting for AI Gateway logs that match filters.

:class:`AIGatewayLogsTrigger` is the deferrable twin of
:class:`~airflow_provider_aigw.sensors.ai_gateway.AIGatewayLogsSensor`. It polls through the
same hook and client as the sensor (one HTTP code path), but every blocking step - the
connection lookup and each HTTP call with the client's own retries - runs in a worker
thread via :func:`asyncio.to_thread`, and every wait is an :func:`asyncio.sleep`, so the
triggerer's event loop is never blocked.

The helpers :func:`check_logs` and :func:`is_transient` are shared with the sensor, so poke,
reschedule and deferrable modes decide and report identically.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.compat import BaseTrigger, TriggerEvent
from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayError
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.query import Filter, normalize_filters, validate_window
from airflow_provider_aigw.timestamps import TimeLike, format_time
from airflow_provider_aigw.validation import parse_literal, validate_duration, validate_positive

#: Upper bound of ``max_matches``: the newest matches come from one page (API max 50).
MAX_MATCHES_LIMIT = 50
#: Longest wait between polls after transient failures when no ``max_interval`` is given.
DEFAULT_MAX_BACKOFF = 300.0
#: The smallest request timeout / retry budget given to the client near the deadline.
MIN_REQUEST_BUDGET = 1.0


def is_transient(error: BaseException) -> bool:
    """Whether a failed check is worth repeating at the next poll.

    Rate limiting (429), server errors (5xx) and failures without a response (timeouts,
    dropped connections) are transient; every other API answer (400, 403, 404, ...) and
    every configuration or input error is permanent.
    """
    if not isinstance(error, AIGatewayAPIError):
        return False
    return error.status is None or error.status == 429 or error.status >= 500


def _seconds_or_none(value: Any, name: str) -> float | None:
    """A duration argument in seconds (JSON-serialisable), or None when not given."""
    return None if value is None else validate_duration(value, param=name).total_seconds()


def validate_min_count(min_count: Any) -> int:
    """``min_count`` must be an integer >= 1."""
    return validate_positive(min_count, param="min_count")


def validate_max_matches(max_matches: Any) -> int:
    """``max_matches`` must be an integer from 0 to :data:`MAX_MATCHES_LIMIT`."""
    return validate_positive(max_matches, param="max_matches", maximum=MAX_MATCHES_LIMIT, allow_zero=True)


def normalize_query(
    filters: Any, start: TimeLike | None, end: TimeLike | None
) -> tuple[list[Filter], str | None, str | None]:
    """Validate filters and window; return them in JSON-serialisable form (ISO ``Z`` strings).

    ``filters`` may also be a rendered template holding them as JSON or a Python literal
    (``"{{ params.filters }}"`` without ``render_template_as_native_obj``), as in the operators.
    """
    normalized = normalize_filters(parse_literal(filters, param="filters"))
    start_dt, end_dt = validate_window(start, end)
    return (
        normalized,
        format_time(start_dt) if start_dt is not None else None,
        format_time(end_dt) if end_dt is not None else None,
    )


def limited_client(client: AIGatewayClient, time_left: float | None) -> AIGatewayClient:
    """``client`` itself, or with ``time_left`` given a copy whose call ends within it.

    The client may retry a transient failure for up to ``retry_deadline`` (default 15
    minutes): the copy's retries and request timeout are capped by the time left (at least
    :data:`MIN_REQUEST_BUDGET`), and with no time left it makes a single attempt. A call
    therefore ends by ``time_left`` plus at most one request's time. The copy shares the
    session and the request budget.
    """
    if time_left is None:
        return client
    budget = max(MIN_REQUEST_BUDGET, time_left)
    limited = copy.copy(client)
    limited.retry_deadline = min(client.retry_deadline, budget)
    limited.timeout = min(client.timeout, budget)
    if time_left <= 0:
        limited.max_retries = 0
    return limited


def check_logs(
    hook: AIGatewayHook,
    *,
    filters: list[Filter],
    start: str | None,
    end: str | None,
    min_count: int,
    max_matches: int,
    gateway_id: str | None = None,
    time_left: float | None = None,
) -> dict[str, Any]:
    """Count the matching logs and fetch the newest ``max_matches`` of them in ONE request.

    Returns the sensor's XCom value: ``{"count", "min_count", "gateway_id", "start", "end",
    "matches"}`` where ``matches`` holds at most ``max_matches`` logs, newest first.
    ``time_left`` (seconds before the caller's deadline) bounds the client's retries, see
    :func:`limited_client`. Blocking (HTTP); call it off the event loop from async code.
    """
    client = hook.client
    rows, total = limited_client(client, time_left).list_page(
        gateway_id,
        filters=filters,
        start=start,
        end=end,
        order_by="created_at",
        order_by_direction="desc",
        per_page=max(1, max_matches),
    )
    return {
        "count": total,
        "min_count": min_count,
        "gateway_id": gateway_id or hook.gateway_id or client.gateway_id,
        "start": start,
        "end": end,
        "matches": rows[:max_matches],
    }


def settled_message(result: dict[str, Any]) -> str:
    """The log line of a sensor that succeeds on a settled window with fewer than ``min_count`` logs."""
    return (
        f"window [{result['start']}, {result['end']}) of gateway {result['gateway_id']!r} has settled with "
        f"{result['count']} matching log(s) (min_count={result['min_count']}): no more can arrive, succeeding "
        "(succeed_when_settled)"
    )


def outage_message(error: BaseException) -> str:
    """Why a sensor whose API still failed at its timeout fails instead of timing out."""
    return (
        f"The AI Gateway API was still failing when the sensor's timeout ran out: {error}. "
        "Failing rather than timing out, so that soft_fail never mistakes an outage for a window without logs"
    )


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
        self.gateway_id = gateway_id
        self.filters, self.start, self.end = normalize_query(filters, start, end)
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
            f"AIGatewayLogsTrigger(aigw_conn_id={self.aigw_conn_id!r}, gateway_id={self.gateway_id!r}, "
            f"filters={self.filters!r}, start={self.start!r}, end={self.end!r}, min_count={self.min_count}, "
            f"deadline={self.deadline!r})"
        )

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and JSON-serialisable kwargs that re-create this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "aigw_conn_id": self.aigw_conn_id,
                "gateway_id": self.gateway_id,
                "filters": self.filters,
                "start": self.start,
                "end": self.end,
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
            self._hook = AIGatewayHook(aigw_conn_id=self.aigw_conn_id, gateway_id=self.gateway_id)
        return check_logs(
            self._hook,
            filters=self.filters,
            start=self.start,
            end=self.end,
            min_count=self.min_count,
            max_matches=self.max_matches,
            gateway_id=self.gateway_id,
            time_left=remaining,
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
                    f"in gateway {self.gateway_id or '(connection default)'}: {seen}"
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
