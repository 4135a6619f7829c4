"""export/naming.py: window tags, the names of parts, manifests and locks, and reading them back."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export import window_tag
from airflow_provider_aigw.export.naming import (
    MANIFEST_DIR,
    ManifestName,
    PartName,
    filters_suffix,
    format_of,
    gateway_dir,
    lock_rel,
    manifest_rel,
    new_attempt_id,
    parse_manifest_name,
    parse_part_name,
    part_name,
    partition_dir,
)
from tests.export_helpers import END, START, TAG, Dest, run, spread_logs


def test_filters_change_names_and_do_not_collide(dest: Dest) -> None:
    logs = spread_logs(10)
    f1 = [{"key": "model", "operator": "eq", "value": ["gpt-4o-mini"]}]
    f2 = [{"key": "success", "operator": "eq", "value": [False]}]
    a = run(logs, dest, filters=f1)
    b = run(logs[:3], dest, filters=f2)
    c = run(logs, dest)
    tags = {a.manifest["window_tag"], b.manifest["window_tag"], c.manifest["window_tag"]}
    assert len(tags) == 3
    assert c.manifest["window_tag"] == TAG
    assert a.manifest["window_tag"].startswith(TAG + "-f")
    # Each export's parts all survive the others (different tags never clean each other up).
    files = set(dest.parts())
    for r in (a, b, c):
        assert {f["path"] for f in r.manifest["files"]} <= files
    assert len(files) == sum(len(r.manifest["files"]) for r in (a, b, c))
    assert a.manifest["filters"] == f1


def test_window_tag_is_stable_for_equivalent_filters() -> None:
    f1 = {"key": "model", "operator": "eq", "value": "gpt"}
    f2 = {"operator": "neq", "key": "provider", "value": ["openai"]}
    one = window_tag(START, END, [f1, f2])
    assert one == window_tag(START, END, [f2, {**f1, "value": ["gpt"]}])
    assert one != window_tag(START, END, [f1])
    assert window_tag(START, END) == window_tag(START, END, []) == TAG
    other_tz = timezone(timedelta(hours=2))
    assert window_tag(START.astimezone(other_tz), END.astimezone(other_tz)) == TAG
    assert window_tag(START + timedelta(microseconds=500), END).startswith("20261126T000000.000500Z-")


def test_every_name_reads_back_as_what_it_was_made_from() -> None:
    tag = window_tag(START, END, [{"key": "model", "operator": "eq", "value": ["m"]}])
    assert tag == TAG + filters_suffix([{"key": "model", "operator": "eq", "value": "m"}])
    gw_dir = gateway_dir("gw-1")
    manifest = parse_manifest_name(manifest_rel(gw_dir, tag, "jsonl.gz").rsplit("/", 1)[1])
    assert manifest == ManifestName(tag, START, END, tag[len(TAG) :], "jsonl.gz")
    legacy = parse_manifest_name(f"{TAG}.json")  # one manifest per window, any format
    assert legacy == ManifestName(TAG, START, END, "", None)
    for fmt in ("jsonl", "jsonl.gz", "parquet"):
        name = part_name(tag, "0123456789ab", 7, fmt)
        assert name == f"part-{tag}-a0123456789ab-00007.{fmt}"
        assert parse_part_name(name) == PartName(tag, "0123456789ab", fmt)
        assert parse_part_name(f".{name}.tmp") == PartName(tag, "0123456789ab", fmt)  # file:// temp name
        assert format_of(f"{gw_dir}/date=2026-11-26/{name}") == fmt
    assert parse_part_name(f"part-{TAG}-00000.jsonl") == PartName(TAG, None, "jsonl")  # before attempt ids
    assert lock_rel(gw_dir, TAG, "parquet") == f"gateway=gw-1/{MANIFEST_DIR}/{TAG}.parquet.lock"
    for other in (f"{TAG}.parquet.lock", "part-x.jsonl", f"{TAG}.csv.json", "notes.txt"):
        assert parse_manifest_name(other) is None and parse_part_name(other) is None
    with pytest.raises(AIGatewayInputError, match="not an export part file"):
        format_of("notes.txt")


def test_partitions_are_the_utc_date_and_hour_of_created_at() -> None:
    created = datetime(2026, 11, 26, 7, 5, tzinfo=timezone.utc)
    assert partition_dir("gateway=gw", created, hourly=False) == "gateway=gw/date=2026-11-26"
    assert partition_dir("gateway=gw", created, hourly=True) == "gateway=gw/date=2026-11-26/hour=07"
    assert new_attempt_id() != new_attempt_id()
    assert re.fullmatch(r"[0-9a-f]{12}", new_attempt_id())
