"""The Logs API as the emulator tests call it: a seeded gateway's window, a small HTTP client of one
gateway, and the emulator's ground truth to compare its answers with."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_aigw.emulator import EmulatorServer

END = datetime(2026, 11, 26, tzinfo=timezone.utc)
START = END - timedelta(days=3)
GW = "my-gateway"


class Api:
    """Tiny helper around requests for one gateway."""

    def __init__(self, emu: EmulatorServer, gateway: str = GW, token: str | None = None) -> None:
        self.emu = emu
        self.url = emu.logs_url(gateway)
        self.s = requests.Session()
        self.s.headers["Authorization"] = f"Bearer {token or emu.token}"

    def list(self, filters: Any = None, **params: Any) -> requests.Response:
        if filters is not None:
            params["filters"] = json.dumps(filters)
        return self.s.get(self.url, params=params, timeout=10)

    def result(self, filters: Any = None, **params: Any) -> dict[str, Any]:
        r = self.list(filters, **params)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def all_ids(self, filters: Any = None, direction: str = "asc", **params: Any) -> list[str]:
        out: list[str] = []
        page = 1
        while True:
            res = self.result(filters, page=page, per_page=50, order_by_direction=direction, **params)["result"]
            if not res:
                return out
            out.extend(x["id"] for x in res)
            page += 1

    def delete(self, filters: Any = None, **params: Any) -> requests.Response:
        if filters is not None:
            params["filters"] = json.dumps(filters)
        return self.s.delete(self.url, params=params, timeout=10)


def truth(emu: EmulatorServer, pred: Callable[[dict[str, Any]], bool]) -> list[str]:
    """The ids of the logs the emulator holds in ``GW`` that ``pred`` accepts, oldest first."""
    return [x["id"] for x in emu.logs(GW) if pred(x)]


def meta(log: dict[str, Any]) -> dict[str, Any]:
    """A log's metadata as a dict (the API gives it as a JSON string)."""
    m: dict[str, Any] = json.loads(log["metadata"]) if log.get("metadata") else {}
    return m


def get(emu: EmulatorServer, **params: Any) -> requests.Response:
    """One list request to ``GW`` with these query parameters."""
    return requests.get(emu.logs_url(GW), headers=emu.auth_headers, params=params, timeout=10)


def total(emu: EmulatorServer, **params: Any) -> int:
    """The ``total_count`` the list of ``GW`` reports for these query parameters."""
    r = get(emu, per_page=1, **params)
    assert r.status_code == 200, r.text
    count: int = r.json()["result_info"]["total_count"]
    return count
