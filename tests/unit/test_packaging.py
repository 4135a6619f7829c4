"""The wheel's contents: every subpackage listed in pyproject.toml, the example DAGs shipped once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from airflow_provider_aigw import examples

ROOT = Path(__file__).resolve().parents[2]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    tomllib = pytest.importorskip("tomli")


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed_for_the_wheel():
    # The list is explicit (for the example_dags mapping): a new subpackage must be added to it.
    found = {
        ".".join(path.parent.relative_to(ROOT).parts)
        for path in (ROOT / "airflow_provider_aigw").rglob("__init__.py")
        if "__pycache__" not in path.parts
    }
    listed = set(setuptools_config()["packages"])
    assert found | {"airflow_provider_aigw.example_dags"} == listed


def test_example_dags_ship_from_the_top_level_folder():
    assert setuptools_config()["package-dir"] == {"airflow_provider_aigw.example_dags": "example_dags"}
    assert not (ROOT / "airflow_provider_aigw" / "example_dags").exists()  # one copy of each file
    names = [p.name for p in examples.example_dag_files()]
    assert names == sorted(p.name for p in (ROOT / "example_dags").glob("aigw_*.py")) and len(names) == 4
