"""``make test-events``: the asset watcher end to end on a real Airflow 3.3, triggerer killed on the way.

Starts on loopback, in a throwaway Airflow home (SQLite), the emulator and Airflow's
``dag-processor``, ``scheduler`` and ``triggerer``. The DAG folder holds one DAG scheduled on an
asset whose ``AssetWatcher`` runs
:class:`~airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger` (``feedback = -1``
and ``model = gpt-4o``, the minimum ``poll_interval``). While the components run, logs arrive:
matching and non-matching ones, some late (listable only after the next request, with a
``created_at`` in the past, inside the overlap).

1. Logs arrive for :data:`PHASE_S` seconds; then, once the events caught up: the ids the asset
   events carry equal the matching logs the emulator holds (none missed, no non-matching one),
   and no id came twice.
2. Logs arrive again and the triggerer's process group is killed with SIGKILL :data:`KILLS`
   times, restarted each time; then the same, except that repeats are allowed within the
   documented bound: at most one batch per restart (docs/event_driven.rst).
3. The DAG runs the scheduler created consumed every event, so carry exactly the same ids.

The asset events are read from the metadata DB (their ``extra["payload"]``): exact, and
independent of the tasks. Airflow 3.3 only (asset state); not part of ``make test``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from test_celery import Stack, emulator_admin, query, wait_for  # noqa: E402  (scripts/ is sys.path[0])

DAG_ID = "aigw_events_e2e"
ASSET = "aigw_e2e_thumbs_down_gpt4o"
GATEWAY = "events-gw"
POLL_S = 10  # the trigger's minimum
OVERLAP_S = 90
LATE_S = 30  # a late log's created_at is this far in the past when it becomes listable
PHASE_S = 70  # logs keep arriving this long in each phase
KILLS = 3
CATCH_UP_S = 120  # deadline for the events to cover every matching log after the last one arrived
TIMEOUT_S = 300
#: An asset event of the watcher: its id, the log ids of its payload, the DAG run that consumed it (or None).
Event = tuple[int, list[str], int | None]

DAG_FILE = f'''
from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsEventTrigger

WATCHED = Asset(
    "{ASSET}",
    watchers=[
        AssetWatcher(
            name="{ASSET}_watcher",
            trigger=AIGatewayLogsEventTrigger(
                gateway_id="{GATEWAY}",
                filters=[
                    {{"key": "feedback", "operator": "eq", "value": [-1]}},
                    {{"key": "model", "operator": "eq", "value": ["gpt-4o"]}},
                ],
                poll_interval={POLL_S},
                overlap={OVERLAP_S},
                lookback=600,
            ),
        )
    ],
)

with DAG(
    dag_id="{DAG_ID}",
    schedule=[WATCHED],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
):
    EmptyOperator(task_id="consume")  # the scheduler finishes it: no worker, no api-server
'''


def log(message: str) -> None:
    print(f"[test-events {time.strftime('%H:%M:%S')}] {message}", flush=True)


def iso(at: datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def post(url: str, route: str, body: Any) -> Any:
    base = url.rsplit("/client/v4", 1)[0]
    request = urllib.request.Request(
        f"{base}/__emulator__/{route}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


class Feed:
    """Logs arriving at the emulator, and the ids of those the watcher must (not) fire on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.matching: set[str] = set()
        self.other: set[str] = set()
        self.late = 0
        self.ticks = 0

    def tick(self) -> None:
        """One matching log now, one that fails each filter; every third tick a late pair too."""
        self.ticks += 1
        now = datetime.now(timezone.utc)
        added = post(
            self.url,
            f"gateways/{GATEWAY}/logs",
            [
                {"created_at": iso(now), "feedback": -1, "model": "gpt-4o"},
                {"created_at": iso(now), "feedback": 1, "model": "gpt-4o"},
                {"created_at": iso(now), "feedback": -1, "model": "claude-3-5-sonnet"},
            ],
        )["ids"]
        self.matching.add(added[0])
        self.other.update(added[1:])
        if self.ticks % 3 == 0:
            past = iso(now - timedelta(seconds=LATE_S))
            late = {"created_at": past, "feedback": -1, "model": "gpt-4o", "id": str(uuid.uuid4())}
            late_other = {"created_at": past, "feedback": 0, "model": "gpt-4o", "id": str(uuid.uuid4())}
            post(self.url, f"gateways/{GATEWAY}/late-logs", {"logs": [late, late_other], "after_requests": 1})
            self.matching.add(late["id"])
            self.other.add(late_other["id"])
            self.late += 1

    def truth(self) -> set[str] | None:
        """The matching ids the emulator holds, once it lists every log sent (late ones show after a request)."""
        stored = set(emulator_admin(self.url, f"gateways/{GATEWAY}/ids")["ids"])
        if stored - self.matching - self.other:
            raise RuntimeError(f"the emulator holds logs never sent: {sorted(stored - self.matching - self.other)}")
        return stored & self.matching if stored == self.matching | self.other else None


