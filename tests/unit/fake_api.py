"""A fake Logs API for the unit tests of the client, the transport and the listing walks (requests-mock)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from airflow_provider_aigw.budget import RequestBudget
from airflow_provider_aigw.client import AIGatewayClient
from tests.fake_clock import FakeClock

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "tok-SECRET-d5f1e2a9"
BASE = "https://api.example.test/client/v4"
LOGS = f"{BASE}/accounts/{ACCOUNT}/ai-gateway/gateways/gw/logs"
UTC = dt.timezone.utc
#: An answer of a listing that matched nothing.
EMPTY = {"success": True, "result": [], "result_info": {"total_count": 0}}


def make_client(fake_time: FakeClock, **kwargs: Any) -> AIGatewayClient:
    """A client of gateway ``gw`` on :data:`BASE`, on the fake clock, with an unlimited budget."""
    kwargs.setdefault("api_token", TOKEN)
    kwargs.setdefault("base_url", BASE)
    kwargs.setdefault("gateway_id", "gw")
    kwargs.setdefault("budget", RequestBudget(10**6, 1, clock=fake_time.time, sleep=fake_time.sleep))
    return AIGatewayClient(ACCOUNT, sleep=fake_time.sleep, clock=fake_time.time, **kwargs)


def query_of(request: Any) -> dict[str, list[str]]:
    """The query parameters of a recorded request."""
    return parse_qs(urlsplit(request.url).query, keep_blank_values=True)


def make_logs(
    n: int, *, start: dt.datetime = dt.datetime(2026, 11, 26, tzinfo=UTC), same_instant: int = 1
) -> list[dict]:
    """n logs, ``same_instant`` of them sharing each millisecond."""
    return [
        {
            "id": f"log-{i:06d}",
            "created_at": (start + dt.timedelta(milliseconds=i // same_instant)).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{(i // same_instant) % 1000:03d}Z",
            "model": "gpt-4o",
        }
        for i in range(n)
    ]


class FakeListAPI:
    """Serves GET .../logs honouring created_at gt/lt, id neq and page numbers (asc/desc)."""

    def __init__(self, logs: list[dict], *, honour_neq: bool = True, ignore_created_at: tuple[str, ...] = ()) -> None:
        self.logs = logs
        self.honour_neq = honour_neq
        self.ignore_created_at = ignore_created_at  # created_at operators the fake does not apply
        self.queries: list[dict[str, list[str]]] = []

    def __call__(self, request: Any, context: Any) -> dict[str, Any]:
        query = query_of(request)
        self.queries.append(query)
        filters = json.loads(query["filters"][0]) if "filters" in query else []
        rows = list(self.logs)
        for f in filters:
            if f["key"] == "created_at" and f["operator"] not in self.ignore_created_at:
                bound = f["value"][0]
                rows = [
                    r for r in rows if (r["created_at"] > bound if f["operator"] == "gt" else r["created_at"] < bound)
                ]
            elif f["key"] == "id" and f["operator"] == "neq" and self.honour_neq:
                rows = [r for r in rows if r["id"] not in f["value"]]
        if query.get("order_by_direction") == ["desc"]:
            rows.reverse()
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        chunk = rows[(page - 1) * per_page : page * per_page]
        return {
            "success": True,
            "result": chunk,
            "result_info": {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(rows)},
        }
