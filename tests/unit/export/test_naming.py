"""export/naming.py: window tags, the names of parts, manifests and locks, and reading them back."""

from __future__ import annotations

from datetime import timedelta, timezone

from airflow_provider_aigw.export import (
    window_tag,
)
from tests.export_helpers import (
    END,
    START,
    TAG,
    Dest,
    run,
    spread_logs,
)


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
