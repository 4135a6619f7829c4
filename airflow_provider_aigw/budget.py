"""Client-side request budgets: Cloudflare's per-user API limit, kept by every caller.

Cloudflare allows 1,200 API requests per 5 minutes per user, across every process (the
dashboard included), and locks the user out for the rest of the 5 minutes when they are
exceeded. Two stores keep that budget, chosen by the connection extra ``budget_storage``:

* ``memory://`` (default): :class:`RequestBudget`, one budget per process, shared by the
  threads of that process (Airflow runs each task instance in its own process);
* ``redis://host:port/db`` or ``rediss://...``: :class:`RedisRequestBudget`, one budget for
  every process and worker that uses the same credentials and Redis server.

Both keep the same guarantee: no window of ``period`` seconds ever holds more than
``max_requests`` requests *at the API*. The API counts a request when it arrives, somewhere
between sending and answering, so a request is first counted when it is sent and then
re-stamped when its answer arrives (:meth:`answered`): the client's window always ends
after the API's. A budget that counts a request only at sending lets the API see one
request too many now and then, and a budget equal to the API's rule then trips the lock-out.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit, urlunsplit

from airflow_provider_aigw.exceptions import (
    AIGatewayBudgetStorageError,
    AIGatewayBudgetTimeoutError,
    AIGatewayConfigError,
)
from airflow_provider_aigw.validation import validate_positive

log = logging.getLogger(__name__)

#: Cloudflare: 1,200 requests per 5 minutes per user, shared with the dashboard and all
#: other API use. The default leaves a sixth of it to everything else.
DEFAULT_BUDGET_REQUESTS = 1000
DEFAULT_BUDGET_PERIOD = 300.0
DEFAULT_BUDGET_STORAGE = "memory://"
#: Pause after a 429 that carries no ``Retry-After`` (capped at the budget period: the API's
#: own window is over by then). Cloudflare's lock-out lasts up to the rest of its 5 minutes.
DEFAULT_429_PAUSE = 60.0
#: How long a Redis budget keeps retrying an unreachable server when the caller gives no deadline.
DEFAULT_STORAGE_PATIENCE = 30.0
STORAGE_SCHEMES = ("memory", "redis", "rediss")


class Budget(Protocol):
    """What the client needs of a request budget (see :class:`RequestBudget`)."""

    max_requests: int
    period: float
    acquired: int
    waited_seconds: float

    def clock(self) -> float:
        """The clock that ``acquire``'s ``deadline`` is read on."""

    def acquire(self, deadline: float | None = None) -> Hashable:
        """Wait until one more request fits, record it and return its ticket."""

    def answered(self, ticket: Hashable) -> None:
        """Re-stamp the request of ``ticket`` at the time its answer arrived."""

    def pause_for(self, seconds: float | None) -> None:
        """Hold back every request for ``seconds`` (``None``: the default 429 pause)."""


def _validate_limits(max_requests: Any, period: Any) -> None:
    validate_positive(max_requests, param="budget_requests")
    validate_positive(period, param="budget_period", integer=False, unit=" of seconds")


def _no_room(wait: float, left: float, where: str) -> AIGatewayBudgetTimeoutError:
    return AIGatewayBudgetTimeoutError(
        f"The {where} request budget has no room before the call's deadline: the next request may go "
        f"in {wait:.1f}s, {max(0.0, left):.1f}s are left",
        retry_after=wait,
    )


