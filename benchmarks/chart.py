# ruff: noqa: RUF001 - typographic signs in report text are intended
"""The chart: throughput against injected latency, per contender, with the theoretical bounds."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any


def plot(sweep: list[dict[str, Any]], path: Path) -> None:
    """Median logs/s (min-max as error bars) against latency; sequential and sliced bounds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.run import N_SWEEP, SLICES, pages

    lats = sorted({float(r["faults"].get("latency_ms", 0.0)) for r in sweep})
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    styles = {
        "sliced": (f"provider, {SLICES} time slices", "tab:green", "s"),
        "provider": ("provider (client + writer)", "tab:blue", "o"),
        "sdk": ("official SDK (defaults)", "tab:red", "^"),
    }
    for contender, (label, color, marker) in styles.items():
        xs, ys, lo, hi = [], [], [], []
        for lat in lats:
            rates = [
                N_SWEEP / r["elapsed_s"]
                for r in sweep
                if r["contender"] == contender and float(r["faults"].get("latency_ms", 0.0)) == lat
            ]
            if not rates:
                continue
            m = statistics.median(rates)
            xs.append(lat)
            ys.append(m)
            lo.append(m - min(rates))
            hi.append(max(rates) - m)
        ax.errorbar(xs, ys, yerr=[lo, hi], label=label, color=color, marker=marker, capsize=3, linewidth=1.8)
    fine = [x for x in (1.0 + i * 0.5 for i in range(200)) if x <= max(lats)]
    seq = [N_SWEEP / (pages(N_SWEEP) * x / 1000) for x in fine]
    ax.plot(fine, seq, "--", color="black", linewidth=1.2, label="bound: ceil(N/50) × latency (sequential)")
    per_slice = pages(math.ceil(N_SWEEP / SLICES))
    sliced = [N_SWEEP / (per_slice * x / 1000) for x in fine]
    ax.plot(fine, sliced, ":", color="tab:green", linewidth=1.2, label=f"bound with {SLICES} slices")
    ax.set_yscale("log")
    ax.set_xlabel("injected latency per request (ms)")
    ax.set_ylabel("logs exported per second (log scale)")
    ax.set_title(f"Export throughput vs API latency ({N_SWEEP:,} logs, jsonl.gz, emulator on loopback)")
    ax.grid(True, which="both", alpha=0.3)
    ax.set_xlim(-1, max(lats) + 1)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
