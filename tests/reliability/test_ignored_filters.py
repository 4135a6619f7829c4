"""Deletes stay safe when the API silently ignores a filter key (issue 10).

The emulator is taught to ignore chosen filter keys (on list and delete, or on DELETE only), to
fail body routes for chosen ids and to wrap bodies in the Cloudflare envelope. Every case is
judged by the emulator's ground truth, which log ids still exist, never by the operator's report.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import (
    AIGatewayBodyError,
    AIGatewayInputError,
    AIGatewayLateLogsError,
    AIGatewayUnsafeDeleteError,
)
from airflow_provider_aigw.export import iter_manifest_records, read_manifest
from airflow_provider_aigw.operators.ai_gateway import AIGatewayDeleteLogsOperator, AIGatewayExportLogsOperator
from tests.log_lines import LogLines

from .conftest import END, GW, START, assert_exact, export_context, exported_ids, use_connection

pytestmark = pytest.mark.integration

USER = {"key": "metadata.value", "operator": "eq", "value": ["user-123"]}


def export(dest: Path, **kwargs: Any) -> dict[str, Any]:
    op = AIGatewayExportLogsOperator(task_id="export", destination=f"file://{dest}", **kwargs)
    summary: dict[str, Any] = op.execute(export_context())
    return summary


def delete(**kwargs: Any) -> int:
    deleted: int = AIGatewayDeleteLogsOperator(task_id="delete", **kwargs).execute({})
    return deleted


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


# ------------------------------------------------------------ 1. sets, not counts (manifest)


def test_equal_counts_with_id_ignored_on_delete_deletes_no_unexported_log(make_emulator, tmp_path):
    """The issue's case: one exported log gone, one late log arrived, counts equal, DELETE ignores `id`."""
    server = make_emulator()
    summary = export(tmp_path)
    exported = exported_ids(summary)
    gw = server._gw(GW)
    gw.delete_positions([gw.find(exported[0])])  # retention removed the oldest exported log
    (late_id,) = server.add_logs(GW, [{"created_at": at(0.01)}])  # never exported, the oldest now
    assert len(server.ids(GW, START, END)) == summary["count"]
    server.faults.update(ignore_delete_filter_keys=["id"])
    before = server.ids(GW)
    server.reset_stats()

    with pytest.raises(AIGatewayLateLogsError, match=rf"1 of the 600 logs .* are not in the export \('{late_id}'\)"):
        delete(manifest=summary)
    assert server.ids(GW) == before  # nothing deleted at all
    assert server.stats["delete"] == 0
    # one count, then the keyset walk of the window: 600/50 requests and the empty page ending it
    assert server.stats["list"] == 1 + 13


# ------------------------------------------------- 2. every DELETE confined; the canary


def test_id_ignored_on_delete_is_caught_by_the_canary_and_a_late_log_survives(make_emulator, tmp_path):
    server = make_emulator()
    summary = export(tmp_path)
    exported = exported_ids(summary)
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    server.faults.update(ignore_delete_filter_keys=["id"])
    late_id = "0193a7c2-5e1f-7abc-8def-0000000000aa"
    # Visible once the delete has proved the window (count + 12 pages): a window-wide DELETE takes it.
    server.schedule_late_logs(GW, [{"created_at": at(12), "id": late_id}], after_requests=13)

    with pytest.raises(AIGatewayUnsafeDeleteError, match=r"did not apply the id filter.*canary naming 5 id\(s\)"):
        delete(manifest=summary)
    remaining = server.ids(GW)
    gone = set(exported) - set(remaining)
    assert late_id in remaining
    # the canary named 5 logs between two unnamed ones, with a limit of all 7: ignoring `id`, the
    # API took the whole slice, the unnamed ones too: all exported, and nothing more
    assert gone == set(exported[:7])
    assert set(remaining) == (set(exported) - gone) | set(outside) | {late_id}
    assert server.stats["delete"] == 1


def test_every_delete_is_confined_to_its_created_at_slice(make_emulator, tmp_path):
    server = make_emulator(in_window=400)
    summary = export(tmp_path)
    server.reset_stats()
    assert delete(manifest=summary, limit=60) == 400
    records = {r["id"]: r["created_at"] for r in iter_manifest_records(summary)}
    deletes = [r for r in server.stats.requests if r["kind"] == "delete"]
    assert len(deletes) == 1 + 7  # the canary (5 ids), then 395 ids by 60
    named_total = 0
    for n, request in enumerate(deletes):
        filters = json.loads(request["query"]["filters"][0])
        (ids,) = [f["value"] for f in filters if f["key"] == "id"]
        low = min(f["value"][0] for f in filters if f["key"] == "created_at" and f["operator"] == "gt")
        high = max(f["value"][0] for f in filters if f["key"] == "created_at" and f["operator"] == "lt")
        created = sorted(records[i] for i in ids)
        # the slice runs from 1 ms before the batch's first log to 1 ms after its last
        assert (low < created[0] and high > created[-1]) and len([f for f in filters if f["key"] == "created_at"]) == 2
        # the canary's limit covers the two unnamed logs around its 5 named ones
        assert request["query"]["limit"] == [str(len(ids) + (2 if n == 0 else 0))]
        named_total += len(ids)
    assert named_total == 400
    assert server.ids(GW, START, END) == []


