"""The part files of one export attempt: each written atomically, rolled per partition and size."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.export import _commit
from airflow_provider_aigw.export._storage import Destination, _AtomicWriter
from airflow_provider_aigw.export.formats import RecordWriter, make_writer
from airflow_provider_aigw.export.usage import UsageSummary
from airflow_provider_aigw.timestamps import format_exact

if TYPE_CHECKING:
    from airflow_provider_aigw.export._storage import HashingWriter

BODY_STATUS_FIELDS: tuple[str, ...] = ("request_body_status", "response_body_status")


class _OpenPart:
    """One part file being written."""

    def __init__(self, dest: Destination, rel: str, format: str, attempt: str) -> None:
        self.rel = rel
        self.attempt = attempt
        self._ctx = _AtomicWriter(dest, rel)
        self._hw: HashingWriter = self._ctx.__enter__()
        try:
            self._writer: RecordWriter = make_writer(format, self._hw)
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self.rows = 0
        self.min_dt: datetime | None = None
        self.max_dt: datetime | None = None

    @property
    def bytes_written(self) -> int:
        return self._hw.bytes_written

    def write(self, item: Mapping[str, Any], dt: datetime) -> None:
        self._writer.write(item, dt)
        self.rows += 1
        if self.min_dt is None or dt < self.min_dt:
            self.min_dt = dt
        if self.max_dt is None or dt > self.max_dt:
            self.max_dt = dt

    def finish(self) -> dict[str, Any]:
        try:
            self._writer.close()
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._ctx.__exit__(None, None, None)
        assert self.min_dt is not None and self.max_dt is not None
        return {
            "path": self.rel,
            "rows": self.rows,
            "bytes": self._hw.bytes_written,
            "sha256": self._hw.sha256,
            "min_created_at": format_exact(self.min_dt),
            "max_created_at": format_exact(self.max_dt),
            "attempt": self.attempt,
        }

    def abort(self, exc: BaseException) -> None:
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)


class _PartStream:
    """Rolls parts of one kind of rows: one open part at a time, a new one per partition or when full."""

    def __init__(self, export: _Attempt) -> None:
        self.export = export
        self.files: list[dict[str, Any]] = []
        self.rows = 0
        #: Mergeable per-window statistics of the rows of this stream (see ``_window_stats``).
        self.body_stats: dict[str, dict[str, int]] = {}
        self.usage = UsageSummary()  # dataset: usage of this stream's rows, mergeable
        self._current: _OpenPart | None = None
        self._dir = ""

    def write(self, item: Mapping[str, Any], dt: datetime, part_dir: str) -> None:
        current = self._current
        x = self.export
        if current is not None and (
            part_dir != self._dir or current.rows >= x.rows_per_part or current.bytes_written >= x.bytes_per_part
        ):
            self.files.append(current.finish())
            current = self._current = None
        if current is None:
            index = x.part_counts.get(part_dir, 0)
            x.part_counts[part_dir] = index + 1
            rel = f"{part_dir}/{_commit.part_name(x.tag, x.attempt, index, x.fmt)}"
            current = self._current = _OpenPart(x.dest, rel, x.fmt, x.attempt)
            self._dir = part_dir
        current.write(item, dt)
        self.rows += 1
        self.usage.add(item)
        if "request_body_status" in item or "response_body_status" in item:  # only with bodies
            for status_field in BODY_STATUS_FIELDS:
                if status_field in item:
                    status = item[status_field]
                    counts = self.body_stats.setdefault(status_field, {})
                    label = "null" if status is None else str(status)
                    counts[label] = counts.get(label, 0) + 1

    def close(self) -> None:
        if self._current is not None:
            self.files.append(self._current.finish())
            self._current = None

    def abort(self, exc: BaseException) -> None:
        if self._current is not None:
            self._current.abort(exc)
            self._current = None


@dataclass
class _Attempt:
    """Settings and state of one export attempt shared by its part streams."""

    dest: Destination
    tag: str
    attempt: str
    fmt: str
    rows_per_part: int
    bytes_per_part: int
    part_counts: dict[str, int]
