"""``make test-events``: asset watchers end to end on a real Airflow 3.3, triggerer killed on the way.

Starts on loopback, in a throwaway Airflow home (SQLite), the emulator and Airflow's
``dag-processor``, ``scheduler`` and ``triggerer``. The DAG folder holds three DAGs, each scheduled
on an asset whose ``AssetWatcher`` runs
:class:`~airflow_provider_aigw.triggers.ai_gateway.AIGatewayLogsEventTrigger` on the same gateway
with its own filters (:data:`WATCHERS`; the minimum ``poll_interval``): one group of Airflow 3.3's
shared stream, so one shared poll. While the components run, logs arrive: logs for each watcher,
others for none, some late (listable only after the next request, with a ``created_at`` in the
past, inside the overlap).

1. Logs arrive for :data:`PHASE_S` seconds; then, once the events caught up: for each watcher, the
   ids its asset events carry equal the logs the emulator holds that match its filters (none
   missed, no other one), and no id came twice.
2. Logs arrive again and the triggerer's process group is killed with SIGKILL :data:`KILLS`
   times, restarted each time; then the same, except that repeats are allowed within the
   documented bound: at most one batch per restart and watcher (docs/event_driven.rst).
3. The DAG runs the scheduler created consumed every event, so carry exactly the same ids.
4. Nothing arrives for :data:`IDLE_S` seconds: the emulator's records of those requests must hold
   the shared poll's unfiltered listings only, one per ``poll_interval``, and none of a watcher.

The asset events are read from the metadata DB (their ``extra["payload"]``): exact, and
independent of the tasks. Airflow 3.3 only (asset state, shared stream); not part of ``make test``.
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
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from test_celery import Stack, emulator_admin, query, wait_for  # noqa: E402  (scripts/ is sys.path[0])

GATEWAY = "events-gw"
POLL_S = 10  # the trigger's minimum
OVERLAP_S = 90
LATE_S = 30  # a late log's created_at is this far in the past when it becomes listable
PHASE_S = 70  # logs keep arriving this long in each phase
IDLE_S = 45  # then nothing arrives this long: only the shared poll may call the API
KILLS = 3
CATCH_UP_S = 120  # deadline for the events to cover every matching log after the last one arrived
TIMEOUT_S = 300
#: The watchers of the gateway (asset name -> filters, and the same test on a log sent): one DAG each.
WATCHERS: dict[str, tuple[list[dict[str, Any]], Callable[[dict[str, Any]], bool]]] = {
    "aigw_e2e_thumbs_down_gpt4o": (
        [{"key": "feedback", "operator": "eq", "value": [-1]}, {"key": "model", "operator": "eq", "value": ["gpt-4o"]}],
        lambda log: log["feedback"] == -1 and log["model"] == "gpt-4o",
    ),
    "aigw_e2e_claude": (
        [{"key": "model", "operator": "eq", "value": ["claude-3-5-sonnet"]}],
        lambda log: log["model"] == "claude-3-5-sonnet",
    ),
    "aigw_e2e_thumbs_up": (
        [{"key": "feedback", "operator": "eq", "value": [1]}],
        lambda log: log["feedback"] == 1,
    ),
}
#: Filter keys of the watchers: a listing with any of them is a watcher's poll, else the shared poll's.
WATCHER_KEYS = {f["key"] for filters, _match in WATCHERS.values() for f in filters}
#: An asset event of a watcher: its id, the log ids of its payload, the DAG run that consumed it (or None).
Event = tuple[int, list[str], int | None]

_DAG_BODY = """
for name, filters in WATCHERS.items():
    watched = Asset(
        name,
        watchers=[
            AssetWatcher(
                name=f"{name}_watcher",
                trigger=AIGatewayLogsEventTrigger(
                    gateway_id=GATEWAY, filters=filters, poll_interval=POLL_S, overlap=OVERLAP_S, lookback=600
                ),
            )
        ],
    )
    with DAG(
        dag_id=f"{name}_dag",
        schedule=[watched],
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
    ):
        EmptyOperator(task_id="consume")  # the scheduler finishes it: no worker, no api-server
