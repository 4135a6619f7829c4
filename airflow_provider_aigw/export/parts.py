"""Part files: one part opened, written, committed or aborted, and the parts of an attempt rolled
per partition and size.

A part is written whole or not at all (:class:`~airflow_provider_aigw.export.destination.AtomicWriter`)
under a name of its attempt (:func:`~airflow_provider_aigw.export.naming.part_name`); only the
manifest makes it part of the archive (:mod:`~airflow_provider_aigw.export.commit`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayError
from airflow_provider_aigw.export.formats import RecordWriter, make_writer
from airflow_provider_aigw.export.naming import part_name
from airflow_provider_aigw.export.usage import UsageSummary
from airflow_provider_aigw.timestamps import format_exact

if TYPE_CHECKING:
    from airflow_provider_aigw.export.destination import Destination

log = logging.getLogger(__name__)

BODY_STATUS_FIELDS: tuple[str, ...] = ("request_body_status", "response_body_status")


class PartFile:
    """One part file: opened on creation, written log by log, then committed or aborted.

    :meth:`commit` publishes the file and returns its manifest entry; :meth:`abort` discards it.
    As a context manager it commits when the block ends (the entry is then :attr:`entry`) and
    aborts when the block raises::

        with PartFile(dest, rel, "jsonl.gz", attempt_id) as part:
            part.write(log, created_at)

    :param dest: the destination.
    :param rel: path of the part, relative to the destination's root.
    :param format: the export format.
    :param attempt_id: the attempt that writes it (recorded in the entry).
    :raises AIGatewayError: the file cannot be opened.
    """

    def __init__(self, dest: Destination, rel: str, format: str, attempt_id: str) -> None:
        self.rel = rel
        self.attempt_id = attempt_id
        self._file = dest.open_writer(rel)
        try:
            self._writer: RecordWriter = make_writer(format, self._file.file)
        except BaseException:
            self._file.abort()
            raise
        self.rows = 0
        self.min_dt: datetime | None = None
        self.max_dt: datetime | None = None
        #: The manifest entry, once committed.
        self.entry: dict[str, Any] | None = None

    @property
    def bytes_written(self) -> int:
        """Bytes on storage so far (they trail the writer's buffer)."""
        return self._file.file.bytes_written

    def write(self, item: Mapping[str, Any], dt: datetime) -> None:
        """Append one log created at ``dt``."""
        self._writer.write(item, dt)
        self.rows += 1
        if self.min_dt is None or dt < self.min_dt:
            self.min_dt = dt
        if self.max_dt is None or dt > self.max_dt:
            self.max_dt = dt

    def commit(self) -> dict[str, Any]:
        """Finish the format, publish the file and return its manifest entry."""
        try:
            self._writer.close()
        except BaseException:
            self._file.abort()
            raise
        self._file.commit()
        self.entry = {
            "path": self.rel,
            "rows": self.rows,
            "bytes": self._file.file.bytes_written,
            "sha256": self._file.file.sha256,
            "min_created_at": None if self.min_dt is None else format_exact(self.min_dt),
            "max_created_at": None if self.max_dt is None else format_exact(self.max_dt),
            "attempt": self.attempt_id,
        }
        return self.entry

    def abort(self) -> None:
        """Discard the file."""
        self._file.abort()

    def __enter__(self) -> PartFile:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


@dataclass
class Attempt:
    """Settings and state of one export attempt, shared by its part streams."""

    dest: Destination
    tag: str
    attempt_id: str
    fmt: str
    rows_per_part: int
    bytes_per_part: int
    #: The next part index of each partition directory.
    part_counts: dict[str, int] = field(default_factory=dict)

    def next_part(self, part_dir: str) -> PartFile:
        """Open the next part of ``part_dir``."""
        index = self.part_counts.get(part_dir, 0)
        self.part_counts[part_dir] = index + 1
        rel = f"{part_dir}/{part_name(self.tag, self.attempt_id, index, self.fmt)}"
        return PartFile(self.dest, rel, self.fmt, self.attempt_id)


class PartStream:
    """The parts of one kind of rows of an attempt: one open part at a time, a new one per partition
    or when the open one is full.

    As a context manager it commits the open part when the block ends and aborts it when the
    block raises; the parts committed before stay until :meth:`discard` (the attempt did not
    commit) or the manifest names them.

    :param attempt: the attempt the parts belong to.
    """

    def __init__(self, attempt: Attempt) -> None:
        self.attempt = attempt
        #: Manifest entries of the committed parts.
        self.files: list[dict[str, Any]] = []
        self.rows = 0
        #: Mergeable statistics of the body fetches of this stream's rows (status -> count).
        self.body_stats: dict[str, dict[str, int]] = {}
        #: Usage of this stream's rows, mergeable.
        self.usage = UsageSummary()
        self._current: PartFile | None = None
        self._dir = ""

    def write(self, item: Mapping[str, Any], dt: datetime, part_dir: str) -> None:
        """Write one log created at ``dt`` to a part of ``part_dir``."""
        current = self._current
        x = self.attempt
        if current is not None and (
            part_dir != self._dir or current.rows >= x.rows_per_part or current.bytes_written >= x.bytes_per_part
        ):
            self.files.append(current.commit())
            current = self._current = None
        if current is None:
            current = self._current = x.next_part(part_dir)
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
        """Commit the open part."""
        if self._current is not None:
            self.files.append(self._current.commit())
            self._current = None

    def abort(self) -> None:
        """Discard the open part."""
        if self._current is not None:
            self._current.abort()
            self._current = None

    def discard(self) -> None:
        """Remove the parts this stream committed (best effort): their attempt did not commit."""
        dest = self.attempt.dest
        for entry in self.files:
            try:
                dest.remove(entry["path"])
            except AIGatewayError as err:
                log.warning("could not remove uncommitted part %s: %s", dest.uri(entry["path"]), err)
        self.files = []

    def __enter__(self) -> PartStream:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
