"""Airflow 2.x / 3.x differences that only tests need (moved out of the provider's ``compat``).

``dag_test`` and ``get_xcom`` run a DAG in-process and read what it pushed; ``DagBag`` parses a
DAG folder. They pull in Airflow core modules (metadata DB, DAG parsing) that task code never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.models.dagbag import DagBag as DagBag

try:  # Airflow 3.2+ (3.0/3.1 keep it in airflow.exceptions); common-compat does not carry it
    from airflow.sdk.exceptions import AirflowRescheduleException
except ImportError:  # Airflow 2.x, 3.0, 3.1
    from airflow.exceptions import AirflowRescheduleException  # type: ignore[no-redef]

__all__ = ["AirflowRescheduleException", "DagBag", "dag_test", "get_xcom"]


def __getattr__(name: str) -> Any:
    if name == "DagBag":
        try:  # Airflow 3.2+
            from airflow.dag_processing.dagbag import DagBag
        except ImportError:  # Airflow 2.x, 3.0, 3.1
            from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
        return DagBag
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
