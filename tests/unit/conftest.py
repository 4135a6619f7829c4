"""Fixtures of the unit tests: a fake clock and a client on it (see :mod:`tests.unit.fake_api`), and
a record of who reads the hook's client."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_aigw
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from tests.fake_clock import FakeClock
from tests.unit.fake_api import make_client

PACKAGE = Path(airflow_provider_aigw.__file__).parent


@pytest.fixture
def fake_time() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fake_time: FakeClock) -> AIGatewayClient:
    """A client of gateway ``gw`` on the fake API's base URL and the fake clock."""
    return make_client(fake_time)


@pytest.fixture
def client_accessors(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Where the code that reads ``AIGatewayHook.client`` lives (paths in the package), during this test.

    Only the hook's own methods may read it (``{"hooks/ai_gateway.py"}``): every caller above the
    hook reaches the API through them.
    """
    accessors: set[str] = set()
    cached = vars(AIGatewayHook)["client"]

    def client(hook: AIGatewayHook) -> Any:
        where = Path(sys._getframe(1).f_code.co_filename)
        accessors.add(where.relative_to(PACKAGE).as_posix() if where.is_relative_to(PACKAGE) else str(where))
        return cached.__get__(hook, AIGatewayHook)

    monkeypatch.setattr(AIGatewayHook, "client", property(client))
    return accessors
