"""The export as a dataset: read back with DuckDB, compared with the emulator's ground truth.

One emulator window is exported twice by the operator (jsonl.gz and parquet, bodies included,
some logs patched first), then queried with DuckDB as a data engineer would.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.export import (
    SCHEMA_VERSION,
    arrow_partitioning,
    duckdb_columns,
    duckdb_hive_types,
    iter_manifest_records,
    manifest_schema,
    merge_usage,
    read_manifest,
)
from airflow_provider_aigw.export.usage import COUNTERS, RELATIVE_ACCURACY, UsageSummary
from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator, AIGatewayPatchLogOperator

pytestmark = pytest.mark.integration

UTC = timezone.utc
GW = "dataset-gw"
START = datetime(2026, 1, 8, tzinfo=UTC)
END = datetime(2026, 1, 10, tzinfo=UTC)
N_LOGS = 240


class Archive:
    """The two exports of the window and the emulator's truth about it."""

    def __init__(self, emu: EmulatorServer, root: Path) -> None:
        self.emu = emu
        self.root = root
        self.truth = [
            log for log in emu.logs(GW) if START.isoformat()[:10] <= log["created_at"][:10] < END.isoformat()[:10]
        ]
        ids = [log["id"] for log in self.truth]
        # Tag some logs as a reviewer would, before the export.
        self.patched = {ids[3]: (1, 92.5), ids[10]: (-1, 5), ids[17]: (0, 50)}
        for log_id, (feedback, score) in self.patched.items():
            AIGatewayPatchLogOperator(
                task_id=f"patch_{log_id[:8]}",
                log_id=log_id,
                feedback=feedback,
                score=score,
                metadata={"reviewed": True, "reviewer": "ana"},
            ).execute({})
        self.truth = [log for log in emu.logs(GW) if log["id"] in set(ids)]
        self.summaries: dict[str, dict[str, Any]] = {}
        for fmt in ("jsonl.gz", "parquet"):
            op = AIGatewayExportLogsOperator(
                task_id=f"export_{fmt.replace('.', '_')}",
                destination=f"file://{root / fmt}",
                format=fmt,
                include_bodies=True,
                partition_by="hour",
                start=START,
                end=END,
            )
            self.summaries[fmt] = op.execute({})

    def relation(self, con: Any, fmt: str) -> str:
        """A DuckDB view over one export, read as docs/archive.rst says."""
        hive = ", ".join(f"'{k}': {v}" for k, v in duckdb_hive_types("hour").items())
        glob = f"{self.root / fmt}/gateway=*/**/*.{fmt}"
        name = "logs_" + fmt.replace(".", "_")
        if fmt == "parquet":
            source = f"read_parquet('{glob}', hive_partitioning = true, hive_types = {{{hive}}})"
        else:
            cols = ", ".join(f"'{k}': '{v}'" for k, v in duckdb_columns().items())
            source = (
                f"read_json('{glob}', columns = {{{cols}}}, format = 'newline_delimited', "
                f"hive_partitioning = true, hive_types = {{{hive}}})"
            )
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM {source}")
        return name


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Any:
    emu = EmulatorServer(seed=7)
    emu.create_gateway(GW)
    emu.seed_logs(GW, N_LOGS, START, END, seed=3)
    emu.seed_logs(GW, 20, END, END + timedelta(hours=6), seed=4)
    emu.start()
    mp = pytest.MonkeyPatch()
    # Bodies cost 2 requests a log: the emulator has no rate limit, so lift the client's budget.
    mp.setenv("AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT", emu.airflow_conn_json(GW, budget_requests=100_000))
    try:
        yield Archive(emu, tmp_path_factory.mktemp("dataset"))
    finally:
        mp.undo()
        emu.stop()


@pytest.fixture
def con() -> Any:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def test_both_formats_read_back_as_the_same_typed_table(archive: Archive, con: Any) -> None:
    views = {fmt: archive.relation(con, fmt) for fmt in ("jsonl.gz", "parquet")}
    described = {fmt: con.execute(f"DESCRIBE {v}").fetchall() for fmt, v in views.items()}
    types = {fmt: [(row[0], row[1]) for row in rows] for fmt, rows in described.items()}
    assert types["jsonl.gz"] == types["parquet"]
    as_dict = dict(types["parquet"])
    assert as_dict["id"] == "VARCHAR" and as_dict["event_id"] == "VARCHAR"
    assert as_dict["created_at"] == "TIMESTAMP WITH TIME ZONE"
    assert as_dict["metadata"] == "MAP(VARCHAR, VARCHAR)"
    assert as_dict["duration"] == as_dict["tokens_in"] == "BIGINT"
    assert as_dict["cost"] == as_dict["feedback"] == as_dict["score"] == "DOUBLE"
    assert (as_dict["date"], as_dict["hour"], as_dict["gateway"]) == ("DATE", "INTEGER", "VARCHAR")
    rows = {
        fmt: con.execute(f"SELECT * FROM {v} ORDER BY created_at, id").fetchall() for fmt, v in views.items()
    }
    assert rows["jsonl.gz"] == rows["parquet"]
    assert sorted(r[0] for r in rows["parquet"]) == sorted(log["id"] for log in archive.truth)
    # created_at is the API's instant, to the millisecond
    first = con.execute(f"SELECT created_at FROM {views['jsonl.gz']} ORDER BY created_at LIMIT 1").fetchone()[0]
    assert first == datetime.fromisoformat(archive.truth[0]["created_at"].replace("Z", "+00:00"))
    # the same schema, with its version, in both manifests
    for summary in archive.summaries.values():
        schema = read_manifest(summary)["schema"]
        assert schema == manifest_schema("hour") and schema["version"] == SCHEMA_VERSION


