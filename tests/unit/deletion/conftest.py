"""Fixtures of the delete tests: an emulator holding the seeded day (:mod:`.seeded_day`), a client of it."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from tests.unit.deletion.seeded_day import AFTER, END, GW, START


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 60, START, END, seed=5)
    server.seed_logs(GW, 10, *AFTER, seed=6)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json(GW))
    server.reset_stats()
    return server


@pytest.fixture
def client(emu: EmulatorServer) -> AIGatewayClient:
    """The client of the default connection, which points at the emulator's gateway ``GW``."""
    return AIGatewayHook().client
