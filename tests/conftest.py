"""Test-wide Airflow settings; set before anything imports Airflow."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_home = tempfile.mkdtemp(prefix="aigw-airflow-home-")
os.environ["AIRFLOW_HOME"] = _home
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "example_dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_home}/airflow.db"
os.environ.setdefault("AIRFLOW__CORE__TEST_CONNECTION", "Enabled")


import pytest  # noqa: E402  (after the environment above, which must precede any Airflow import)


@pytest.fixture(autouse=True)
def _fresh_request_budgets():
    """Each test starts with empty process-wide budgets (a 429 pause must not leak)."""
    from airflow_provider_aigw.budget import RedisRequestBudget, RequestBudget

    RequestBudget._registry.clear()
    RedisRequestBudget._registry.clear()
    yield
    RequestBudget._registry.clear()
    RedisRequestBudget._registry.clear()
