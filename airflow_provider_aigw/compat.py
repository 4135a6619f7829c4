"""The one place that knows where Airflow keeps things in 2.x and 3.x.

Everything else in the provider imports Airflow symbols from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# apache-airflow-providers-common-compat resolves each name to airflow.sdk (Airflow 3) or its
# Airflow 2 home, as Airflow's own providers import them; only what it lacks is shimmed below.
from airflow.providers.common.compat.sdk import (
    DAG,
    AirflowException,
    AirflowSensorTimeout,
    AirflowSkipException,
    Asset,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    ObjectStoragePath,
    Param,
    PokeReturnValue,
    conf,
    mask_secret,
    task,
)
from airflow.triggers.base import BaseTrigger, TriggerEvent

try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.x: no asset watchers; an event trigger imports and is a plain trigger
    BaseEventTrigger = BaseTrigger  # type: ignore[misc,assignment]

try:
    from airflow.sdk import AssetWatcher
except ImportError:  # Airflow 2.x: an example DAG of a watcher defines no DAG there
    AssetWatcher = None  # type: ignore[misc,assignment]


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


# --------------------------------------------------------------------------- example DAGs
# Imported lazily: Airflow 3 keeps it in the standard provider, which task code must not need.


def __getattr__(name: str) -> Any:
    if name == "TimeDeltaSensor":  # for the example DAGs
        try:
            from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor
        except ImportError:  # Airflow 2.x
            from airflow.sensors.time_delta import TimeDeltaSensor  # type: ignore[no-redef]
        return TimeDeltaSensor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context
    from airflow.providers.standard.sensors.time_delta import TimeDeltaSensor  # noqa: F401

__all__ = [
    "DAG",
    "AirflowException",
    "AirflowSensorTimeout",
    "AirflowSkipException",
    "Asset",
    "AssetWatcher",
    "BaseEventTrigger",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "BaseTrigger",
    "Context",
    "ObjectStoragePath",
    "Param",
    "PokeReturnValue",
    "TriggerEvent",
    "conf",
    "connection_form_widgets",
    "first_reschedule_date",
    "mask_secret",
    "storage_url",
    "task",
    "ui_field_behaviour",
]
