"""Provider metadata read by Airflow's providers manager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_provider_aigw import __version__

#: Connection form layout (Airflow 3.2+ reads it from here, 2.x from the hook classmethod).
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port"],
    "relabeling": {
        "password": "API Token",
        "host": "API base URL",
        "login": "Email (Global API Key auth only)",
    },
    "placeholders": {
        "password": "Cloudflare API token with AI Gateway Read (and Write to patch/delete)",
        "host": "https://api.cloudflare.com/client/v4",
        "login": "leave empty for API token auth",
        "account_id": "32 hex characters",
        "gateway_id": "my-gateway",
    },
}

#: Extra fields of the connection form (JSON schema per field), Airflow 3.2+.
CONN_FIELDS: dict[str, Any] = {
    "account_id": {
        "label": "Account ID",
        "schema": {"type": ["string", "null"], "pattern": "^[0-9a-f]{32}$"},
        "description": "Cloudflare account id (required).",
    },
    "gateway_id": {
        "label": "Default gateway ID",
        "schema": {"type": ["string", "null"]},
        "description": "Gateway used when a task does not name one.",
    },
    "timeout": {
        "label": "Request timeout (s)",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": 30},
    },
    "max_retries": {
        "label": "Max retries",
        "schema": {"type": ["integer", "null"], "minimum": 0, "default": 10},
        "description": "Retries of 429, 5xx, timeouts and dropped connections.",
    },
    "retry_deadline": {
        "label": "Retry deadline (s)",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": 900},
        "description": "A call stops retrying after this long (a Cloudflare lock-out lasts up to 300 s).",
    },
    "backoff_base": {
        "label": "First retry backoff (s)",
        "schema": {"type": ["number", "null"], "minimum": 0, "default": 1},
        "description": "Doubles per retry (with jitter) up to the backoff cap; 429s wait Retry-After instead.",
    },
    "backoff_max": {
        "label": "Retry backoff cap (s)",
        "schema": {"type": ["number", "null"], "minimum": 0, "default": 60},
    },
    "budget_requests": {
        "label": "Request budget (requests per period)",
        "schema": {"type": ["integer", "null"], "minimum": 1, "default": 1000},
        "description": "Client-side limit; Cloudflare allows 1,200 requests per 5 minutes per user.",
    },
    "budget_period": {
        "label": "Request budget period (s)",
        "schema": {"type": ["number", "null"], "minimum": 1, "default": 300},
    },
    "budget_storage": {
        "label": "Request budget storage",
        "schema": {"type": ["string", "null"], "default": "memory://"},
        "description": "memory:// (one budget per process) or redis://host:6379/0 (one budget for every "
        "worker; pip install 'airflow-provider-aigw[redis]').",
    },
    "verify_ssl": {
        "label": "Verify TLS certificates",
        "schema": {"type": ["boolean", "null"], "default": True},
        "description": "Turning this off logs a warning on every use.",
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
