"""export/usage.py: the per-window usage summary, as accumulated, merged and committed."""

from __future__ import annotations

import pytest

from tests.export_helpers import (
    Dest,
    run,
    spread_logs,
)


def test_union_rerun_usage_is_the_usage_of_all_archived_logs(fdest: Dest) -> None:
    """A re-run over a window whose archived logs are gone adds the new ones; usage covers both."""
    from airflow_provider_aigw.export import UsageSummary

    logs = spread_logs(30)
    first = run(logs[:20], fdest)
    again = run(logs[20:], fdest)  # the first 20 were deleted from the gateway meanwhile
    assert again.manifest["commit"]["mode"] == "union" and again.count == 30
    whole = UsageSummary()
    for log in logs:
        whole.add(log)
    expected = whole.to_dict()
    got = again.manifest["usage"]
    assert got["totals"]["logs"] == 30 and first.manifest["usage"]["totals"]["logs"] == 20
    assert {k: v for k, v in got["totals"].items() if k != "cost"} == {
        k: v for k, v in expected["totals"].items() if k != "cost"
    }
    assert got["totals"]["cost"] == pytest.approx(expected["totals"]["cost"], rel=1e-12)
    assert [g["durations"] for g in got["by_model"]] == [g["durations"] for g in expected["by_model"]]
