"""Pytest plugin (entry point ``pytest11: aigw_emulator``): AI Gateway emulator fixtures.

* ``aigw_emulator_factory`` -- ``factory(gateways={"my-gateway": 1000}, start=None, end=None,
  seed=0, **faults)`` returns a started :class:`EmulatorServer`; all are stopped at teardown.
  ``start``/``end`` default to the 3 days before the factory call. Keyword arguments that
  are :class:`Faults` fields configure fault injection; others go to ``EmulatorServer``.
* ``aigw_emulator`` -- a started emulator with gateway ``my-gateway`` holding 1,000 logs
  over the 3 days before the test started, and ``AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT``
  set to it (JSON form).

Loading the plugin (pytest does it in every environment where the provider is installed) imports
only pytest and the standard library and registers these two fixtures, no hooks: the emulator
itself is imported when a test first asks for a fixture. Never imports Airflow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow_provider_aigw.emulator.server import EmulatorServer

__all__ = ["aigw_emulator", "aigw_emulator_factory"]

EmulatorFactory = Callable[..., "EmulatorServer"]


@pytest.fixture
def aigw_emulator_factory() -> Iterator[EmulatorFactory]:
    """Factory of started emulators, stopped at teardown."""
    from airflow_provider_aigw.emulator.faults import FIELDS as FAULT_FIELDS
    from airflow_provider_aigw.emulator.server import EmulatorServer

    servers: list[EmulatorServer] = []

    def factory(
        gateways: dict[str, int] | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        seed: int = 0,
        **kwargs: Any,
    ) -> EmulatorServer:
        faults = {k: v for k, v in kwargs.items() if k in FAULT_FIELDS}
        server_kwargs = {k: v for k, v in kwargs.items() if k not in FAULT_FIELDS}
        emu = EmulatorServer(seed=seed, **server_kwargs)
        if end is None:
            end = datetime.now(timezone.utc).replace(microsecond=0)
        if start is None:
            start = (end if isinstance(end, datetime) else datetime.fromisoformat(end)) - timedelta(days=3)
        for gateway_id, count in (gateways if gateways is not None else {"my-gateway": 1000}).items():
            emu.create_gateway(gateway_id)
            if count:
                emu.seed_logs(gateway_id, count, start, end, return_ids=False)
        if faults:
            emu.faults.update(**faults)
        servers.append(emu.start())
        return emu

    yield factory
    for emu in servers:
        emu.stop()


@pytest.fixture
def aigw_emulator(aigw_emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """A started emulator (``my-gateway``, 1,000 logs over the last 3 days) wired to the
    default Airflow connection id via ``AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT``."""
    emu = aigw_emulator_factory()
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", emu.airflow_conn_json("my-gateway"))
    return emu
