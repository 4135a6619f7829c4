"""The emulator's HTTP side, in front of a stand-in emulator: a fault decision answers in place of
the emulator, with the status and body Cloudflare gives; API and admin errors become their answers;
every API request is counted by kind and outcome."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from airflow_provider_aigw.emulator.faults import Decision, Faults, RateLimiter
from airflow_provider_aigw.emulator.handler import EmulatorHTTPServer, RequestHandler
from airflow_provider_aigw.emulator.query import not_found
from airflow_provider_aigw.emulator.stats import Stats

LOGS = "/client/v4/accounts/acc/ai-gateway/gateways/gw/logs"


class OneDecision(Faults):
    """Fault settings that take the same decision for every request."""

    def __init__(self) -> None:
        super().__init__()
        self.decision = Decision()

    def decide(self) -> Decision:
        return self.decision


class StandIn:
    """The emulator as the handler sees it: lists answer 200, unknown logs 404, admin routes fail."""

    def __init__(self) -> None:
        self.stats = Stats()
        self.faults = OneDecision()
        self.limiter = RateLimiter()
        self.clock = lambda: 0.0
        self.dispatched: list[str] = []

    def before_request(self) -> None:
        pass

    def admin(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        raise ValueError("no such setting")

    def dispatch(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: bytes
    ) -> tuple[int, Any, str | None]:
        self.dispatched.append(f"{method} {path}")
        if path != LOGS:
            raise not_found()
        return 200, {"success": True, "errors": [], "messages": [], "result": []}, None


@pytest.fixture
def served() -> Iterator[tuple[StandIn, str]]:
    emulator = StandIn()
    httpd = EmulatorHTTPServer(("127.0.0.1", 0), RequestHandler)
    httpd.emulator = emulator
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield emulator, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("decision", "status", "content_type", "body"),
    [
        (Decision(error_status=500), 500, "application/json", '"code":10001,"message":"Internal Server Error"'),
        (Decision(error_status=502), 502, "application/json", '"code":10502,"message":"Bad Gateway"'),
        (Decision(error_status=503, error_html=True), 503, "text/html", "<h1>Error 503</h1><p>Service Unavailable</p>"),
    ],
)
def test_a_5xx_decision_answers_in_place_of_the_emulator(
    served: tuple[StandIn, str], decision: Decision, status: int, content_type: str, body: str
) -> None:
    emulator, base = served
    emulator.faults.decision = decision
    r = requests.get(base + LOGS, timeout=10)
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (status, content_type)
    assert body in r.text
    assert emulator.dispatched == []
    assert (emulator.stats.list, emulator.stats.served_5xx, emulator.stats.requests[0]["status"]) == (1, 1, status)


def test_a_dropped_request_gets_no_answer(served: tuple[StandIn, str]) -> None:
    emulator, base = served
    emulator.faults.decision = Decision(drop=True)
    with pytest.raises(requests.ConnectionError):
        requests.delete(base + LOGS, timeout=10)
    assert emulator.dispatched == []
    assert (emulator.stats.delete, emulator.stats.dropped, emulator.stats.requests[0]["status"]) == (1, 1, None)


def test_api_errors_and_admin_errors_become_their_answers(served: tuple[StandIn, str]) -> None:
    emulator, base = served
    assert requests.get(base + LOGS, timeout=10).status_code == 200
    r = requests.get(f"{base}{LOGS}/some-id/request", timeout=10)
    assert r.status_code == 404
    assert r.json() == {
        "success": False,
        "errors": [{"code": 7002, "message": "Not Found"}],
        "messages": [],
        "result": None,
    }
    r = requests.post(base + "/__emulator__/faults", json={"nope": 1}, timeout=10)
    assert r.status_code == 400 and r.json() == {"error": "ValueError: no such setting"}
    # admin routes are neither faulted nor counted
    assert (emulator.stats.total, emulator.stats.list, emulator.stats.request) == (2, 1, 1)
    assert [rec["status"] for rec in emulator.stats.requests] == [200, 404]
