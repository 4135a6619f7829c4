"""A local emulator of the Cloudflare AI Gateway Logs API.

Use :class:`EmulatorServer` in-process, ``python -m airflow_provider_aigw.emulator`` from a
shell, or the ``aigw_emulator`` / ``aigw_emulator_factory`` pytest fixtures. Standard
library only; never imports Airflow.
"""

from __future__ import annotations

from airflow_provider_aigw.emulator.data import generate_logs
from airflow_provider_aigw.emulator.faults import Faults
from airflow_provider_aigw.emulator.server import DEFAULT_ACCOUNT_ID, EmulatorServer, Stats

__all__ = ["DEFAULT_ACCOUNT_ID", "EmulatorServer", "Faults", "Stats", "generate_logs"]
