"""Airflow discovers the provider, its hook, connection type and form fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_json(*args: str) -> list[dict]:
    out = subprocess.run(
        [AIRFLOW, "providers", *args, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    ).stdout
    # Airflow 3.0/3.1 print log lines such as "[2026-...] {plugins.py:37} INFO ..." on stdout first.
    decoder = json.JSONDecoder()
    for line_start in [0] + [i + 1 for i, ch in enumerate(out) if ch == "\n"]:
        if out.startswith("[", line_start):
            try:
                value, _ = decoder.raw_decode(out, line_start)
            except ValueError:
                continue
            if isinstance(value, list) and all(isinstance(item, dict) for item in value):
                return value
    raise AssertionError(f"no JSON list in the output of airflow providers {' '.join(args)}:\n{out[-2000:]}")


def airflow_version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


def has_wtforms() -> bool:
    try:
        import wtforms  # noqa: F401
    except ImportError:
        return False
    return True


# The tuning knobs are extras set in the Extra JSON, not form fields (see get_provider_info).
EXPECTED_FIELDS = {"account_id", "gateway_id"}


def test_providers_list_shows_the_package():
    (entry,) = [p for p in airflow_json("list") if p["package_name"] == "airflow-provider-aigw"]
    from airflow_provider_aigw import __version__

    assert entry["version"] == __version__


def test_providers_hooks_shows_the_connection_type():
    (entry,) = [h for h in airflow_json("hooks") if h["connection_type"] == "cloudflare_ai_gateway"]
    assert entry["class"] == "airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook"
    assert entry["conn_id_attribute_name"] == "aigw_conn_id"
    assert entry["hook_name"] == "Cloudflare AI Gateway"


@pytest.mark.skipif(
    airflow_version() < (3, 2) and not has_wtforms(),
    reason="Airflow < 3.2 builds connection-form widgets (for every provider) only when wtforms is "
    "installed (FAB); without it the CLI lists none. 3.1's UI path is checked below.",
)
def test_connection_form_has_custom_fields_and_behaviour():
    # 2.x (and 3.0/3.1 with FAB) from the hook classmethods, 3.2+ from the provider info's conn-fields.
    fields = {
        w["connection_parameter_name"] for w in airflow_json("widgets") if w["package_name"] == "airflow-provider-aigw"
    }
    assert fields == {f"extra__cloudflare_ai_gateway__{name}" for name in EXPECTED_FIELDS}
    assert {"field_behaviours": "cloudflare_ai_gateway"} in airflow_json("behaviours")


@pytest.mark.skipif(
    airflow_version() != (3, 1),
    reason="Airflow 3.1's UI builds connection forms by calling the hook classmethods with mocked wtforms; "
    "2.x uses real wtforms, 3.0 needs FAB installed, 3.2+ reads conn-fields",
)
def test_airflow_3_1_ui_form_metadata_without_fab():
    # In a subprocess: the service puts mock wtforms/FAB modules into sys.modules for good.
    script = """
import json
from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

hooks, widgets, behaviours = HookMetaService._get_hooks_with_mocked_fab()
print(json.dumps({
    "hook": hooks["cloudflare_ai_gateway"] is not None,
    "widgets": sorted(n for n, w in widgets.items() if w.package_name == "airflow-provider-aigw"),
    "behaviour": behaviours.get("cloudflare_ai_gateway"),
}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True, env=os.environ.copy(), timeout=300
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["hook"]
    assert set(result["widgets"]) == {f"extra__cloudflare_ai_gateway__{name}" for name in EXPECTED_FIELDS}
    assert result["behaviour"]["hidden_fields"] == ["schema", "port"]
    assert result["behaviour"]["relabeling"]["password"] == "API Token"
