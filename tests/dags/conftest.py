"""Fixtures of the example-DAG tests: a migrated metadata DB and DAGs loaded from example_dags/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from airflow.sdk import DAG

EXAMPLE_DAGS = Path(__file__).resolve().parents[2] / "example_dags"


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A fresh SQLite metadata DB for the session (tests/conftest.py points Airflow at a temp home)."""
    from airflow.utils.db import resetdb

    resetdb()
    yield


@pytest.fixture
def load_dag(airflow_db: None) -> Any:
    """``load_dag(dag_id)``: parse ``example_dags/<dag_id>.py`` afresh (a DAG must live in the DAGs folder)."""
    from airflow_provider_aigw.compat import DagBag

    def load(dag_id: str) -> DAG:
        bag = DagBag(dag_folder=str(EXAMPLE_DAGS / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        return bag.dags[dag_id]

    return load