# --------------------------------------------------- 3. a filter-only delete must narrow


@pytest.fixture
def users(make_emulator) -> Any:
    """3,500 logs, 5 of them carrying metadata value 'user-123'."""
    server = make_emulator(in_window=0, before=0, after=0)
    server.seed_logs(GW, 3495, START, END, seed=21)
    tagged = server.add_logs(GW, [{"created_at": at(3 + 4 * i), "metadata": {"user": "user-123"}} for i in range(5)])
    server.reset_stats()
    return server, tagged


def test_filter_ignored_on_list_and_delete_refuses_to_delete(users):
    """The issue's case: a filter the API ignores would have deleted the whole gateway."""
    server, _tagged = users
    server.faults.update(ignore_filter_keys=["metadata.value"])
    before = server.ids(GW)
    with pytest.raises(
        AIGatewayUnsafeDeleteError, match=r"match 3500 logs, as many as the window alone \(3500\).*allow_match_all=True"
    ):
        delete(filters=[USER])
    assert server.ids(GW) == before and len(before) == 3500
    assert server.stats["delete"] == 0 and server.stats["list"] == 2  # two counts


def test_filter_ignored_on_delete_only_deletes_exactly_the_matching_logs(users):
    server, tagged = users
    others = sorted(set(server.ids(GW)) - set(tagged))
    server.faults.update(ignore_delete_filter_keys=["metadata.value"])
    assert delete(filters=[USER]) == 5
    assert sorted(server.ids(GW)) == others


def test_filter_that_really_matches_everything_needs_allow_match_all(make_emulator):
    server = make_emulator(in_window=200)
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    everything = [{"key": "success", "operator": "neq", "value": ["no-such-value"]}]
    with pytest.raises(AIGatewayUnsafeDeleteError, match="allow_match_all"):
        delete(filters=everything, start=START, end=END)
    assert len(server.ids(GW, START, END)) == 200
    assert delete(filters=everything, start=START, end=END, allow_match_all=True) == 200
    assert server.ids(GW) == outside


def test_created_at_ignored_on_list_stops_before_any_delete(make_emulator):
    server = make_emulator()
    before = server.ids(GW)
    server.faults.update(ignore_filter_keys=["created_at"])
    with pytest.raises(AIGatewayUnsafeDeleteError, match="did not apply the created_at filter"):
        delete(start=START, end=END)
    assert server.ids(GW) == before and server.stats["delete"] == 0


def test_undocumented_filter_keys_are_refused_for_delete_only(make_emulator):
    server = make_emulator()
    custom = [{"key": "metadata.user", "operator": "eq", "value": ["u1"]}]
    with pytest.raises(AIGatewayInputError, match=r"filters\[0\]\.key 'metadata\.user' is not a documented filter key"):
        AIGatewayDeleteLogsOperator(task_id="d", filters=custom, start=START, end=END)
    assert server.stats["total"] == 0
    from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook

    with pytest.raises(AIGatewayInputError, match="not a documented filter key"):
        AIGatewayHook().delete_logs(filters=custom, start=START, end=END)
    assert server.stats["total"] == 0
    # reading still takes it (the emulator answers 400 for keys it does not know: one request)
    with pytest.raises(Exception, match="7001"):
        AIGatewayHook().count_logs(filters=custom)
    assert server.stats["total"] == 1


# ----------------------------------------------------- 4. bodies archived before deletion


@pytest.fixture
def bodies(make_emulator, monkeypatch) -> Any:
    """60 logs; every 4th without bodies by design (404); the body routes of 3 others always fail."""
    server = make_emulator(in_window=0)
    ids = server.add_logs(
        GW,
        [
            {"created_at": at(0.3 * i), **({"request_body": None, "response_body": None} if i % 4 == 0 else {})}
            for i in range(60)
        ],
    )
    failing = [ids[5], ids[22], ids[41]]
    server.faults.update(fail_body_ids=failing)
    use_connection(monkeypatch, server, max_retries=1)
    server.reset_stats()
    return server, ids, failing


