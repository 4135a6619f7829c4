"""The confined DELETE (``deletion/confined.py``): named ids inside a tight ``created_at`` slice, led by a
checked canary; judged by which logs still exist."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_aigw.deletion import ConfinedDelete, Target, announce, delete_listed, listed_ids
from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.exceptions import AIGatewayUnsafeDeleteError
from airflow_provider_aigw.timestamps import parse_created_at
from tests.log_lines import LogLines
from tests.unit.deletion.seeded_day import DAY, END, GW, START


def test_announce_stops_a_dry_run_and_an_empty_match() -> None:
    lines = LogLines()
    assert announce("scope", 3, 5, dry_run=True, logger=lines, what="exported logs", kept=2) is False
    last = lines.text("info").splitlines()[-1]
    assert last == "dry run: 3 exported logs would be deleted (scope), 2 kept (body not archived)"
    assert announce("scope", 0, 0, dry_run=False, logger=lines) is False
    assert lines.text("info").splitlines()[-1] == "no logs match (scope): nothing to delete"
    # All matching logs kept: no "nothing matches" shortcut, so the kept ones are reported by the delete.
    assert announce("scope", 0, 2, dry_run=False, logger=lines) is True


@pytest.mark.parametrize("order", ["asc", "desc", "random"])
def test_delete_listed_stops_at_the_canary_when_delete_ignores_id_in_any_order(
    emu: EmulatorServer, client: Any, order: str
) -> None:
    window = emu.ids(GW, START, END)
    outside = set(emu.ids(GW)) - set(window)
    emu.faults.update(ignore_delete_filter_keys=["id"], delete_order=order, seed=9)
    with pytest.raises(AIGatewayUnsafeDeleteError, match="did not apply the id filter"):
        delete_listed(client, DAY)
    assert emu.stats["delete"] == 1
    # only the canary's slice went: its 5 named logs and the unnamed one on each side
    assert set(window) - set(emu.ids(GW)) == set(window[:7]) and outside <= set(emu.ids(GW))


def test_listed_ids_are_the_logs_of_the_query_in_created_at_order(emu: EmulatorServer, client: Any) -> None:
    targets = list(listed_ids(client, DAY))
    assert [t.log_id for t in targets] == emu.ids(GW, START, END)
    assert [t.created_at for t in targets] == sorted(t.created_at for t in targets)


def test_a_kept_log_stays_and_no_delete_slice_holds_it(emu: EmulatorServer, client: Any) -> None:
    window = emu.ids(GW, START, END)
    rows = {row["id"]: row for row in emu.logs(GW)}
    kept = window[30]
    targets = [Target(i, parse_created_at(rows[i]["created_at"]), keep=i == kept) for i in window]
    deleter = ConfinedDelete(client, DAY.with_gateway(GW), batch_size=50, logger=LogLines(), expected=59)
    deleter.run(targets)
    assert set(emu.ids(GW, START, END)) == {kept}
    assert deleter.named == 59 and deleter.withheld == []
    # the canary, the batch before the kept log and the batch after it
    assert deleter.calls == 3 == emu.stats["delete"]
