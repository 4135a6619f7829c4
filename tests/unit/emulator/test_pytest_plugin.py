"""The pytest plugin: its two fixtures, and what loading it costs every pytest run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from airflow_provider_aigw.emulator import EmulatorServer


def test_aigw_emulator_fixture(aigw_emulator: EmulatorServer) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"])
    assert conn == {
        "conn_type": "cloudflare_ai_gateway",
        "host": aigw_emulator.url,
        "password": aigw_emulator.token,
        "extra": {"account_id": aigw_emulator.account_id, "gateway_id": "my-gateway"},
    }
    assert aigw_emulator.count("my-gateway") == 1000
    r = requests.get(aigw_emulator.logs_url("my-gateway"), headers=aigw_emulator.auth_headers, timeout=10)
    assert r.json()["result_info"]["total_count"] == 1000


def test_factory_passes_faults_and_server_kwargs(aigw_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = aigw_emulator_factory(gateways={"a": 5, "b": 7}, token="t0k", error_rate=0.5, seed=9)
    assert emu.token == "t0k" and emu.faults.error_rate == 0.5
    assert emu.count("a") == 5 and emu.count("b") == 7
    conn = json.loads(emu.airflow_conn_json("b", timeout=5))
    assert conn["extra"] == {"account_id": emu.account_id, "gateway_id": "b", "timeout": 5}


def test_loading_the_pytest_plugin_imports_only_pytest_and_the_standard_library() -> None:
    # pytest loads the plugin in every environment where the provider is installed.
    code = (
        "import sys, json, pytest; before = set(sys.modules);"
        "import airflow_provider_aigw.emulator.pytest_plugin as plugin;"
        "new = sorted(set(sys.modules) - before);"
        "print(json.dumps({'new': new, 'stdlib': sorted(sys.stdlib_module_names),"
        " 'hooks': [n for n in dir(plugin) if n.startswith('pytest_')]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    ours = {m for m in loaded["new"] if m.split(".")[0] not in set(loaded["stdlib"])}
    assert ours == {
        "airflow_provider_aigw",
        "airflow_provider_aigw.emulator",
        "airflow_provider_aigw.emulator.pytest_plugin",
    }
    assert loaded["hooks"] == []


def test_the_pytest_plugin_registers_only_its_two_fixtures(pytestconfig: pytest.Config) -> None:
    from airflow_provider_aigw.emulator import pytest_plugin

    plugin = pytestconfig.pluginmanager.get_plugin("aigw_emulator")
    assert plugin is pytest_plugin
    defined = {name for name in vars(pytest_plugin) if not name.startswith("_")}
    assert {n for n in defined if n.startswith("pytest_")} == set()
    fixture_marks = ("_fixture_function_marker", "_pytestfixturefunction")  # pytest >= 8.4, older
    fixtures = {n for n in defined if any(hasattr(getattr(pytest_plugin, n), mark) for mark in fixture_marks)}
    assert fixtures == {"aigw_emulator", "aigw_emulator_factory"}
