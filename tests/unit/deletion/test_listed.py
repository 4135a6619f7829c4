"""The delete of what filters and a window match (``deletion/listed.py``): counted, proven to narrow,
listed and deleted by id; judged by which logs still exist."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_aigw.deletion import UNFILTERED_DELETE, delete_listed, validate_delete_query
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayInputError, AIGatewayUnsafeDeleteError
from airflow_provider_aigw.query import LogQuery
from tests.log_lines import LogLines
from tests.unit.deletion.seeded_day import DAY, END, GW, START


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (LogQuery(), UNFILTERED_DELETE),
        (LogQuery.of(filters=[]), "refusing to delete with neither filters nor a start/end window"),
        (
            LogQuery.of(filters={"key": "nope", "operator": "eq", "value": 1}, start=START),
            "not a documented filter key",
        ),
        (LogQuery.of(start=START, search="refund"), "a delete takes no search"),
    ],
)
def test_a_query_a_delete_cannot_keep_exact_is_refused(query: LogQuery, message: str) -> None:
    with pytest.raises(AIGatewayInputError, match=message):
        validate_delete_query(query)


def test_delete_listed_validates_before_any_request_then_deletes_exactly_the_match(
    emu: EmulatorServer, client: Any
) -> None:
    with pytest.raises(AIGatewayInputError, match="refusing to delete with neither filters nor a start/end window"):
        delete_listed(client, LogQuery.of(filters=[]))
    with pytest.raises(AIGatewayInputError, match="not a documented filter key"):
        delete_listed(client, LogQuery.of(filters={"key": "nope", "operator": "eq", "value": 1}, start=START, end=END))
    with pytest.raises(AIGatewayInputError, match="not a valid gateway id"):
        delete_listed(client, LogQuery(gateway_id="../zones", start=START))
    assert emu.stats["total"] == 0
    failed = {x["id"] for x in emu.logs(GW) if x["success"] is False and START.isoformat() <= x["created_at"]}
    failed &= set(emu.ids(GW, START, END))
    keep = set(emu.ids(GW)) - failed
    query = LogQuery.of(filters=[{"key": "success", "operator": "eq", "value": [False]}], start=START, end=END)
    count = delete_listed(client, query)
    assert count == len(failed) and set(emu.ids(GW)) == keep


def test_a_dry_run_counts_and_deletes_nothing(emu: EmulatorServer, client: Any) -> None:
    before = emu.ids(GW)
    lines = LogLines()
    assert delete_listed(client, DAY, dry_run=True, logger=lines) == 60
    assert emu.ids(GW) == before and emu.stats["delete"] == 0
    assert lines.text("info").splitlines()[-1] == (
        "dry run: 60 logs would be deleted (gateway 'del-gateway', window [2026-01-09T00:00:00.000Z, "
        "2026-01-10T00:00:00.000Z))"
    )


def test_the_batch_size_caps_the_ids_of_each_delete(emu: EmulatorServer, client: Any) -> None:
    after = set(emu.ids(GW)) - set(emu.ids(GW, START, END))
    assert delete_listed(client, DAY, batch_size=20) == 60
    assert set(emu.ids(GW)) == after
    # the canary names 5 ids; the other 55 go 20 at a time
    assert emu.stats["delete"] == 1 + 3


def test_filters_matching_as_many_logs_as_the_window_are_refused(emu: EmulatorServer, client: Any) -> None:
    before = emu.ids(GW)
    every = LogQuery.of(filters={"key": "model", "operator": "neq", "value": "no-such-model"}, start=START, end=END)
    with pytest.raises(AIGatewayUnsafeDeleteError, match="as many as the window alone"):
        delete_listed(client, every)
    assert emu.ids(GW) == before and emu.stats["delete"] == 0
    assert delete_listed(client, every, allow_match_all=True) == 60


def test_nothing_matching_sends_no_delete(emu: EmulatorServer, client: Any) -> None:
    before = emu.ids(GW)
    empty = END + timedelta(days=30)
    assert delete_listed(client, LogQuery.of(start=empty, end=empty + timedelta(days=1))) == 0
    assert emu.ids(GW) == before and emu.stats["delete"] == 0 and emu.stats["list"] == 1
