"""The one place that knows where Airflow keeps things in 2.x and 3.x.

Everything else in the provider imports Airflow symbols from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:  # Airflow 3.1+
    from airflow.sdk import BaseHook
except ImportError:  # Airflow 2.x, 3.0
    from airflow.hooks.base import BaseHook  # type: ignore[no-redef,attr-defined]

try:  # Airflow 3.x
    from airflow.sdk import (
        BaseOperator,
        BaseSensorOperator,
        ObjectStoragePath,
        PokeReturnValue,
    )
except ImportError:  # Airflow 2.x
    from airflow.io.path import ObjectStoragePath  # type: ignore[no-redef]
    from airflow.models import BaseOperator  # type: ignore[no-redef,attr-defined]
    from airflow.sensors.base import (  # type: ignore[no-redef]
        BaseSensorOperator,
        PokeReturnValue,
    )

try:  # Airflow 3.x
    from airflow.sdk import Asset
except ImportError:  # Airflow 2.x
    from airflow.datasets import Dataset as Asset  # type: ignore[no-redef,assignment]

try:  # Airflow 3.x: DAG authoring (the example DAGs import these from here)
    from airflow.sdk import DAG, Param, task
except ImportError:  # Airflow 2.x
    from airflow.decorators import task  # type: ignore[no-redef,attr-defined]
    from airflow.models.dag import DAG  # type: ignore[no-redef,assignment]
    from airflow.models.param import Param  # type: ignore[no-redef,assignment]

try:  # Airflow 3.2+ (3.0/3.1 keep these in airflow.exceptions)
    from airflow.sdk.exceptions import (
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )
except ImportError:  # Airflow 2.x, 3.0, 3.1
    from airflow.exceptions import (  # type: ignore[no-redef]
        AirflowException,
        AirflowFailException,
        AirflowRescheduleException,
        AirflowSensorTimeout,
        AirflowSkipException,
        TaskDeferred,
    )

try:  # Airflow 3.x
    from airflow.sdk.configuration import conf
except ImportError:  # Airflow 2.x
    from airflow.configuration import conf  # type: ignore[no-redef]

try:  # Airflow 3.x
    from airflow.sdk.log import mask_secret
except ImportError:  # Airflow 2.x
    from airflow.utils.log.secrets_masker import mask_secret  # type: ignore[no-redef]

from airflow.triggers.base import BaseTrigger, TriggerEvent


def first_reschedule_date(sensor: Any, context: Any) -> Any:
    """When a reschedule-mode sensor first started (its timeout counts from then), or ``None``.

    The same lookup as ``BaseSensorOperator.execute``: the first reschedule of the first try.
    """
    ti = context["ti"]
    if hasattr(ti, "get_first_reschedule_date"):  # Airflow 3.x (Task SDK)
        return ti.get_first_reschedule_date(context)
    from airflow.sensors.base import _orig_start_date  # Airflow 2.x

    first_try_number = (ti.max_tries or 0) - (sensor.retries or 0) + 1
    return _orig_start_date(
        dag_id=ti.dag_id, task_id=ti.task_id, run_id=ti.run_id, map_index=ti.map_index, try_number=first_try_number
    )


# --------------------------------------------------------------------------- connection form
# Airflow 3.2+ builds the connection form from the provider info ("conn-fields" and
# "ui-field-behaviour", kebab-case keys) and never calls the hook classmethods. Airflow 2.x,
# 3.0 and 3.1 call the hook's get_ui_field_behaviour() (snake_case keys, validated against a
# schema that rejects anything else) and get_connection_form_widgets() (wtforms fields, and
# only StringField, IntegerField, PasswordField and BooleanField: any other class makes them
# drop the whole hook; 3.0/3.1's UI substitutes mocks for exactly those four). Both are built
# here from the provider info, so the form is declared once.


def ui_field_behaviour(behaviour: dict[str, Any]) -> dict[str, Any]:
    """Provider-info ``ui-field-behaviour`` -> the hook classmethod's shape (Airflow < 3.2)."""
    return {key.replace("-", "_"): value for key, value in behaviour.items()}


