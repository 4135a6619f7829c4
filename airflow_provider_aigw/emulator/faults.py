"""Deterministic fault injection for the emulator: latency, 5xx, dropped connections,
Cloudflare-style rate limiting with lock-out, gateway churn, wrong ``total_count``, unstable
tie order, filter keys (or one operator of a key) the API silently ignores, failing body
routes, enveloped bodies, a URL length limit (414) and DELETEs that remove their matches in
another order than asked, or only some of them."""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["DELETE_ORDERS", "Decision", "Faults", "RateLimiter"]

#: Values of :attr:`Faults.delete_order`.
DELETE_ORDERS = ("asked", "asc", "desc", "random")

FIELDS = (
    "latency_ms",
    "latency_jitter_ms",
    "error_rate",
    "drop_rate",
    "rate_limit_requests",
    "rate_limit_period_s",
    "lockout_s",
    "churn_insert_per_request",
    "capacity",
    "total_count_factor",
    "total_count_page_only",
    "shuffle_ties",
    "ignore_list_filter_operators",
    "ignore_filter_keys",
    "ignore_delete_filter_keys",
    "fail_body_ids",
    "fail_body_status",
    "envelope_bodies",
    "max_url_bytes",
    "delete_order",
    "delete_max_logs",
    "seed",
)


@dataclass
class Decision:
    """What the fault layer decided for one request."""

    sleep_s: float = 0.0
    drop: bool = False
    error_status: int | None = None
    error_html: bool = False


