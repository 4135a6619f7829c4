"""``make test-celery``: aigw_multi_gateway_export under a real CeleryExecutor, one budget on Redis.

Starts everything on loopback in a throwaway Airflow home and stops it again:

* ``redis-server``: the Celery broker (db 1), result backend (db 2) and request budget (db 0);
* the emulator with four gateways and a scaled Cloudflare rule (100 requests per 2 s, lock-out);
* Airflow (SQLite): ``api-server`` (execution API), ``dag-processor``, ``scheduler`` with the
  CeleryExecutor, and two ``celery worker`` processes (two slots each);

then triggers the DAG for the four gateways (mapped exports, as many at once as the DAG allows,
on both workers) and checks: the run succeeded, zero 429s, the exported id set of every gateway
equals the emulator's, both workers ran exports, and exports overlapped. Prints the
per-worker split, the combined rate at the API against the rule, and the timings. Airflow 3 only.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.shared_budget.redis_server import RedisServer, free_port  # noqa: E402

DAG_ID = "aigw_multi_gateway_export"
GATEWAYS = [f"gw-{i}" for i in range(4)]
#: Seeded over the two days before today; a manual run exports one day of them (about 5,000 per
#: gateway: about 100 list requests + 1 count request per export).
PER_GATEWAY = 10_000
RULE = (100, 2.0)
WORKERS = ("worker-1", "worker-2")
TIMEOUT_S = 900


def log(message: str) -> None:
    print(f"[test-celery {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Stack:
    """The processes started here, stopped in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def emulator_admin(url: str, route: str) -> Any:
    base = url.rsplit("/client/v4", 1)[0]
    with urllib.request.urlopen(f"{base}/__emulator__/{route}", timeout=60) as response:
        return json.loads(response.read())


