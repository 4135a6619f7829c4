"""Fetching the bodies of exported logs (``export/bodies.py``): a status per body, bounded failure samples,
and giving up once the token plainly cannot read bodies."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayBodyError, AIGatewayNotFoundError
from airflow_provider_aigw.export.bodies import AUTH_FAILURES_TO_GIVE_UP, MAX_FAILURE_SAMPLES, BodyFetcher

LOGS = [{"id": f"log-{i}", "model": "gpt-4o"} for i in range(6)]


class Bodies:
    """A body getter answering per log id: a body, 404 (not collected) or an API error."""

    def __init__(self, which: str, *, missing: set[str] = frozenset(), failing: dict[str, int] | None = None) -> None:
        self.which = which
        self.missing = missing
        self.failing = failing or {}
        self.calls: list[tuple[str, str]] = []

    def __call__(self, log_id: str, *, gateway_id: str) -> Any:
        self.calls.append((log_id, gateway_id))
        if log_id in self.missing:
            raise AIGatewayNotFoundError("Not found", status=404, method="GET", path=f"/logs/{log_id}/{self.which}")
        if log_id in self.failing:
            status = self.failing[log_id]
            raise AIGatewayAPIError(f"HTTP {status}", status=status, method="GET", path=f"/logs/{log_id}/{self.which}")
        return {"body": f"{self.which} of {log_id}"}


@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_row_gets_its_bodies_and_a_status_per_body_in_order(concurrency: int) -> None:
    request = Bodies("request", missing={"log-1"})
    response = Bodies("response", failing={"log-2": 500})
    fetcher = BodyFetcher(request, response, gateway="gw", concurrency=concurrency)
    rows = list(fetcher.rows(LOGS))
    assert [r["id"] for r in rows] == [log["id"] for log in LOGS]
    assert rows[0]["request_body"] == {"body": "request of log-0"} and rows[0]["request_body_status"] == "collected"
    assert (rows[1]["request_body"], rows[1]["request_body_status"]) == (None, "not_collected")
    assert (rows[2]["response_body"], rows[2]["response_body_status"]) == (None, "failed")
    assert rows[2]["request_body_status"] == "collected"
    assert fetcher.failed == 1 and fetcher.samples == ["log-2 response: HTTP 500"]
    assert fetcher.summary() == "1 body fetch(es) failed (first 1: log-2 response: HTTP 500)"
    assert {gw for _, gw in request.calls + response.calls} == {"gw"}
    assert "request_body" not in LOGS[0]  # the listed logs are not changed


def test_failures_are_counted_but_only_a_bounded_sample_is_kept() -> None:
    logs = [{"id": f"log-{i}"} for i in range(40)]
    failing = {log["id"]: 500 for log in logs}
    fetcher = BodyFetcher(Bodies("request", failing=failing), Bodies("response"), gateway="gw", concurrency=4)
    assert len(list(fetcher.rows(logs))) == 40
    assert fetcher.failed == 40 and len(fetcher.samples) == MAX_FAILURE_SAMPLES
    assert fetcher.gave_up is None


def test_refused_access_in_a_row_stops_every_fetch_and_fails_the_export() -> None:
    logs = [{"id": f"log-{i}"} for i in range(20)]
    request = Bodies("request", failing={log["id"]: 403 for log in logs})
    response = Bodies("response", failing={log["id"]: 403 for log in logs})
    fetcher = BodyFetcher(request, response, gateway="gw", concurrency=1)
    passed: list[str] = []
    with pytest.raises(AIGatewayBodyError, match=r"Stopped fetching bodies after 5 answers in a row refused access"):
        passed.extend(r["id"] for r in fetcher.rows(logs))
    # the fifth refusal (log-2's request) gives up: that row is not passed on, and nothing more is asked
    assert AUTH_FAILURES_TO_GIVE_UP == 5
    assert passed == ["log-0", "log-1"]
    assert len(request.calls) + len(response.calls) == 5
    assert fetcher.gave_up == "HTTP 403"


def test_a_success_between_refusals_resets_the_streak() -> None:
    logs = [{"id": f"log-{i}"} for i in range(12)]
    refused = {log["id"]: 401 for i, log in enumerate(logs) if i % 4}  # every fourth log is readable
    fetcher = BodyFetcher(Bodies("request", failing=refused), Bodies("response"), gateway="gw", concurrency=1)
    assert len(list(fetcher.rows(logs))) == 12
    assert fetcher.gave_up is None and fetcher.failed == 9
