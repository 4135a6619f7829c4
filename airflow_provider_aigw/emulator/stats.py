"""The emulator's request counters and its bounded list of recent requests."""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

__all__ = ["Stats"]

_KINDS = ("list", "get", "request", "response", "patch", "delete", "other")


class Stats:
    """Thread-safe request counters and a bounded list of recent request records."""

    def __init__(self, max_records: int = 1000) -> None:
        self._lock = threading.Lock()
        self._records: deque[dict[str, Any]] = deque(maxlen=max_records)
        self.reset()

    def reset(self) -> None:
        """Zero every counter and forget the records."""
        with self._lock:
            self.total = 0
            self.by_kind: dict[str, int] = dict.fromkeys(_KINDS, 0)
            self.served_429 = 0
            self.served_5xx = 0
            self.dropped = 0
            self._records.clear()

    def record(self, kind: str, rec: dict[str, Any]) -> None:
        """Count one API request and remember its record."""
        with self._lock:
            self.total += 1
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1
            self._records.append(rec)

    def count_outcome(self, status: int | None, rec: dict[str, Any]) -> None:
        """Count how a request was answered (``None`` = dropped)."""
        with self._lock:
            rec["status"] = status
            if status is None:
                self.dropped += 1
            elif status == 429:
                self.served_429 += 1
            elif status >= 500:
                self.served_5xx += 1

    def __getattr__(self, name: str) -> int:
        """Per-kind counters as attributes: ``stats.list``, ``stats.patch``, ..."""
        by_kind = self.__dict__.get("by_kind")
        if by_kind is not None and name in by_kind:
            return int(by_kind[name])
        raise AttributeError(name)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Copies of the recent request records, oldest first."""
        with self._lock:
            return [dict(r) for r in self._records]

    def __getitem__(self, name: str) -> int:
        """Counter by name: ``total``, a kind (``list`` ...), ``served_429``, ``served_5xx``, ``dropped``."""
        with self._lock:
            if name in self.by_kind:
                return self.by_kind[name]
            return int(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        """Counters and records as a JSON-able dict."""
        with self._lock:
            return {
                "total": self.total,
                **self.by_kind,
                "served_429": self.served_429,
                "served_5xx": self.served_5xx,
                "dropped": self.dropped,
                "requests": [dict(r) for r in self._records],
            }