def asset_events(db: Path) -> list[Event]:
    """The watcher's asset events, oldest first: (event id, log ids of its payload, consuming dag run id)."""
    rows = query(
        db,
        "select e.id, e.extra, min(r.dag_run_id) from asset_event e join asset a on a.id = e.asset_id "
        "left join dagrun_asset_event r on r.event_id = e.id where a.name = ? group by e.id order by e.id",
        ASSET,
    )
    events = []
    for event_id, extra, run in rows:
        payload = json.loads(extra)["payload"]
        if payload.get("kind") != "aigw.new_logs" or payload["count"] != len(payload["ids"]):
            raise RuntimeError(f"asset event {event_id} has an unexpected payload: {payload}")
        events.append((event_id, list(payload["ids"]), run))
    return events


def check(
    label: str,
    events: list[Event],
    truth: set[str],
    other: set[str],
    repeats_allowed: int,
    expected: set[str] | None = None,
    earlier: Sequence[Event] = (),
) -> list[str]:
    """The ids and repeats of ``events`` (after the ``earlier`` ones) against the ground truth: the
    matching ``truth``, of which ``expected`` (default all) must be there. A repeat must be one
    earlier batch again (the one yielded but not yet saved when the triggerer died), in at most
    ``repeats_allowed`` events. Returns the failures."""
    expected = truth if expected is None else expected
    batches = [set(ids) for _e, ids, _r in earlier]
    fired = set().union(*batches)
    seen: Counter[str] = Counter()
    repeating_events = 0
    failures = []
    for event_id, ids, _run in events:
        again = {i for i in ids if i in fired}
        if again:
            repeating_events += 1
            if not any(again <= batch for batch in batches):
                failures.append(f"{label}: event {event_id} repeats ids of more than one earlier batch")
        batches.append(set(ids))
        fired.update(ids)
        seen.update(ids)
    union = set(seen)
    repeated = sum(n - 1 for n in seen.values()) + len(union & set().union(*batches[: len(earlier)]))
    log(
        f"{label}: {len(events)} events, {len(union)} distinct ids, {len(expected)} matching in the emulator; "
        f"missed {len(expected - union)}, non-matching fired {len(union & other)}, "
        f"unknown {len(union - truth - other)}; "
        f"{repeated} repeated id(s) in {repeating_events} event(s) (bound: {repeats_allowed} events, one batch each)"
    )
    if expected - union:
        failures.append(f"{label}: missed {sorted(expected - union)}")
    if union - truth:
        failures.append(f"{label}: fired on logs that do not match {sorted(union - truth)}")
    if repeating_events > repeats_allowed:
        failures.append(f"{label}: {repeating_events} events repeat ids, at most {repeats_allowed} allowed")
    return failures


def caught_up(db: Path, truth: set[str]) -> list[Event] | None:
    events = asset_events(db)
    return events if truth <= {i for _e, ids, _r in events for i in ids} else None