class RequestBudget:
    """Process-wide limit of ``max_requests`` per sliding ``period`` seconds (``memory://``).

    A sliding-window log rather than a token bucket: it guarantees that no window of
    ``period`` seconds ever holds more than ``max_requests`` requests (Cloudflare's rule)
    while still allowing the full allowance. Thread-safe, and it never sleeps while holding
    its lock (waiters wait on a :class:`threading.Condition`), so :meth:`answered` and other
    threads are never held up. Share one instance between all clients of one Cloudflare user
    (see :meth:`shared`). A 429 pauses it for everyone.

    :param max_requests: requests allowed per period.
    :param period: period in seconds.
    :param clock: monotonic clock (injectable for tests).
    :param sleep: sleep function for tests with a fake clock (called without the lock held);
        by default waits are :meth:`threading.Condition.wait`.
    """

    _registry: ClassVar[dict[tuple[str, int, float], RequestBudget]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        max_requests: int = DEFAULT_BUDGET_REQUESTS,
        period: float = DEFAULT_BUDGET_PERIOD,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        _validate_limits(max_requests, period)
        self.max_requests = max_requests
        self.period = float(period)
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._dropped = 0  # entries popped off the left of _sent so far (keeps tickets valid)
        self._paused_until = 0.0
        self._cond = threading.Condition(threading.Lock())
        self.acquired = 0
        self.waited_seconds = 0.0

    @classmethod
    def shared(cls, key: str, max_requests: int, period: float) -> RequestBudget:
        """The process-wide budget for ``key`` (one per Cloudflare user and limits)."""
        with cls._registry_lock:
            registry_key = (key, max_requests, float(period))
            budget = cls._registry.get(registry_key)
            if budget is None:
                budget = cls._registry[registry_key] = cls(max_requests, period)
            return budget

    def clock(self) -> float:
        """The budget's clock (``deadline`` of :meth:`acquire` is read on it)."""
        return self._clock()

    def acquire(self, deadline: float | None = None) -> int:
        """Wait until one more request fits in the budget, then record it; returns its ticket.

        :param deadline: time on :meth:`clock` by which the request must be allowed; when
            the next free slot comes later, raises :class:`AIGatewayBudgetTimeoutError` at
            once (slots only ever move later, never earlier).
        """
        with self._cond:
            while True:
                now = self._clock()
                if self._paused_until > now:
                    wait = self._paused_until - now
                else:
                    while self._sent and self._sent[0] <= now - self.period:
                        self._sent.popleft()
                        self._dropped += 1
                    if len(self._sent) < self.max_requests:
                        self._sent.append(now)
                        self.acquired += 1
                        return self._dropped + len(self._sent) - 1
                    wait = self._sent[0] + self.period - now
                if deadline is not None and now + wait > deadline:
                    raise _no_room(wait, deadline - now, "process's")
                if self._sleep is None:
                    self._cond.wait(wait)
                else:
                    self._cond.release()
                    try:
                        self._sleep(wait)
                    finally:
                        self._cond.acquire()
                self.waited_seconds += self._clock() - now

    def answered(self, ticket: Hashable, at: float | None = None) -> None:
        """Re-stamp request ``ticket`` (from :meth:`acquire`) with the time its answer arrived.

        The API counts a request when it arrives, somewhere between sending and answering.
        Stamped at sending, a request that took a little longer to arrive than the one that
        takes its slot a period later lets the API see ``max_requests + 1`` in one period, and
        a budget equal to the API's rule then trips the lock-out now and then (5 lock-outs in
        400 requests against the emulator at 50 per 0.5 s). Stamped at the answer, the
        client's window always ends after the API's. Stamps may then be out of order, which
        only makes the window err on the safe side.
        """
        done = self._clock() if at is None else at
        with self._cond:
            index = int(ticket) - self._dropped  # type: ignore[call-overload]
            if 0 <= index < len(self._sent) and self._sent[index] < done:
                self._sent[index] = done

    def pause_for(self, seconds: float | None) -> None:
        """Hold back every request for ``seconds`` (the API answered 429).

        ``None`` (no ``Retry-After``) pauses for :data:`DEFAULT_429_PAUSE`, at most one period.
        """
        pause = min(DEFAULT_429_PAUSE, self.period) if seconds is None else seconds
        with self._cond:
            self._paused_until = max(self._paused_until, self._clock() + pause)

    def __repr__(self) -> str:
        return f"RequestBudget(max_requests={self.max_requests}, period={self.period})"


# Atomic steps of the shared window (a sorted set of request ids scored by time, in
# microseconds of the Redis server's clock, the one clock every worker agrees on).
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused * 1000 end
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return 0
end
local edge = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(1, tonumber(edge[2]) + period - now)
"""
_ANSWERED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stamp = redis.call('ZSCORE', KEYS[1], ARGV[1])
if stamp and tonumber(stamp) < now then redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1]) end
return 0
"""
_PAUSE = """
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ms) end
return 0
"""


def redact_storage_url(url: str) -> str:
    """``url`` without its password (Redis URLs may carry one)."""
    parts = urlsplit(url)
    if parts.password is None and not parts.username:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


class RedisRequestBudget:
    """One request budget shared by every process using the same Redis server and key.

    The window is a Redis sorted set of request ids scored by the Redis server's clock:
    a request is added when it is sent (atomically, only if the window has room) and
    re-scored when its answer arrives, so the guarantee of :class:`RequestBudget` holds
    across processes and machines. A 429 sets a pause key with a TTL that every process
    honours. Waiting happens in the calling thread, outside any lock.

    Redis unreachable when the budget is created: :class:`AIGatewayBudgetStorageError` at
    once (no silent fallback to a per-process budget). Lost later: each step is retried
    until the caller's deadline (else :data:`DEFAULT_STORAGE_PATIENCE`), then the same error.

    :param url: ``redis://[:password@]host:port/db`` or ``rediss://...``.
    :param key: what identifies one Cloudflare user (hashed into the Redis key names).
    :param max_requests: requests allowed per period, by this client, in the shared window.
    :param period: period in seconds.
    :param source: where the URL came from, for error messages (e.g. a conn id).
    """

    _registry: ClassVar[dict[tuple[str, str, int, float], RedisRequestBudget]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        url: str,
        key: str,
        max_requests: int = DEFAULT_BUDGET_REQUESTS,
        period: float = DEFAULT_BUDGET_PERIOD,
        *,
        source: str = "the client settings",
    ) -> None:
        _validate_limits(max_requests, period)
        try:
            import redis
        except ImportError:
            raise AIGatewayConfigError(
                f"budget_storage {redact_storage_url(url)!r} in {source} needs the redis client: "
                "pip install 'airflow-provider-aigw[redis]'"
            ) from None
        self.max_requests = max_requests
        self.period = float(period)
        self.acquired = 0
        self.waited_seconds = 0.0
        self._counters = threading.Lock()  # the counters only; Redis keeps the window
        self._where = f"budget_storage {redact_storage_url(url)!r} of {source}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        # One hash tag: both keys live in one slot of a Redis Cluster too.
        self._window_key = f"aigw:budget:{{{digest}}}:window"
        self._pause_key = f"aigw:budget:{{{digest}}}:pause"
        self._storage_errors: tuple[type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError)
        try:
            self._redis = redis.Redis.from_url(url, socket_timeout=5.0, socket_connect_timeout=5.0)
        except ValueError as err:
            raise AIGatewayConfigError(f"{self._where} is not a valid Redis URL: {err}") from None
        try:
            self._redis.ping()
        except redis.RedisError as err:
            raise AIGatewayBudgetStorageError(
                f"{self._where}: the Redis server is unreachable ({type(err).__name__}). The shared request "
                "budget needs it, so no API request was sent; start Redis or fix budget_storage "
                "(memory:// keeps a budget per process only)"
            ) from None
        self._acquire = self._redis.register_script(_ACQUIRE)
        self._answered = self._redis.register_script(_ANSWERED)
        self._pause = self._redis.register_script(_PAUSE)

    @classmethod
    def shared(cls, url: str, key: str, max_requests: int, period: float, *, source: str) -> RedisRequestBudget:
        """The process's client of the shared budget ``key`` on ``url`` (one connection pool)."""
        with cls._registry_lock:
            registry_key = (url, key, max_requests, float(period))
            budget = cls._registry.get(registry_key)
            if budget is None:
                budget = cls._registry[registry_key] = cls(url, key, max_requests, period, source=source)
            return budget

    def clock(self) -> float:
        """Local monotonic clock (``deadline`` of :meth:`acquire` is read on it)."""
        return time.monotonic()

    def _call(self, step: Any, keys: list[str], args: list[Any], deadline: float | None) -> int:
        """Run one script, retrying a lost connection until ``deadline``."""
        give_up = deadline if deadline is not None else time.monotonic() + DEFAULT_STORAGE_PATIENCE
        backoff = 0.1
        while True:
            try:
                return int(step(keys=keys, args=args))
            except self._storage_errors as err:
                left = give_up - time.monotonic()
                if left <= 0:
                    raise AIGatewayBudgetStorageError(
                        f"{self._where}: lost the Redis server ({type(err).__name__}) and it did not come back "
                        "before the call's deadline; no further API request was sent"
                    ) from None
                log.warning("%s: Redis unreachable (%s), retrying in %.1fs", self._where, type(err).__name__, backoff)
                time.sleep(min(backoff, left))
                backoff = min(backoff * 2, 2.0)

    def acquire(self, deadline: float | None = None) -> str:
        """Wait until one more request fits in the shared window, then record it; returns its ticket.

        :param deadline: :func:`time.monotonic` time by which the request must be allowed
            (also bounds retries of a lost Redis connection); a later free slot raises
            :class:`AIGatewayBudgetTimeoutError` at once.
        """
        ticket = uuid.uuid4().hex
        period_us = round(self.period * 1_000_000)
        expire_ms = round(self.period * 1000) + 3_600_000  # outlives any in-flight request
        while True:
            now = time.monotonic()
            wait_us = self._call(
                self._acquire,
                [self._window_key, self._pause_key],
                [self.max_requests, period_us, ticket, expire_ms],
                deadline,
            )
            if wait_us == 0:
                with self._counters:
                    self.acquired += 1
                return ticket
            wait = wait_us / 1_000_000
            if deadline is not None and now + wait > deadline:
                raise _no_room(wait, deadline - now, "shared")
            time.sleep(wait)
            with self._counters:
                self.waited_seconds += time.monotonic() - now

    def answered(self, ticket: Hashable) -> None:
        """Re-score request ``ticket`` at the Redis server's time now (its answer has arrived)."""
        try:
            self._answered(keys=[self._window_key], args=[str(ticket)])
        except self._storage_errors as err:
            # The request stays counted at its sending time; the next acquire() meets the
            # outage itself and waits for Redis or fails within its deadline.
            log.warning("%s: could not re-stamp an answered request (%s)", self._where, type(err).__name__)

    def pause_for(self, seconds: float | None) -> None:
        """Pause every process sharing this budget for ``seconds`` (``None``: the default 429 pause)."""
        pause = min(DEFAULT_429_PAUSE, self.period) if seconds is None else seconds
        try:
            self._pause(keys=[self._pause_key], args=[max(1, round(pause * 1000))])
        except self._storage_errors as err:
            log.warning("%s: could not share a 429 pause (%s)", self._where, type(err).__name__)

    def __repr__(self) -> str:
        return f"RedisRequestBudget({self._where!r}, max_requests={self.max_requests}, period={self.period})"


def validate_budget_storage(storage: Any, source: str = "the client settings") -> str:
    """``budget_storage`` must be ``memory://`` or a ``redis://`` / ``rediss://`` URL."""
    value = (storage or DEFAULT_BUDGET_STORAGE) if isinstance(storage, str) else storage
    if not isinstance(value, str):
        raise AIGatewayConfigError(f"budget_storage in {source} must be a URL string, got {type(storage).__name__}")
    parts = urlsplit(value.strip())
    if parts.scheme not in STORAGE_SCHEMES:
        raise AIGatewayConfigError(
            f"budget_storage in {source} must be memory:// or a redis:// / rediss:// URL, "
            f"got {redact_storage_url(value)!r}"
        )
    if parts.scheme != "memory" and not parts.hostname:
        raise AIGatewayConfigError(
            f"budget_storage in {source} needs a host, e.g. redis://localhost:6379/0, got {redact_storage_url(value)!r}"
        )
    return value.strip()


def shared_budget(
    storage: str, key: str, max_requests: int, period: float, *, source: str = "the client settings"
) -> Budget:
    """The budget of one Cloudflare user (``key``) in ``storage`` (``budget_storage``)."""
    storage = validate_budget_storage(storage, source)
    if storage.startswith("memory:"):
        return RequestBudget.shared(key, max_requests, period)
    return RedisRequestBudget.shared(storage, key, max_requests, period, source=source)
