# ruff: noqa: RUF001 - typographic signs in report text are intended
"""Orchestrates every scenario, prints PASS/MISS per target, writes RESULTS.md and the chart.

``python -m benchmarks [--rounds 3] [--quick] [--only SCENARIO ...]``

Each measurement runs in a fresh worker process (``benchmarks.worker``) against one emulator
subprocess on loopback; contenders alternate within every round (the order rotates each
round) and tables report medians with min-max over the rounds.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks import logpush, shared_budget
from benchmarks.emulator import SEED, WINDOW_END, WINDOW_START, EmulatorProcess
from benchmarks.worker import RESULT_MARKER

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAGE = 50  # the provider's page size (the API's maximum)
SDK_PAGE = 20  # the API's default page size, which the SDK leaves alone

N = 20_000
N_BIG = 200_000
N_SWEEP = 5_000
N_BODIES = 1_000
LATENCY_MS = 20.0
SWEEP_LATENCIES_MS = (0.0, 5.0, 10.0, 20.0, 40.0)
SLICES = 8
#: Cloudflare: 1,200 requests per 300 s per user, lock-out on excess (4 requests/s). Scaled
#: here to 50 requests per 0.5 s (100 requests/s): a window short enough that a listing spans
#: several of them, a rate well below what client + emulator sustain on 2 cores (~400/s).
BUDGET = (50, 0.5)
EMU_PAGE_SAMPLES = 30

GATEWAYS = {
    "warm": 500,
    "g20k": N,
    "g200k": N_BIG,
    "g5k": N_SWEEP,
    "g1k": N_BODIES,
}

LABELS = {
    "provider": "provider: client + writer",
    "operator": "provider: AIGatewayExportLogsOperator.execute",
    "sliced": f"provider: {SLICES} concurrent time slices (client + writer each)",
    "operator_bodies": "provider: operator, include_bodies=True",
    "sdk": "official SDK: logs.list auto-pagination + json.dumps into gzip",
}


def pages(n: int, per_page: int = PAGE) -> int:
    return math.ceil(n / per_page)


def walk_requests(n: int) -> int:
    """Requests of the provider's walk of ``n`` logs: it ends on a short or empty page only, so
    ceil(n/50), one more when ``n`` is a multiple of 50."""
    return n // PAGE + 1


def budget_bound_s(requests: int, budget: tuple[int, float]) -> float:
    """Least time in which ``requests`` can be sent without ever exceeding ``budget``.

    With a sliding window of B requests per P seconds starting empty, request i (0-based)
    can go at ``(i // B) * P`` at the earliest; the service time of requests is ignored.
    """
    b, p = budget
    return ((requests - 1) // b) * p


# ----------------------------------------------------------------------------- running


@dataclass
class Bench:
    emu: EmulatorProcess
    workdir: Path
    rounds: int
    python: str = sys.executable
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def worker(self, contender: str, gateway: str, runs: list[dict[str, Any]], **extra: Any) -> list[dict[str, Any]]:
        spec = {
            "contender": contender,
            "emulator": self.emu.spec(),
            "gateway": gateway,
            "workdir": str(self.workdir),
            "runs": runs,
            **extra,
        }
        proc = subprocess.run(
            [self.python, "-m", "benchmarks.worker"],
            input=json.dumps(spec),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=900,
        )
        out = [
            json.loads(line[len(RESULT_MARKER) :])
            for line in proc.stdout.splitlines()
            if line.startswith(RESULT_MARKER)
        ]
        if proc.returncode != 0 or len(out) != len(runs):
            raise RuntimeError(f"worker {contender} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        for r in out:
            if not r["finished"]:
                print(f"    ! {contender} did not finish: {r['error']}", flush=True)
        return out

    def alternate(
        self,
        scenario: str,
        contenders: list[str],
        make: Callable[[str], tuple[str, list[dict[str, Any]], dict[str, Any]]],
    ) -> None:
        """Run every contender once per round, rotating their order each round."""
        rows = self.results.setdefault(scenario, [])
        for rnd in range(self.rounds):
            order = contenders[rnd % len(contenders) :] + contenders[: rnd % len(contenders)]
            for contender in order:
                gateway, runs, extra = make(contender)
                t0 = time.monotonic()
                got = self.worker(contender, gateway, runs, **extra)
                for r in got:
                    r["round"] = rnd
                    rows.append(r)
                brief = ", ".join(
                    f"{r.get('label') or ''} {r['elapsed_s']:.2f}s" + ("" if r["finished"] else " (failed)")
                    for r in got
                )
                print(f"  [{scenario}] round {rnd + 1} {contender}: {brief} ({time.monotonic() - t0:.0f}s)", flush=True)


def scenario_latency(b: Bench) -> None:
    """Latency-bound: N logs, 20 ms injected per request, no budget."""
    runs = [{"label": "l20", "faults": {"latency_ms": LATENCY_MS}}]
    b.alternate(
        "latency",
        ["provider", "operator", "sliced", "sdk"],
        lambda c: ("g20k", runs, {"slices": SLICES}),
    )


def scenario_sweep(b: Bench) -> None:
    """Throughput against injected latency (the chart), N_SWEEP logs."""
    runs = [{"label": f"l{lat:g}", "faults": {"latency_ms": lat}} for lat in SWEEP_LATENCIES_MS]
    b.alternate("sweep", ["provider", "sliced", "sdk"], lambda c: ("g5k", runs, {"slices": SLICES}))


def scenario_zero(b: Bench) -> None:
    """Zero latency: CPU per log (jsonl.gz and Parquet against the SDK, same rounds), peak RSS at
    N and N_BIG (one fresh process per run)."""

    def make(c: str) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        if c == "provider_big":
            return "g200k", [{"label": "big"}], {"contender": "provider"}
        if c == "provider_parquet":
            return "g20k", [{"label": "z"}], {"contender": "provider", "format": "parquet"}
        return "g20k", [{"label": "z"}], {}

    rows = b.results.setdefault("zero", [])
    contenders = ["provider", "provider_big", "provider_parquet", "operator", "sdk"]
    for rnd in range(b.rounds):
        order = contenders[rnd % len(contenders) :] + contenders[: rnd % len(contenders)]
        for c in order:
            gateway, runs, extra = make(c)
            contender = extra.pop("contender", c)
            got = b.worker(contender, gateway, runs, **extra)
            for r in got:
                r["round"], r["variant"] = rnd, c
                rows.append(r)
            print(f"  [zero] round {rnd + 1} {c}: {got[0]['elapsed_s']:.2f}s", flush=True)


def scenario_budget(b: Bench) -> None:
    """Budget-bound: the emulator enforces BUDGET with lock-out; the client's budget matches."""
    b_req, period = BUDGET
    runs = [
        {
            "label": "budget",
            "faults": {"rate_limit_requests": b_req, "rate_limit_period_s": period, "lockout_s": period},
        }
    ]
    b.alternate("budget", ["provider", "operator", "sdk"], lambda c: ("g20k", runs, {"budget": list(BUDGET)}))


def scenario_bodies(b: Bench) -> None:
    """Bodies: N_BODIES logs with include_bodies=True under the same scaled budget."""
    b_req, period = BUDGET
    runs = [
        {
            "label": "bodies",
            "faults": {"rate_limit_requests": b_req, "rate_limit_period_s": period, "lockout_s": period},
        }
    ]
    b.alternate("bodies", ["operator_bodies"], lambda c: ("g1k", runs, {"budget": list(BUDGET)}))


def scenario_emulator(b: Bench) -> dict[str, Any]:
    """One page of 50 at 1,000,000 stored logs, timed from a client on loopback."""
    import requests

    out: dict[str, Any] = {}
    with EmulatorProcess({"g1m": 1_000_000}, python=b.python) as emu:
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {emu.info['token']}"
        url = f"{emu.info['url']}/accounts/{emu.info['account_id']}/ai-gateway/gateways/g1m/logs"

        def window(gt: str, lt: str) -> str:
            return json.dumps(
                [
                    {"key": "created_at", "operator": "gt", "value": [gt]},
                    {"key": "created_at", "operator": "lt", "value": [lt]},
                ]
            )

        queries: list[tuple[str, dict[str, Any], int, bool]] = [
            ("list, API defaults (newest 20)", {}, EMU_PAGE_SAMPLES, True),
            ("export keyset page: created_at window, asc, 50", {
                "per_page": 50, "order_by": "created_at", "order_by_direction": "asc",
                "filters": window("2026-01-02T11:59:59.999Z", WINDOW_END),
            }, EMU_PAGE_SAMPLES, True),
            ("page 10,000 of 50 (offset 499,950)", {"per_page": 50, "page": 10_000}, EMU_PAGE_SAMPLES, True),
            ("count (per_page=1, total_count)", {"per_page": 1, "filters": window(WINDOW_START, WINDOW_END)},
             EMU_PAGE_SAMPLES, True),
            ("filter model eq (unindexed scan)", {
                "per_page": 50, "filters": json.dumps([{"key": "model", "operator": "eq", "value": ["gpt-4o"]}]),
            }, 2, False),
            ("order_by=model (unindexed sort)", {"per_page": 50, "order_by": "model"}, 2, False),
        ]  # fmt: skip
        for name, params, samples, export_path in queries:
            s.get(url, params=params, timeout=120).raise_for_status()  # warm
            times = []
            for _ in range(samples):
                t0 = time.perf_counter()
                r = s.get(url, params=params, timeout=120)
                r.raise_for_status()
                r.content  # noqa: B018
                times.append((time.perf_counter() - t0) * 1000)
            out[name] = {"samples": times, "export_path": export_path}
            print(f"  [emulator] {name}: median {statistics.median(times):.2f} ms", flush=True)
    return out


def scenario_shared(b: Bench) -> None:
    """Shared budget: N worker processes through one Redis budget vs the rule's bound."""
    b.results["shared"] = shared_budget.scenario(b.emu)


SCENARIOS: dict[str, Callable[[Bench], Any]] = {
    "latency": scenario_latency,
    "sweep": scenario_sweep,
    "zero": scenario_zero,
    "budget": scenario_budget,
    "bodies": scenario_bodies,
    "shared": scenario_shared,
}


# ----------------------------------------------------------------------------- reporting


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def rng(xs: list[float], fmt: str = "{:.2f}") -> str:
    return f"{fmt.format(min(xs))}–{fmt.format(max(xs))}" if xs else "–"


def cpu_us_per_log(r: dict[str, Any]) -> float:
    return (r["cpu_user_s"] + r["cpu_sys_s"]) / max(r["count"], 1) * 1e6


def by(rows: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in rows if all(r.get(k) == v for k, v in match.items())]


#: The most CPU per log the provider may spend, as a share of the SDK's in the same run.
CPU_RATIO_TARGET = 0.2


def cpu_ratios(zero: list[dict[str, Any]], variant: str) -> list[float]:
    """Per round: ``variant``'s CPU per log over the SDK's (absolute figures move with the
    machine's load; contenders of one round ran minutes apart)."""
    out = []
    for rnd in sorted({r["round"] for r in zero}):
        mine, sdk = by(zero, variant=variant, round=rnd), by(zero, variant="sdk", round=rnd)
        if mine and sdk:
            out.append(cpu_us_per_log(mine[0]) / cpu_us_per_log(sdk[0]))
    return out


@dataclass
class Target:
    name: str
    measured: str
    ok: bool | None  # None: reported, no target


def load_average() -> str:
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def busy(load_start: str) -> bool:
    """Whether the machine had at least one runnable task per core at the start or end of the run."""
    ones = [part.split("/")[0] for part in (load_start, load_average()) if part and part != "unknown"]
    return any(float(x) >= (os.cpu_count() or 1) for x in ones)


def machine_info() -> dict[str, str]:
    import importlib.metadata as md

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass

    def v(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    return {
        "CPU": f"{cpu} ({os.cpu_count()} cores visible)",
        "Memory": mem,
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "Airflow": v("apache-airflow"),
        "airflow-provider-aigw": v("airflow-provider-aigw"),
        "cloudflare (SDK)": v("cloudflare"),
        "requests": v("requests"),
        "httpx (SDK transport)": v("httpx"),
    }


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def contender_table(
    rows: list[dict[str, Any]], contenders: list[str], n: int, bound_s: Callable[[str], float | None]
) -> list[str]:
    lines = [
        "| contender | requests (server) | 429s served | finished | median s | min–max s | median logs/s | "
        "bound s | % of bound | CPU µs/log |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in contenders:
        rs = by(rows, contender=c)
        if not rs:
            continue
        t = [r["elapsed_s"] for r in rs]
        reqs = sorted({r["server"]["total"] for r in rs})
        r429 = [r["server"]["served_429"] for r in rs]
        fin = sum(r["finished"] for r in rs)
        bound = bound_s(c)
        pct = f"{bound / med(t) * 100:.0f}%" if bound else "–"
        lines.append(
            f"| {LABELS[c]} | {'/'.join(map(str, reqs))} | {'/'.join(map(str, r429))} | {fin}/{len(rs)} | "
            f"{med(t):.2f} | {rng(t)} | {fmt_rate(n / med(t))} | {f'{bound:.2f}' if bound else '–'} | {pct} | "
            f"{med([cpu_us_per_log(r) for r in rs]):.1f} |"
        )
    return lines


def report(
    res: dict[str, Any], args: argparse.Namespace, started: datetime, duration_s: float, kept_from: str = ""
) -> tuple[list[Target], str]:
    targets: list[Target] = []
    md: list[str] = []
    info = machine_info()
    if getattr(args, "load_start", ""):
        info["Load average (1/5/15 min) at start, at end"] = f"{args.load_start}; {load_average()}"
    cmd = "make bench" if not args.cmdline else args.cmdline
    md += [
        "# Benchmarks: export path vs the official `cloudflare` SDK",
        "",
        "Generated by `benchmarks/run.py`; do not edit by hand. Benchmarks are not tests: nothing here "
        "runs in `make test`.",
        "",
        f"- Command: `{cmd}` (same as `.venv/bin/python -m benchmarks --rounds {args.rounds}`)",
        f"- Run: {started.strftime('%Y-%m-%d %H:%M UTC')}, {duration_s / 60:.1f} min, {args.rounds} rounds, "
        "contenders alternating (order rotated each round); medians with min–max over the rounds"
        + (f" (scenarios re-run: {', '.join(args.only)})" if kept_from else ""),
        *([f"- Other sections kept from the previous run ({kept_from})"] if kept_from else []),
        *(
            [
                "- **Loaded machine**: other work shared these cores during the run (load averages under "
                "Machine). Absolute times, rates and CPU per log are inflated and the latency- and "
                "budget-bound shares lowered by the per-request CPU; compare the same-run ratios "
                "(provider/SDK)."
            ]
            if busy(getattr(args, "load_start", ""))
            else []
        ),
        f"- Emulator: `python -m airflow_provider_aigw.emulator` subprocess on 127.0.0.1, seed {SEED}, "
        f"logs spread over [{WINDOW_START}, {WINDOW_END}); gateways "
        + ", ".join(f"{k}={v:,}" for k, v in GATEWAYS.items()),
        "- Each measurement: a fresh worker process; one warm-up export (500 logs, same contender) first; "
        "wall time and `getrusage` user+sys CPU around the export call only; peak RSS = `ru_maxrss` of the "
        "worker (includes imports, so compare differences); every output is read back afterwards and its "
        "set of log ids compared across contenders.",
        "- Output of every contender: gzip JSON Lines. Provider: `export_logs(..., format='jsonl.gz')` "
        "(partitioned part files + manifest); SDK: one `gzip.open(...)` file, `json.dumps(log.to_dict(mode='json'))` "
        "per log. The zero-latency scenario also runs the provider with `format='parquet'`.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in info.items()],
        "",
    ]

    # ---- latency-bound
    lat = res.get("latency", [])
    same_ids: list[str] = []
    if lat:
        seq_bound = walk_requests(N) * LATENCY_MS / 1000
        slice_pages = walk_requests(N // SLICES + 1)
        slice_bound = slice_pages * LATENCY_MS / 1000

        def lb(c: str) -> float | None:
            return {"provider": seq_bound, "operator": seq_bound, "sliced": slice_bound}.get(c)

        md += [
            f"## Latency-bound: {N:,} logs, {LATENCY_MS:g} ms injected per request, no budget",
            "",
            f"Sequential bound: ceil({N:,}/50) × {LATENCY_MS:g} ms = {seq_bound:.2f} s "
            f"({fmt_rate(N / seq_bound)} logs/s). Time slices: the window split into {SLICES} equal "
            f"sub-windows, one keyset walk + one export (own destination, own manifest) per thread, one shared "
            f"budget; their bound is the largest slice's pages × latency ≈ {slice_bound:.2f} s.",
            "",
            *contender_table(lat, ["provider", "operator", "sliced", "sdk"], N, lb),
            "",
        ]
        p = med([r["elapsed_s"] for r in by(lat, contender="provider")])
        o = med([r["elapsed_s"] for r in by(lat, contender="operator")]) if by(lat, contender="operator") else None
        s = med([r["elapsed_s"] for r in by(lat, contender="sliced")])
        k = med([r["elapsed_s"] for r in by(lat, contender="sdk")])
        targets.append(
            Target(
                "Latency-bound: provider within 10% of the sequential bound",
                f"{p:.2f} s vs bound {seq_bound:.2f} s ({seq_bound / p * 100:.0f}% of bound)",
                p <= seq_bound * 1.1,
            )
        )
        if o is not None:
            targets.append(
                Target(
                    "Latency-bound: operator execute path within 10% of the sequential bound (+1 count request)",
                    f"{o:.2f} s ({seq_bound / o * 100:.0f}% of bound)",
                    o <= seq_bound * 1.1,
                )
            )
        targets.append(
            Target(
                "Latency-bound: provider ≥ 2.5× faster than the SDK",
                f"{k / p:.2f}× ({p:.2f} s vs {k:.2f} s)",
                k / p >= 2.5,
            )
        )
        targets.append(
            Target(
                f"Latency-bound: {SLICES} time slices ≥ 6× faster than the SDK",
                f"{k / s:.1f}× ({s:.2f} s vs {k:.2f} s)",
                k / s >= 6,
            )
        )
        same_ids += [r.get("ids_digest", "") for r in lat]

    # ---- requests
    if lat:
        prov = sorted({r["server"]["list"] for r in by(lat, contender="provider")})
        opr = sorted({r["server"]["list"] for r in by(lat, contender="operator")})
        sdk = sorted({r["server"]["list"] for r in by(lat, contender="sdk")})
        sliced = sorted({r["server"]["list"] for r in by(lat, contender="sliced")})
        md += [
            "## Requests for a full listing",
            "",
            "| contender | list requests (emulator count) | expected |",
            "|---|---:|---:|",
            f"| provider: client + writer | {'/'.join(map(str, prov))} | ⌊{N:,}/50⌋ + 1 = {walk_requests(N)} |",
            f"| provider: operator | {'/'.join(map(str, opr)) or '–'} | "
            f"{walk_requests(N)} + 1 count request (`per_page=1`) = {walk_requests(N) + 1} |",
            f"| provider: {SLICES} time slices | {'/'.join(map(str, sliced))} | "
            f"≤ {walk_requests(N)} + {SLICES} (one partial page per slice) |",
            f"| official SDK | {'/'.join(map(str, sdk))} | ceil({N:,}/20) + 1 = {pages(N, SDK_PAGE) + 1} |",
            "",
        ]
        targets.append(
            Target(
                f"Requests: provider listing = ⌊N/50⌋+1 = {walk_requests(N)} "
                f"(SDK: ceil(N/20)+1 = {pages(N, SDK_PAGE) + 1})",
                f"provider {'/'.join(map(str, prov))}, SDK {'/'.join(map(str, sdk))}",
                prov == [walk_requests(N)],
            )
        )

    # ---- sweep / chart
    sweep = res.get("sweep", [])
    if sweep:
        md += [
            f"## Throughput against injected latency ({N_SWEEP:,} logs; chart)",
            "",
            "![throughput vs latency](throughput_vs_latency.png)",
            "",
            "| latency ms | bound logs/s (sequential) | provider logs/s | "
            f"{SLICES} slices logs/s | SDK logs/s | provider / SDK |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for lat_ms in SWEEP_LATENCIES_MS:
            label = f"l{lat_ms:g}"
            vals = {
                c: med([N_SWEEP / r["elapsed_s"] for r in by(sweep, contender=c, label=label)])
                for c in ("provider", "sliced", "sdk")
            }
            bound = N_SWEEP / (walk_requests(N_SWEEP) * lat_ms / 1000) if lat_ms else float("inf")
            md.append(
                f"| {lat_ms:g} | {'∞' if math.isinf(bound) else fmt_rate(bound)} | {fmt_rate(vals['provider'])} | "
                f"{fmt_rate(vals['sliced'])} | {fmt_rate(vals['sdk'])} | {vals['provider'] / vals['sdk']:.2f}× |"
            )
        md.append("")
        same_ids_sweep = {r.get("ids_digest") for r in sweep}
        if len(same_ids_sweep) != 1:
            md += [f"**Warning: contenders disagree on the exported ids in the sweep: {same_ids_sweep}**", ""]

    # ---- zero latency: CPU + memory
    zero = res.get("zero", [])
    if zero:
        md += [
            "## Zero latency: CPU per log and peak memory",
            "",
            "| run | format | logs | median s | median logs/s | CPU µs/log (user+sys) median | min–max "
            "| CPU / SDK's (same round) median | min–max | peak RSS MB median | min–max |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        names = {
            "provider": ("provider: client + writer", "jsonl.gz"),
            "provider_big": ("provider: client + writer", "jsonl.gz"),
            "provider_parquet": ("provider: client + writer", "parquet"),
            "operator": ("provider: operator", "jsonl.gz"),
            "sdk": ("official SDK", "jsonl.gz"),
        }
        for variant, (name, fmt) in names.items():
            rs = by(zero, variant=variant)
            if not rs:
                continue
            n = rs[0]["count"]
            cpu = [cpu_us_per_log(r) for r in rs]
            rss = [r["rss_peak_kb"] / 1024 for r in rs]
            t = [r["elapsed_s"] for r in rs]
            ratios = cpu_ratios(zero, variant)
            md.append(
                f"| {name} | {fmt} | {n:,} | {med(t):.2f} | {fmt_rate(n / med(t))} | {med(cpu):.1f} | "
                f"{rng(cpu, '{:.1f}')} | {med(ratios):.2f}× | {rng(ratios, '{:.2f}')} | {med(rss):.0f} | "
                f"{rng(rss, '{:.0f}')} |"
            )
        md += [
            "",
            "CPU / SDK's: the run's CPU per log over the SDK's in the same round (the provider exports "
            f"{N:,} logs from g20k like the SDK; the {N_BIG:,}-log row is compared with the SDK's "
            f"{N:,}-log run). The ratio is the figure to compare between runs: absolute CPU per log "
            "moves with the machine's load (see the load averages under Machine).",
            "",
        ]
        small = med([r["rss_peak_kb"] / 1024 for r in by(zero, variant="provider")])
        big = med([r["rss_peak_kb"] / 1024 for r in by(zero, variant="provider_big")])
        cpu_p = med([cpu_us_per_log(r) for r in by(zero, variant="provider")])
        cpu_s = med([cpu_us_per_log(r) for r in by(zero, variant="sdk")])
        cpu_big = med([cpu_us_per_log(r) for r in by(zero, variant="provider_big")])
        cpu_pq = med([cpu_us_per_log(r) for r in by(zero, variant="provider_parquet")])
        ratio_p = med(cpu_ratios(zero, "provider"))
        ratio_pq = med(cpu_ratios(zero, "provider_parquet"))
        targets.append(
            Target(
                f"Memory: peak RSS at {N_BIG:,} logs ≤ peak at {N:,} + 20 MB",
                f"{small:.0f} MB vs {big:.0f} MB (+{big - small:.1f} MB)",
                big - small <= 20,
            )
        )
        targets.append(
            Target(
                f"CPU: provider ≤ {CPU_RATIO_TARGET:g}× the SDK's CPU per log (jsonl.gz, zero latency, same rounds)",
                f"{ratio_p:.2f}× ({cpu_p:.1f} vs {cpu_s:.1f} µs/log at {N:,}; {cpu_big:.1f} µs/log at {N_BIG:,})",
                ratio_p <= CPU_RATIO_TARGET,
            )
        )
        if not math.isnan(ratio_pq):
            targets.append(
                Target(
                    "CPU: provider writing Parquet, against the SDK writing jsonl.gz (reported)",
                    f"{ratio_pq:.2f}× ({cpu_pq:.1f} vs {cpu_s:.1f} µs/log at {N:,})",
                    None,
                )
            )
        same_ids += [r.get("ids_digest", "") for r in zero if r["gateway"] == "g20k"]

    # ---- budget-bound
    bud = res.get("budget", [])
    if bud:
        b_req, period = BUDGET
        bound_p = budget_bound_s(walk_requests(N), BUDGET)
        bound_o = budget_bound_s(walk_requests(N) + 1, BUDGET)

        def bb(c: str) -> float | None:
            return {"provider": bound_p, "operator": bound_o}.get(c)

        md += [
            f"## Budget-bound: {N:,} logs, emulator enforcing {b_req} requests per {period:g} s with lock-out",
            "",
            f"Cloudflare's rule (1,200 requests per 300 s per user; more locks the user out for the rest of the "
            f"period with 429 + `Retry-After`) scaled to {b_req} per {period:g} s ({b_req / period:g} requests/s): "
            f"the emulator runs the same sliding window and locks out for {period:g} s; the provider's client "
            f"budget is set to the same `RequestBudget({b_req}, {period:g})` (operator: connection extras "
            "`budget_requests`/`budget_period`). The SDK has no budget: it is left to its defaults "
            "(2 retries honouring `Retry-After`). "
            f"Bound = least time to send R requests with at most {b_req} in any {period:g} s starting from an empty "
            f"window, (⌈R/{b_req}⌉−1)×{period:g} s (R = {walk_requests(N)}: {bound_p:.2f} s; "
            f"operator R = {walk_requests(N) + 1}: "
            f"{bound_o:.2f} s); the long-run rate is {b_req / period * PAGE:,.0f} logs/s.",
            "",
            *contender_table(bud, ["provider", "operator", "sdk"], N, bb),
            "",
        ]
        for c, bound in (("provider", bound_p), ("operator", bound_o)):
            rs = by(bud, contender=c)
            if not rs:
                continue
            t = med([r["elapsed_s"] for r in rs])
            r429 = sum(r["server"]["served_429"] for r in rs)
            fin = all(r["finished"] for r in rs)
            targets.append(
                Target(
                    f"Budget-bound ({c}): ≥ 90% of budget-bound throughput, zero 429s",
                    f"{bound / t * 100:.0f}% ({t:.2f} s vs {bound:.2f} s), {r429} 429s",
                    fin and bound / t >= 0.9 and r429 == 0,
                )
            )
        rs = by(bud, contender="sdk")
        if rs:
            targets.append(
                Target(
                    "Budget-bound: SDK (reported)",
                    f"429s {'/'.join(str(r['server']['served_429']) for r in rs)}, finished "
                    f"{sum(r['finished'] for r in rs)}/{len(rs)}, median {med([r['elapsed_s'] for r in rs]):.1f} s",
                    None,
                )
            )
        same_ids += [r.get("ids_digest", "") for r in bud if r["finished"]]

    # ---- bodies
    bod = res.get("bodies", [])
    if bod:
        c = bod[0]["contender"]
        extra_req = 1 if c == "operator_bodies" else 0
        r_total = walk_requests(N_BODIES) + 2 * N_BODIES + extra_req
        bound = budget_bound_s(r_total, BUDGET)
        t = med([r["elapsed_s"] for r in bod])
        r429 = sum(r["server"]["served_429"] for r in bod)
        md += [
            f"## Bodies: {N_BODIES:,} logs with `include_bodies=True`, same scaled budget",
            "",
            f"Requests: {walk_requests(N_BODIES)} list + {2 * N_BODIES:,} body requests"
            + (" + 1 count request" if extra_req else "")
            + f" = {r_total:,}; bound (⌈R/{BUDGET[0]}⌉−1)×{BUDGET[1]:g} s = {bound:.2f} s.",
            "",
            *contender_table(bod, [c], N_BODIES, lambda _c: bound),
            "",
            f"Body statuses (manifest `body_stats`): `{json.dumps(bod[0].get('body_stats'))}`",
            "",
        ]
        targets.append(
            Target(
                "Bodies: ≥ 90% of budget-bound rate, zero 429s",
                f"{bound / t * 100:.0f}% ({t:.2f} s vs {bound:.2f} s), {r429} 429s",
                bound / t >= 0.9 and r429 == 0 and all(r["finished"] for r in bod),
            )
        )

    # ---- shared budget
    shared = res.get("shared", [])
    if shared:
        md += shared_budget.report(shared)
        for r in shared:
            if r["contender"] in ("redis", "redis_export"):
                how = "export operators" if r["contender"] == "redis_export" else "processes"
                targets.append(
                    Target(
                        f"Shared budget: {r['workers']} {how} via redis://, zero 429s, ≥ 90% of the bound",
                        f"{r['served_429']} 429s, {r['share']:.0%} ({r['api_span_s']:.2f} s vs {r['bound_s']:.2f} s)",
                        r["served_429"] == 0 and r["share"] >= 0.9,
                    )
                )
            else:
                targets.append(
                    Target(
                        f"Shared budget: {shared_budget.CONTENDERS[r['contender']]} (reported)",
                        f"{r['served_429']} 429s, {r['share']:.0%} of the bound",
                        None,
                    )
                )

    # ---- emulator
    emu = res.get("emulator", {})
    if emu:
        md += [
            "## Emulator: one page at 1,000,000 stored logs (client-side round trip on loopback)",
            "",
            "| query | samples | median ms | max ms | created_at-indexed (what the export path sends) |",
            "|---|---:|---:|---:|---|",
        ]
        worst = 0.0
        for name, d in emu.items():
            xs = d["samples"]
            md.append(f"| {name} | {len(xs)} | {med(xs):.2f} | {max(xs):.2f} | {'yes' if d['export_path'] else 'no'} |")
            if d["export_path"]:
                worst = max(worst, med(xs))
        md.append("")
        targets.append(
            Target(
                "Emulator: a page at 1,000,000 logs < 20 ms (created_at-indexed queries, as the export path sends)",
                f"worst median {worst:.2f} ms",
                worst < 20,
            )
        )
        slow = {k: med(d["samples"]) for k, d in emu.items() if not d["export_path"]}
        if slow:
            targets.append(
                Target(
                    "Emulator: unindexed queries at 1,000,000 logs (reported)",
                    "; ".join(f"{k}: {v:,.0f} ms" for k, v in slow.items()),
                    None,
                )
            )

    # ---- logpush
    if res.get("logpush"):
        section, goals = logpush.report(res["logpush"])
        md += section
        targets += [Target(*goal) for goal in goals]

    digests = {d for d in same_ids if d}
    md += [
        "## Same logs",
        "",
        (
            "Every finished run of the 20,000-log gateway, provider and SDK alike, read back the same set of "
            f"log ids (order-independent digest `{next(iter(digests))}`)."
            if len(digests) == 1
            else f"**Contenders disagree on the exported ids: {sorted(digests)}**"
        ),
        "",
    ]

    md += NOTES
    head = ["## Targets", "", "| target | measured | result |", "|---|---|---|"]
    for t in targets:
        head.append(f"| {t.name} | {t.measured} | {'PASS' if t.ok else 'MISS' if t.ok is False else 'reported'} |")
    head.append("")
    # targets first, after the header block
    split = md.index("## Machine")
    md = md[:split] + head + md[split:]
    return targets, "\n".join(md) + "\n"


NOTES = [
    "## Notes: what was measured, what limits the misses",
    "",
    "- **Budget scale.** Cloudflare's 1,200 per 300 s (4 requests/s) scaled to 1,200 per 3 s would be 400 "
    "requests/s, about what client + emulator sustain on these 2 cores, and a 20,000-log listing (400 "
    "requests) would fit inside the first window: not budget-bound. 50 per 0.5 s keeps the rule's shape "
    "(sliding window, lock-out, `Retry-After`) at a rate the machine beats 4×, over 8 windows.",
    "- **Budget fix found here.** With the client budget equal to the emulator's rule the first runs drew "
    "5 lock-outs per 400 requests: the client stamped a request when sending, the server counts it on "
    "arrival, and a slightly slower arrival let the server see 51 in 0.5 s. `RequestBudget` now stamps "
    "each request with the time its answer arrived (`acquire()` returns a ticket, `answered()` re-stamps), "
    "so the client's window always ends after the server's: zero 429s since, at 91-99% of the bound.",
    "- **CPU fix found here.** Profiling (cProfile, pyinstrument) showed requests re-reading proxy/CA/netrc "
    "settings from the environment on every call and re-encoding the params on every attempt; the client "
    "now does both once (about 2-3 µs per log).",
    "- **Latency-bound MISS (sequential within 10% of the bound).** The bound counts only the injected "
    "latency. Each request also costs a fixed ~1.5-3 ms: the emulator's Python HTTP handling and JSON "
    "encoding of a 50-log page (~1-2 ms, see the emulator table), the client's HTTP stack and JSON "
    "decoding (~0.5-1 ms), and re-warming caches after each idle wait (CPU per log is ~1.4× the "
    "zero-latency figure at 20 ms); on a loaded machine all of it grows, and so does the miss. A keyset "
    "walk cannot pipeline (the next request needs the last `created_at` of this page); prefetching pages "
    "in a thread so the writer overlaps the wait was tried in an earlier run and gained nothing (9.4-9.8 s "
    "either way), so the writer is not the cause. The share shrinks as latency grows (see the sweep at "
    "40 ms); the remedy within one task is the time-slice walk (8 slices: 4-8× the sequential bound).",
    "- **CPU per log, as a share of the SDK's (target 0.2×): MISS by a little, 0.21× in this 5-round run "
    "on a quiet machine, 0.19-0.22× over this session's runs.** Measured as a ratio within each round, "
    "because this machine (2 cores) is shared with other work (load averages under Machine): absolute "
    "CPU per log moves with the load (the SDK's 159-224 µs in this session's runs) and single runs by "
    "±10%. The run before this measured 0.26× (45.0 against "
    "167.7 µs). Since then, JSON and gzip at half the CPU: pages are decoded and rows encoded with "
    "msgspec (2.1 against 3.1 µs per log decoding; a row encoded whole in 1.3 µs, where the stdlib's "
    "line template took ~3), and `jsonl.gz` is written with zlib-ng (level 6: 3.0 against 5.8 µs per "
    "log, 60.4 against 59.7 compressed bytes). Where the CPU goes now (process CPU, 20,000 logs, best "
    "of 3, no instrumentation): 32.4 µs per log, listing 18.6 (HTTP about 15.5, JSON decoding 2.1, the "
    "keyset walk 0.9) and writing 11.5 (the row 4.1 and its encoding 1.3, gzip 2.6, usage summary "
    "1.6, partitioning and part files 1.3). The client's HTTP stack is now half of it: per page of 50 "
    "logs, the client's request 625 µs of CPU, requests' `HTTPAdapter.send` 495, urllib3's pool's "
    "`urlopen` 320 and bare `http.client` 160. Tried and measured, not taken: sending through the "
    "session's adapter instead of `Session.send` (-0.6 to -1 µs per log, but requests-mock, which the "
    "unit tests use, hooks into `Session.send`), an adapter calling urllib3's pool directly (~-1, "
    "within the noise), one on bare `http.client` (~-7, a hand-written HTTP client where the project "
    "keeps requests), usage counters as attributes (-0.1). At the API's ceiling of 200 logs/s per user "
    "33 µs per log is under 1% of one core.",
    "- **Time slices** write one export per slice (own destination and manifest); the table counts every "
    "log once. The operator runs one keyset walk; slicing is a benchmark of what a DAG can do with mapped "
    "tasks over sub-windows sharing one budget.",
    "- **SDK under the budget**: no client-side budget, so it trips the lock-out once per window (19-20 "
    "429s in ~1,020 requests) and survives only because the scaled lock-out (0.5 s) is shorter than its "
    "retries; against Cloudflare's 5-minute lock-out those 2 short retries would fail the listing.",
    "- **Emulator**: created_at-ordered and windowed pages (what the export sends) answer in ~1-2 ms at "
    "1,000,000 logs; filters on other keys and other orders scan and sort every log (~7-11 s at 1,000,000) "
    "and would be the bottleneck of a benchmark that used them.",
    "",
]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--only", nargs="*", choices=[*SCENARIOS, "emulator", "logpush"], help="run only these scenarios")
    p.add_argument("--out", default=str(HERE), help="directory for RESULTS.md, results.json and the chart")
    p.add_argument("--cmdline", default="", help="the command to quote in RESULTS.md")
    p.add_argument("--no-write", action="store_true", help="print only; do not write RESULTS.md")
    args = p.parse_args(argv)
    started = datetime.now(timezone.utc)
    args.load_start = load_average()
    t0 = time.monotonic()
    out_dir = Path(args.out)
    results: dict[str, Any] = {}
    chosen = args.only or [*SCENARIOS, "emulator", "logpush"]
    workdir = Path(tempfile.mkdtemp(prefix="aigw-bench-"))
    try:
        if any(s in SCENARIOS for s in chosen):
            print(f"starting emulator with {GATEWAYS} ...", flush=True)
            with EmulatorProcess(GATEWAYS) as emu:
                bench = Bench(emu=emu, workdir=workdir, rounds=args.rounds)
                for name, fn in SCENARIOS.items():
                    if name in chosen:
                        print(f"scenario {name}", flush=True)
                        fn(bench)
                results.update(bench.results)
        if "emulator" in chosen:
            print("scenario emulator (1,000,000 logs)", flush=True)
            results["emulator"] = scenario_emulator(Bench(emu=None, workdir=workdir, rounds=1))  # type: ignore[arg-type]
        if "logpush" in chosen:
            print("scenario logpush (RSA-4096 decryption, 1 and 2 processes)", flush=True)
            results["logpush"] = logpush.scenario(rounds=args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    duration = time.monotonic() - t0
    kept_from = ""
    previous = out_dir / "results.json"
    if args.only and not args.no_write and previous.exists():
        # `--only X` re-runs X and keeps every other section of the last full run.
        old = (out_dir / "RESULTS.md").read_text(encoding="utf-8") if (out_dir / "RESULTS.md").exists() else ""
        lines = old.splitlines()
        kept = "- Other sections kept from the previous run ("
        kept_from = next((line[len(kept) : -1] for line in lines if line.startswith(kept)), "") or next(
            (line[len("- Run: ") :] for line in lines if line.startswith("- Run: ")), ""
        )
        results = {**json.loads(previous.read_text(encoding="utf-8")), **results}
    targets, text = report(results, args, started, duration, kept_from)
    print()
    for t in targets:
        verdict = "PASS" if t.ok else "MISS" if t.ok is False else "INFO"
        print(f"{verdict:5} {t.name}: {t.measured}")
    print(f"\ntotal {duration / 60:.1f} min")
    if not args.no_write:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "RESULTS.md").write_text(text, encoding="utf-8")
        (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n", encoding="utf-8")
        if "sweep" in results:
            from benchmarks.chart import plot

            plot(results["sweep"], out_dir / "throughput_vs_latency.png")
        print(f"wrote {out_dir / 'RESULTS.md'}")
    return 0
