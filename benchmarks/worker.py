"""One contender in a fresh process: ``python -m benchmarks.worker < spec.json``.

Prints one JSON line per run. Wall time and ``getrusage`` CPU are taken around the export call
only (after a warm-up export that loads Airflow, the SDK and their lazy imports); the peak RSS
is the process's ``ru_maxrss`` right after the timed run, before the output is read back to
check that every contender wrote the same logs.
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import json
import os
import resource
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.emulator import counters, set_faults

UNLIMITED = (10**9, 1.0)
WARMUP_GATEWAY = "warm"
#: Result lines start with this (Airflow's task logger also writes to stdout).
RESULT_MARKER = "@@aigw-bench-result "


def ids_digest(ids: Iterable[str]) -> tuple[int, str]:
    """Order-independent digest of a set of log ids: ``(count, hex)``."""
    total = 0
    n = 0
    for log_id in ids:
        total = (total + int.from_bytes(hashlib.blake2b(log_id.encode(), digest_size=8).digest(), "big")) % 2**64
        n += 1
    return n, f"{total:016x}"


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def _slices(start: str, end: str, k: int) -> list[tuple[datetime, datetime]]:
    s, e = _utc(start), _utc(end)
    step = (e - s) / k
    edges = [s + step * i for i in range(k)] + [e]
    # whole milliseconds, like created_at
    edges = [x - timedelta(microseconds=x.microsecond % 1000) for x in edges]
    return list(itertools.pairwise(edges))


# ----------------------------------------------------------------------------- contenders


def _client(emu: dict[str, Any], budget: Any) -> Any:
    from airflow_provider_aigw.client import AIGatewayClient

    return AIGatewayClient(emu["account_id"], api_token=emu["token"], base_url=emu["url"], budget=budget)


def _budget(spec: dict[str, Any]) -> Any:
    from airflow_provider_aigw.budget import RequestBudget

    limits = spec.get("budget") or UNLIMITED
    return RequestBudget(int(limits[0]), float(limits[1]))


class Outcome:
    """What a contender did: logs written, where, and the client-side request count."""

    def __init__(self) -> None:
        self.count = 0
        self.manifests: list[str] = []
        self.files: list[str] = []
        self.client_requests = 0
        self.budget_waited_s = 0.0
        self.extra: dict[str, Any] = {}


def run_provider(spec: dict[str, Any], gateway: str, out: Path) -> Outcome:
    """Contender 1: the client's keyset walk streamed into the export writer (``spec["format"]``,
    default ``jsonl.gz``)."""
    from airflow_provider_aigw.export import export_logs
    from airflow_provider_aigw.query import LogQuery

    emu = spec["emulator"]
    budget = _budget(spec)
    client = _client(emu, budget)
    result = export_logs(
        client.iter_logs(LogQuery.of(gateway_id=gateway, start=emu["start"], end=emu["end"])),
        out.as_uri(),
        gateway_id=gateway,
        start=_utc(emu["start"]),
        end=_utc(emu["end"]),
        format=spec.get("format", "jsonl.gz"),
    )
    o = Outcome()
    o.count, o.manifests, o.client_requests = result.count, [result.manifest_uri], client.requests_sent
    o.budget_waited_s = budget.waited_seconds
    return o


def run_sliced(spec: dict[str, Any], gateway: str, out: Path) -> Outcome:
    """Contender 1, concurrent: k time slices, one walk + one export each, one shared budget."""
    from airflow_provider_aigw.export import export_logs
    from airflow_provider_aigw.query import LogQuery

    emu = spec["emulator"]
    budget = _budget(spec)
    slices = _slices(emu["start"], emu["end"], int(spec["slices"]))
    results: list[Any] = [None] * len(slices)
    clients = [_client(emu, budget) for _ in slices]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        s, e = slices[i]
        try:
            results[i] = export_logs(
                clients[i].iter_logs(LogQuery.of(gateway_id=gateway, start=s, end=e)),
                (out / f"slice-{i:02d}").as_uri(),
                gateway_id=gateway,
                start=s,
                end=e,
                format="jsonl.gz",
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(slices))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    o = Outcome()
    o.count = sum(r.count for r in results)
    o.manifests = [r.manifest_uri for r in results]
    o.client_requests = sum(c.requests_sent for c in clients)
    o.budget_waited_s = budget.waited_seconds
    return o


def _operator_env(spec: dict[str, Any], gateway: str) -> None:
    from airflow_provider_aigw.emulator.server import EmulatorServer

    emu = spec["emulator"]
    limits = spec.get("budget") or UNLIMITED
    # Only the connection JSON is needed: build it like ``EmulatorServer.airflow_conn_json``.
    conn = json.loads(EmulatorServer(account_id=emu["account_id"], token=emu["token"]).airflow_conn_json(gateway))
    conn["host"] = emu["url"]
    conn["extra"].update({"budget_requests": int(limits[0]), "budget_period": float(limits[1])})
    os.environ["AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"] = json.dumps(conn)


def run_operator(spec: dict[str, Any], gateway: str, out: Path, *, include_bodies: bool = False) -> Outcome:
    """Contender 1 through Airflow: ``AIGatewayExportLogsOperator.execute`` with a minimal context."""
    from airflow_provider_aigw.operators.ai_gateway import AIGatewayExportLogsOperator

    emu = spec["emulator"]
    _operator_env(spec, gateway)
    op = AIGatewayExportLogsOperator(
        task_id=f"bench_{gateway.replace('-', '_')}",
        destination=out.as_uri(),
        start=emu["start"],
        end=emu["end"],
        format="jsonl.gz",
        include_bodies=include_bodies,
        gateway_id=gateway,
    )
    summary = op.execute({})  # type: ignore[arg-type]
    o = Outcome()
    o.count, o.manifests = int(summary["count"]), [summary["manifest_uri"]]
    client = op.hook.client
    o.client_requests, o.budget_waited_s = client.requests_sent, client.budget.waited_seconds
    if include_bodies:
        o.extra["body_stats"] = summary.get("body_stats")
    return o


def run_sdk(spec: dict[str, Any], gateway: str, out: Path) -> Outcome:
    """Contender 2: what a user writes with the official SDK (defaults left alone)."""
    import cloudflare

    emu = spec["emulator"]
    cf = cloudflare.Cloudflare(api_token=emu["token"], base_url=emu["url"])
    path = out / "logs.jsonl.gz"
    out.mkdir(parents=True, exist_ok=True)
    o = Outcome()
    try:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            for log in cf.ai_gateway.logs.list(gateway, account_id=emu["account_id"]):
                fh.write(json.dumps(log.to_dict(mode="json")) + "\n")
                o.count += 1
    finally:
        o.files = [str(path)]
    return o


CONTENDERS: dict[str, Callable[[dict[str, Any], str, Path], Outcome]] = {
    "provider": run_provider,
    "sliced": run_sliced,
    "operator": run_operator,
    "operator_bodies": lambda spec, gw, out: run_operator(spec, gw, out, include_bodies=True),
    "sdk": run_sdk,
}


# ----------------------------------------------------------------------------- measuring


def _rss_kb() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss // 1024)
    except ImportError:  # pragma: no cover
        return 0


def _read_back(o: Outcome) -> tuple[int, str]:
    def ids() -> Iterator[str]:
        if o.manifests:  # imported only when needed: the SDK worker never loads Airflow
            from airflow_provider_aigw.export import iter_manifest_records

            for uri in o.manifests:
                for rec in iter_manifest_records(uri):
                    yield rec["id"]
        for f in o.files:
            with gzip.open(f, "rt", encoding="utf-8") as fh:
                for line in fh:
                    yield json.loads(line)["id"]

    return ids_digest(ids())


def measure(spec: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    contender = CONTENDERS[spec["contender"]]
    emu = spec["emulator"]
    out = Path(spec["workdir"]) / f"{spec['contender']}-{run.get('label', 'run')}"
    shutil.rmtree(out, ignore_errors=True)
    set_faults(emu["base_url"], **run.get("faults", {}))
    rss_before = _rss_kb()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    error = None
    outcome = Outcome()
    try:
        outcome = contender(spec, run.get("gateway", spec["gateway"]), out)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        traceback.print_exc(file=sys.stderr)
    elapsed = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    peak_kb = r1.ru_maxrss
    server = counters(emu["base_url"])
    set_faults(emu["base_url"])
    result: dict[str, Any] = {
        "contender": spec["contender"],
        "label": run.get("label"),
        "gateway": run.get("gateway", spec["gateway"]),
        "faults": run.get("faults", {}),
        "budget": spec.get("budget"),
        "slices": spec.get("slices"),
        "finished": error is None,
        "error": error,
        "count": outcome.count,
        "elapsed_s": elapsed,
        "cpu_user_s": r1.ru_utime - r0.ru_utime,
        "cpu_sys_s": r1.ru_stime - r0.ru_stime,
        "rss_before_kb": rss_before,
        "rss_peak_kb": peak_kb,
        "client_requests": outcome.client_requests,
        "budget_waited_s": outcome.budget_waited_s,
        "server": server,
        **outcome.extra,
    }
    if error is None and spec.get("verify", True):
        result["read_back_count"], result["ids_digest"] = _read_back(outcome)
    shutil.rmtree(out, ignore_errors=True)
    return result


def warm_up(spec: dict[str, Any]) -> None:
    """One small export with the same contender: imports, Airflow config, connection pools."""
    warm = dict(spec, budget=None)
    out = Path(spec["workdir"]) / f"warmup-{spec['contender']}"
    set_faults(spec["emulator"]["base_url"])
    try:
        CONTENDERS[spec["contender"]](warm, WARMUP_GATEWAY, out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    spec = json.loads(sys.stdin.read())
    # Keep Airflow quiet and self-contained in the worker.
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    import logging

    logging.disable(logging.WARNING)
    warm_up(spec)
    for run in spec.get("runs") or [{}]:
        print(RESULT_MARKER + json.dumps(measure(spec, run)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