"""
DAG_FILE = f"""
from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset, AssetWatcher

from airflow_provider_aigw.triggers.ai_gateway import AIGatewayLogsEventTrigger

WATCHERS = {({name: filters for name, (filters, _match) in WATCHERS.items()})!r}
GATEWAY, POLL_S, OVERLAP_S = {GATEWAY!r}, {POLL_S!r}, {OVERLAP_S!r}
{_DAG_BODY}"""


def emulator_post_reset(url: str) -> None:
    """Zero the emulator's counters and forget its request records."""
    post(url, "reset-stats", {})


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
    """Logs arriving at the emulator, and the ids each watcher must (not) fire on."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: dict[str, dict[str, Any]] = {}
        self.late = 0
        self.ticks = 0

    def tick(self) -> None:
        """A log for each watcher and one for none; every third tick a late pair too (one matching)."""
        self.ticks += 1
        now = datetime.now(timezone.utc)
        logs = [
            {"created_at": iso(now), "feedback": -1, "model": "gpt-4o"},
            {"created_at": iso(now), "feedback": 1, "model": "gpt-4o"},
            {"created_at": iso(now), "feedback": -1, "model": "claude-3-5-sonnet"},
            {"created_at": iso(now), "feedback": 0, "model": "gpt-4o"},
        ]
        for log_id, sent in zip(post(self.url, f"gateways/{GATEWAY}/logs", logs)["ids"], logs, strict=True):
            self.sent[log_id] = sent
        if self.ticks % 3 == 0:
            past = iso(now - timedelta(seconds=LATE_S))
            late = [
                {"created_at": past, "feedback": -1, "model": "gpt-4o", "id": str(uuid.uuid4())},
                {"created_at": past, "feedback": 0, "model": "claude-3-5-sonnet", "id": str(uuid.uuid4())},
            ]
            post(self.url, f"gateways/{GATEWAY}/late-logs", {"logs": late, "after_requests": 1})
            self.sent.update((log["id"], log) for log in late)
            self.late += 1

    def truth(self) -> dict[str, set[str]] | None:
        """Each watcher's matching ids the emulator holds, once it lists every log sent (late ones after a request)."""
        stored = set(emulator_admin(self.url, f"gateways/{GATEWAY}/ids")["ids"])
        if stored - set(self.sent):
            raise RuntimeError(f"the emulator holds logs never sent: {sorted(stored - set(self.sent))}")
        if stored != set(self.sent):
            return None
        return {name: {i for i in stored if match(self.sent[i])} for name, (_filters, match) in WATCHERS.items()}

    def other(self, name: str) -> set[str]:
        """The ids sent that ``name`` must not fire on."""
        match = WATCHERS[name][1]
        return {i for i, log in self.sent.items() if not match(log)}


def asset_events(db: Path, asset: str) -> list[Event]:
    """A watcher's asset events, oldest first: (event id, log ids of its payload, consuming dag run id)."""
    rows = query(
        db,
        "select e.id, e.extra, min(r.dag_run_id) from asset_event e join asset a on a.id = e.asset_id "
        "left join dagrun_asset_event r on r.event_id = e.id where a.name = ? group by e.id order by e.id",
        asset,
    )
    events = []
    for event_id, extra, run in rows:
        payload = json.loads(extra)["payload"]
        if payload.get("kind") != "aigw.new_logs" or payload["count"] != len(payload["ids"]):
            raise RuntimeError(f"asset event {event_id} has an unexpected payload: {payload}")
        events.append((event_id, list(payload["ids"]), run))
    return events


def api_listings(url: str) -> tuple[int, int]:
    """The emulator's recorded listings since its last stats reset: (the shared poll's, the watchers')."""
    shared = watchers = 0
    for record in emulator_admin(url, "stats")["requests"]:
        if record["kind"] != "list":
            continue
        filters = json.loads((record["query"].get("filters") or ["[]"])[0])
        if {f["key"] for f in filters} & WATCHER_KEYS:
            watchers += 1
        else:
            shared += 1
    return shared, watchers


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