def test_pyarrow_and_duckdb_agree_on_the_partition_columns(archive: Archive, con: Any) -> None:
    import pyarrow as pa
    import pyarrow.dataset as ds

    root = archive.root / "parquet"
    table = ds.dataset(root, format="parquet", partitioning=arrow_partitioning("hour")).to_table()
    assert table.schema.field("date").type == pa.date32() and table.schema.field("hour").type == pa.int32()
    assert table.schema.field("gateway").type == pa.string()
    ids, dates, hours = (table[name].to_pylist() for name in ("id", "date", "hour"))
    from_arrow = sorted(zip(ids, dates, hours, strict=True))
    view = archive.relation(con, "parquet")
    assert con.execute(f"SELECT id, date, hour FROM {view} ORDER BY ALL").fetchall() == from_arrow
    # and both agree with created_at
    for created_at, date, hour in zip(table["created_at"].to_pylist(), dates, hours, strict=True):
        assert (created_at.date(), created_at.hour) == (date, hour)


def test_feedback_score_and_metadata_set_by_patch_are_columns(archive: Archive, con: Any) -> None:
    for fmt in ("jsonl.gz", "parquet"):
        view = archive.relation(con, fmt)
        got = con.execute(
            f"SELECT id, feedback, score, metadata['reviewed'], metadata['reviewer'] FROM {view} "
            "WHERE feedback IS NOT NULL OR score IS NOT NULL ORDER BY id"
        ).fetchall()
        expected = sorted((i, float(f), float(s), "true", "ana") for i, (f, s) in archive.patched.items())
        assert got == expected, fmt
        # metadata the emulator stored as a JSON string is a map too
        with_meta = {log["id"]: json.loads(log["metadata"]) for log in archive.truth if log.get("metadata")}
        some_id, some_meta = next((k, v) for k, v in with_meta.items() if k not in archive.patched)
        key = next(iter(some_meta))
        value = con.execute(f"SELECT metadata['{key}'] FROM {view} WHERE id = ?", [some_id]).fetchone()[0]
        assert value == str(some_meta[key])
        assert con.execute(f"SELECT count(*) FROM {view} WHERE metadata IS NOT NULL").fetchone()[0] == len(with_meta)


def test_cost_by_model_and_day_equals_ground_truth(archive: Archive, con: Any) -> None:
    expected: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
    for log in archive.truth:
        acc = expected[(log["created_at"][:10], log["model"])]
        acc[0] += log.get("cost") or 0.0
        acc[1] += 1
    for fmt in ("jsonl.gz", "parquet"):
        view = archive.relation(con, fmt)
        got = con.execute(
            f"SELECT strftime(date, '%Y-%m-%d'), model, coalesce(sum(cost), 0), count(*) FROM {view} GROUP BY ALL"
        ).fetchall()
        assert {(d, m): n for d, m, _c, n in got} == {k: v[1] for k, v in expected.items()}, fmt
        for day, model, cost, _n in got:
            assert cost == pytest.approx(expected[(day, model)][0], rel=1e-9, abs=1e-12), (fmt, day, model)
        # the day from the timestamp column agrees with the date partition
        assert con.execute(f"SELECT count(*) FROM {view} WHERE created_at::DATE <> date").fetchone()[0] == 0


