"""A local emulator of the Cloudflare AI Gateway Logs API.

Use :class:`EmulatorServer` in-process, ``python -m airflow_provider_aigw.emulator`` from a
shell, or the ``aigw_emulator`` / ``aigw_emulator_factory`` pytest fixtures. Standard
library only (writing Logpush files, :mod:`.logpush`, also needs ``cryptography`` and ``fsspec``,
which Airflow installs); never imports Airflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_aigw.emulator.data import generate_logs
    from airflow_provider_aigw.emulator.faults import Faults
    from airflow_provider_aigw.emulator.server import DEFAULT_ACCOUNT_ID, EmulatorServer
    from airflow_provider_aigw.emulator.stats import Stats

__all__ = ["DEFAULT_ACCOUNT_ID", "EmulatorServer", "Faults", "Stats", "generate_logs"]

# Resolved on first use, so that pytest loading the plugin (a submodule) does not import the server.
_HOMES = {
    "DEFAULT_ACCOUNT_ID": "server",
    "EmulatorServer": "server",
    "Stats": "stats",
    "Faults": "faults",
    "generate_logs": "data",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