def quiet(url: str) -> bool:
    """Whether two poll intervals pass without a watcher's listing (the last late log may still be
    signalled: the shared poll cannot know the watchers listed it already)."""
    emulator_post_reset(url)
    time.sleep(2 * POLL_S)  # the span observed, not a wait for anything
    return api_listings(url)[1] == 0


def caught_up(db: Path, truth: dict[str, set[str]]) -> dict[str, list[Event]] | None:
    events = {name: asset_events(db, name) for name in WATCHERS}
    if all(truth[name] <= {i for _e, ids, _r in events[name] for i in ids} for name in WATCHERS):
        return events
    return None


def all_consumed(db: Path) -> dict[str, list[Event]] | None:
    events = {name: asset_events(db, name) for name in WATCHERS}
    return events if all(run is not None for evs in events.values() for _e, _i, run in evs) else None


def main() -> int:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="aigw-test-events-"))
    home, logs, dags = work / "airflow", work / "logs", work / "dags"
    for path in (home, logs, dags):
        path.mkdir()
    (dags / "aigw_events_e2e.py").write_text(DAG_FILE)

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
        emulator_post_reset(emu["url"])
        arrive(PHASE_S)
        truth = wait_for("the late logs to be listable", feed.truth, stack, CATCH_UP_S)
        events = wait_for("the events to carry every matching log", lambda: caught_up(db, truth), stack, CATCH_UP_S)
        shared, watchers = api_listings(emu["url"])
        log(f"phase 1 listings: {shared} of the shared poll, {watchers} of the {len(WATCHERS)} watchers")
        if not shared:
            failures.append("phase 1: no unfiltered listing: the shared stream did not run")
        phase1 = {}
        for name in WATCHERS:
            failures += check(f"phase 1 (no restart) {name}", events[name], truth[name], feed.other(name), 0)
            phase1[name] = len(events[name])

        log(f"phase 2: logs arrive for {PHASE_S} s, the triggerer SIGKILLed {KILLS} times")
        arrive(PHASE_S, kill_at=tuple(PHASE_S * (k + 0.5) / KILLS for k in range(KILLS)))
        truth, phase1_truth = wait_for("the late logs to be listable", feed.truth, stack, CATCH_UP_S), truth
        events = wait_for("the events to carry every matching log", lambda: caught_up(db, truth), stack, CATCH_UP_S)
        for name in WATCHERS:
            failures += check(
                f"phase 2 ({KILLS} x SIGKILL) {name}",
                events[name][phase1[name] :],
                truth[name],
                feed.other(name),
                KILLS,
                truth[name] - phase1_truth[name],
                events[name][: phase1[name]],
            )
            failures += check(f"both phases {name}", events[name], truth[name], feed.other(name), KILLS)

        consumed = wait_for("the DAG runs to consume every event", lambda: all_consumed(db), stack, CATCH_UP_S)
        for name in WATCHERS:
            runs = {r for _e, _i, r in consumed[name]}
            log(f"{name}: {len(consumed[name])} events consumed by {len(runs)} DAG runs")
            label = f"events the DAG runs consumed {name}"
            failures += check(label, consumed[name], truth[name], feed.other(name), KILLS)

        log(f"phase 3: nothing arrives; once the watchers are quiet, {IDLE_S} s measured")
        wait_for("two poll intervals without a watcher's listing", lambda: quiet(emu["url"]), stack, CATCH_UP_S)
        emulator_post_reset(emu["url"])
        time.sleep(IDLE_S)  # the idle time measured, not a wait for anything
        shared, watchers = api_listings(emu["url"])
        most = IDLE_S // POLL_S + 1
        log(
            f"idle {IDLE_S} s: {shared} listing(s) of the shared poll (at most {most}: one per {POLL_S} s), "
            f"{watchers} of the {len(WATCHERS)} watchers (must be 0; alone each would make one per {POLL_S} s)"
        )
        if watchers or not 1 <= shared <= most:
            failures.append(f"idle: {shared} shared and {watchers} watcher listings")
        log(
            f"{len(feed.sent)} logs sent ({feed.late} late pairs); "
            + ", ".join(f"{name}: {len(ids)} matching" for name, ids in truth.items())
            + f"; whole test {time.monotonic() - started:.0f} s"
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
