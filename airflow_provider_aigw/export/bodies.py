"""Fetching the request and response bodies of exported logs, with failures kept bounded.

Each row gets ``request_body``/``response_body`` and a status per body: ``collected``,
``not_collected`` (404: absent by design, e.g. ``cf-aig-collect-log-payload: false``) or
``failed``. Failures are counted, and only a bounded sample of their messages is kept, so a
million failing fetches cost no memory. Failures that cannot succeed on a later log (401/403:
the token lacks a permission) stop all body fetching after a few in a row, and the export fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from airflow_provider_aigw.concurrency import bounded_map
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayBodyError,
    AIGatewayError,
    AIGatewayNotFoundError,
)

__all__ = ["AUTH_FAILURES_TO_GIVE_UP", "MAX_FAILURE_SAMPLES", "BodyFetcher"]

#: Consecutive 401/403 answers on body fetches after which no more bodies are fetched.
AUTH_FAILURES_TO_GIVE_UP = 5
#: Failure messages kept for the task log and error (the rest are only counted).
MAX_FAILURE_SAMPLES = 10

BodyGetter = Callable[..., Any]


class BodyFetcher:
    """Adds bodies to log rows, ``concurrency`` logs at a time.

    :param get_request: ``get_request(log_id, gateway_id=...)`` -> the stored request body.
    :param get_response: the same for the response body.
    :param gateway: the gateway of the logs.
    :param concurrency: parallel logs (each costs 2 requests).
    """

    def __init__(self, get_request: BodyGetter, get_response: BodyGetter, *, gateway: str, concurrency: int) -> None:
        self._getters = (("request", get_request), ("response", get_response))
        self._gateway = gateway
        self._concurrency = concurrency
        self._lock = threading.Lock()
        self._auth_streak = 0
        #: Set once repeated 401/403 answers stopped the fetching (the message of the last one).
        self.gave_up: str | None = None
        #: Failed body fetches (not counting 404 = not collected), and a bounded sample of them.
        self.failed = 0
        self.samples: list[str] = []

    def rows(self, logs: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """The rows with their bodies, in order.

        :raises AIGatewayBodyError: bodies answered 401/403 several times in a row.
        """
        for row in bounded_map(self._fetch, logs, concurrency=self._concurrency):
            if self.gave_up is not None:
                raise AIGatewayBodyError(
                    f"Stopped fetching bodies after {AUTH_FAILURES_TO_GIVE_UP} answers in a row refused access: "
                    f"the token cannot read log bodies, so no later fetch can succeed. Give it the 'AI Gateway "
                    f"Read' permission, or export without include_bodies. Last answer: {self.gave_up}"
                )
            yield row

    def summary(self) -> str:
        """``N body fetch(es) failed (first: ...)`` for a log line or an error."""
        return f"{self.failed} body fetch(es) failed (first {len(self.samples)}: {'; '.join(self.samples)})"

    def _fetch(self, log: dict[str, Any]) -> dict[str, Any]:
        row = dict(log)
        log_id = str(row.get("id"))
        for which, getter in self._getters:
            row[f"{which}_body"] = None
            if self.gave_up is not None:
                row[f"{which}_body_status"] = "failed"
                continue
            try:
                row[f"{which}_body"] = getter(log_id, gateway_id=self._gateway)
                row[f"{which}_body_status"] = "collected"
                with self._lock:
                    self._auth_streak = 0
            except AIGatewayNotFoundError:
                row[f"{which}_body_status"] = "not_collected"
            except AIGatewayError as err:
                row[f"{which}_body_status"] = "failed"
                self._failed(log_id, which, err)
        return row

    def _failed(self, log_id: str, which: str, err: AIGatewayError) -> None:
        with self._lock:
            self.failed += 1
            if len(self.samples) < MAX_FAILURE_SAMPLES:
                self.samples.append(f"{log_id} {which}: {err}")
            if isinstance(err, AIGatewayAPIError) and err.status in (401, 403):
                self._auth_streak += 1
                if self._auth_streak >= AUTH_FAILURES_TO_GIVE_UP:
                    self.gave_up = str(err)
            else:
                self._auth_streak = 0
