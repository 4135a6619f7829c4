"""Fixtures of the unit tests: a fake clock and a client on it (see :mod:`tests.unit.fake_api`)."""

from __future__ import annotations

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from tests.fake_time import FakeTime
from tests.unit.fake_api import make_client


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(fake_time: FakeTime) -> AIGatewayClient:
    """A client of gateway ``gw`` on the fake API's base URL and the fake clock."""
    return make_client(fake_time)
