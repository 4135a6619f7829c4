"""export/lineage.py: the OpenLineage facets of an export run, named by OpenLineage's conventions."""

from __future__ import annotations

import pytest

from airflow_provider_aigw.export.lineage import export_lineage
from airflow_provider_aigw.export.run import ExportRun
from airflow_provider_aigw.export.schema import COLUMNS, TYPES

pytest.importorskip("airflow.providers.openlineage")


def run_to(url: str) -> ExportRun:
    return ExportRun(summary={"count": 3}, account_id="acct-1", gateway="gw-1", url=url)


@pytest.mark.parametrize(
    ("url", "namespace", "name"),
    [
        ("s3://bucket/archive/aigw", "s3://bucket", "archive/aigw"),  # object stores: keys, no leading slash
        ("gs://bucket", "gs://bucket", "/"),
        ("file:///data/aigw", "file", "/data/aigw"),  # file://: the absolute path
    ],
)
def test_the_gateway_is_the_input_and_the_destination_the_output(url: str, namespace: str, name: str) -> None:
    lineage = export_lineage(run_to(url))
    (source,) = lineage.inputs
    (target,) = lineage.outputs
    assert (source.namespace, source.name) == ("cloudflare-ai-gateway://acct-1", "gateways/gw-1/logs")
    assert (target.namespace, target.name) == (namespace, name)
    for dataset in (source, target):
        fields = dataset.facets["schema"].fields
        assert [(f.name, f.type) for f in fields] == [(c.name, TYPES[c.type][0]) for c in COLUMNS]


def test_no_run_no_datasets() -> None:
    lineage = export_lineage(None)
    assert (lineage.inputs, lineage.outputs) == ([], [])
