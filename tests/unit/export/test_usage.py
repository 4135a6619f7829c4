"""export/usage.py: the per-window usage summary, as accumulated, merged and committed."""

from __future__ import annotations

import pytest

from airflow_provider_aigw.export import UsageSummary, merge_usage
from airflow_provider_aigw.export.usage import COUNTERS, RELATIVE_ACCURACY, usage_for_xcom
from tests.export_helpers import Dest, run, spread_logs


def test_union_rerun_usage_is_the_usage_of_all_archived_logs(fdest: Dest) -> None:
    """A re-run over a window whose archived logs are gone adds the new ones; usage covers both."""
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


def test_usage_counts_each_model_and_skips_values_that_are_no_numbers() -> None:
    usage = UsageSummary()
    for log in [
        {"provider": "openai", "model": "m1", "success": True, "tokens_in": 10, "tokens_out": 5, "cost": 0.5,
         "duration": 100},
        {"provider": "openai", "model": "m1", "success": False, "cached": True, "tokens_in": 2.0, "cost": float("nan"),
         "duration": 0},
        {"provider": "openai", "model": "m1", "success": None, "tokens_in": True, "tokens_out": "7", "duration": "9"},
        {"provider": "anthropic", "model": "m2", "success": True, "duration": 1000, "cost": 2},
    ]:
        usage.add(log)
    summary = usage.to_dict()
    m2, m1 = summary["by_model"]  # sorted by (provider, model)
    assert (m2["provider"], m2["model"], m1["provider"], m1["model"]) == ("anthropic", "m2", "openai", "m1")
    assert {k: m1[k] for k in (*COUNTERS, "cost")} == {
        "logs": 3, "successes": 1, "errors": 1, "cached": 1, "tokens_in": 12, "tokens_out": 5, "cost": 0.5
    }
    assert m1["durations"]["zero"] == 1 and sum(m1["durations"]["buckets"].values()) == 1
    # the value of the log at rank q * (n - 1), as in sorted(durations)[int(q * (n - 1))]: 0 and 100 here
    assert (m1["duration_p50_ms"], m1["duration_p95_ms"]) == (0, 0)
    assert summary["totals"]["logs"] == 4 and summary["totals"]["cost"] == 2.5
    # 0, 100 and 1000 ms ("9" is no number): the p95 is the log at rank 1.9 -> 100 ms, within 1 %
    assert summary["totals"]["duration_p50_ms"] == pytest.approx(100, rel=RELATIVE_ACCURACY)
    assert summary["totals"]["duration_p95_ms"] == pytest.approx(100, rel=RELATIVE_ACCURACY)
    assert m2["duration_p50_ms"] == pytest.approx(1000, rel=RELATIVE_ACCURACY)


def test_merged_summaries_of_disjoint_logs_equal_the_summary_of_all() -> None:
    logs = spread_logs(50)
    whole, first, second = UsageSummary(), UsageSummary(), UsageSummary()
    for i, log in enumerate(logs):
        whole.add(log)
        (first if i % 3 else second).add(log)
    merged = merge_usage([first.to_dict(), second.to_dict()])
    expected = whole.to_dict()
    assert merged["totals"]["cost"] == pytest.approx(expected["totals"]["cost"], rel=1e-12)
    for summary in (merged, expected):
        summary["totals"].pop("cost")
        for group in summary["by_model"]:
            group["cost"] = round(group["cost"], 9)
    assert merged == expected


def test_a_summary_of_another_layout_is_not_merged_and_xcom_drops_only_the_buckets() -> None:
    usage = UsageSummary()
    usage.add(spread_logs(1)[0])
    summary = usage.to_dict()
    with pytest.raises(ValueError, match="cannot merge a usage summary of version 0"):
        merge_usage([summary, {**summary, "version": 0}])
    small = usage_for_xcom(summary)
    assert small["totals"] == summary["totals"]
    assert small["by_model"] == [{k: v for k, v in g.items() if k != "durations"} for g in summary["by_model"]]
    assert "durations" not in small["by_model"][0] and "duration_p50_ms" in small["by_model"][0]
