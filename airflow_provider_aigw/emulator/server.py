"""A local HTTP server that speaks the Cloudflare AI Gateway Logs API.

Start one with :class:`EmulatorServer` (or ``python -m airflow_provider_aigw.emulator``),
seed gateways with realistic logs, point a client at ``server.url`` and inspect what
arrived with ``server.stats``. Admin routes under ``/__emulator__/`` are unauthenticated,
never faulted and never counted.
"""

from __future__ import annotations

import json
import random
import threading
import time
import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from airflow_provider_aigw.emulator import data
from airflow_provider_aigw.emulator.faults import Faults, RateLimiter
from airflow_provider_aigw.emulator.handler import ADMIN_PREFIX, ROUTE_RE, EmulatorHTTPServer, RequestHandler
from airflow_provider_aigw.emulator.query import (
    ApiError,
    Filter,
    ListQuery,
    auth_error,
    not_found,
    parse_delete_query,
    parse_list_query,
    validate_gateway_id,
    validate_patch,
)
from airflow_provider_aigw.emulator.stats import Stats
from airflow_provider_aigw.emulator.store import Gateway

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from datetime import datetime

__all__ = ["DEFAULT_ACCOUNT_ID", "EmulatorServer"]

DEFAULT_ACCOUNT_ID = "0123456789abcdef0123456789abcdef"
API_PREFIX = "/client/v4"


