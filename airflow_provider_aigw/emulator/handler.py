"""The emulator's HTTP side: one request in, fault injection and the rate rule applied, the
emulator's answer (or a fault) out, every API request recorded in its stats."""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from airflow_provider_aigw.emulator.faults import Faults, RateLimiter
from airflow_provider_aigw.emulator.query import ApiError
from airflow_provider_aigw.emulator.stats import Stats

ADMIN_PREFIX = "/__emulator__/"
ROUTE_RE = re.compile(
    r"^/client/v4/accounts/(?P<account>[^/]+)/ai-gateway/gateways/(?P<gateway>[^/]+)/logs"
    r"(?:/(?P<log_id>[^/]+)(?:/(?P<body>request|response))?)?/?$"
)
_HTML_5XX = (
    "<!DOCTYPE html>\n<html><head><title>{status} | api.cloudflare.com | Cloudflare</title></head>"
    "<body><h1>Error {status}</h1><p>{reason}</p><p>Ray ID: {ray}</p></body></html>\n"
)

_HTML_414 = (
    "<html><head><title>414 Request-URI Too Large</title></head><body><center><h1>414 Request-URI Too Large"
    "</h1></center><hr><center>cloudflare</center></body></html>\n"
)


class Emulator(Protocol):
    """What the HTTP side needs of the emulator (:class:`~airflow_provider_aigw.emulator.server.EmulatorServer`)."""

    stats: Stats
    faults: Faults
    limiter: RateLimiter
    clock: Callable[[], float]

    def before_request(self) -> None: ...

    def admin(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]: ...

    def dispatch(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, str | None]: ...


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    emulator: Emulator


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare"
    sys_version = ""
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        # headers and body are written separately: avoid Nagle + delayed-ACK stalls (~40 ms)
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(
        self,
        status: int,
        payload: Any,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if content_type is None:
            raw = json.dumps(payload, separators=(",", ":")).encode()
            content_type = "application/json"
        else:
            raw = payload.encode() if isinstance(payload, str) else payload
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("cf-ray", f"{random.getrandbits(64):016x}-EMU")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    def _handle(self, method: str) -> None:
        emu = self.server.emulator
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        body = self._read_body()
        if path.startswith(ADMIN_PREFIX):
            try:
                status, payload = emu.admin(method, path, query, body)
            except (ValueError, TypeError, KeyError) as exc:
                status, payload = 400, {"error": f"{type(exc).__name__}: {exc}"}
            self._send(status, payload)
            return

        m = ROUTE_RE.match(path)
        kind = "other"
        if m:
            if m["body"]:
                kind = m["body"]
            elif m["log_id"]:
                kind = {"GET": "get", "PATCH": "patch"}.get(method, "other")
            else:
                kind = {"GET": "list", "DELETE": "delete"}.get(method, "other")
        rec: dict[str, Any] = {
            "method": method,
            "path": path,
            "query_string": split.query,
            "query": query,
            "headers": list(self.headers.keys()),
            "authorization": self.headers.get("Authorization"),
            "kind": kind,
            "at": emu.clock(),  # arrival on the rate limiter's clock
        }
        emu.stats.record(kind, rec)
        emu.before_request()

        faults = emu.faults
        decision = faults.decide()
        if decision.sleep_s:
            time.sleep(decision.sleep_s)
        allowed, retry, rl_headers = emu.limiter.check(
            emu.clock(), faults.rate_limit_requests, faults.rate_limit_period_s, faults.lockout_s
        )
        if not allowed:
            emu.stats.count_outcome(429, rec)
            self._send(
                429,
                {
                    "success": False,
                    "errors": [{"code": 971, "message": "Please wait and consider throttling your request speed"}],
                    "messages": [],
                    "result": None,
                },
                headers={"retry-after": str(retry), **rl_headers},
            )
            return
        if decision.drop:
            emu.stats.count_outcome(None, rec)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if decision.error_status is not None:
            status = decision.error_status
            emu.stats.count_outcome(status, rec)
            reason = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}[status]
            if decision.error_html:
                html = _HTML_5XX.format(status=status, reason=reason, ray=f"{random.getrandbits(64):016x}")
                self._send(status, html, "text/html; charset=UTF-8", rl_headers)
            else:
                self._send(
                    status,
                    {
                        "success": False,
                        "errors": [{"code": 10000 + status if status != 500 else 10001, "message": reason}],
                        "messages": [],
                        "result": None,
                    },
                    headers=rl_headers,
                )
            return
        if faults.url_too_long(self.path):
            # Refused before routing: nothing of the request is applied (an edge's 414 is HTML).
            emu.stats.count_outcome(414, rec)
            self._send(414, _HTML_414, "text/html; charset=UTF-8", rl_headers)
            return
        try:
            status, payload, ctype = emu.dispatch(method, path, query, self.headers, body)
        except ApiError as err:
            status, payload, ctype = err.status, err.body(), None
        except Exception as exc:  # pragma: no cover - a bug in the emulator
            status, payload, ctype = (
                500,
                {
                    "success": False,
                    "errors": [{"code": 10001, "message": f"emulator error: {exc!r}"}],
                    "messages": [],
                    "result": None,
                },
                None,
            )
        emu.stats.count_outcome(status, rec)
        self._send(status, payload, ctype, rl_headers)
