"""Fixtures shared by the unit tests of the hook's callers (operators, sensor, trigger)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_aigw
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook

PACKAGE = Path(airflow_provider_aigw.__file__).parent


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
