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
    """``load_dag(dag_id)``: parse ``example_dags/<dag_id>.py`` afresh (a DAG must live in the DAGs folder).

    ``retries=0`` (the default) turns the examples' retries off, so that a failing task fails its
    ``dag.test()`` run at once instead of after the retry delays in real time; ``retries=None``
    keeps them (tests/dags/test_example_schedules.py runs them on a virtual clock).
    """
    from tests.compat_helpers import DagBag

    def load(dag_id: str, *, retries: int | None = 0) -> DAG:
        bag = DagBag(dag_folder=str(EXAMPLE_DAGS / f"{dag_id}.py"))
        assert not bag.import_errors, bag.import_errors
        return without_retries(bag.dags[dag_id]) if retries == 0 else bag.dags[dag_id]

    return load


def without_retries(dag: Any) -> Any:
    """``dag`` with every task's retries set to 0 (see ``load_dag``)."""
    for task in dag.tasks:
        task.retries = 0
    return dag