def main() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="aigw-test-events-"))
    home, logs, dags = work / "airflow", work / "logs", work / "dags"
    for path in (home, logs, dags):
        path.mkdir()
    (dags / f"{DAG_ID}.py").write_text(DAG_FILE)

    passed = False
    stack = Stack(logs)
    try:
        ready = work / "emulator.json"
        emulator_args = [sys.executable, "-m", "airflow_provider_aigw.emulator", "--ready-file", str(ready)]
        emulator_args += ["--gateway", f"{GATEWAY}:0"]
        stack.start("emulator", emulator_args, dict(os.environ))
        emu = wait_for("the emulator", lambda: ready.exists() and json.loads(ready.read_text()), stack, TIMEOUT_S)
        db = home / "airflow.db"
        conn = {
            "conn_type": "cloudflare_ai_gateway",
            "host": emu["url"],
            "password": emu["token"],
            "extra": {"account_id": emu["account_id"]},
        }
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))},
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{db}",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # A restarted triggerer takes the trigger over once the killed one's heartbeat is this old.
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT": json.dumps(conn),
        }
        airflow = [sys.executable, "-m", "airflow"]
        log(f"work dir {work}; migrating the metadata DB")
        subprocess.run([*airflow, "db", "migrate"], env=env, check=True, capture_output=True)
        stack.start("dag-processor", [*airflow, "dag-processor"], env)
        stack.start("scheduler", [*airflow, "scheduler"], env)
        triggerer = stack.start("triggerer", [*airflow, "triggerer"], env)
        wait_for(
            "the watcher's trigger to be polling",
            lambda: emulator_admin(emu["url"], "stats")["total"] > 0,
            stack,
            TIMEOUT_S,
        )
        log(f"components up and the watcher polling after {time.monotonic() - started:.0f} s")

        feed = Feed(emu["url"])
        failures: list[str] = []

        def arrive(seconds: float, kill_at: tuple[float, ...] = ()) -> None:
            nonlocal triggerer
            begin = time.monotonic()
            kills = list(kill_at)
            while time.monotonic() - begin < seconds:
                feed.tick()
                if kills and time.monotonic() - begin >= kills[0]:
                    kills.pop(0)
                    os.killpg(triggerer.pid, signal.SIGKILL)
                    triggerer.wait()
                    stack.procs = [(n, p) for n, p in stack.procs if p is not triggerer]
                    restart = KILLS - len(kills)
                    log(f"SIGKILLed the triggerer (pid {triggerer.pid}, its process group); starting it again")
                    triggerer = stack.start(f"triggerer-{restart + 1}", [*airflow, "triggerer"], env)
                time.sleep(2)  # the pace of arriving logs, not a wait for anything

        log(f"phase 1: logs arrive for {PHASE_S} s, no restart")
        arrive(PHASE_S)
        truth = wait_for("the late logs to be listable", feed.truth, stack, CATCH_UP_S)
        events = wait_for("the events to carry every matching log", lambda: caught_up(db, truth), stack, CATCH_UP_S)
        failures += check("phase 1 (no restart)", events, truth, feed.other, repeats_allowed=0)
        phase1_events = len(events)

        log(f"phase 2: logs arrive for {PHASE_S} s, the triggerer SIGKILLed {KILLS} times")
        arrive(PHASE_S, kill_at=tuple(PHASE_S * (k + 0.5) / KILLS for k in range(KILLS)))
        truth, phase1_truth = wait_for("the late logs to be listable", feed.truth, stack, CATCH_UP_S), truth
        events = wait_for("the events to carry every matching log", lambda: caught_up(db, truth), stack, CATCH_UP_S)
        failures += check(
            f"phase 2 ({KILLS} x SIGKILL)",
            events[phase1_events:],
            truth,
            feed.other,
            KILLS,
            truth - phase1_truth,
            events[:phase1_events],
        )
        failures += check("both phases", events, truth, feed.other, KILLS)

        consumed = wait_for(
            "the DAG runs to consume every event",
            lambda: (lambda evs: evs if all(run is not None for _e, _i, run in evs) else None)(asset_events(db)),
            stack,
            CATCH_UP_S,
        )
        runs = query(db, "select state, count(*) from dag_run where dag_id = ? group by state", DAG_ID)
        log(f"DAG runs: {dict(runs)}; {len(consumed)} events consumed by {len({r for _e, _i, r in consumed})} runs")
        failures += check("events the DAG runs consumed", consumed, truth, feed.other, KILLS)
        stats = emulator_admin(emu["url"], "stats")
        log(
            f"{len(feed.matching)} matching logs ({feed.late} late), {len(feed.other)} non-matching; "
            f"{stats['total']} API requests; whole test {time.monotonic() - started:.0f} s"
        )
        if failures:
            log("FAILED: " + "; ".join(failures))
            return 1
        passed = True
        log("PASSED")
        return 0
    finally:
        stack.stop()
        log(f"stopped everything; logs in {logs}")
        if passed:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
