"""The delete of an export manifest (``deletion/exported.py``): exactly the exported logs, after proving the
archive holds them, judged by which logs still exist."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_aigw import progress as progress_module
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.deletion import delete_from_manifest, load_manifest, manifest_scope
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayLateLogsError
from airflow_provider_aigw.export.run import ExportRun, run_export
from airflow_provider_aigw.query import LogQuery
from tests.log_lines import LogLines
from tests.unit.deletion.seeded_day import AFTER, DAY, END, GW, START

WINDOW = {"start": "2026-01-09T00:00:00Z", "end": "2026-01-10T00:00:00Z"}
MANIFEST = {"gateway_id": GW, "window": WINDOW, "count": 0, "filters": [], "files": [], "complete": True}

# ------------------------------------------------------------------------ manifest checks


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (42, "manifest must be the export task's XCom, a manifest URL or a manifest, got int"),
        ({"gateway_id": GW, "window": WINDOW, "files": [], "complete": True}, "manifest has no 'count'"),
    ],
)
def test_load_manifest_refuses_what_is_no_export_manifest(value: Any, message: str) -> None:
    with pytest.raises(AIGatewayInputError, match=message):
        load_manifest(value)


def test_manifest_scope_is_the_manifests_own_and_given_values_must_agree() -> None:
    given = LogQuery.of(start=START, end="2026-01-10T00:00:00Z", gateway_id=GW, filters=[])
    assert manifest_scope(MANIFEST, given) == manifest_scope(MANIFEST) == LogQuery(GW, (), START, END)
    with pytest.raises(AIGatewayInputError, match=r"start 2026-01-09T01:00:00.000Z differs from the manifest's"):
        manifest_scope(MANIFEST, LogQuery.of(start=START + timedelta(hours=1)))
    with pytest.raises(AIGatewayInputError, match=r"filters .* differ from the manifest's \[\]"):
        manifest_scope(MANIFEST, LogQuery.of(filters={"key": "model", "operator": "eq", "value": "gpt-4o"}))
    with pytest.raises(AIGatewayInputError, match="gateway_id 'other' differs from the manifest's 'del-gateway'"):
        manifest_scope(MANIFEST, LogQuery.of(gateway_id="other"))
    with pytest.raises(AIGatewayInputError, match="a delete takes no search"):
        manifest_scope(MANIFEST, LogQuery.of(search="refund"))
    with pytest.raises(AIGatewayInputError, match=r"manifest filters\[0\].key 'nope' is not a documented"):
        manifest_scope({**MANIFEST, "filters": [{"key": "nope", "operator": "eq", "value": [1]}]})


def test_a_manifest_of_another_account_is_refused_before_any_request(emu: EmulatorServer, client: Any) -> None:
    with pytest.raises(AIGatewayInputError, match=r"comes from account 'f{32}', but connection 'x' is for account"):
        delete_from_manifest(client, {**MANIFEST, "account_id": "f" * 32}, source="connection 'x'")
    assert emu.stats["total"] == 0


# ------------------------------------------------------------------------------ deletes


def export_day(client: AIGatewayClient, tmp_path: Path) -> ExportRun:
    return run_export(client, DAY, f"file://{tmp_path}", format="jsonl")


def test_delete_from_manifest_deletes_exactly_the_exported_logs(
    emu: EmulatorServer, client: Any, tmp_path: Path
) -> None:
    run = export_day(client, tmp_path)
    outside = emu.ids(GW, *AFTER)
    lines = LogLines()
    assert delete_from_manifest(client, run.summary, dry_run=True, logger=lines) == 60
    assert emu.count(GW) == 70
    assert "dry run: 60 exported logs would be deleted" in lines.text("info").splitlines()[-1]
    assert delete_from_manifest(client, run.summary["manifest_uri"], LogQuery.of(start=START), logger=lines) == 60
    assert emu.ids(GW) == outside


def test_the_delete_check_logs_progress_and_an_eta_as_the_export_does(
    emu: EmulatorServer, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = export_day(client, tmp_path)
    # The progress clock reads 10 s later at every log walked: a line every 3 logs (interval 30 s).
    ticks = itertools.count(time.monotonic() + 10, 10)
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
    lines = LogLines()
    assert delete_from_manifest(client, run.summary, logger=lines) == 60
    info = lines.text("info").splitlines()
    checking = [line for line in info if line.startswith("checked ")]
    assert len(checking) >= 10 and all(" of 60 logs, " in line for line in checking)
    assert all("ETA" in line for line in checking[:-1])
    # the last line sums the check up: the keyset walk of 60 logs is 2 pages, 2 requests
    assert checking[-1].startswith("checked 60 of 60 logs, 2 pages, 2 API requests")
    assert info.index(checking[-1]) < next(i for i, line in enumerate(info) if line.startswith("deleting the 60"))
    assert emu.ids(GW, START, END) == []


def test_delete_from_manifest_refuses_late_logs_and_deletes_nothing(
    emu: EmulatorServer, client: Any, tmp_path: Path
) -> None:
    run = export_day(client, tmp_path)
    emu.seed_logs(GW, 3, START, END, seed=7)  # arrived after the export
    before = emu.ids(GW)
    with pytest.raises(AIGatewayLateLogsError, match=r"63 logs match .* but the export wrote 60"):
        delete_from_manifest(client, run.summary)
    assert emu.ids(GW) == before
    assert emu.stats["delete"] == 0
