"""Fixtures of the unit tests: a fake clock and a client on it (see :mod:`tests.unit.fake_api`)."""

from __future__ import annotations

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from tests.fake_clock import FakeClock
from tests.unit.fake_api import make_client


@pytest.fixture
def fake_time() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(fake_time: FakeClock) -> AIGatewayClient:
    """A client of gateway ``gw`` on the fake API's base URL and the fake clock."""
    return make_client(fake_time)
