"""The worker killed mid-export: SIGKILL of a real ``airflow dags test`` process, then a retry.

What the killed worker leaves must never pass for a finished export: no manifest, and every
part under a final name complete (byte-identical to the same part of a clean export). The retry
then produces exactly the files of a clean export: no stale part, no temp file.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

from .conftest import END, GW, START, assert_exact, comparable, exported_ids, files_of, plain

pytestmark = [pytest.mark.integration, pytest.mark.dags]

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "aigw_reliability_export"
KILL_AFTER_PAGES = 10  # of 40
WAIT_S = 120.0


def worker_db(dest: Path) -> str:
    """The workers' own copy of the session's migrated metadata DB, beside ``dest``.

    A SIGKILLed ``airflow dags test`` can leave a SQLite file it was writing unreadable ("database
    disk image is malformed"); the tests that run after this one must not share that file.
    """
    copy = dest.parent / "worker-airflow.db"
    if not copy.exists():
        session_db = os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
        with sqlite3.connect(session_db) as source, sqlite3.connect(copy) as target:
            source.backup(target)
    return f"sqlite:///{copy}"


def airflow_env(dest: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": worker_db(dest),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIGW_RELIABILITY_DEST": f"file://{dest}",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(dest: Path, log: Path) -> subprocess.Popen[bytes]:
    cli = Path(sys.executable).parent / "airflow"
    from airflow import __version__ as airflow_version

    if airflow_version.startswith("3.0."):
        # 3.0's `dags test` does not write the DAG to the DB first (3.1+ does), so the export's
        # asset outlet would be "inactive"; a deployment's DAG processor has done this already.
        subprocess.run([str(cli), "dags", "reserialize"], env=airflow_env(dest), check=True, capture_output=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [str(cli), "dags", "test", DAG_ID, "2026-01-10"],
            env=airflow_env(dest),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the kill takes every process of the worker
        )


def kill_when(proc: subprocess.Popen[bytes], ready: Any, log: Path) -> None:
    """SIGKILL the worker's process group once ``ready()`` (bounded polling, no fixed sleeps)."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if proc.poll() is not None:
            pytest.fail(f"the worker ended ({proc.returncode}) before the kill point:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail("the kill point was never reached")
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def finished_parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("part-*") if not p.name.endswith(".tmp")]


@pytest.fixture
def emu(make_emulator: Any, airflow_db: None) -> Any:
    # 2,000 logs (40 pages); a little latency so the kill lands mid-export.
    server = make_emulator(in_window=2000, before=20, after=20)
    return server


def clean_export(dest: Path) -> dict[str, Any]:
    op = AIGatewayExportLogsOperator(
        task_id="export", destination=f"file://{dest}", start=START, end=END, rows_per_part=40
    )
    summary: dict[str, Any] = op.execute({})
    return summary


@pytest.mark.parametrize("previous", ["fresh", "over-a-committed-export"])
def test_worker_killed_mid_export_then_retried(emu, tmp_path, previous):
    truth = emu.ids(GW, START, END)
    clean, dest = tmp_path / "clean", tmp_path / "dest"
    clean_export(clean)
    reference = files_of(clean)
    manifest_name = next(name for name in reference if "/_manifests/" in name)
    if previous != "fresh":
        clean_export(dest)  # a committed export of the same window is being redone
    committed = files_of(dest)
    log = tmp_path / "worker.log"

    emu.faults.update(latency_ms=50)
    emu.reset_stats()
    worker = start_worker(dest, log)
    kill_when(worker, lambda: emu.stats["list"] >= KILL_AFTER_PAGES and len(finished_parts(dest)) >= 3, log)
    pages_served = emu.stats["list"]
    assert pages_served < 40, "the export finished before the kill"

    left = files_of(dest)
    if previous == "fresh":
        assert manifest_name not in left, "a manifest is visible after the worker died mid-export"
    else:
        assert left[manifest_name] == committed[manifest_name], "the committed manifest stays valid"
        assert_exact(exported_ids(f"file://{dest}/{manifest_name}"), truth)
    left.pop(manifest_name, None)
    reference_parts = comparable(reference)
    for name, data in left.items():
        if Path(name).name.startswith("part-"):
            # complete: exactly the bytes of the same part of a clean export
            assert data == reference_parts[plain(name)], f"{name} is a partial part under a final name"
        elif name.endswith(".lock"):
            assert "/_manifests/" in name  # the killed attempt's window lock; its retry takes it over
        else:
            assert name.endswith(".tmp") and Path(name).name.startswith("."), f"unexpected file {name}"

    emu.faults.update(latency_ms=0)
    from airflow import __version__ as airflow_version

    if int(airflow_version.split(".")[0]) >= 3:
        # Another run of the window (Airflow 3 gives each `dags test` a new run id, so another task
        # instance) is refused while the killed worker's lock lease lasts ...
        # (judged by what is stored: nothing is written)
        refused = start_worker(dest, log)
        refused.wait(timeout=WAIT_S)
        assert files_of(dest) == {**left, **({manifest_name: committed[manifest_name]} if previous != "fresh" else {})}
        # ... which nobody renews: moved into the past here instead of waiting the 5 minutes out.
        (lock,) = dest.rglob("*.lock")
        lock.write_text(json.dumps({**json.loads(lock.read_text()), "expires_at": "2000-01-01T00:00:00Z"}))
    # On Airflow 2.x the re-run reuses the run id: the same task instance takes its lock over at once.
    retry = start_worker(dest, log)
    assert retry.wait(timeout=WAIT_S) == 0, log.read_text()[-3000:]
    assert comparable(files_of(dest)) == comparable(reference)  # no stale part, no temp file
    assert_exact(exported_ids(f"file://{dest}/{manifest_name}"), truth)
