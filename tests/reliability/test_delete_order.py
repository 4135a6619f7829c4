"""Deletes stay exact when a DELETE ignores ``id`` and removes logs in any order, and when the
URL is limited (issue 19, items 1 and 5).

The emulator's faults: ``delete_order`` (asc, desc or seeded random, whatever was asked),
``delete_max_logs`` (a partial DELETE) and ``max_url_bytes`` (414 above N bytes of request-target).
Every case is judged by the emulator's ground truth, which log ids still exist afterwards.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.emulator.data import to_ms
from airflow_provider_aigw.exceptions import (
    AIGatewayBodyError,
    AIGatewayUnsafeDeleteError,
    AIGatewayURLTooLongError,
)

from .conftest import END, GW, START, exported_ids, use_connection
from .test_ignored_filters import at, delete, export

pytestmark = pytest.mark.integration


def delete_slices(server: Any) -> list[tuple[int, int, list[str], int]]:
    """Every DELETE sent: its created_at slice ``(low, high)`` in ms (exclusive bounds as sent),
    the ids it named and its ``limit``."""
    out = []
    for request in server.stats.requests:
        if request["kind"] != "delete":
            continue
        filters = json.loads(request["query"]["filters"][0])
        (ids,) = [f["value"] for f in filters if f["key"] == "id"]
        low = max(to_ms(f["value"][0]) for f in filters if f["key"] == "created_at" and f["operator"] == "gt")
        high = min(to_ms(f["value"][0]) for f in filters if f["key"] == "created_at" and f["operator"] == "lt")
        out.append((low, high, ids, int(request["query"]["limit"][0])))
    return out


# ------------------------------------------------------- 1. the canary, in any order


@pytest.mark.parametrize(("order", "seed"), [("asc", 0), ("desc", 0), ("random", 1), ("random", 2), ("random", 3)])
def test_the_canary_catches_an_ignored_id_filter_in_any_deletion_order(make_emulator, tmp_path, order, seed):
    server = make_emulator()
    summary = export(tmp_path)
    exported = exported_ids(summary)
    outside = set(server.ids(GW, None, START) + server.ids(GW, END))
    server.faults.update(ignore_delete_filter_keys=["id"], delete_order=order, seed=seed)
    server.reset_stats()

    with pytest.raises(AIGatewayUnsafeDeleteError, match=r"did not apply the id filter.*canary"):
        delete(manifest=summary)
    remaining = set(server.ids(GW))
    (canary,) = delete_slices(server)  # one DELETE, then the delete stopped
    low, high, _ids, limit = canary
    gone = set(exported) - remaining
    # only exported logs of the canary's slice went, and no more than its limit
    assert gone and len(gone) <= limit
    in_slice = {x["id"] for x in server.logs(GW)} | gone
    assert all(low < to_ms(at_) < high for i, at_ in _created(summary).items() if i in gone)
    assert remaining == (set(exported) - gone) | outside and gone <= in_slice


def _created(summary: Any) -> dict[str, str]:
    from airflow_provider_aigw.export import iter_manifest_records

    return {str(r["id"]): str(r["created_at"]) for r in iter_manifest_records(summary)}


@pytest.fixture
def shared_instant(make_emulator, monkeypatch) -> Any:
    """60 logs, plus 5 more at the millisecond of the 31st; the middle one of those (in the API's
    order) has a body route that always fails: it is protected, its instant-mates are not."""
    server = make_emulator(in_window=0)
    server.add_logs(GW, [{"created_at": at(0.3 * i)} for i in range(60)])
    server.add_logs(GW, [{"created_at": at(0.3 * 30)} for _ in range(5)])
    instant = [x["id"] for x in server.logs(GW) if x["created_at"].startswith(at(9.0)[:19])]
    assert len(instant) == 6
    protected = instant[3]
    server.faults.update(fail_body_ids=[protected])
    use_connection(monkeypatch, server, max_retries=1)
    return server, protected, [i for i in instant if i != protected]


def test_a_protected_log_is_never_inside_a_deletes_slice_even_when_sharing_its_millisecond(
    shared_instant, tmp_path
):
    server, protected, mates = shared_instant
    outside = set(server.ids(GW, None, START) + server.ids(GW, END))
    summary = export(tmp_path, include_bodies=True, on_body_error="warn")
    server.reset_stats()

    with pytest.raises(AIGatewayBodyError, match=r"kept 1 whose request or response body fetch failed") as failure:
        delete(manifest=summary)
    # The other 5 logs of the protected log's millisecond cannot be sliced away from it: left, reported.
    assert "5 exported log(s) share a millisecond with a kept one" in str(failure.value)
    assert set(server.ids(GW)) == outside | {protected} | set(mates)
    protected_ms = to_ms(_created(summary)[protected])
    for low, high, ids, _limit in delete_slices(server):
        assert not low < protected_ms < high, "a DELETE's slice held the protected log"
        assert protected not in ids


@pytest.mark.parametrize("order", ["desc", "random"])
def test_a_protected_log_sharing_a_millisecond_survives_an_ignored_id_filter(shared_instant, tmp_path, order):
    server, protected, _mates = shared_instant
    summary = export(tmp_path, include_bodies=True, on_body_error="warn")
    server.faults.update(ignore_delete_filter_keys=["id"], delete_order=order, seed=4)
    with pytest.raises((AIGatewayUnsafeDeleteError, AIGatewayBodyError)):
        delete(manifest=summary)
    assert protected in server.ids(GW)


@pytest.mark.parametrize("order", ["desc", "random"])
def test_a_late_log_survives_an_ignored_id_filter_in_any_order(make_emulator, tmp_path, order):
    server = make_emulator(in_window=600, before=0, after=0)
    summary = export(tmp_path)
    exported = exported_ids(summary)
    server.faults.update(ignore_delete_filter_keys=["id"], delete_order=order, seed=5)
    late_id = "0193a7c2-5e1f-7abc-8def-0000000000bb"
    # Visible once the delete has proved the window (count + 12 pages): inside a later batch's slice.
    server.schedule_late_logs(GW, [{"created_at": at(12), "id": late_id}], after_requests=13)
    with pytest.raises(AIGatewayUnsafeDeleteError):
        delete(manifest=summary)
    remaining = set(server.ids(GW))
    assert late_id in remaining
    assert server.stats["delete"] == 1  # the canary caught it; no batch went
    assert len(set(exported) - remaining) <= 7


def test_a_partial_delete_stops_at_the_canary_without_touching_unnamed_logs(make_emulator, tmp_path):
    server = make_emulator()
    summary = export(tmp_path)
    exported = exported_ids(summary)
    before = set(server.ids(GW))
    server.faults.update(delete_max_logs=2)
    server.reset_stats()
    with pytest.raises(AIGatewayUnsafeDeleteError, match=r"3 of them are still there"):
        delete(manifest=summary)
    ((_low, _high, ids, _limit),) = delete_slices(server)
    gone = before - set(server.ids(GW))
    assert len(gone) == 2 and gone <= set(ids) <= set(exported)


# ---------------------------------------------------------------- 5. URL limits, 414


def test_a_stricter_url_limit_halves_the_batches_and_the_delete_completes(make_emulator, tmp_path):
    server = make_emulator(in_window=2000)
    outside = set(server.ids(GW, None, START) + server.ids(GW, END))
    summary = export(tmp_path)
    server.faults.update(max_url_bytes=4000)
    server.reset_stats()
    assert delete(manifest=summary) == 2000
    assert set(server.ids(GW)) == outside
    deletes = [r for r in server.stats.requests if r["kind"] == "delete"]
    refused = [r for r in deletes if len(r["path"]) + 1 + len(r["query_string"]) > 4000]
    assert [r["at"] for r in refused] == [r["at"] for r in deletes[1:3]]  # the first batch, then one half
    named = [i for _low, _high, ids, _limit in delete_slices(server) for i in ids]
    # every exported log named in exactly one accepted DELETE
    accepted = [i for r in deletes if r not in refused for i in _named(r)]
    assert sorted(accepted) == sorted(exported_ids(summary)) and len(named) == len(accepted) + sum(
        len(_named(r)) for r in refused
    )
    # the canary; 325 ids refused, 163 refused, 82 + 81 and 81 + 81 sent; the other 1,670 ids by 82;
    # listings: the count, 40 pages and the empty one (2,000 is a multiple of 50), the canary twice, the final count
    assert len(deletes) == 1 + 2 + 4 + 21 and server.stats["list"] == 1 + 41 + 2 + 1


def _named(request: dict[str, Any]) -> list[str]:
    (ids,) = [f["value"] for f in json.loads(request["query"]["filters"][0]) if f["key"] == "id"]
    return list(ids)


def test_a_url_limit_no_delete_fits_stops_cleanly_and_reports(make_emulator, tmp_path, monkeypatch):
    server = make_emulator(in_window=200)
    summary = export(tmp_path)
    exported = exported_ids(summary)
    before = set(server.ids(GW))
    original = AIGatewayClient.delete_logs

    def then_shorter(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        # After the canary no DELETE fits any more (one id takes 466 bytes), a listing still does.
        server.faults.update(max_url_bytes=420)

    monkeypatch.setattr(AIGatewayClient, "delete_logs", then_shorter)
    server.reset_stats()
    with pytest.raises(AIGatewayURLTooLongError, match=r"HTTP 414") as failure:
        delete(manifest=summary)
    text = str(failure.value)
    gone = before - set(server.ids(GW))
    assert gone == set(exported[1:6])  # the canary's 5 named logs, nothing else
    assert "5 deleted in 1 DELETE(s)" in text and "195 not deleted" in text and exported[1] in text
    refused = server.stats["delete"] - 1
    sizes = [len(_named(r)) for r in server.stats.requests if r["kind"] == "delete"][1:]
    # each 414 halves the batch, from 195 ids down to one; nothing is sent again at a size refused
    assert refused == 9 and sizes == [195, 98, 49, 25, 13, 7, 4, 2, 1]
