"""Sensor waiting for AI Gateway logs that match filters (poke, reschedule or deferrable)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.compat import (
    AirflowSensorTimeout,
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
    first_reschedule_date,
)
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
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.timestamps import TimeLike, format_time, parse_time
from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsTrigger
from airflow_provider_aigw.validation import is_templated, validate_duration

if TYPE_CHECKING:
    from airflow_provider_aigw.compat import Context

#: Extra time the triggerer gives the trigger beyond its own deadline before failing the
#: task itself; the trigger normally reports the timeout first, with the last count seen.
DEFERRAL_TIMEOUT_GRACE = dt.timedelta(minutes=5)


class AIGatewayLogsSensor(BaseSensorOperator):
    """Wait until at least ``min_count`` AI Gateway logs match ``filters`` (optionally in a window).

    .. seealso::
        The how-to guide: :doc:`/sensors`.

    One API request per check counts the matches and fetches the newest ``max_matches`` of
    them. On success the sensor returns (pushes as XCom)::

        {"count": 42, "min_count": 1, "gateway_id": "my-gateway",
         "start": "2026-11-26T00:00:00.000Z", "end": "2026-11-27T00:00:00.000Z",
         "matches": [<newest log>, ...]}   # at most max_matches logs, newest first

    The three modes behave the same: ``mode="poke"`` (sleeps in the worker),
    ``mode="reschedule"`` (frees the worker slot between checks) and ``deferrable=True``
    (checks once in the worker, then hands over to :class:`AIGatewayLogsTrigger` on the
    triggerer). ``timeout``, ``poke_interval``, ``exponential_backoff``, ``max_wait`` and
    ``soft_fail`` are honoured in all of them: on timeout the task fails, or is skipped
    with ``soft_fail=True``. No check runs past ``timeout``: the client's retries and
    request timeout are capped by the time left, the wait before the next check is cut at
    the timeout, and a check at the timeout makes one attempt. Transient API failures (429,
    5xx, timeouts, dropped connections that outlast the client's retries) only delay the
    next check, unless the API is still failing when the time is up: then the task fails
    (and is retried if it has ``retries``), also with ``soft_fail``, so that an outage is
    never mistaken for a window without logs. Permanent failures (400, 403, 404, a bad
    connection) fail the task at once, also with ``soft_fail``.
    Invalid input (filters, naive datetimes, ``end <= start``, ``min_count < 1``) raises
    :class:`~airflow_provider_aigw.exceptions.AIGatewayInputError` before any request: when
    the sensor is created, or for templated values once they are rendered. The check is
    :meth:`AIGatewayHook.check_logs <airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook.check_logs>`,
    the one the trigger makes too.

    With ``succeed_when_settled=True`` a window that has settled (``end + settle_lag`` has
    passed: no log of it can still arrive) is a final answer: the first check made after that
    succeeds whatever the count, 0 included, and logs so. A day without traffic then archives
    as an empty day instead of waiting for a log that will never come. A window that has not
    settled still waits for ``min_count``.

    :param filters: filters in the API's shape, ``{"key", "operator", "value"}`` or a list
        of them (templated; a rendered string such as ``"{{ params.filters }}"`` holding
        them as JSON or a Python literal is accepted, as in the operators).
    :param start: window start on ``created_at``, inclusive; aware datetime or ISO 8601
        string (templated).
    :param end: window end, exclusive (templated).
    :param min_count: succeed once at least this many logs match (>= 1).
    :param max_matches: how many of the newest matches to return in the XCom (0 to 50).
    :param settle_lag: do not succeed (nor even ask the API) before ``end + settle_lag``:
        logs reach the API seconds, sometimes a minute, after the request they record, so
        a window is only complete some time after its end. A ``timedelta`` or seconds;
        needs ``end``.
    :param succeed_when_settled: succeed, with whatever count (0 included), at the first
        check made once the window has settled (``end + settle_lag``); needs ``end``.
        Default ``False``: wait for ``min_count`` whatever the window's age.
    :param gateway_id: gateway to watch; default: the connection's (templated).
    :param aigw_conn_id: Airflow connection id (type ``cloudflare_ai_gateway``; templated).
    :param deferrable: wait on the triggerer instead of a worker; ``None`` (the default)
        means ``[operators] default_deferrable``, read when the sensor is created.

    Other keyword arguments go to ``BaseSensorOperator`` (``poke_interval``, ``timeout``,
    ``mode``, ``soft_fail``, ``exponential_backoff``, ``max_wait``, ...).
    """

    template_fields: Sequence[str] = ("filters", "start", "end", "gateway_id", "aigw_conn_id")
    template_fields_renderers = {"filters": "json"}
    ui_color = "#f6821f"

    def __init__(
        self,
        *,
        filters: Any = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        min_count: int = 1,
        max_matches: int = 5,
        settle_lag: dt.timedelta | float = 0,
        succeed_when_settled: bool = False,
        gateway_id: str | None = None,
        aigw_conn_id: str = AIGatewayHook.default_conn_name,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.filters = filters
        self.start = start
        self.end = end
        self.min_count = validate_min_count(min_count)
        self.max_matches = validate_max_matches(max_matches)
        self.settle_lag = validate_duration(settle_lag, param="settle_lag").total_seconds()
        self.succeed_when_settled = bool(succeed_when_settled)
        self.gateway_id = gateway_id
        self.aigw_conn_id = aigw_conn_id
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        self.deferrable = bool(deferrable)
        #: Epoch seconds when ``timeout`` runs out; set by :meth:`execute`.
        self._deadline: float | None = None
        #: The validated query and its settle time: built here when no part of it is templated,
        #: else at the first check (after rendering).
        self._checked: tuple[LogQuery, float | None] | None = None
        if not is_templated([filters, start, end, gateway_id]):
            self._checked = self._build_query()

    @cached_property
    def hook(self) -> AIGatewayHook:
        """The hook (built on first use, after templates are rendered)."""
        return AIGatewayHook(aigw_conn_id=self.aigw_conn_id, gateway_id=self.gateway_id or None)

    def _build_query(self) -> tuple[LogQuery, float | None]:
        """The validated query and when its window settles (epoch seconds); raises before any request."""
        query = LogQuery.of(gateway_id=self.gateway_id or None, filters=self.filters, start=self.start, end=self.end)
        settled_at: float | None = None
        if self.settle_lag or self.succeed_when_settled:
            if query.end is None:
                needs = "settle_lag" if self.settle_lag else "succeed_when_settled"
                raise AIGatewayInputError(f"{needs} needs an end: a window settles settle_lag after its end")
            settled_at = query.end.timestamp() + self.settle_lag
        return query, settled_at

    def _query(self) -> tuple[LogQuery, float | None]:
        if self._checked is None:
            self._checked = self._build_query()
        return self._checked

    def poke(self, context: Context) -> PokeReturnValue:
        """One check: ``is_done`` once ``min_count`` logs match (and the window has settled)."""
        query, settled_at = self._query()
        self._validate_settles_in_time(settled_at if self.settle_lag else None)
        checked_at = time.time()
        if self.settle_lag and settled_at is not None and checked_at < settled_at:
            assert query.end is not None  # a settle time needs an end
            self.log.info(
                "Window ending %s settles in %.1fs (settle_lag=%ss); not checking yet",
                format_time(query.end),
                settled_at - checked_at,
                self.settle_lag,
            )
            return PokeReturnValue(is_done=False)
        try:
            result = self.hook.check_logs(
                query, min_count=self.min_count, max_matches=self.max_matches, time_left=self._time_left()
            )
        except AIGatewayAPIError as err:
            if not is_transient(err):
                raise
            time_left = self._time_left()
            if time_left is not None and time_left <= 0:
                raise AIGatewayAPIError(
                    outage_message(err), status=err.status, method=err.method, path=err.path
                ) from err
            self.log.warning("Transient failure checking for logs; will check again: %s", err)
            return PokeReturnValue(is_done=False)
        if result["count"] >= self.min_count:
            self.log.info("%d matching log(s), need %d", result["count"], self.min_count)
            return PokeReturnValue(is_done=True, xcom_value=result)
        if self.succeed_when_settled and settled_at is not None and checked_at >= settled_at:
            self.log.info(settled_message(result))
            return PokeReturnValue(is_done=True, xcom_value=result)
        self.log.info("%d matching log(s), need %d", result["count"], self.min_count)
        return PokeReturnValue(is_done=False, xcom_value=result)

    def _time_left(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.time()

    def _validate_settles_in_time(self, settled_at: float | None) -> None:
        """Refuse a window that settles only after the timeout: no check could ever be made."""
        if settled_at is not None and self._deadline is not None and settled_at > self._deadline:
            raise AIGatewayInputError(
                f"the window settles (end + settle_lag) {settled_at - self._deadline:.0f}s after the sensor's "
                f"timeout ({self.timeout:g}s) runs out, so it could never be checked: raise timeout"
            )

    def _get_next_poke_interval(self, started_at: Any, run_duration: Any, poke_count: int) -> float:
        # Never wait past the timeout: the check at the deadline decides (one attempt).
        interval = float(super()._get_next_poke_interval(started_at, run_duration, poke_count))
        time_left = self._time_left()
        return interval if time_left is None else max(0.0, min(interval, time_left))

    def execute(self, context: Context) -> Any:
        started = time.time()
        if self.reschedule and not self.deferrable:
            # Reschedule mode counts the timeout from the first try, as BaseSensorOperator does.
            first = parse_time(first_reschedule_date(self, context), param="first reschedule date")
            if first is not None:
                started = first.timestamp()
        self._deadline = started + self.timeout
        if not self.deferrable:
            return super().execute(context)
        try:
            first_check = self.poke(context)  # validates input; often the logs are already there
        except AIGatewayError as err:
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from err
            raise
        if first_check.is_done:
            return first_check.xcom_value
        query, settled_at = self._query()
        self.defer(
            trigger=AIGatewayLogsTrigger(
                aigw_conn_id=self.aigw_conn_id,
                gateway_id=query.gateway_id,
                filters=list(query.filters),
                start=query.start,
                end=query.end,
                min_count=self.min_count,
                max_matches=self.max_matches,
                poll_interval=self.poke_interval,
                deadline=self._deadline,
                not_before=settled_at if self.settle_lag else None,
                settled_at=settled_at if self.succeed_when_settled else None,
                exponential_backoff=self.exponential_backoff,
                max_interval=self.max_wait.total_seconds() if self.max_wait is not None else None,
            ),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout) + DEFERRAL_TIMEOUT_GRACE,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume after the trigger: return the XCom (as poke mode) or raise on error/timeout."""
        if not event:
            raise AIGatewayError("the trigger returned no event")
        status = event.get("status")
        if status == "success":
            result = event["result"]
            if result["count"] < self.min_count:
                self.log.info(settled_message(result))
            else:
                self.log.info("%d matching log(s), need %d", result["count"], self.min_count)
            return result
        if status == "timeout":
            # soft_fail turns this into a skip (BaseSensorOperator.resume_execution), as in poke mode.
            raise AirflowSensorTimeout(event.get("message") or "timed out waiting for matching logs")
        raise AIGatewayAPIError(
            event.get("message") or f"the trigger reported {status!r}", status=event.get("http_status")
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        event = (next_kwargs or {}).get("event")
        if next_method == "execute_complete" and isinstance(event, dict) and event.get("status") == "error":
            # A permanent error fails the task even with soft_fail, exactly as in poke mode
            # (BaseSensorOperator.resume_execution would skip on any AirflowException).
            if getattr(self, "never_fail", False):
                raise AirflowSkipException("Skipping due to never_fail is set to True.")
            return self.execute_complete(context, event)
        return super().resume_execution(next_method, next_kwargs, context)