def wait_for(what: str, check: Any, stack: Stack, timeout: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        stack.check_alive()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(1)


def query(db: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []  # not migrated yet, or busy


def parse_db_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def main() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="aigw-test-celery-"))
    home, logs, dags, archive = work / "airflow", work / "logs", work / "dags", work / "archive"
    for path in (home, logs, dags, archive):
        path.mkdir()
    (dags / f"{DAG_ID}.py").symlink_to(ROOT / "example_dags" / f"{DAG_ID}.py")
    # Each worker reports its own name as the task instance's hostname: the per-worker split.
    (work / "aigw_celery_hostname.py").write_text(
        "import os\n\n\ndef name():\n    return os.environ.get('AIGW_CELERY_NAME', 'scheduler')\n"
    )
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    seeded = (today - timedelta(days=2), today)

    passed = False
    stack = Stack(logs)
    redis = RedisServer(work).start()
    try:
        ready = work / "emulator.json"
        emulator_args = [sys.executable, "-m", "airflow_provider_aigw.emulator", "--ready-file", str(ready)]
        for gateway in GATEWAYS:
            emulator_args += ["--gateway", f"{gateway}:{PER_GATEWAY}"]
        emulator_args += ["--start", seeded[0].isoformat(), "--end", seeded[1].isoformat()]
        emulator_args += ["--rate-limit", f"{RULE[0]}/{RULE[1]}", "--lockout-s", str(RULE[1])]
        stack.start("emulator", emulator_args, dict(os.environ))
        emu = wait_for("the emulator", lambda: ready.exists() and json.loads(ready.read_text()), stack)

        api_port = free_port()
        db = home / "airflow.db"
        conn = {
            "conn_type": "cloudflare_ai_gateway",
            "host": emu["url"],
            "password": emu["token"],
            "extra": {
                "account_id": emu["account_id"],
                "budget_storage": f"redis://127.0.0.1:{redis.port}/0",
                "budget_requests": RULE[0],
                "budget_period": RULE[1],
            },
        }
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(work), str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "aigw_celery_hostname.name",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{redis.port}/1",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{redis.port}/2",
            "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(16).hex(),
            "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",  # only the run triggered here
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT": json.dumps(conn),
        }
        airflow = [sys.executable, "-m", "airflow"]
        log(f"work dir {work}; migrating the metadata DB")
        subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [*airflow, "pools", "set", "aigw_api", str(len(GATEWAYS)), "Cloudflare AI Gateway API"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        stack.start("api-server", [*airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port)], env)
        stack.start("dag-processor", [*airflow, "dag-processor"], env)
        stack.start("scheduler", [*airflow, "scheduler"], env)
        for name in WORKERS:
            stack.start(
                name,
                [*airflow, "celery", "worker", "--concurrency", "2", "--celery-hostname", f"{name}@%h",
                 "--skip-serve-logs", "--without-gossip", "--without-mingle"],
                {**env, "AIGW_CELERY_NAME": name},
            )  # fmt: skip
        wait_for(
            "the DAG to be parsed",
            lambda: query(db, "select 1 from serialized_dag where dag_id = ?", DAG_ID),
            stack,
        )
        log(f"components up after {time.monotonic() - started:.0f} s; triggering {DAG_ID}")
        run_conf = {"gateways": GATEWAYS, "destination": f"file://{archive}"}
        subprocess.run(
            [*airflow, "dags", "trigger", DAG_ID, "--run-id", "celery-test", "--conf", json.dumps(run_conf),
             "--logical-date", today.isoformat()],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        triggered = time.monotonic()
        state = wait_for(
            "the DAG run to finish",
            lambda: [
                s for (s,) in query(db, "select state from dag_run where run_id = 'celery-test'")
                if s in ("success", "failed")
            ],
            stack,
        )[0]  # fmt: skip
        run_s = time.monotonic() - triggered
        ((interval_start, interval_end),) = query(
            db, "select data_interval_start, data_interval_end from dag_run where run_id = 'celery-test'"
        )
        window = (parse_db_time(interval_start), parse_db_time(interval_end))
        tasks = query(
            db,
            "select task_id, map_index, state, hostname, start_date, end_date from task_instance "
            "where run_id = 'celery-test' order by task_id, map_index",
        )
        passed = report(emu, archive, window, state, tasks, run_s, time.monotonic() - started) == 0
        return 0 if passed else 1
    finally:
        stack.stop()
        redis.kill()
        log(f"stopped everything; logs in {logs}")
        if passed:
            shutil.rmtree(work, ignore_errors=True)


def report(
    emu: dict[str, Any],
    archive: Path,
    window: tuple[datetime, datetime],
    state: str,
    tasks: list[tuple[Any, ...]],
    run_s: float,
    total_s: float,
) -> int:
    from airflow_provider_aigw.export import iter_manifest_records

    failures: list[str] = []
    if state != "success":
        failures.append(f"DAG run state {state}")
    stats = emulator_admin(emu["url"], "stats")
    arrivals = sorted(r["at"] for r in stats["requests"])
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else float("nan")
    bound = ((stats["total"] - 1) // RULE[0]) * RULE[1]
    if stats["served_429"]:
        failures.append(f"{stats['served_429']} x 429")
    split: dict[str, list[str]] = {}
    spans: list[tuple[datetime, datetime]] = []
    for task_id, map_index, task_state, hostname, task_start, task_end in tasks:
        log(f"  {task_id}[{map_index}] {task_state} on {hostname}, {task_start} to {task_end}")
        if task_id == "export_gateway":
            split.setdefault(hostname or "?", []).append(GATEWAYS[map_index])
            if task_start and task_end:
                spans.append((parse_db_time(task_start), parse_db_time(task_end)))
    if sorted(split) != sorted(WORKERS):
        failures.append(f"exports did not run on both workers: {split}")
    # The DAG caps a run's parallel exports (max_active_tis_per_dagrun): at least two must overlap.
    most = max((sum(1 for s, e in spans if s <= at < e) for at, _ in spans), default=0)
    log(f"{len(spans)} exports, at most {most} at once")
    if len(spans) != len(GATEWAYS) or most < 2:
        failures.append("the exports did not run at the same time")
    start, end = (w.isoformat().replace("+00:00", "Z") for w in window)
    for gateway in GATEWAYS:
        truth = set(emulator_admin(emu["url"], f"gateways/{gateway}/ids?start={start}&end={end}")["ids"])
        manifests = sorted((archive / f"gateway={gateway}" / "_manifests").glob("*.json"))
        exported: list[str] = []
        for manifest in manifests:
            exported += [row["id"] for row in iter_manifest_records(f"file://{manifest}", verify=True)]
        exact = len(exported) == len(set(exported)) and set(exported) == truth
        log(f"  {gateway}: {len(exported):,} exported, {len(truth):,} in the emulator, exact id set: {exact}")
        if not exact or not truth:
            failures.append(f"{gateway}: exported ids differ from the emulator's")
    log(f"per-worker split: {json.dumps({k: sorted(v) for k, v in sorted(split.items())})}")
    log(
        f"API: {stats['total']} requests, {stats['served_429']} x 429; first to last request {span:.2f} s, "
        f"{(stats['total'] - 1) / span:.1f} req/s vs the rule's {RULE[0] / RULE[1]:.0f}/s "
        f"(bound {bound:.1f} s: {bound / span:.0%})"
    )
    log(f"DAG run {run_s:.0f} s from trigger to finish; whole test {total_s:.0f} s")
    if failures:
        log("FAILED: " + "; ".join(failures))
        return 1
    log("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())
