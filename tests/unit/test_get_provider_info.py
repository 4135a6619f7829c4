"""The provider's metadata, as Airflow's providers manager reads it."""

from __future__ import annotations

import importlib
import json
from importlib.resources import files

import jsonschema

from airflow_provider_aigw import __version__
from airflow_provider_aigw.get_provider_info import get_provider_info


def test_airflow_accepts_the_provider_info() -> None:
    # The providers manager validates every provider's info against this schema and skips a
    # provider that fails it.
    schema = json.loads(files("airflow").joinpath("provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-provider-aigw" and info["versions"] == [__version__]


def test_every_module_and_class_it_names_imports() -> None:
    info = get_provider_info()
    modules = {
        kind: [m for entry in info[kind] for m in entry["python-modules"]]
        for kind in ("hooks", "operators", "sensors", "triggers")
    }
    assert modules == {
        "hooks": ["airflow_provider_aigw.hooks.ai_gateway"],
        "operators": ["airflow_provider_aigw.operators.ai_gateway"],
        "sensors": ["airflow_provider_aigw.sensors.ai_gateway"],
        "triggers": ["airflow_provider_aigw.triggers.ai_gateway"],
    }
    for module in (m for names in modules.values() for m in names):
        importlib.import_module(module)
    (conn_type,) = info["connection-types"]
    module, _, name = conn_type["hook-class-name"].rpartition(".")
    hook = getattr(importlib.import_module(module), name)
    assert (hook.conn_type, hook.hook_name) == (conn_type["connection-type"], conn_type["hook-name"])
