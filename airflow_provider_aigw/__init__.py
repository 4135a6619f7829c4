"""Apache Airflow provider for the Cloudflare AI Gateway Logs API."""

from __future__ import annotations

__version__ = "0.1.0"
