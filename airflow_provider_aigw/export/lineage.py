"""OpenLineage facets of an export: the gateway's logs as input, the destination as output.

Kept out of the operator (as Airflow's dbt-cloud provider keeps its ``utils/openlineage.py``);
the openlineage provider is imported only when lineage is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow_provider_aigw.export.schema import COLUMNS, TYPES

if TYPE_CHECKING:
    from airflow_provider_aigw.export.run import ExportRun

__all__ = ["export_lineage"]


def export_lineage(run: ExportRun | None) -> Any:
    """The ``OperatorLineage`` of an export run; empty when nothing ran.

    Both datasets carry a schema facet built from the export's one schema
    (:data:`~airflow_provider_aigw.export.schema.COLUMNS`).
    """
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    if run is None:
        return OperatorLineage()
    parts = urlsplit(run.url)
    namespace = f"{parts.scheme}://{parts.netloc}" if parts.netloc else parts.scheme
    schema = SchemaDatasetFacet(
        fields=[
            SchemaDatasetFacetFields(name=c.name, type=TYPES[c.type][0], description=c.notes or None)
            for c in COLUMNS
        ]
    )
    # OpenLineage naming: object stores name keys without a leading slash, file:// the absolute path.
    path = (parts.path.lstrip("/") or "/") if parts.netloc else (parts.path or "/")
    return OperatorLineage(
        inputs=[
            Dataset(
                namespace=f"cloudflare-ai-gateway://{run.account_id}",
                name=f"gateways/{run.gateway}/logs",
                facets={"schema": schema},
            )
        ],
        outputs=[Dataset(namespace=namespace, name=path, facets={"schema": schema})],
    )
