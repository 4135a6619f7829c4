"""The one place that knows where Airflow keeps things in 2.x and 3.x.

Everything else in the provider imports Airflow symbols from here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    try:
        from airflow.sdk import Context
    except ImportError:
        from airflow.utils.context import Context  # type: ignore[no-redef,attr-defined]

__all__ = [
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
    "PokeReturnValue",
    "TaskDeferred",
    "TriggerEvent",
    "conf",
    "mask_secret",
]