def test_sse_bodies_are_told_apart_by_their_format_column(archive: Archive, con: Any) -> None:
    sse, json_bodies, missing = set(), set(), set()
    for log in archive.truth:
        _request, response = archive.emu.get_bodies(GW, log["id"])
        if response is None:
            missing.add(log["id"])
        elif isinstance(response, str) and response.startswith("data:"):
            sse.add(log["id"])
        else:
            json_bodies.add(log["id"])
    assert sse and json_bodies and missing  # the window has all three kinds
    for fmt in ("jsonl.gz", "parquet"):
        view = archive.relation(con, fmt)
        by_format = defaultdict(set)
        for log_id, body_format, status in con.execute(
            f"SELECT id, response_body_format, response_body_status FROM {view}"
        ).fetchall():
            by_format[body_format].add(log_id)
            assert status == ("not_collected" if log_id in missing else "collected")
        assert by_format == {"sse": sse, "json": json_bodies, None: missing}, fmt
        # selecting the JSON bodies makes the column castable as a whole, no json_valid dance
        cast = con.execute(
            f"SELECT id, response_body::JSON, request_body::JSON ->> 'model' FROM {view} "
            "WHERE response_body_format = 'json' AND request_body_format = 'json'"
        ).fetchall()
        assert {i for i, _b, _m in cast} == json_bodies
        for log_id, body, model in cast:
            request, response = archive.emu.get_bodies(GW, log_id)
            assert json.loads(body) == response and model == request["model"]
        sse_rows = con.execute(f"SELECT id, response_body FROM {view} WHERE response_body_format = 'sse'")
        for log_id, text in sse_rows.fetchall():
            assert text == archive.emu.get_bodies(GW, log_id)[1]


def pure_python_usage(logs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for log in logs:
        g = groups.setdefault(
            (log["provider"], log["model"]),
            {**dict.fromkeys(COUNTERS, 0), "cost": 0.0, "d": []},
        )
        g["logs"] += 1
        g["successes"] += log["success"] is True
        g["errors"] += log["success"] is False
        g["cached"] += log["cached"] is True
        g["tokens_in"] += log.get("tokens_in") or 0
        g["tokens_out"] += log.get("tokens_out") or 0
        g["cost"] += log.get("cost") or 0.0
        g["d"].append(log["duration"])
    return groups


def exact_quantile(values: list[int], q: float) -> int:
    return sorted(values)[math.floor(q * (len(values) - 1))]


def test_usage_summary_equals_pure_python_aggregation(archive: Archive) -> None:
    manifest = read_manifest(archive.summaries["parquet"])
    usage = manifest["usage"]
    expected = pure_python_usage(archive.truth)
    assert {(g["provider"], g["model"]) for g in usage["by_model"]} == set(expected)
    for group in usage["by_model"]:
        want = expected[(group["provider"], group["model"])]
        for name in ("logs", "successes", "errors", "cached", "tokens_in", "tokens_out"):
            assert group[name] == want[name], (group["model"], name)
        assert group["cost"] == pytest.approx(want["cost"], rel=1e-9, abs=1e-12)
        for name, q in (("duration_p50_ms", 0.5), ("duration_p95_ms", 0.95)):
            exact = exact_quantile(want["d"], q)
            assert abs(group[name] - exact) <= max(RELATIVE_ACCURACY * exact, 0.5), (group["model"], name)
    totals = usage["totals"]
    assert totals["logs"] == len(archive.truth) == manifest["count"]
    assert totals["errors"] == sum(1 for log in archive.truth if log["success"] is False)
    all_durations = [log["duration"] for log in archive.truth]
    exact95 = exact_quantile(all_durations, 0.95)
    assert abs(totals["duration_p95_ms"] - exact95) <= RELATIVE_ACCURACY * exact95
    # both formats summarise the same logs; the XCom summary drops only the buckets
    assert read_manifest(archive.summaries["jsonl.gz"])["usage"] == usage
    xcom = archive.summaries["parquet"]["usage"]
    assert xcom["totals"] == totals
    assert [{k: v for k, v in g.items() if k != "durations"} for g in usage["by_model"]] == xcom["by_model"]


def test_usage_merge_equals_one_summary_of_all_logs(archive: Archive) -> None:
    """What a re-run that adds late logs does: the merged summary is the summary of the union."""
    records = list(iter_manifest_records(archive.summaries["parquet"]))
    assert len(records) == len(archive.truth)
    halves = [archive.truth[: len(archive.truth) // 3], archive.truth[len(archive.truth) // 3 :]]
    parts = []
    for half in halves:
        acc = UsageSummary()
        for log in half:
            acc.add(log)
        parts.append(acc.to_dict())
    merged = merge_usage(parts)
    whole = read_manifest(archive.summaries["parquet"])["usage"]

    def without_cost(usage: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in g.items() if k != "cost"} for g in usage["by_model"]]

    # exact for counts, buckets and percentiles; cost only up to float summation order
    assert without_cost(json.loads(json.dumps(merged))) == without_cost(whole)
    for a, b in zip(merged["by_model"], whole["by_model"], strict=True):
        assert a["cost"] == pytest.approx(b["cost"], rel=1e-12, abs=1e-15)
    assert {k: v for k, v in merged["totals"].items() if k != "cost"} == {
        k: v for k, v in whole["totals"].items() if k != "cost"
    }
    with pytest.raises(ValueError, match="cannot merge"):
        merge_usage([whole, {**whole, "version": 99}])