@dataclass
class Faults:
    """Fault configuration of an emulator; mutable at runtime and thread-safe.

    :param latency_ms: fixed delay added to every API request (server thread sleeps).
    :param latency_jitter_ms: extra uniform random delay in ``[0, jitter]``.
    :param error_rate: fraction of API requests answered 500/502/503.
    :param drop_rate: fraction of API requests whose connection is closed without answer.
    :param rate_limit_requests: more than this many requests within any
        ``rate_limit_period_s`` window triggers 429 (None/0 = no limit).
    :param rate_limit_period_s: the rate-limit window in seconds.
    :param lockout_s: lock-out after the limit is exceeded (default: the period).
    :param churn_insert_per_request: new logs (created_at = now) inserted per API request.
    :param capacity: max logs per gateway; the oldest are deleted beyond it (DELETE_OLDEST).
    :param total_count_factor: list answers report ``result_info.total_count`` times this
        factor, rounded down (e.g. 0.5: a stale, understated count); None = the true count.
    :param total_count_page_only: list answers report as ``total_count`` the rows of the
        current page only.
    :param shuffle_ties: logs sharing a ``created_at`` millisecond come in a different random
        (seeded) order on each list request ordered by ``created_at``, so pages cut such an
        instant differently every time.
    :param ignore_list_filter_operators: ``"key:operator"`` pairs (e.g. ``"created_at:lt"``)
        the server silently drops from list requests: one operator of a key ignored.
    :param ignore_filter_keys: filter keys the server silently ignores on list AND delete (as
        Cloudflare does with filters it does not apply): such filters are dropped, no error.
    :param ignore_delete_filter_keys: filter keys silently ignored on DELETE only.
    :param fail_body_ids: log ids whose ``/request`` and ``/response`` routes always answer
        ``fail_body_status``; ``"*"`` makes every body route fail.
    :param fail_body_status: HTTP status of those failures (default 500; 401/403 for auth).
    :param envelope_bodies: answer ``/request`` and ``/response`` wrapped in the Cloudflare
        envelope (``{"success": true, "errors": [], "messages": [], "result": <body>}``), as the
        seed API document describes, instead of the bare stored body (the OpenAPI spec).
    :param max_url_bytes: answer 414 (URI too long) to an API request whose request-target (path
        and query, as sent) is longer than this many bytes, before anything is applied (None = no
        limit; Cloudflare's edge: 32 KB, the API behind it unknown).
    :param delete_order: the order in which a DELETE removes its matching logs: ``"asked"`` (the
        request's ``order_by``/``order_by_direction``, default), ``"asc"`` or ``"desc"`` by
        ``created_at`` whatever was asked, or ``"random"`` (seeded by ``seed``). Together with
        ``ignore_delete_filter_keys=["id"]`` it decides which logs of a slice an id-less DELETE takes.
    :param delete_max_logs: a DELETE removes at most this many logs whatever its ``limit`` (a
        partial delete; None = the ``limit``).
    :param seed: seed of the random generator deciding errors, drops and jitter.
    """

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    rate_limit_requests: int | None = None
    rate_limit_period_s: float = 300.0
    lockout_s: float | None = None
    churn_insert_per_request: int = 0
    capacity: int | None = None
    total_count_factor: float | None = None
    total_count_page_only: bool = False
    shuffle_ties: bool = False
    ignore_list_filter_operators: list[str] = field(default_factory=list)
    ignore_filter_keys: list[str] = field(default_factory=list)
    ignore_delete_filter_keys: list[str] = field(default_factory=list)
    fail_body_ids: list[str] = field(default_factory=list)
    fail_body_status: int = 500
    envelope_bodies: bool = False
    max_url_bytes: int | None = None
    delete_order: str = "asked"
    delete_max_logs: int | None = None
    seed: int = 0
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._rng.seed(self.seed)

    def update(self, **changes: Any) -> None:
        """Change settings atomically (unknown names raise ``TypeError``). ``seed`` reseeds."""
        unknown = set(changes) - set(FIELDS)
        if unknown:
            raise TypeError(f"unknown fault settings: {sorted(unknown)}")
        for name in (
            "ignore_list_filter_operators",
            "ignore_filter_keys",
            "ignore_delete_filter_keys",
            "fail_body_ids",
        ):
            if name in changes:
                value = changes[name]
                if isinstance(value, str) or not all(isinstance(v, str) for v in value or ()):
                    raise TypeError(f"{name} must be a list of strings, got {value!r}")
                changes[name] = list(value or ())
        if changes.get("delete_order", "asked") not in DELETE_ORDERS:
            raise TypeError(f"delete_order must be one of {list(DELETE_ORDERS)}, got {changes['delete_order']!r}")
        with self._lock:
            for k, v in changes.items():
                setattr(self, k, v)
            if "seed" in changes:
                self._rng.seed(self.seed)

    def reset(self) -> None:
        """Back to no faults at all (keeps the seed, reseeds the generator)."""
        defaults = Faults()
        with self._lock:
            for f in fields(self):
                if f.name in FIELDS and f.name != "seed":
                    setattr(self, f.name, getattr(defaults, f.name))
            self._rng.seed(self.seed)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a JSON-able dict."""
        with self._lock:
            return {k: list(v) if isinstance(v, list) else v for k in FIELDS for v in (getattr(self, k),)}

    def ignored_keys(self, method: str) -> set[str]:
        """Filter keys the server drops silently from a request with ``method``."""
        with self._lock:
            keys = set(self.ignore_filter_keys)
            if method == "DELETE":
                keys.update(self.ignore_delete_filter_keys)
            return keys

    def ignored_operators(self, method: str) -> set[tuple[str, str]]:
        """``(key, operator)`` pairs the server drops silently from a request with ``method``."""
        with self._lock:
            if method != "GET":
                return set()
            return {tuple(pair.split(":", 1)) for pair in self.ignore_list_filter_operators}  # type: ignore[misc]

    def reported_total(self, total: int, page_count: int) -> int:
        """The ``result_info.total_count`` a list answer reports for ``total`` matches."""
        with self._lock:
            if self.total_count_page_only:
                return page_count
            if self.total_count_factor is not None:
                return math.floor(total * self.total_count_factor)
            return total

    def tie_rng(self) -> random.Random | None:
        """The generator shuffling ties of one list request, or None when ties keep their order."""
        with self._lock:
            return random.Random(self._rng.random()) if self.shuffle_ties else None

    def body_failure(self, log_id: str) -> int | None:
        """The status a body route of ``log_id`` must fail with, or None."""
        with self._lock:
            if "*" in self.fail_body_ids or log_id in self.fail_body_ids:
                return self.fail_body_status
            return None

    def url_too_long(self, target: str) -> bool:
        """Whether a request-target of this length is answered 414."""
        with self._lock:
            return self.max_url_bytes is not None and len(target.encode()) > self.max_url_bytes

    def delete_plan(self) -> tuple[str, int | None, random.Random | None]:
        """``(order, most logs, generator)`` of a DELETE: the order it removes matches in (see
        ``delete_order``), its cap (``delete_max_logs``) and, for ``"random"``, a generator drawn
        from the seeded sequence."""
        with self._lock:
            rng = random.Random(self._rng.getrandbits(64)) if self.delete_order == "random" else None
            return self.delete_order, self.delete_max_logs, rng

    def decide(self) -> Decision:
        """Draw the latency / drop / error decision of one request (deterministic sequence)."""
        with self._lock:
            d = Decision()
            jitter = self._rng.random() * self.latency_jitter_ms if self.latency_jitter_ms else 0.0
            d.sleep_s = max(0.0, (self.latency_ms + jitter) / 1000.0)
            if self.drop_rate or self.error_rate:
                r = self._rng.random()
                if r < self.drop_rate:
                    d.drop = True
                elif r < self.drop_rate + self.error_rate:
                    d.error_status = self._rng.choice((500, 502, 503))
                    d.error_html = d.error_status != 500 and self._rng.random() < 0.5
            return d


class RateLimiter:
    """Sliding-window request budget with a lock-out, like Cloudflare's API limit.

    More than ``limit`` requests within any ``period`` seconds locks the client out for
    ``lockout`` seconds; every request during the lock-out is refused and does not extend it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self._locked_until = 0.0

    def reset(self) -> None:
        """Forget the history and any lock-out."""
        with self._lock:
            self._times.clear()
            self._locked_until = 0.0

    def check(
        self, now: float, limit: int | None, period: float, lockout: float | None
    ) -> tuple[bool, int, dict[str, str]]:
        """Account one request at ``now``; returns ``(allowed, retry_after_s, headers)``."""
        if not limit:
            return True, 0, {}
        lockout_s = period if lockout is None else lockout
        with self._lock:
            if now < self._locked_until:
                remaining = self._locked_until - now
                retry = max(1, math.ceil(remaining))
                return False, retry, self._headers(limit, period, 0, retry)
            if self._locked_until:
                # lock-out over: start a fresh window
                self._locked_until = 0.0
                self._times.clear()
            while self._times and self._times[0] <= now - period:
                self._times.popleft()
            self._times.append(now)
            if len(self._times) > limit:
                self._locked_until = now + lockout_s
                self._times.clear()
                retry = max(1, math.ceil(lockout_s))
                return False, retry, self._headers(limit, period, 0, retry)
            reset = max(1, math.ceil(self._times[0] + period - now))
            return True, 0, self._headers(limit, period, limit - len(self._times), reset)

    @staticmethod
    def _headers(limit: int, period: float, remaining: int, reset: int) -> dict[str, str]:
        return {
            "ratelimit": f'"default";r={remaining};t={reset}',
            "ratelimit-policy": f'"default";q={limit};w={math.ceil(period)}',
        }