class EmulatorServer:
    """An in-process Cloudflare AI Gateway Logs API emulator.

    >>> with EmulatorServer() as emu:
    ...     emu.seed_logs("my-gateway", 100, start, end)
    ...     requests.get(f"{emu.url}/accounts/{emu.account_id}/ai-gateway/gateways/my-gateway/logs",
    ...                  headers={"Authorization": f"Bearer {emu.token}"})

    Credentials: ``token`` (read + write), ``read_only_token`` (GETs only) or
    ``email`` + ``api_key`` (``X-Auth-Email`` / ``X-Auth-Key``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        account_id: str = DEFAULT_ACCOUNT_ID,
        token: str = "aigw-emulator-token",
        read_only_token: str | None = "aigw-emulator-readonly-token",
        email: str = "emulator@example.com",
        api_key: str = "aigw-emulator-global-key",
        seed: int = 0,
        faults: Faults | None = None,
    ) -> None:
        self.host = host
        self._requested_port = port
        self.account_id = account_id
        self.token = token
        self.read_only_token = read_only_token
        self.email = email
        self.api_key = api_key
        self.seed = seed
        self.faults = faults if faults is not None else Faults(seed=seed)
        self.stats = Stats()
        #: monotonic clock (seconds) used by the rate limiter; replaceable in tests.
        self.clock: Callable[[], float] = time.monotonic
        #: wall clock (epoch seconds) used for churned logs; replaceable in tests.
        self.wall_clock: Callable[[], float] = time.time
        self._lock = threading.RLock()
        self._gateways: dict[str, Gateway] = {}
        self._batches: dict[str, int] = {}
        self.limiter = RateLimiter()
        self._api_requests = 0
        self._late: list[tuple[int, str, list[dict[str, Any]]]] = []
        self._churn_rng = random.Random(seed ^ 0xC0FFEE)
        self._httpd: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> EmulatorServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            return self
        httpd = EmulatorHTTPServer((self.host, self._requested_port), RequestHandler)
        httpd.emulator = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="aigw-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._httpd is None:
            return self._requested_port
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://host:port`` (admin routes live under ``/__emulator__/``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """API base URL, e.g. ``http://127.0.0.1:54321/client/v4``."""
        return self.base_url + API_PREFIX

    def logs_url(self, gateway_id: str) -> str:
        """Full URL of the logs collection of ``gateway_id``."""
        return f"{self.url}/accounts/{self.account_id}/ai-gateway/gateways/{gateway_id}/logs"

    @property
    def auth_headers(self) -> dict[str, str]:
        """Headers authenticating with the read/write token."""
        return {"Authorization": f"Bearer {self.token}"}

    # ------------------------------------------------------------------ connection helpers

    def _conn_extra(self, gateway_id: str | None, extra: dict[str, Any]) -> dict[str, Any]:
        gw = gateway_id if gateway_id is not None else next(iter(self._gateways), None)
        out: dict[str, Any] = {"account_id": self.account_id}
        if gw is not None:
            out["gateway_id"] = gw
        out.update(extra)
        return out

    def airflow_conn_json(self, gateway_id: str | None = None, **extra: Any) -> str:
        """Airflow connection in JSON form (for ``AIRFLOW_CONN_...``) pointing at this emulator.

        ``gateway_id`` defaults to the first gateway created; ``extra`` adds connection extras.
        """
        return json.dumps(
            {
                "conn_type": "cloudflare_ai_gateway",
                "host": self.url,
                "password": self.token,
                "extra": self._conn_extra(gateway_id, extra),
            }
        )

    def airflow_conn_uri(self, gateway_id: str | None = None, **extra: Any) -> str:
        """Airflow connection in URI form pointing at this emulator."""
        rest = f"{self.host}:{self.port}{API_PREFIX}"
        query = urlencode(
            {k: v if isinstance(v, str) else json.dumps(v) for k, v in self._conn_extra(gateway_id, extra).items()}
        )
        return f"cloudflare-ai-gateway://http://:{quote(self.token, safe='')}@{quote(rest, safe='')}/?{query}"

    # ------------------------------------------------------------------ ground truth / seeding

    def create_gateway(self, gateway_id: str) -> None:
        """Create an empty gateway (no-op if it exists). Raises ValueError for an invalid id."""
        try:
            validate_gateway_id(gateway_id)
        except ApiError:
            raise ValueError(f"invalid gateway id {gateway_id!r}") from None
        with self._lock:
            if gateway_id not in self._gateways:
                self._gateways[gateway_id] = Gateway(gateway_id, seed=self.seed ^ zlib.crc32(gateway_id.encode()))

    def delete_gateway(self, gateway_id: str) -> None:
        """Remove a gateway and its logs."""
        with self._lock:
            self._gateways.pop(gateway_id, None)

    @property
    def gateway_ids(self) -> list[str]:
        """Ids of the existing gateways, in creation order."""
        with self._lock:
            return list(self._gateways)

    def _gw(self, gateway_id: str) -> Gateway:
        gw = self._gateways.get(gateway_id)
        if gw is None:
            raise KeyError(f"no gateway {gateway_id!r}")
        return gw

    def seed_logs(
        self,
        gateway_id: str,
        count: int,
        start: datetime | str,
        end: datetime | str,
        seed: int | None = None,
        *,
        return_ids: bool = True,
    ) -> list[str]:
        """Insert ``count`` generated logs spread over ``[start, end)``; returns their ids (asc).

        Creates the gateway if needed. With an explicit ``seed`` the logs equal
        ``generate_logs(count, start, end, seed=seed, gateway_id=gateway_id)``; without one
        each call to the same gateway draws a fresh deterministic batch.
        """
        self.create_gateway(gateway_id)
        with self._lock:
            if seed is None:
                batch = self._batches.get(gateway_id, 0)
                self._batches[gateway_id] = batch + 1
                seed = self.seed + batch * 7919
        base = seed ^ zlib.crc32(gateway_id.encode())
        pairs = data.seeds_and_times(count, data.to_ms(start), data.to_ms(end), base)
        with self._lock:
            self._gw(gateway_id).insert_generated(pairs)
        if not return_ids:
            return []
        return [data.gen_log(g, t)["id"] for t, g in pairs]

    def add_logs(self, gateway_id: str, logs: Iterable[dict[str, Any]]) -> list[str]:
        """Insert explicit log dicts (missing fields get defaults, missing ``id`` a UUIDv7).

        Optional keys ``request_body``/``response_body`` set the stored bodies (``None`` =
        not collected, answered 404). Creates the gateway if needed. Returns the ids.
        """
        self.create_gateway(gateway_id)
        with self._lock:
            return self._gw(gateway_id).insert_logs(logs, int(self.wall_clock() * 1000))

    def schedule_late_logs(self, gateway_id: str, logs: Iterable[dict[str, Any]], after_requests: int = 1) -> None:
        """Insert ``logs`` (typically with ``created_at`` in the past) once ``after_requests``
        further API requests have been served (0 = now)."""
        items = [dict(x) for x in logs]
        self.create_gateway(gateway_id)
        with self._lock:
            if after_requests <= 0:
                self._gw(gateway_id).insert_logs(items, int(self.wall_clock() * 1000))
            else:
                self._late.append((self._api_requests + after_requests, gateway_id, items))

    def logs(self, gateway_id: str) -> list[dict[str, Any]]:
        """Every log of the gateway (list fields), ``created_at`` ascending."""
        with self._lock:
            gw = self._gw(gateway_id)
            return [gw.materialize(p) for p in range(len(gw))]

    def count(self, gateway_id: str) -> int:
        """Number of logs stored in the gateway."""
        with self._lock:
            return len(self._gw(gateway_id))

    def ids(self, gateway_id: str, start: datetime | str | None = None, end: datetime | str | None = None) -> list[str]:
        """Ids of logs with ``start <= created_at < end`` (bounds optional), ``created_at`` ascending."""
        with self._lock:
            gw = self._gw(gateway_id)
            lo, hi, _rest = gw._range(
                ([store_filter("gte", start)] if start is not None else [])
                + ([store_filter("lt", end)] if end is not None else [])
            )
            return [gw.materialize(p)["id"] for p in range(lo, hi)]

    def iter_logs_with_bodies(
        self, gateway_id: str, start: datetime | str | None = None, end: datetime | str | None = None
    ) -> Iterator[tuple[dict[str, Any], Any, Any]]:
        """``(log, request body, response body)`` of the logs with ``start <= created_at < end``
        (bounds optional), ``created_at`` ascending; a body is None when not collected.

        Read in chunks under the lock, so memory stays flat in the gateway's size; logs added or
        deleted meanwhile may be seen or not.
        """
        chunk = 1000
        with self._lock:
            lo, hi, _rest = self._gw(gateway_id)._range(
                ([store_filter("gte", start)] if start is not None else [])
                + ([store_filter("lt", end)] if end is not None else [])
            )
        while lo < hi:
            with self._lock:
                gw = self._gw(gateway_id)
                stop = min(hi, lo + chunk, len(gw))
                batch = [(gw.materialize(p), *gw.bodies_of(p)) for p in range(lo, stop)]
            yield from batch
            lo += chunk

    def get_log(self, gateway_id: str, log_id: str) -> dict[str, Any] | None:
        """The detail view of one log (list fields plus heads and sizes), or None."""
        with self._lock:
            gw = self._gw(gateway_id)
            pos = gw.find(log_id)
            return None if pos is None else gw.detail(pos)

    def get_bodies(self, gateway_id: str, log_id: str) -> tuple[Any, Any]:
        """``(request, response)`` stored bodies of a log (None = not collected)."""
        with self._lock:
            gw = self._gw(gateway_id)
            pos = gw.find(log_id)
            if pos is None:
                raise KeyError(log_id)
            return gw.bodies_of(pos)

    def reset_stats(self) -> None:
        """Zero the request counters and records, and reset the rate limiter."""
        self.stats.reset()
        self.limiter.reset()

    # ------------------------------------------------------------------ request pipeline

    def before_request(self) -> None:
        """Per API request: late-arriving logs, then churn (insert now, trim to capacity)."""
        with self._lock:
            self._api_requests += 1
            served = self._api_requests - 1
            due = [x for x in self._late if x[0] <= served]
            if due:
                self._late = [x for x in self._late if x[0] > served]
                for _n, gw_id, items in due:
                    self.create_gateway(gw_id)
                    self._gw(gw_id).insert_logs(items, int(self.wall_clock() * 1000))
            k = self.faults.churn_insert_per_request
            capacity = self.faults.capacity
            if k or capacity is not None:
                now_ms = int(self.wall_clock() * 1000)
                for gw in self._gateways.values():
                    if k:
                        gw.insert_generated([(now_ms, self._churn_rng.getrandbits(63)) for _ in range(k)])
                    if capacity is not None and len(gw) > capacity:
                        gw.delete_oldest(len(gw) - capacity)

    def _authorize(self, headers: Any) -> bool:
        """Returns ``True`` for write access, ``False`` for read-only; raises 403 otherwise."""
        auth = headers.get("Authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            if scheme.lower() == "bearer":
                value = value.strip()
                if value == self.token:
                    return True
                if self.read_only_token and value == self.read_only_token:
                    return False
            raise auth_error()
        if headers.get("X-Auth-Email") == self.email and headers.get("X-Auth-Key") == self.api_key:
            return True
        raise auth_error()

    def dispatch(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, str | None]:
        """Route one API request: ``(status, payload, content_type)``; raises :class:`ApiError`.

        ``content_type`` None means ``payload`` is a JSON envelope.
        """
        if not (path == API_PREFIX or path.startswith(API_PREFIX + "/")):
            raise not_found()
        can_write = self._authorize(headers)
        m = ROUTE_RE.match(path)
        if not m:
            raise not_found()
        if m["account"] != self.account_id:
            raise not_found()
        validate_gateway_id(m["gateway"])
        log_id, body_kind = m["log_id"], m["body"]
        with self._lock:
            gw = self._gateways.get(m["gateway"])
            if gw is None:
                raise not_found()
            if log_id is None:
                if method == "GET":
                    items, info = gw.list(self._apply_ignored(parse_list_query(query), method), self.faults.tie_rng())
                    info["total_count"] = self.faults.reported_total(info["total_count"], len(items))
                    return (
                        200,
                        {"success": True, "errors": [], "messages": [], "result": items, "result_info": info},
                        None,
                    )
                if method == "DELETE":
                    if not can_write:
                        raise auth_error()
                    order, most, rng = self.faults.delete_plan()
                    gw.delete(self._apply_ignored(parse_delete_query(query), method), order=order, most=most, rng=rng)
                    return 200, {"success": True}, None
                raise _method_not_allowed()
            pos = gw.find(log_id)
            if body_kind is not None:
                if method != "GET":
                    raise _method_not_allowed()
                if pos is None:
                    raise not_found()
                failure = self.faults.body_failure(log_id)
                if failure is not None:
                    raise _body_failure(failure)
                req, resp = gw.bodies_of(pos)
                stored = req if body_kind == "request" else resp
                if stored is None:
                    raise not_found()
                log = gw.materialize(pos)
                ctype = "application/json"
                if isinstance(stored, str):
                    try:
                        json.loads(stored)
                    except ValueError:
                        ctype = str(log.get(f"{body_kind}_content_type") or "text/plain")
                        if "json" in ctype:
                            ctype = "text/plain"
                if self.faults.envelope_bodies:
                    # JSON bodies as JSON values inside the envelope, text bodies as strings
                    result = json.loads(stored) if isinstance(stored, str) and ctype == "application/json" else stored
                    return 200, {"success": True, "errors": [], "messages": [], "result": result}, None
                return 200, data.body_text(stored), ctype
            if method == "GET":
                if pos is None:
                    raise not_found()
                return 200, {"success": True, "errors": [], "messages": [], "result": gw.detail(pos)}, None
            if method == "PATCH":
                if not can_write:
                    raise auth_error()
                if pos is None:
                    raise not_found()
                gw.patch(pos, validate_patch(body))
                return 200, {"success": True, "errors": [], "messages": [], "result": {}}, None
            raise _method_not_allowed()

    def _apply_ignored(self, q: ListQuery, method: str) -> ListQuery:
        """Drop the filters whose key (or key and operator) the fault settings make the server ignore silently."""
        ignored = self.faults.ignored_keys(method)
        operators = self.faults.ignored_operators(method)
        if ignored or operators:
            q.filters = [f for f in q.filters if f.key not in ignored and (f.key, f.op) not in operators]
        return q

    # ------------------------------------------------------------------ admin

    def admin(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        parts = [p for p in path[len(ADMIN_PREFIX) :].split("/") if p]
        payload: Any = json.loads(body.decode() or "null") if body else None
        if parts == ["stats"] and method == "GET":
            return 200, self.stats.to_dict()
        if parts == ["reset-stats"] and method == "POST":
            self.reset_stats()
            return 200, {"ok": True}
        if parts == ["faults"]:
            if method == "POST":
                self.faults.update(**(payload or {}))
                if payload and "rate_limit_requests" in payload:
                    self.limiter.reset()
            return 200, self.faults.to_dict()
        if parts == ["gateways"] and method == "GET":
            return 200, {"gateways": {g: self.count(g) for g in self.gateway_ids}}
        if len(parts) == 3 and parts[0] == "gateways":
            gw_id, what = parts[1], parts[2]
            if what == "logs" and method == "POST":
                if isinstance(payload, dict):
                    ids = self.seed_logs(
                        gw_id,
                        int(payload.get("count", 1000)),
                        payload["start"],
                        payload["end"],
                        payload.get("seed"),
                    )
                else:
                    ids = self.add_logs(gw_id, payload or [])
                return 200, {"ok": True, "count": len(ids), "ids": ids}
            if what == "ids" and method == "GET":
                if gw_id not in self._gateways:
                    return 404, {"error": "no such gateway"}
                start = (query.get("start") or [""])[0] or None
                end = (query.get("end") or [""])[0] or None
                return 200, {"ids": self.ids(gw_id, start, end)}
            if what == "logpush" and method == "POST":
                from airflow_provider_aigw.emulator.logpush import write_logpush_files

                spec = payload or {}
                files = write_logpush_files(
                    self,
                    gw_id,
                    spec["destination"],
                    spec["public_key_pem"],
                    start=spec.get("start"),
                    end=spec.get("end"),
                    batch_seconds=int(spec.get("batch_seconds", 30)),
                    timestamp_format=spec.get("timestamp_format", "unixnano"),
                    shared_key=bool(spec.get("shared_key", False)),
                    storage_options=spec.get("storage_options"),
                )
                return 200, {"ok": True, "files": files}
            if what == "late-logs" and method == "POST":
                spec = payload or {}
                logs = spec.get("logs")
                if logs is None:
                    logs = data.generate_logs(
                        int(spec.get("count", 10)),
                        spec["start"],
                        spec["end"],
                        seed=int(spec.get("seed", 0)),
                        gateway_id=gw_id,
                    )
                self.schedule_late_logs(gw_id, logs, int(spec.get("after_requests", 1)))
                return 200, {"ok": True, "count": len(logs)}
        return 404, {"error": "unknown admin route"}


def store_filter(op: str, value: datetime | str) -> Filter:
    """A created_at range filter for ground-truth queries."""
    return Filter("created_at", op, [data.to_ms(value)])


def _body_failure(status: int) -> ApiError:
    code, message = {
        401: (10000, "Authentication error"),
        403: (10000, "Authentication error"),
        404: (7002, "Not Found"),
        429: (971, "Please wait and consider throttling your request speed"),
    }.get(status, (10001, "Internal Server Error"))
    return ApiError(status, [{"code": code, "message": message}])


def _method_not_allowed() -> ApiError:
    return ApiError(405, [{"code": 10405, "message": "Method not allowed"}])