def connection_form_widgets(conn_fields: dict[str, Any]) -> dict[str, Any]:
    """Provider-info ``conn-fields`` -> wtforms fields for ``get_connection_form_widgets`` (Airflow < 3.2).

    JSON-schema ``integer`` -> IntegerField, ``boolean`` -> BooleanField, ``format: password`` ->
    PasswordField, anything else (``number`` included: FloatField is not accepted) -> StringField.
    Imports the UI libraries lazily: workers need none of them.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, PasswordField, StringField
    from wtforms.validators import NumberRange, Optional

    widgets: dict[str, Any] = {}
    for name, field in conn_fields.items():
        schema = field.get("schema", {})
        types = schema.get("type", "string")
        kind = next((t for t in ([types] if isinstance(types, str) else types) if t != "null"), "string")
        label = lazy_gettext(field.get("label", name))
        description = field.get("description", "")
        default = schema.get("default")
        validators: list[Any] = [Optional()]
        if kind == "integer" and ("minimum" in schema or "maximum" in schema):
            validators.append(NumberRange(min=schema.get("minimum"), max=schema.get("maximum")))
        if schema.get("format") == "password":
            widgets[name] = PasswordField(label, description=description, widget=BS3PasswordFieldWidget())
        elif kind == "boolean":
            widgets[name] = BooleanField(label, description=description, default=default)
        elif kind == "integer":
            widgets[name] = IntegerField(
                label, validators=validators, description=description, default=default, widget=BS3TextFieldWidget()
            )
        else:
            widgets[name] = StringField(
                label,
                validators=[Optional()],
                description=description,
                default=None if default is None else str(default),
                widget=BS3TextFieldWidget(),
            )
    return widgets


def storage_url(path: ObjectStoragePath) -> str:
    """``str(path)`` in the form users write it, on every Airflow version.

    universal-pathlib < 0.3 (Airflow 2.x, 3.0, 3.1) renders ``memory://bucket/key`` and URLs of
    schemes it has no implementation for as ``scheme:///bucket/key``; 0.3 (Airflow 3.2+) keeps
    ``scheme://bucket/key``.
    """
    text = str(path)
    protocol = str(getattr(path, "protocol", "") or "")
    prefix = f"{protocol}:///"
    if protocol and text.startswith(prefix) and _upath_adds_a_slash(protocol):
        text = f"{protocol}://{text[len(prefix) :]}"
    return text


def _upath_adds_a_slash(protocol: str) -> bool:
    try:
        import upath
        from upath.registry import available_implementations
    except ImportError:  # pragma: no cover - Airflow always ships universal-pathlib
        return False
    major_minor = tuple(int(part) for part in upath.__version__.split(".")[:2] if part.isdigit())
    if major_minor >= (0, 3):
        return False
    return protocol == "memory" or protocol not in available_implementations()


# --------------------------------------------------------------------------- testing support
# For tests of DAGs (ours and users') and the example DAGs: imported lazily, because they pull
# in Airflow core modules (metadata DB, DAG parsing) or a provider that task code must not need.


def __getattr__(name: str) -> Any:
    if name == "DagBag":
        try:  # Airflow 3.2+
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow 2.x, 3.0, 3.1
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
        return DagBag
    if name == "TimeDeltaSensor":  # for the example DAGs; Airflow 3 keeps it in the standard provider
        try:
            from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
        except ImportError:  # Airflow 2.x
            from airflow.sensors.time_delta import TimeDeltaSensor  # type: ignore[no-redef]
        return TimeDeltaSensor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def dag_test(dag: Any, *, logical_date: Any = None, **kwargs: Any) -> Any:
    """``dag.test(logical_date=..., run_conf=..., mark_success_pattern=...)``; returns the DagRun.

    Airflow 2.x names the date ``execution_date``. Airflow 3.0's ``dag.test()`` does not write the
    DAG to the metadata DB, so a task with asset outlets fails ("inactive assets in its inlets or
    outlets"); 3.1+ writes it first, and so does this on 3.0.
    """
    from airflow import __version__ as airflow_version

    if airflow_version.startswith("3.0."):
        from airflow.dag_processing.bundles.manager import DagBundlesManager
        from airflow.dag_processing.collection import update_dag_parsing_results_in_db
        from airflow.serialization.serialized_objects import LazyDeserializedDAG, SerializedDAG
        from airflow.utils.session import create_session

        with create_session() as session:
            DagBundlesManager().sync_bundles_to_db(session=session)
        with create_session() as session:
            serialized = LazyDeserializedDAG(data=SerializedDAG.to_dict(dag))  # type: ignore[attr-defined]
            update_dag_parsing_results_in_db(  # type: ignore[call-arg]
                "dags-folder",
                None,
                [serialized],
                {},
                set(),  # type: ignore[arg-type]
                session=session,
            )
    if logical_date is not None:
        import inspect

        name = "logical_date" if "logical_date" in inspect.signature(dag.test).parameters else "execution_date"
        kwargs[name] = logical_date
    return dag.test(**kwargs)


def get_xcom(dag_run: Any, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
    """The deserialised XCom a task of a finished ``dag.test()`` run pushed, or ``None``."""
    from airflow.utils.session import create_session

    try:  # Airflow 3.x
        from airflow.models.xcom import XComModel
    except ImportError:  # Airflow 2.x
        from airflow.models.xcom import XCom

        return XCom.get_one(run_id=dag_run.run_id, dag_id=dag_run.dag_id, task_id=task_id, key=key, map_index=map_index)
    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id, dag_ids=dag_run.dag_id, task_ids=task_id, key=key, map_indexes=map_index
        )
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)


if TYPE_CHECKING:
    from airflow.models.dagbag import DagBag  # noqa: F401
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor  # noqa: F401

    try:
        from airflow.sdk import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[no-redef,attr-defined]

__all__ = [
    "DAG",
    "AirflowException",
    "AirflowFailException",
    "AirflowRescheduleException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "ObjectStoragePath",
    "Param",
    "PokeReturnValue",
    "TaskDeferred",
    "TriggerEvent",
    "conf",
    "connection_form_widgets",
    "dag_test",
    "first_reschedule_date",
    "get_xcom",
    "mask_secret",
    "storage_url",
    "task",
    "ui_field_behaviour",
]
