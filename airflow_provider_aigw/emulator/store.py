"""In-memory log store of the emulator: ordering, pagination, patch and delete over its gateways.

Each gateway keeps its logs sorted by ``created_at`` in two parallel lists: ``keys`` (an int
``created_ms << 32 | insertion sequence``, so ties are broken by insertion order) and
``recs`` (either an int generation seed for generated logs, or a dict for logs inserted
explicitly). A ``created_at`` window is therefore two bisects, and counting it is a
subtraction. Other filters are applied lazily to materialised logs (:mod:`.matching`); requests
are parsed and validated in :mod:`.query`.
"""

from __future__ import annotations

import bisect
import dataclasses
import json
import random
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.emulator import data
from airflow_provider_aigw.emulator.matching import matches, search_match, sort_value
from airflow_provider_aigw.emulator.query import (
    ApiError,
    Filter,
    ListQuery,
    issue,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Gateway"]

SEQ_BITS = 32
_SEQ_MASK = (1 << SEQ_BITS) - 1
_NO_BODY = object()


# --------------------------------------------------------------------------- gateway


class Gateway:
    """The logs of one gateway, kept sorted by ``created_at`` (not thread-safe by itself)."""

    def __init__(self, gateway_id: str, seed: int = 0) -> None:
        self.gateway_id = gateway_id
        self.keys: list[int] = []
        self.recs: list[int | dict[str, Any]] = []
        self.overrides: dict[int, dict[str, Any]] = {}
        self.id_index: dict[str, int] = {}
        self.bodies: dict[int, tuple[Any, Any]] = {}
        self.seq = 0
        self._rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.keys)

    # ------------------------------------------------------------------ insert

    def _next_key(self, created_ms: int) -> int:
        self.seq += 1
        return (created_ms << SEQ_BITS) | (self.seq & _SEQ_MASK)

    def _insert_pairs(self, pairs: list[tuple[int, int | dict[str, Any]]]) -> None:
        if not pairs:
            return
        pairs.sort(key=lambda p: p[0])
        if not self.keys or pairs[0][0] > self.keys[-1]:
            self.keys.extend(p[0] for p in pairs)
            self.recs.extend(p[1] for p in pairs)
        elif len(pairs) <= 64:
            for k, r in pairs:
                pos = bisect.bisect_right(self.keys, k)
                self.keys.insert(pos, k)
                self.recs.insert(pos, r)
        else:
            merged = list(zip(self.keys, self.recs, strict=True))
            merged.extend(pairs)
            merged.sort(key=lambda p: p[0])
            self.keys = [p[0] for p in merged]
            self.recs = [p[1] for p in merged]

    def insert_generated(self, times_and_seeds: Iterable[tuple[int, int]]) -> list[int]:
        """Insert generated logs given as ``(created_ms, gseed)``; returns their keys."""
        pairs: list[tuple[int, int | dict[str, Any]]] = [(self._next_key(t), g) for t, g in times_and_seeds]
        keys = [p[0] for p in pairs]
        self._insert_pairs(pairs)
        return keys

    def insert_logs(self, logs: Iterable[dict[str, Any]], now_ms: int) -> list[str]:
        """Insert explicit log dicts (missing fields get defaults); returns their ids.

        Optional keys ``request_body`` / ``response_body`` set the stored bodies (None = not
        collected); without them bodies are generated from the log.
        """
        pairs: list[tuple[int, int | dict[str, Any]]] = []
        ids: list[str] = []
        for src in logs:
            log = dict(src)
            req = log.pop("request_body", _NO_BODY)
            resp = log.pop("response_body", _NO_BODY)
            created = log.get("created_at")
            created_ms = data.to_ms(created) if created is not None else now_ms
            log["created_at"] = data.format_ms(created_ms)
            if not log.get("id"):
                log["id"] = data.uuid7(created_ms, self._rng.getrandbits(80))
            log_id = str(log["id"])
            if self.find(log_id) is not None:
                raise ApiError(400, [issue(f"Duplicate log id {log_id}", ["id"])], result={})
            for k, default in (
                ("provider", "openai"),
                ("model", "gpt-4o-mini"),
                ("model_type", "chat"),
                ("path", "chat/completions"),
                ("duration", 100),
                ("success", True),
                ("cached", False),
                ("tokens_in", None),
                ("tokens_out", None),
            ):
                log.setdefault(k, default)
            if isinstance(log.get("metadata"), dict):
                log["metadata"] = json.dumps(log["metadata"], separators=(",", ":"))
            key = self._next_key(created_ms)
            if req is not _NO_BODY or resp is not _NO_BODY:
                self.bodies[key] = (None if req is _NO_BODY else req, None if resp is _NO_BODY else resp)
            self.id_index[log_id] = key
            pairs.append((key, log))
            ids.append(log_id)
        self._insert_pairs(pairs)
        return ids

    # ------------------------------------------------------------------ lookup

    def _pos_of_key(self, key: int) -> int | None:
        pos = bisect.bisect_left(self.keys, key)
        if pos < len(self.keys) and self.keys[pos] == key:
            return pos
        return None

    def find(self, log_id: str) -> int | None:
        """Position of the log with ``log_id``, or None."""
        key = self.id_index.get(log_id)
        if key is not None:
            return self._pos_of_key(key)
        ms = data.log_id_ms(log_id)
        if ms is None:
            return None
        pos = bisect.bisect_left(self.keys, ms << SEQ_BITS)
        end = bisect.bisect_left(self.keys, (ms + 1) << SEQ_BITS, lo=pos)
        for p in range(pos, end):
            rec = self.recs[p]
            if isinstance(rec, int) and data.gen_log(rec, ms)["id"] == log_id:
                return p
        return None

    def materialize(self, pos: int) -> dict[str, Any]:
        """The log item at ``pos`` (a fresh dict)."""
        rec = self.recs[pos]
        if isinstance(rec, dict):
            return dict(rec)
        key = self.keys[pos]
        log = data.gen_log(rec, key >> SEQ_BITS)
        over = self.overrides.get(key)
        if over:
            for k, v in over.items():
                if v is None:
                    log.pop(k, None)
                else:
                    log[k] = v
        return log

    def created_ms(self, pos: int) -> int:
        """``created_at`` of the log at ``pos`` in epoch milliseconds."""
        return self.keys[pos] >> SEQ_BITS

    def bodies_of(self, pos: int) -> tuple[Any, Any]:
        """``(request, response)`` stored bodies of the log at ``pos``; None = not collected."""
        key = self.keys[pos]
        if key in self.bodies:
            return self.bodies[key]
        rec = self.recs[pos]
        log = self.materialize(pos)
        if isinstance(rec, dict):
            return data.gen_bodies(log, data.id_seed(str(log["id"])))
        if not data.body_collected(rec):
            return None, None
        return data.gen_bodies(log, rec)

    def detail(self, pos: int) -> dict[str, Any]:
        """The detail item: list fields plus request/response heads and sizes."""
        log = self.materialize(pos)
        req, resp = self.bodies_of(pos)
        for prefix, body in (("request", req), ("response", resp)):
            text = "" if body is None else data.body_text(body)
            log[f"{prefix}_head"] = text[: data.HEAD_LIMIT]
            log[f"{prefix}_head_complete"] = len(text) <= data.HEAD_LIMIT
            log[f"{prefix}_size"] = len(text.encode("utf-8"))
        return log

    def patch(self, pos: int, fields: dict[str, Any]) -> None:
        """Apply validated PATCH fields to the log at ``pos`` (metadata replaces)."""
        stored: dict[str, Any] = {}
        for k, v in fields.items():
            stored[k] = json.dumps(v, separators=(",", ":")) if k == "metadata" and v is not None else v
        rec = self.recs[pos]
        if isinstance(rec, dict):
            for k, v in stored.items():
                if v is None:
                    rec.pop(k, None)
                else:
                    rec[k] = v
        else:
            self.overrides.setdefault(self.keys[pos], {}).update(stored)

    # ------------------------------------------------------------------ query planning

    def _range(self, filters: list[Filter]) -> tuple[int, int, list[Filter]]:
        """Positions ``[lo, hi)`` allowed by created_at range filters, and the other filters."""
        lo_ms: int | None = None
        hi_ms: int | None = None  # exclusive
        rest: list[Filter] = []
        for f in filters:
            if f.key == "created_at" and f.op in ("gt", "gte", "lt", "lte") and f.values:
                if f.op in ("gt", "gte"):
                    bound = min(f.values) + (1 if f.op == "gt" else 0)
                    lo_ms = bound if lo_ms is None else max(lo_ms, bound)
                else:
                    bound = max(f.values) + (0 if f.op == "lt" else 1)
                    hi_ms = bound if hi_ms is None else min(hi_ms, bound)
            else:
                rest.append(f)
        lo = 0 if lo_ms is None else bisect.bisect_left(self.keys, lo_ms << SEQ_BITS)
        hi = len(self.keys) if hi_ms is None else bisect.bisect_left(self.keys, hi_ms << SEQ_BITS)
        return lo, max(lo, hi), rest

    def _match_all(self, pos: int, filters: list[Filter], search: str | None) -> bool:
        log = self.materialize(pos)
        cms = self.keys[pos] >> SEQ_BITS
        if search is not None and not search_match(log, search):
            return False
        return all(matches(log, cms, f) for f in filters)

    def select(self, filters: list[Filter], search: str | None) -> tuple[int, int, list[int], list[int] | None]:
        """Plan a selection in created_at order.

        Returns ``(lo, hi, excluded, explicit)``: when ``explicit`` is None the selection is
        positions ``[lo, hi)`` minus the sorted ``excluded`` positions; otherwise it is the
        sorted position list ``explicit``.
        """
        lo, hi, rest = self._range(filters)
        id_eq = [f for f in rest if f.key == "id" and f.op == "eq"]
        if id_eq:
            cand: set[int] | None = None
            for f in id_eq:
                found = {p for p in (self.find(str(v)) for v in f.values if v is not None) if p is not None}
                cand = found if cand is None else cand & found
            others = [f for f in rest if f not in id_eq]
            explicit = sorted(p for p in (cand or set()) if lo <= p < hi and self._match_all(p, others, search))
            return lo, hi, [], explicit
        if search is None and all(f.key == "id" and f.op == "neq" for f in rest):
            excluded: set[int] = set()
            for f in rest:
                for v in f.values:
                    p = self.find(str(v)) if v is not None else None
                    if p is not None and lo <= p < hi:
                        excluded.add(p)
            return lo, hi, sorted(excluded), None
        explicit = [p for p in range(lo, hi) if self._match_all(p, rest, search)]
        return lo, hi, [], explicit

    @staticmethod
    def _physical(lo: int, excluded: list[int], logical: int) -> int:
        """Physical position of the ``logical``-th (0-based) non-excluded position from ``lo``."""
        p = lo + logical
        while True:
            nxt = lo + logical + bisect.bisect_right(excluded, p)
            if nxt == p:
                return p
            p = nxt

    def _window(self, lo: int, hi: int, excluded: list[int], start: int, stop: int) -> list[int]:
        """Positions of logical indexes ``[start, stop)`` of a range-with-exclusions selection."""
        if stop <= start:
            return []
        if not excluded:
            return list(range(lo + start, lo + stop))
        out: list[int] = []
        p = self._physical(lo, excluded, start)
        ex = set(excluded)
        while len(out) < stop - start and p < hi:
            if p not in ex:
                out.append(p)
            p += 1
        return out

    def ordered_positions(self, q: ListQuery, offset: int, count: int) -> tuple[list[int], int]:
        """Positions of the ``count`` matches from ``offset`` in the query's order, and the total."""
        lo, hi, excluded, explicit = self.select(q.filters, q.search)
        desc = q.direction == "desc"
        if q.order_by == "created_at":
            if explicit is None:
                total = (hi - lo) - len(excluded)
                if desc:
                    stop = total - offset
                    start = max(0, stop - count)
                    positions = self._window(lo, hi, excluded, start, stop)[::-1]
                else:
                    positions = self._window(lo, hi, excluded, offset, min(total, offset + count))
                return positions, total
            ordered = explicit[::-1] if desc else explicit
            return ordered[offset : offset + count], len(explicit)
        if explicit is None:
            ex = set(excluded)
            explicit = [p for p in range(lo, hi) if p not in ex]
        keyed = [(sort_value(self.materialize(p).get(q.order_by)), self.keys[p], p) for p in explicit]
        keyed.sort(reverse=desc)
        return [k[2] for k in keyed[offset : offset + count]], len(keyed)

    def aggregates(self, q: ListQuery) -> dict[str, Any]:
        """min/max of cost, duration and tokens over every match of ``q``."""
        positions, _total = self.ordered_positions(
            ListQuery(filters=q.filters, search=q.search, direction="asc"), 0, len(self.keys)
        )
        acc: dict[str, list[float]] = {k: [] for k in ("cost", "duration", "tokens_in", "tokens_out", "total_tokens")}
        for p in positions:
            log = self.materialize(p)
            for k in ("cost", "duration", "tokens_in", "tokens_out"):
                v = log.get(k)
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    acc[k].append(v)
            if log.get("tokens_in") is not None or log.get("tokens_out") is not None:
                acc["total_tokens"].append((log.get("tokens_in") or 0) + (log.get("tokens_out") or 0))
        out: dict[str, Any] = {}
        for k, vals in acc.items():
            out[f"min_{k}"] = min(vals) if vals else None
            out[f"max_{k}"] = max(vals) if vals else None
        return out

    def list(self, q: ListQuery, tie_rng: random.Random | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Answer a list query: ``(result, result_info)``.

        With ``tie_rng`` (ordered by ``created_at``), logs sharing a millisecond come in an order
        drawn from it instead of insertion order: every match is ordered, then the page cut.
        """
        offset = (q.page - 1) * q.per_page
        if tie_rng is not None and q.order_by == "created_at":
            ordered, total = self.ordered_positions(q, 0, len(self.keys))
            instants: dict[int, list[int]] = {}
            for p in ordered:
                instants.setdefault(self.keys[p] >> SEQ_BITS, []).append(p)
            for group in instants.values():
                tie_rng.shuffle(group)
            positions = [p for group in instants.values() for p in group][offset : offset + q.per_page]
        else:
            positions, total = self.ordered_positions(q, offset, q.per_page)
        items = [self.materialize(p) for p in positions]
        info: dict[str, Any] = {
            "page": q.page,
            "per_page": q.per_page,
            "count": len(items),
            "total_count": total,
        }
        if q.meta_info:
            info.update(self.aggregates(q))
        else:
            for k in ("cost", "duration", "tokens_in", "tokens_out", "total_tokens"):
                info[f"min_{k}"] = None
                info[f"max_{k}"] = None
        return items, info

    # ------------------------------------------------------------------ delete

    def delete_positions(self, positions: Iterable[int]) -> int:
        """Remove the logs at ``positions``; returns how many were removed."""
        doomed = set(positions)
        if not doomed:
            return 0
        for p in doomed:
            self._forget(p)
        lo, hi = min(doomed), max(doomed) + 1
        if hi - lo == len(doomed):
            del self.keys[lo:hi]
            del self.recs[lo:hi]
        else:
            keep = [i for i in range(len(self.keys)) if i not in doomed]
            self.keys = [self.keys[i] for i in keep]
            self.recs = [self.recs[i] for i in keep]
        return len(doomed)

    def _forget(self, pos: int) -> None:
        key = self.keys[pos]
        self.overrides.pop(key, None)
        self.bodies.pop(key, None)
        rec = self.recs[pos]
        if isinstance(rec, dict):
            self.id_index.pop(str(rec.get("id")), None)

    def delete(
        self, q: ListQuery, *, order: str = "asked", most: int | None = None, rng: random.Random | None = None
    ) -> int:
        """Delete up to ``q.limit`` matching logs in the query's order; returns the count.

        The emulator's faults may change that: ``order`` ``"asc"``/``"desc"`` (by ``created_at``,
        whatever was asked) or ``"random"`` (drawn with ``rng``), and ``most`` caps the count.
        """
        count = q.limit if most is None else min(q.limit, most)
        if order in ("asc", "desc"):
            q = dataclasses.replace(q, order_by="created_at", direction=order)
        if order == "random":
            positions, _total = self.ordered_positions(q, 0, len(self.keys))
            (rng or random.Random()).shuffle(positions)
            return self.delete_positions(positions[:count])
        positions, _total = self.ordered_positions(q, 0, count)
        return self.delete_positions(positions)

    def delete_oldest(self, n: int) -> int:
        """Delete the ``n`` oldest logs (DELETE_OLDEST retention)."""
        n = min(n, len(self.keys))
        return self.delete_positions(range(n))