def test_failed_bodies_fail_the_export_after_the_manifest_and_are_never_deleted(bodies, tmp_path):
    server, ids, failing = bodies
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    with pytest.raises(AIGatewayBodyError, match=r"^6 body fetch\(es\) failed .*Files and manifest are written"):
        export(tmp_path, include_bodies=True)
    manifest = next((tmp_path / f"gateway={GW}" / "_manifests").glob("*.json"))
    rows = {r["id"]: r for r in iter_manifest_records(f"file://{manifest}", verify=True)}
    assert_exact(list(rows), ids)
    assert {i for i, r in rows.items() if r["response_body_status"] == "failed"} == set(failing)
    assert sum(r["request_body_status"] == "not_collected" for r in rows.values()) == 15

    with pytest.raises(AIGatewayBodyError, match=r"deleted 57 exported logs, but kept 3 whose request or response"):
        delete(manifest=f"file://{manifest}")
    assert sorted(server.ids(GW)) == sorted(outside + failing)  # not-collected ones went, failed ones stayed


def test_on_body_error_warn_exports_but_the_delete_still_keeps_failed_bodies(bodies, tmp_path):
    server, _ids, failing = bodies
    summary = export(tmp_path, include_bodies=True, on_body_error="warn")
    assert summary["body_stats"]["response_body_status"] == {"collected": 42, "not_collected": 15, "failed": 3}
    with pytest.raises(AIGatewayBodyError, match="kept 3"):
        delete(manifest=summary)
    assert sorted(server.ids(GW, START, END)) == sorted(failing)


def test_failed_body_kept_even_when_the_delete_ignores_the_id_filter(bodies, tmp_path):
    server, _ids, failing = bodies
    summary = export(tmp_path, include_bodies=True, on_body_error="warn")
    server.faults.update(ignore_delete_filter_keys=["id"])
    with pytest.raises(AIGatewayUnsafeDeleteError):
        delete(manifest=summary)
    assert set(failing) <= set(server.ids(GW))


def test_enveloped_bodies_are_unwrapped_in_the_export(make_emulator, tmp_path):
    server = make_emulator(in_window=30)
    server.faults.update(envelope_bodies=True)
    summary = export(tmp_path, include_bodies=True, format="jsonl")
    rows = list(iter_manifest_records(summary))
    assert len(rows) == 30
    for row in rows:
        request, response = server.get_bodies(GW, row["id"])
        for which, stored in (("request", request), ("response", response)):
            if stored is None:
                assert row[f"{which}_body_status"] == "not_collected"
                continue
            assert row[f"{which}_body_status"] == "collected", row["id"]
            if not isinstance(stored, str) or stored.lstrip().startswith("{"):
                # bodies are text in the one schema: JSON ones compact, marked "json", never the envelope
                expected = stored if not isinstance(stored, str) else json.loads(stored)
                assert row[f"{which}_body_format"] == "json", row["id"]
                assert json.loads(row[f"{which}_body"]) == expected, row["id"]
            else:
                assert row[f"{which}_body"] == stored, row["id"]


# ------------------------------------------- issue 15 point 6: bounded body failures


def test_bodies_refused_403_stop_after_a_few_and_fail_clearly(make_emulator, tmp_path, monkeypatch):
    server = make_emulator(in_window=3000, before=0, after=0)
    server.faults.update(fail_body_ids=["*"], fail_body_status=403)
    with pytest.raises(AIGatewayBodyError, match=r"Stopped fetching bodies after 5 answers in a row refused access"):
        export(tmp_path, include_bodies=True)
    body_requests = server.stats["request"] + server.stats["response"]
    assert body_requests <= 5 + 2 * 4  # the streak, plus at most the fetches already in flight
    assert server.stats["list"] <= 3  # count and the first page(s); no walk of the 3,000
    assert not list((tmp_path / f"gateway={GW}").glob("_manifests/*.json"))  # nothing committed


