"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_aigw import __version__

#: Connection form layout (Airflow 3.2+ reads it from here, 2.x from the hook classmethod).
#: Airflow 3.2+ shows placeholders of the standard fields only; the extra fields' placeholders
#: are for the Airflow 2.x / 3.0 / 3.1 form (3.3's form shows their description instead).
#: The port stays visible although the provider ignores it: Airflow 3.3.2's Test button sends
#: port 0 for a connection saved without one and its API then refuses the test ("The host or
#: port to test differs from the stored connection", apache/airflow#73298). A port of 0 typed
#: into the form is saved and sent back unchanged, so the test runs. The form has no default
#: values for standard fields, hence the label asks for it.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema"],
    "relabeling": {
        "password": "API Token",
        "host": "API base URL",
        "login": "Email (Global API Key auth only)",
        "port": "Port: enter 0 (for the Test button)",
    },
    "placeholders": {
        "password": "Cloudflare API token with AI Gateway Read (and Write to patch/delete)",
        "host": "https://api.cloudflare.com/client/v4",
        "login": "leave empty for API token auth",
        "port": "0 (unused; Airflow 3.3.2's Test button needs a port)",
        "account_id": "32 hex characters",
        "gateway_id": "my-gateway",
    },
}

#: Extra fields of the connection form (JSON schema per field), Airflow 3.2+.
#: Only the two settings every connection needs: Airflow 3.3's form writes every field it shows
#: into the extra (``null`` when empty), so the tuning knobs (timeout, retries, backoff, request
#: budget, verify_ssl; see ``CONNECTION_EXTRAS`` of the hook) are set in the Extra JSON instead,
#: and unset ones keep following the provider's defaults. No ``default`` here for the same reason.
#: ``account_id`` has no ``null`` type, which makes the form mark it required and refuse to save
#: it empty; the form does not check ``pattern``, the hook does (before any request).
CONN_FIELDS: dict[str, Any] = {
    "account_id": {
        "label": "Account ID",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$", "minLength": 32, "maxLength": 32},
        "description": "32 hex characters: the id in your dashboard URL, dash.cloudflare.com/<account id>/.",
    },
    "gateway_id": {
        "label": "Default gateway ID",
        "schema": {"type": ["string", "null"]},
        "description": (
            "Gateway used when a task does not name one, e.g. my-gateway; the Test button needs it"
            " (and AIRFLOW__CORE__TEST_CONNECTION=Enabled)."
        ),
    },
}


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata for Airflow's providers manager."""
    return {
        "package-name": "airflow-provider-aigw",
        "name": "Cloudflare AI Gateway",
        "description": "Archive, purge, tag and watch Cloudflare AI Gateway request logs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Cloudflare AI Gateway",
                "external-doc-url": "https://developers.cloudflare.com/ai-gateway/",
                "tags": ["service"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Cloudflare AI Gateway",
                "python-modules": ["airflow_provider_aigw.hooks.ai_gateway"],
            }
        ],
        "operators": [
            {
                "integration-name": "Cloudflare AI Gateway",
                "python-modules": ["airflow_provider_aigw.operators.ai_gateway"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Cloudflare AI Gateway",
                "python-modules": ["airflow_provider_aigw.sensors.ai_gateway"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Cloudflare AI Gateway",
                "python-modules": ["airflow_provider_aigw.triggers.ai_gateway"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "cloudflare_ai_gateway",
                "hook-class-name": "airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook",
                "hook-name": "Cloudflare AI Gateway",
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
                "conn-fields": CONN_FIELDS,
            }
        ],
    }
