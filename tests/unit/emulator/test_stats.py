"""The emulator's request counters: per kind and per outcome, and the records of recent requests."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.stats import Stats
from tests.unit.emulator.logs_api import GW


def test_stats_records(emu: EmulatorServer) -> None:
    emu.reset_stats()
    log_id = emu.logs(GW)[0]["id"]
    s = requests.Session()
    s.headers.update(emu.auth_headers)
    url = emu.logs_url(GW)
    s.get(url, params={"filters": json.dumps([{"key": "provider", "operator": "eq", "value": ["openai"]}])})
    s.get(f"{url}/{log_id}")
    s.get(f"{url}/{log_id}/request")
    s.get(f"{url}/{log_id}/response")
    s.patch(f"{url}/{log_id}", json={"score": 5})
    s.delete(url, params={"limit": 1})
    stats = emu.stats
    for kind in ("list", "get", "request", "response", "patch", "delete"):
        assert stats[kind] == 1, kind
        assert getattr(stats, kind) == 1, kind
    assert stats["total"] == 6
    first = stats.requests[0]
    assert first["method"] == "GET" and first["path"].endswith("/logs")
    assert first["query"]["filters"] == ['[{"key": "provider", "operator": "eq", "value": ["openai"]}]']
    assert first["query_string"].startswith("filters=")
    assert first["authorization"] == f"Bearer {emu.token}"
    assert "Authorization" in first["headers"]
    remote = requests.get(emu.base_url + "/__emulator__/stats", timeout=10).json()
    assert remote["total"] == 6 and remote["patch"] == 1 and len(remote["requests"]) == 6
    assert requests.post(emu.base_url + "/__emulator__/reset-stats", timeout=10).status_code == 200
    assert emu.stats["total"] == 0


def test_outcomes_are_counted_and_only_the_latest_records_kept() -> None:
    stats = Stats(max_records=2)
    for kind, status in [("list", 200), ("list", 429), ("get", 503), ("delete", None), ("patch", 500)]:
        rec = {"kind": kind}
        stats.record(kind, rec)
        stats.count_outcome(status, rec)
    assert (stats.total, stats["served_429"], stats["served_5xx"], stats["dropped"]) == (5, 1, 2, 1)
    assert (stats.list, stats["get"], stats.delete, stats.patch, stats.request) == (2, 1, 1, 1, 0)
    assert stats.requests == [{"kind": "delete", "status": None}, {"kind": "patch", "status": 500}]
    with pytest.raises(AttributeError):
        stats.lists  # noqa: B018
    stats.reset()
    assert stats.to_dict() == {
        "total": 0,
        **dict.fromkeys(("list", "get", "request", "response", "patch", "delete", "other"), 0),
        "served_429": 0,
        "served_5xx": 0,
        "dropped": 0,
        "requests": [],
    }