def test_thousands_of_failing_bodies_keep_a_bounded_sample(make_emulator, tmp_path, monkeypatch):
    server = make_emulator(in_window=1000, before=0, after=0)
    use_connection(monkeypatch, server, max_retries=0)
    server.faults.update(fail_body_ids=["*"], fail_body_status=500)
    from airflow_provider_aigw.export import bodies as bodies_module

    fetchers: list[Any] = []
    original = bodies_module.BodyFetcher.__init__

    def spy(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        fetchers.append(self)

    monkeypatch.setattr(bodies_module.BodyFetcher, "__init__", spy)
    with pytest.raises(AIGatewayBodyError) as failure:
        export(tmp_path, include_bodies=True)
    (fetcher,) = fetchers
    assert fetcher.failed == 2000 and len(fetcher.samples) == bodies_module.MAX_FAILURE_SAMPLES
    assert str(failure.value).startswith("2000 body fetch(es) failed (first 10:")
    assert len(str(failure.value)) < 6000
    assert server.stats["request"] + server.stats["response"] == 2000  # 500 is not a reason to stop


# -------------------------------------------------- 9. manifest and window together


def test_manifest_with_the_same_window_and_filters_is_accepted(make_emulator, tmp_path):
    server = make_emulator()
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    summary = export(tmp_path)
    # as an archive DAG renders it: strings for the window, the export's own filters (none)
    assert delete(manifest=summary, start=START.isoformat(), end=END.isoformat(), filters=[]) == 600
    assert server.ids(GW) == outside


def test_manifest_from_another_account_is_refused(make_emulator, tmp_path):
    server = make_emulator()
    summary = export(tmp_path)
    manifest = read_manifest(summary)
    assert manifest["account_id"] == server.account_id
    other = {**manifest, "account_id": "f" * 32}
    before = server.ids(GW)
    server.reset_stats()
    with pytest.raises(
        AIGatewayInputError, match=r"manifest comes from account 'f{32}', but connection .* is for account"
    ):
        delete(manifest=other)
    assert server.ids(GW) == before and server.stats["total"] == 0


# ------------------------------------------------------- 5. credentials from a file


def test_token_read_from_a_file_with_a_trailing_newline_works(make_emulator, monkeypatch):
    server = make_emulator(in_window=10, before=0, after=0)
    conn = json.loads(server.airflow_conn_json(GW))
    conn["password"] = server.token + "\n"
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", json.dumps(conn))
    from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook

    assert AIGatewayHook().count_logs() == 10


def test_a_damaged_archive_is_refused_before_any_delete(make_emulator, tmp_path):
    server = make_emulator(in_window=200)
    summary = export(tmp_path, format="jsonl", partition_by="hour", rows_per_part=20)
    part = sorted((tmp_path / f"gateway={GW}").rglob("part-*.jsonl"))[3]
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[1:]))  # one exported row lost from the archive
    before = server.ids(GW)
    server.reset_stats()
    with pytest.raises(Exception, match="does not match its manifest entry"):
        delete(manifest=summary)
    assert server.ids(GW) == before and server.stats["delete"] == 0


def test_a_limit_below_the_canary_size_is_honoured(make_emulator, tmp_path):
    server = make_emulator(in_window=30)
    outside = server.ids(GW, None, START) + server.ids(GW, END)
    summary = export(tmp_path)
    server.reset_stats()
    assert delete(manifest=summary, limit=2) == 30
    assert server.ids(GW) == outside
    deletes = [r for r in server.stats.requests if r["kind"] == "delete"]
    for n, request in enumerate(deletes):
        (ids,) = [f["value"] for f in json.loads(request["query"]["filters"][0]) if f["key"] == "id"]
        # at most 2 ids named; the canary's limit also covers the two unnamed logs around them
        assert len(ids) <= 2 and int(request["query"]["limit"][0]) == len(ids) + (2 if n == 0 else 0)


Lines = LogLines  # stands in for the delete operator's logger


def test_retention_eating_the_canary_slice_is_not_blamed_on_the_api(make_emulator, tmp_path, monkeypatch):
    """A gateway at capacity deletes its oldest logs (the archive window) when new ones arrive."""
    server = make_emulator(in_window=600, before=0, after=0)
    summary = export(tmp_path)
    exported = exported_ids(summary)
    server.faults.update(capacity=600)
    # Two new logs arrive just before the canary DELETE (after the count, 12 pages, the empty page
    # ending the walk and the canary's first listing): retention removes the two oldest, the
    # canary's unnamed log and a named one.
    fresh = [{"created_at": (END + timedelta(hours=1)).isoformat()} for _ in range(2)]
    server.schedule_late_logs(GW, fresh, after_requests=1 + 13 + 1)
    lines = Lines()
    monkeypatch.setattr(AIGatewayDeleteLogsOperator, "log", lines)
    assert delete(manifest=summary) == 600
    assert server.ids(GW, START, END) == []
    assert len(server.ids(GW, END)) == 2 and set(server.ids(GW)).isdisjoint(exported)
    # (Airflow also warns here that execute() runs outside its task runner: the test's doing)
    warnings = [text for level, text in lines.lines if level == "warning" and "canary" in text]
    assert len(warnings) == 1 and "something else removed them" in warnings[0] and exported[0] in warnings[0]
