"""``make demo``: archive one day of AI Gateway logs from a local emulator, end to end.

Starts the bundled emulator (realistic logs, free loopback port), sets up a throwaway Airflow
home with SQLite in ``.demo/``, runs the ``aigw_archive_logs`` example DAG with
``airflow dags test`` into ``./demo-output/``, prints a summary and stops the emulator (also
when something fails). Needs nothing but the project's virtualenv.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / ".demo"
OUTPUT = ROOT / "demo-output"
GATEWAY = "my-gateway"
SEED_LOGS = 20_000
READY_TIMEOUT_S = 30.0


def logical_date(now: datetime) -> datetime:
    """Today's midnight (UTC), so the run archives yesterday; yesterday's if midnight was too recent."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if now - midnight > timedelta(minutes=10) else midnight - timedelta(days=1)


def start_emulator(now: datetime, ready_file: Path, log_file: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start the emulator and wait (bounded) for its ready file."""
    cmd = [
        sys.executable,
        "-m",
        "airflow_provider_aigw.emulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--gateway",
        f"{GATEWAY}:{SEED_LOGS}",
        "--start",
        (now - timedelta(days=3)).isoformat(),
        "--end",
        now.isoformat(),
        "--ready-file",
        str(ready_file),
    ]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"the emulator exited with code {proc.returncode}; see {log_file}")
        if time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"the emulator was not ready after {READY_TIMEOUT_S:.0f}s; see {log_file}")
        time.sleep(0.1)
    return proc, json.loads(ready_file.read_text())


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop the emulator (SIGTERM, then SIGKILL after 10 s)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def airflow(args: list[str], env: dict[str, str], log_file: Path) -> None:
    """Run the ``airflow`` CLI of this virtualenv; on failure show the end of its output."""
    cli = Path(sys.executable).parent / "airflow"
    with log_file.open("wb") as log:
        code = subprocess.call([str(cli), *args], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    if code:
        tail = log_file.read_text(errors="replace").splitlines()[-40:]
        raise RuntimeError(f"`airflow {' '.join(args)}` failed ({code}):\n" + "\n".join(tail))


def main() -> int:
    from airflow_provider_aigw.client import AIGatewayClient
    from airflow_provider_aigw.export import read_manifest, window_tag
    from airflow_provider_aigw.query import LogQuery

    started = time.monotonic()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    run_date = logical_date(now)
    start, end = run_date - timedelta(days=1), run_date
    shutil.rmtree(DEMO, ignore_errors=True)
    shutil.rmtree(OUTPUT, ignore_errors=True)
    home = DEMO / "airflow"
    home.mkdir(parents=True)
    OUTPUT.mkdir()

    print(f"starting the emulator with {SEED_LOGS:,} logs over the last 3 days ...", flush=True)
    proc, info = start_emulator(now, DEMO / "emulator.json", DEMO / "emulator.log")
    try:
        client = AIGatewayClient(
            info["account_id"], api_token=info["token"], base_url=info["url"], gateway_id=GATEWAY
        )
        in_window_before = client.count_logs(LogQuery.of(start=start, end=end))
        total_before = client.count_logs()
        conn = {
            "conn_type": "cloudflare_ai_gateway",
            "host": info["url"],
            "password": info["token"],
            "extra": {"account_id": info["account_id"], "gateway_id": GATEWAY},
        }
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT": json.dumps(conn),
        }
        print(f"emulator at {info['url']}; setting up Airflow in {home.relative_to(ROOT)} ...", flush=True)
        airflow(["db", "migrate"], env, DEMO / "db-migrate.log")
        print(
            f"airflow dags test aigw_archive_logs {run_date.isoformat()}  "
            f"(window [{start.isoformat()}, {end.isoformat()})) ...",
            flush=True,
        )
        airflow(
            [
                "dags",
                "test",
                "aigw_archive_logs",
                run_date.isoformat(),
                "-c",
                json.dumps({"destination": OUTPUT.as_uri()}),
            ],
            env,
            DEMO / "dags-test.log",
        )
        manifest = read_manifest(
            f"{OUTPUT.as_uri()}/gateway={GATEWAY}/_manifests/{window_tag(start, end)}.jsonl.gz.json"
        )
        in_window_after = client.count_logs(LogQuery.of(start=start, end=end))
        total_after = client.count_logs()
    finally:
        stop(proc)

    elapsed = time.monotonic() - started
    rows = [
        ("window", f"[{manifest['window']['start']}, {manifest['window']['end']})"),
        ("logs in window (emulator)", f"{in_window_before:,}"),
        ("logs exported", f"{manifest['count']:,}"),
        ("files", f"{len(manifest['files']):,} ({manifest['format']}, hive partitions by day) + manifest"),
        ("bytes", f"{manifest['bytes']:,}"),
        ("logs deleted", f"{total_before - total_after:,} ({in_window_after} left in the window)"),
        ("logs outside the window kept", f"{total_after:,}"),
        ("output", str(OUTPUT.relative_to(ROOT)) + "/"),
        ("time", f"{elapsed:.1f} s"),
    ]
    width = max(len(k) for k, _ in rows)
    print("\naigw_archive_logs demo: done")
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")
    ok = manifest["count"] == in_window_before and in_window_after == 0
    if not ok:
        print("MISMATCH: the export or delete did not cover the window exactly", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RuntimeError as err:
        print(f"demo failed: {err}", file=sys.stderr)
        sys.exit(1)
