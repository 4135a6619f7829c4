"""events.triggered_logs: the logs of a run's triggering asset events, each id once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_aigw.events import EVENT_KIND, TriggeredLogs, triggered_logs
from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.timestamps import parse_created_at

A, B, C = (
    "01a217b8-8b60-71e1-bf24-ee365f5010a1",
    "01a217b9-4eb0-7d40-bab9-6ff5bef8468a",
    "01a217ba-3910-7c0f-bdb8-5ea8b00ad7b7",
)


def event(ids: list[str], start: str, end: str, gateway: str = "gw", *, as_dict: bool = False) -> Any:
    payload = {"kind": EVENT_KIND, "gateway_id": gateway, "count": len(ids), "ids": ids, "start": start, "end": end}
    extra = {"from_trigger": True, "payload": payload}
    return {"extra": extra} if as_dict else SimpleNamespace(extra=extra)


def test_ids_are_deduplicated_across_events_and_the_window_spans_them() -> None:
    events = {
        "asset": [
            event([A, B], "2026-01-01T00:00:01.000Z", "2026-01-01T00:00:02.001Z"),
            event([B, C], "2026-01-01T00:00:02.000Z", "2026-01-01T00:00:05.001Z", as_dict=True),  # a repeat of B
            SimpleNamespace(extra={"from_trigger": True, "payload": {"other": 1}}),  # not the watcher's
            SimpleNamespace(extra={}),  # a manual asset event
        ]
    }
    logs = triggered_logs(events)
    assert logs == TriggeredLogs(
        gateway_id="gw",
        ids=(A, B, C),
        start=parse_created_at("2026-01-01T00:00:01.000Z"),
        end=parse_created_at("2026-01-01T00:00:05.001Z"),
        events=2,
    )
    assert logs.filters() == [{"key": "id", "operator": "eq", "value": [A, B, C]}]
    assert logs.to_json() == {
        "gateway_id": "gw",
        "ids": [A, B, C],
        "count": 3,
        "start": "2026-01-01T00:00:01.000Z",
        "end": "2026-01-01T00:00:05.001Z",
        "filters": [{"key": "id", "operator": "eq", "value": [A, B, C]}],
    }


def test_no_watcher_event_gives_no_ids_and_never_a_match_all_filter() -> None:
    logs = triggered_logs({"asset": [SimpleNamespace(extra={})]})
    assert logs == TriggeredLogs(gateway_id=None) and logs.to_json()["filters"] is None
    with pytest.raises(AIGatewayInputError, match="nothing to select"):
        logs.filters()
    assert triggered_logs(None).ids == ()


def test_several_gateways_need_a_choice() -> None:
    events = [
        event([A], "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "g1"),
        event([B], "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "g2"),
    ]
    with pytest.raises(AIGatewayInputError, match=r"gateways \['g1', 'g2'\]: pass gateway_id="):
        triggered_logs(events)
    assert triggered_logs(events, gateway_id="g2").ids == (B,)


@pytest.mark.parametrize(
    "payload",
    [
        {"kind": EVENT_KIND, "gateway_id": "gw", "ids": [A], "start": "2026-01-01T00:00:01Z"},
        {
            "kind": EVENT_KIND,
            "gateway_id": "gw",
            "ids": ["bad id/"],
            "start": "2026-01-01T00:00:01Z",
            "end": "2026-01-01T00:00:02Z",
        },
    ],
)
def test_a_broken_payload_is_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(AIGatewayInputError):
        triggered_logs([SimpleNamespace(extra={"payload": payload})])
