"""The docs' "Query your archive" (docs/archive.rst): the schema table matches the code, and the
DuckDB statements run as written against an export laid out like ``make demo``'s
(``demo-output/`` in the working directory, the archive DAG's defaults) with results equal to the
emulator's ground truth."""

from __future__ import annotations

import re
import textwrap
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.export.schema import COLUMNS, TYPES
from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

pytestmark = pytest.mark.integration

PAGE = Path(__file__).resolve().parents[2] / "docs" / "archive.rst"
UTC = timezone.utc
GW = "my-gateway"
START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 3, 3, tzinfo=UTC)


def sql_blocks() -> list[str]:
    """The ``.. code-block:: sql`` blocks of the page (after their options), dedented, in order."""
    blocks = re.findall(r"^\.\. code-block:: sql\n(?:    :.*\n)*\n((?:(?:    .*)?\n)+)", PAGE.read_text(), flags=re.M)
    return [textwrap.dedent(block).strip() + "\n" for block in blocks]


def test_docs_schema_table_is_the_code_schema() -> None:
    # list-table rows: "* - ``column``" then one "- value" line per cell (Arrow, DuckDB, JSON Lines, ...).
    rows = re.findall(r"^   \* - ``(\w+)``\n     - (.+)\n     - (.+)\n     - (.+)\n", PAGE.read_text(), flags=re.M)
    assert [(name, a.strip(), d.strip(), j.strip()) for name, a, d, j in rows] == [
        (c.name, *TYPES[c.type]) for c in COLUMNS
    ]


@pytest.fixture
def demo_output(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    emu: EmulatorServer = aigw_emulator_factory(gateways={GW: 0})
    emu.seed_logs(GW, 500, START, END, seed=21)
    emu.seed_logs(GW, 30, END, END + timedelta(hours=2), seed=22)
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", emu.airflow_conn_json(GW))
    monkeypatch.chdir(tmp_path)

    def export(fmt: str) -> list[dict[str, Any]]:
        AIGatewayExportLogsOperator(
            task_id="export", destination=(tmp_path / "demo-output").as_uri(), format=fmt, start=START, end=END
        ).execute({})
        in_window = set(emu.ids(GW, START, END))
        return [log for log in emu.logs(GW) if log["id"] in in_window]

    return export


def expected_results(truth: list[dict[str, Any]]) -> tuple[dict[Any, Any], dict[Any, Any]]:
    by_day_model: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    by_provider: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for log in truth:
        acc = by_day_model[(log["created_at"][:10], log["model"])]
        acc[0] += 1
        acc[1] += log.get("cost") or 0.0
        p = by_provider[log["provider"]]
        p[0] += 1
        p[1] += log["success"] is False
    return by_day_model, by_provider


@pytest.mark.parametrize("fmt", ["jsonl.gz", "parquet"])
def test_docs_duckdb_queries_run_as_written(demo_output: Any, fmt: str) -> None:
    truth = demo_output(fmt)
    jsonl_view, parquet_view, daily_cost, error_rate = sql_blocks()
    con = duckdb.connect()
    con.execute(jsonl_view if fmt == "jsonl.gz" else parquet_view)
    by_day_model, by_provider = expected_results(truth)

    daily = con.execute(daily_cost).fetchall()
    assert {(str(d), m): n for d, m, n, _c in daily} == {k: v[0] for k, v in by_day_model.items()}
    for day, model, _n, cost in daily:
        assert cost == pytest.approx(by_day_model[(str(day), model)][1], abs=2e-6)
    assert [(str(d), -c, m) for d, m, _n, c in daily] == sorted((str(d), -c, m) for d, m, _n, c in daily)

    rates = con.execute(error_rate).fetchall()
    assert {p: (n, e) for p, n, e, _pct in rates} == {p: tuple(v) for p, v in by_provider.items()}
    for provider, n, errors, pct in rates:
        assert pct == round(100.0 * errors / n, 2), provider
    assert sum(e for _p, _n, e, _pct in rates) > 0  # the emulator's ~5 % failures are there
