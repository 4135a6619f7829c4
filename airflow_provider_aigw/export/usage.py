"""Usage summary of an export window, computed while the logs stream through (one pass).

Per provider and model it counts logs, successes, errors and cached logs, sums tokens in and
out and cost, and keeps a histogram of durations on fixed logarithmic buckets from which p50
and p95 are read. Memory depends on the number of distinct (provider, model) pairs and duration
buckets (at most a few thousand), never on the number of logs.

The histogram buckets are the same for every export (bucket ``i`` holds durations ``d`` with
``GAMMA**(i-1) < d <= GAMMA**i`` ms; 0 ms has its own count), so summaries of the same window
exported in several runs merge exactly: :func:`merge_usage` adds counts, sums and buckets and
recomputes the percentiles. A percentile read from the buckets is within
:data:`RELATIVE_ACCURACY` (1 %) of the true value of the log at that rank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

USAGE_VERSION = 1
#: Relative accuracy of the duration percentiles.
RELATIVE_ACCURACY = 0.01
GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(GAMMA)
QUANTILES: tuple[tuple[str, float], ...] = (("duration_p50_ms", 0.50), ("duration_p95_ms", 0.95))
#: Summed counters of a group, in output order.
COUNTERS: tuple[str, ...] = ("logs", "successes", "errors", "cached", "tokens_in", "tokens_out")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _bucket(duration: float) -> int:
    return math.ceil(math.log(duration) / _LOG_GAMMA)


class _Group:
    """Running totals of one (provider, model)."""

    __slots__ = ("buckets", "cost", "counters", "zero")

    def __init__(self) -> None:
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.cost = 0.0
        self.zero = 0
        self.buckets: dict[int, int] = {}

    def add(self, log: Mapping[str, Any]) -> None:
        # Once per exported log: the usual types (int tokens and duration, float cost) go first.
        c = self.counters
        c["logs"] += 1
        success = log.get("success")
        if success is True:
            c["successes"] += 1
        elif success is False:
            c["errors"] += 1
        if log.get("cached") is True:
            c["cached"] += 1
        tokens = log.get("tokens_in")
        if type(tokens) is int or (tokens := _number(tokens)) is not None:
            c["tokens_in"] += int(tokens)
        tokens = log.get("tokens_out")
        if type(tokens) is int or (tokens := _number(tokens)) is not None:
            c["tokens_out"] += int(tokens)
        cost = log.get("cost")
        if (type(cost) is float and math.isfinite(cost)) or (cost := _number(cost)) is not None:
            self.cost += cost
        duration = log.get("duration")
        if type(duration) is not int:
            duration = _number(duration)
        if duration is not None and duration >= 0:
            if duration == 0:
                self.zero += 1
            else:
                key = _bucket(duration)
                self.buckets[key] = self.buckets.get(key, 0) + 1


class UsageSummary:
    """Accumulates the usage of the logs passed to :meth:`add`; :meth:`to_dict` for the manifest."""

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], _Group] = {}

    def add(self, log: Mapping[str, Any]) -> None:
        """Count one API log (fields as the API sends them; odd values are skipped, not fatal)."""
        provider, model = log.get("provider"), log.get("model")
        key = (
            provider if type(provider) is str else str(provider or ""),
            model if type(model) is str else str(model or ""),
        )
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = _Group()
        group.add(log)

    def to_dict(self) -> dict[str, Any]:
        """The ``usage`` entry of the manifest (see :func:`merge_usage`)."""
        groups = [
            {
                "provider": provider,
                "model": model,
                **g.counters,
                "cost": g.cost,
                "durations": {"zero": g.zero, "buckets": {str(k): g.buckets[k] for k in sorted(g.buckets)}},
            }
            for (provider, model), g in sorted(self._groups.items())
        ]
        return _finish(groups)


def _quantile(zero: int, buckets: Mapping[int, int], q: float) -> int | None:
    total = zero + sum(buckets.values())
    if not total:
        return None
    rank = q * (total - 1)  # the value of the log at this 0-based rank, as in sorted(d)[int(rank)]
    if rank < zero:
        return 0
    seen = zero
    for key in sorted(buckets):
        seen += buckets[key]
        if seen > rank:
            # The bucket's representative value: within RELATIVE_ACCURACY of all it holds.
            return round(2 * GAMMA**key / (GAMMA + 1))
    raise AssertionError("unreachable: rank below total")


def _with_percentiles(group: dict[str, Any]) -> dict[str, Any]:
    durations = group["durations"]
    buckets = {int(k): int(v) for k, v in durations["buckets"].items()}
    for name, q in QUANTILES:
        group[name] = _quantile(int(durations["zero"]), buckets, q)
    return group


def _finish(groups: list[dict[str, Any]]) -> dict[str, Any]:
    total_buckets: dict[str, int] = {}
    total: dict[str, Any] = {**dict.fromkeys(COUNTERS, 0), "cost": 0.0}
    zero = 0
    for group in groups:
        _with_percentiles(group)
        for name in (*COUNTERS, "cost"):
            total[name] += group[name]
        zero += group["durations"]["zero"]
        for key, n in group["durations"]["buckets"].items():
            total_buckets[key] = total_buckets.get(key, 0) + n
    total["durations"] = {"zero": zero, "buckets": total_buckets}
    _with_percentiles(total)
    del total["durations"]
    return {
        "version": USAGE_VERSION,
        "duration_buckets": {"unit": "ms", "gamma": GAMMA, "relative_accuracy": RELATIVE_ACCURACY},
        "totals": total,
        "by_model": groups,
    }


def merge_usage(usages: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Merge the ``usage`` entries of several exports into the usage of all their logs.

    For each (provider, model), counters and cost are summed and duration buckets added; the
    percentiles and totals are then recomputed from the merged buckets, so the result equals the
    summary of one export of all the logs (up to float rounding of ``cost``). Merging exports
    that share logs counts those logs twice: merge the summaries of disjoint sets of logs.

    :raises ValueError: a summary of another version or bucket layout.
    """
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for usage in usages:
        if usage.get("version") != USAGE_VERSION or usage.get("duration_buckets", {}).get("gamma") != GAMMA:
            raise ValueError(
                f"cannot merge a usage summary of version {usage.get('version')!r} and bucket layout "
                f"{usage.get('duration_buckets')!r} with version {USAGE_VERSION} (gamma {GAMMA})"
            )
        for group in usage["by_model"]:
            key = (group["provider"], group["model"])
            into = merged.get(key)
            if into is None:
                into = merged[key] = {
                    "provider": key[0],
                    "model": key[1],
                    **dict.fromkeys(COUNTERS, 0),
                    "cost": 0.0,
                    "durations": {"zero": 0, "buckets": {}},
                }
            for name in (*COUNTERS, "cost"):
                into[name] += group[name]
            into["durations"]["zero"] += group["durations"]["zero"]
            buckets = into["durations"]["buckets"]
            for k, n in group["durations"]["buckets"].items():
                buckets[k] = buckets.get(k, 0) + n
    groups = []
    for key in sorted(merged):
        group = merged[key]
        ordered = dict(sorted(group["durations"]["buckets"].items(), key=lambda kv: int(kv[0])))
        group["durations"]["buckets"] = ordered
        groups.append(group)
    return _finish(groups)


def usage_for_xcom(usage: Mapping[str, Any]) -> dict[str, Any]:
    """The usage without duration buckets: totals and per-model figures, small enough for XCom."""
    return {
        "totals": dict(usage["totals"]),
        "by_model": [{k: v for k, v in g.items() if k != "durations"} for g in usage["by_model"]],
    }
