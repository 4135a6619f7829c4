"""Exports stay exact, or fail before committing, when the list API lies (issue 19).

The emulator understates ``total_count``, shuffles logs sharing a millisecond on each request,
or ignores one operator of ``created_at`` or a caller's filter key. Judged by ground truth: the
ids in the files on disk against the emulator's store, and whether a manifest exists.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayListingError
from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

from .conftest import END, GW, START, assert_exact, export_context, exported_ids

pytestmark = pytest.mark.integration


def export(dest: Path, **kwargs: Any) -> dict[str, Any]:
    op = AIGatewayExportLogsOperator(task_id="export", destination=f"file://{dest}", **kwargs)
    summary: dict[str, Any] = op.execute(export_context())
    return summary


def manifests(dest: Path) -> list[Path]:
    return sorted(dest.rglob("_manifests/*.json"))


@pytest.mark.parametrize("fault", [{"total_count_page_only": True}, {"total_count_factor": 0.12}])
def test_an_understated_total_count_exports_the_whole_window_and_says_so(make_emulator, tmp_path, fault):
    server = make_emulator(in_window=437)
    server.faults.update(**fault)
    summary = export(tmp_path)
    assert_exact(exported_ids(summary), server.ids(GW, START, END))
    assert summary["count_check"]["walked"] == 437 and summary["count_check"]["agrees"] is False
    assert server.stats["list"] == 1 + 9  # the count, then ceil(437 / 50) pages


def test_a_true_total_count_costs_what_it_did(make_emulator, tmp_path):
    """Negative control."""
    server = make_emulator(in_window=437)
    summary = export(tmp_path)
    assert_exact(exported_ids(summary), server.ids(GW, START, END))
    assert summary["count_check"] == {"total_count": 437, "walked": 437, "agrees": True}
    assert server.stats["list"] == 1 + 9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_crowded_instant_in_a_new_order_on_each_request_is_exported_exactly(make_emulator, tmp_path, seed):
    server = make_emulator(in_window=317, seed=seed)
    instant = (START + timedelta(hours=7)).isoformat()
    server.add_logs(GW, [{"created_at": instant} for _ in range(120)])
    server.faults.update(shuffle_ties=True, seed=seed)
    server.reset_stats()
    summary = export(tmp_path)
    assert_exact(exported_ids(summary), server.ids(GW, START, END))
    assert server.stats["list"] == 1 + 9  # 437 logs: ceil(437 / 50), the crowded instant costs nothing more


def test_a_window_end_the_list_ignores_fails_before_committing(make_emulator, tmp_path):
    server = make_emulator(in_window=437)
    server.faults.update(ignore_list_filter_operators=["created_at:lt"])
    with pytest.raises(AIGatewayListingError, match="did not apply the created_at filter"):
        export(tmp_path)
    assert manifests(tmp_path) == [] and list(tmp_path.rglob("part-*")) == []
    assert server.stats["list"] == 1 + 9  # the page holding the first later log is the last


def test_a_window_the_list_ignores_fails_after_one_request_not_the_budget(make_emulator, tmp_path):
    server = make_emulator(in_window=437)
    server.faults.update(ignore_filter_keys=["created_at"])
    with pytest.raises(AIGatewayListingError, match="did not apply the filter created_at gt"):
        export(tmp_path)
    assert manifests(tmp_path) == [] and server.stats["list"] == 2


def test_a_caller_filter_the_list_ignores_fails_before_committing(make_emulator, tmp_path):
    server = make_emulator(in_window=437)
    server.faults.update(ignore_filter_keys=["model"])
    model = {"key": "model", "operator": "eq", "value": ["no-such-model"]}
    with pytest.raises(AIGatewayListingError, match=r"did not apply the filter model eq \['no-such-model'\]"):
        export(tmp_path, filters=[model])
    assert manifests(tmp_path) == []
