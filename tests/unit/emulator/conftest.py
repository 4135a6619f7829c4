"""Fixtures of the emulator tests: an emulator seeded with 600 logs over three days, and a client of
its gateway (:mod:`tests.unit.emulator.logs_api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.unit.emulator.logs_api import END, GW, START, Api

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_provider_aigw.emulator import EmulatorServer


@pytest.fixture
def emu(aigw_emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    return aigw_emulator_factory(gateways={GW: 600}, start=START, end=END, seed=7)


@pytest.fixture
def api(emu: EmulatorServer) -> Api:
    return Api(emu)
