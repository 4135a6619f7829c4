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
    return json.loads(out[out.index("[") :])


def test_providers_list_shows_the_package():
    (entry,) = [p for p in airflow_json("list") if p["package_name"] == "airflow-provider-aigw"]
    from airflow_provider_aigw import __version__

    assert entry["version"] == __version__


def test_providers_hooks_shows_the_connection_type():
    (entry,) = [h for h in airflow_json("hooks") if h["connection_type"] == "cloudflare_ai_gateway"]
    assert entry["class"] == "airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook"
    assert entry["conn_id_attribute_name"] == "aigw_conn_id"
    assert entry["hook_name"] == "Cloudflare AI Gateway"


def test_connection_form_has_custom_fields_and_behaviour():
    fields = {
        w["connection_parameter_name"] for w in airflow_json("widgets") if w["package_name"] == "airflow-provider-aigw"
    }
    expected = {
        "account_id",
        "gateway_id",
        "timeout",
        "max_retries",
        "retry_deadline",
        "backoff_base",
        "backoff_max",
        "budget_requests",
        "budget_period",
        "verify_ssl",
    }
    assert fields == {f"extra__cloudflare_ai_gateway__{name}" for name in expected}
    assert {"field_behaviours": "cloudflare_ai_gateway"} in airflow_json("behaviours")
