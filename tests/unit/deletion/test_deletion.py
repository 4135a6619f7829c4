"""The deletes where they live (``airflow_provider_aigw.deletion``), judged by which logs still exist."""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.deletion import (
    announce,
    delete_from_manifest,
    delete_listed,
    load_manifest,
    manifest_scope,
)
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayLateLogsError, AIGatewayUnsafeDeleteError
from airflow_provider_aigw.export import run as export_run
from airflow_provider_aigw.export.run import ExportRun, run_export
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from tests.log_lines import LogLines

UTC = timezone.utc
GW = "del-gateway"
START = datetime(2026, 1, 9, tzinfo=UTC)
END = datetime(2026, 1, 10, tzinfo=UTC)
WINDOW = {"start": "2026-01-09T00:00:00Z", "end": "2026-01-10T00:00:00Z"}
MANIFEST = {"gateway_id": GW, "window": WINDOW, "count": 0, "filters": [], "files": [], "complete": True}


@pytest.fixture
def emu(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    server.seed_logs(GW, 60, START, END, seed=5)
    server.seed_logs(GW, 10, END, END + timedelta(hours=2), seed=6)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", server.airflow_conn_json(GW))
    server.reset_stats()
    return server


@pytest.fixture
def client(emu: EmulatorServer) -> AIGatewayClient:
    return AIGatewayHook().client


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
    filters, start, end = manifest_scope(MANIFEST, start=START, end="2026-01-10T00:00:00Z", gateway_id=GW, filters=[])
    assert (filters, start, end) == ([], START, END)
    with pytest.raises(AIGatewayInputError, match=r"start 2026-01-09T01:00:00.000Z differs from the manifest's"):
        manifest_scope(MANIFEST, start=START + timedelta(hours=1))
    with pytest.raises(AIGatewayInputError, match=r"filters .* differ from the manifest's \[\]"):
        manifest_scope(MANIFEST, filters={"key": "model", "operator": "eq", "value": "gpt-4o"})
    with pytest.raises(AIGatewayInputError, match="gateway_id 'other' differs from the manifest's 'del-gateway'"):
        manifest_scope(MANIFEST, gateway_id="other")
    with pytest.raises(AIGatewayInputError, match=r"manifest filters\[0\].key 'nope' is not a documented"):
        manifest_scope({**MANIFEST, "filters": [{"key": "nope", "operator": "eq", "value": [1]}]})


def test_a_manifest_of_another_account_is_refused_before_any_request(emu: EmulatorServer, client: Any) -> None:
    with pytest.raises(AIGatewayInputError, match=r"comes from account 'f{32}', but connection 'x' is for account"):
        delete_from_manifest(client, {**MANIFEST, "account_id": "f" * 32}, source="connection 'x'")
    assert emu.stats["total"] == 0


# ------------------------------------------------------------------------------ deletes


def export_day(tmp_path: Path) -> ExportRun:
    destination = f"file://{tmp_path}"
    return run_export(AIGatewayHook(), destination, gateway=GW, filters=[], start=START, end=END, format="jsonl")


def test_delete_from_manifest_deletes_exactly_the_exported_logs(
    emu: EmulatorServer, client: Any, tmp_path: Path
) -> None:
    run = export_day(tmp_path)
    outside = emu.ids(GW, END, END + timedelta(hours=2))
    lines = LogLines()
    assert delete_from_manifest(client, run.summary, report_only=True, logger=lines) == 60
    assert emu.count(GW) == 70
    assert "dry run: 60 exported logs would be deleted" in lines.text("info").splitlines()[-1]
    assert delete_from_manifest(client, run.summary["manifest_uri"], start=START, logger=lines) == 60
    assert emu.ids(GW) == outside


def test_the_delete_check_logs_progress_and_an_eta_as_the_export_does(
    emu: EmulatorServer, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = export_day(tmp_path)
    # The progress clock reads 10 s later at every log walked: a line every 3 logs (interval 30 s).
    ticks = itertools.count(time.monotonic() + 10, 10)
    monkeypatch.setattr(export_run, "time", SimpleNamespace(monotonic=lambda: next(ticks)))
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
    run = export_day(tmp_path)
    emu.seed_logs(GW, 3, START, END, seed=7)  # arrived after the export
    before = emu.ids(GW)
    with pytest.raises(AIGatewayLateLogsError, match=r"63 logs match .* but the export wrote 60"):
        delete_from_manifest(client, run.summary)
    assert emu.ids(GW) == before
    assert emu.stats["delete"] == 0


def test_delete_listed_validates_before_any_request_then_deletes_exactly_the_match(
    emu: EmulatorServer, client: Any
) -> None:
    with pytest.raises(AIGatewayInputError, match="refusing to delete with neither filters nor a start/end window"):
        delete_listed(client, gateway=GW, filters=[], start=None, end=None)
    with pytest.raises(AIGatewayInputError, match="not a documented filter key"):
        delete_listed(client, gateway=GW, filters={"key": "nope", "operator": "eq", "value": 1}, start=START, end=END)
    with pytest.raises(AIGatewayInputError, match="has no timezone"):
        delete_listed(client, gateway=GW, filters=None, start="2026-01-09T00:00:00", end=None)
    assert emu.stats["total"] == 0
    failed = {x["id"] for x in emu.logs(GW) if x["success"] is False and START.isoformat() <= x["created_at"]}
    failed &= set(emu.ids(GW, START, END))
    keep = set(emu.ids(GW)) - failed
    count = delete_listed(
        client,
        gateway=GW,
        filters=[{"key": "success", "operator": "eq", "value": [False]}],
        start="2026-01-09T00:00:00Z",
        end=END,
    )
    assert count == len(failed) and set(emu.ids(GW)) == keep


def test_announce_stops_a_dry_run_and_an_empty_match() -> None:
    lines = LogLines()
    assert announce("scope", 3, 5, report_only=True, logger=lines, what="exported logs", kept=2) is False
    last = lines.text("info").splitlines()[-1]
    assert last == "dry run: 3 exported logs would be deleted (scope), 2 kept (body not archived)"
    assert announce("scope", 0, 0, report_only=False, logger=lines) is False
    assert lines.text("info").splitlines()[-1] == "no logs match (scope): nothing to delete"
    # All matching logs kept: no "nothing matches" shortcut, so the kept ones are reported by the delete.
    assert announce("scope", 0, 2, report_only=False, logger=lines) is True


@pytest.mark.parametrize("order", ["asc", "desc", "random"])
def test_delete_listed_stops_at_the_canary_when_delete_ignores_id_in_any_order(
    emu: EmulatorServer, client: Any, order: str
) -> None:
    window = emu.ids(GW, START, END)
    outside = set(emu.ids(GW)) - set(window)
    emu.faults.update(ignore_delete_filter_keys=["id"], delete_order=order, seed=9)
    with pytest.raises(AIGatewayUnsafeDeleteError, match="did not apply the id filter"):
        delete_listed(client, gateway=GW, filters=None, start=START, end=END)
    assert emu.stats["delete"] == 1
    # only the canary's slice went: its 5 named logs and the unnamed one on each side
    assert set(window) - set(emu.ids(GW)) == set(window[:7]) and outside <= set(emu.ids(GW))


def test_nothing_matching_sends_no_delete(emu: EmulatorServer, client: Any) -> None:
    before = emu.ids(GW)
    empty = END + timedelta(days=30)
    assert delete_listed(client, gateway=GW, filters=None, start=empty, end=empty + timedelta(days=1)) == 0
    assert emu.ids(GW) == before and emu.stats["delete"] == 0 and emu.stats["list"] == 1
