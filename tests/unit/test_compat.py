"""The names the provider takes from Airflow resolve to Airflow's own on the installed version."""

from __future__ import annotations

import importlib
import warnings

import pytest
from airflow import __version__ as airflow_version

from airflow_provider_aigw import compat

AIRFLOW_3 = int(airflow_version.split(".")[0]) >= 3

# Where Airflow keeps each base class: the Task SDK on Airflow 3, the core modules on 2.x.
HOMES = {
    "BaseOperator": "airflow.models.baseoperator",
    "BaseSensorOperator": "airflow.sensors.base",
    "BaseHook": "airflow.hooks.base",
    "DAG": "airflow.models.dag",
}


@pytest.mark.parametrize("name", sorted(HOMES))
def test_the_base_classes_are_the_ones_airflow_runs(name: str) -> None:
    home = importlib.import_module("airflow.sdk" if AIRFLOW_3 else HOMES[name])
    assert getattr(compat, name) is getattr(home, name)


@pytest.mark.parametrize("name", ["AirflowException", "AirflowSensorTimeout", "AirflowSkipException"])
def test_the_exceptions_are_the_ones_airflow_catches(name: str) -> None:
    # airflow.exceptions holds them on 2.x, and (deprecated) aliases of the Task SDK's on Airflow 3.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DeprecatedImportWarning on Airflow 3
        airflows = getattr(importlib.import_module("airflow.exceptions"), name)
    assert getattr(compat, name) is airflows


def test_the_example_dags_sensor_is_resolved_on_first_use() -> None:
    assert issubclass(compat.TimeDeltaSensor, compat.BaseSensorOperator)
    with pytest.raises(AttributeError, match="has no attribute 'NoSuchSensor'"):
        compat.NoSuchSensor  # noqa: B018


@pytest.mark.parametrize(
    "url", ["memory://bucket/archive/gw/part-0.parquet", "s3://bucket/archive/manifest.json", "file:///tmp/archive/x"]
)
def test_storage_url_is_the_url_the_user_wrote(url: str) -> None:
    assert compat.storage_url(compat.ObjectStoragePath(url)) == url


def test_ui_field_behaviour_takes_the_hook_classmethods_keys() -> None:
    behaviour = {"hidden-fields": ["schema"], "relabeling": {"password": "API Token"}, "placeholders": {}}
    assert compat.ui_field_behaviour(behaviour) == {
        "hidden_fields": ["schema"],
        "relabeling": {"password": "API Token"},
        "placeholders": {},
    }
