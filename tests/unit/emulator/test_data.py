"""The emulator's log data: deterministic generation from a seed, and timestamps in the API's form."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

import pytest

from airflow_provider_aigw.emulator import EmulatorServer, generate_logs
from airflow_provider_aigw.emulator.data import format_ms, parse_ts_ms
from tests.unit.emulator.logs_api import END, START

if TYPE_CHECKING:
    from collections.abc import Callable


def test_generation_is_deterministic(aigw_emulator_factory: Callable[..., EmulatorServer]) -> None:
    a = generate_logs(200, START, END, seed=3, gateway_id="gw")
    b = generate_logs(200, START, END, seed=3, gateway_id="gw")
    c = generate_logs(200, START, END, seed=4, gateway_id="gw")
    assert a == b and a != c
    assert len({x["id"] for x in a}) == 200
    providers = {x["provider"] for x in generate_logs(2000, START, END, seed=1)}
    assert {"openai", "anthropic", "workers-ai", "google-ai-studio", "groq"} <= providers
    for x in a:
        assert START <= datetime.fromisoformat(x["created_at"].replace("Z", "+00:00")) < END
        if "metadata" in x:
            assert isinstance(x["metadata"], str) and len(json.loads(x["metadata"])) <= 5
    emu = aigw_emulator_factory(gateways={})
    ids = emu.seed_logs("gw", 200, START, END, seed=3)
    assert ids == [x["id"] for x in a] and emu.logs("gw") == a


def test_format_roundtrip() -> None:
    for ts in ("2026-11-26T13:04:05.123Z", "2026-11-26T14:04:05.123456+01:00", "2026-11-26 13:04:05.123"):
        assert format_ms(parse_ts_ms(ts)) == "2026-11-26T13:04:05.123Z"
    with pytest.raises(ValueError):
        parse_ts_ms("tomorrow")
