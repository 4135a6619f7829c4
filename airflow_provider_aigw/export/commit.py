"""The commit protocol of an export window, from the lock to the manifest write to the collection,
for object stores without rename.

One export of a window and format (an *attempt*) goes through these steps:

1. **Lock.** Create ``_manifests/<tag>.<format>.lock`` with an exclusive create (``O_EXCL`` on
   ``file://``, ``If-None-Match: *`` on S3, a process-wide lock on ``memory://``). If it exists,
   the export is refused, unless its lease has run out (the holder renews it while it runs) or
   it belongs to an earlier try of the same job (``owner``): then it is taken over.
2. **Read what is committed.** The window's current manifest of this format, and the manifests of
   windows of the same filters and format that lie inside this window (an earlier export with a
   shortened ``end``) are the *previous* manifests; their locks are taken too. A window that
   overlaps a committed one in any other way is refused.
3. **Write parts under names of this attempt** (``part-<tag>-a<attempt>-NNNNN.<ext>``, see
   :mod:`~airflow_provider_aigw.export.parts`); nothing committed is touched. Rows whose id a
   previous manifest already holds (:func:`archived_ids`) go to separate parts.
4. **Commit.** Re-read the previous manifests: if any changed, abort. If every previously
   archived id was seen again (or ``allow_shrink``), the new manifest replaces them; otherwise
   it keeps their files and adds only the new rows' parts (the union), so the archive never
   shrinks. The manifest is written in one PUT (an atomic rename on ``file://``) after checking that
   this attempt still holds the lock.
5. **Collect.** Retired manifests of inner windows are deleted, then every part of these windows
   and this format that the new manifest does not name (listing only the window's date
   partitions), then the locks.

A crash before step 4 leaves the previous manifest valid; the next attempt collects the parts.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import socket
import threading
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayExportConflictError
from airflow_provider_aigw.export.formats import read_jsonl_records
from airflow_provider_aigw.export.naming import (
    EXTENSIONS,
    date_dir,
    format_of,
    lock_rel,
    manifest_rel,
    manifests_dir,
    parse_manifest_name,
    parse_part_name,
)
from airflow_provider_aigw.export.schema import manifest_schema
from airflow_provider_aigw.export.usage import merge_usage
from airflow_provider_aigw.jsoncodec import to_utf8
from airflow_provider_aigw.timestamps import format_exact, parse_created_at

if TYPE_CHECKING:
    from airflow_provider_aigw.export.destination import Destination
    from airflow_provider_aigw.export.parts import PartStream

log = logging.getLogger(__name__)

#: A lock not renewed for this long was left by a killed export and may be taken over. The
#: holder renews it every third of the lease from a background thread, whatever the walk does.
DEFAULT_LOCK_LEASE = timedelta(minutes=5)
#: The keys of a manifest's file entry, in order.
FILE_KEYS = ("path", "uri", "rows", "bytes", "sha256", "min_created_at", "max_created_at", "attempt")


@dataclass
class Committed:
    """A manifest found under ``_manifests/`` that the new export builds on."""

    rel: str
    tag: str
    start: datetime
    end: datetime
    raw: bytes
    manifest: dict[str, Any]

    @property
    def paths(self) -> set[str]:
        """The relative paths of the files the manifest names."""
        return {f["path"] for f in self.manifest.get("files", [])}


@dataclass(frozen=True)
class WindowArchive:
    """One window and format of a gateway's archive: what the commit protocol works on."""

    dest: Destination
    gw_dir: str
    tag: str
    fmt: str
    #: ``-f<hash>`` of the window's filters, ``""`` without filters.
    filters_suffix: str
    start: datetime
    end: datetime

    @property
    def manifest_rel(self) -> str:
        """Where the window's manifest is committed."""
        return manifest_rel(self.gw_dir, self.tag, self.fmt)

    def lock_rel(self, tag: str) -> str:
        """The lock of the window ``tag`` (this one or one inside it) and this format."""
        return lock_rel(self.gw_dir, tag, self.fmt)


# --- locks ---------------------------------------------------------------------------------------


@dataclass
class WindowLock:
    """The lock objects an attempt holds; released (deleted) only while they are still its own.

    As a context manager it releases them when the block ends, however it ends.

    :param dest: the destination.
    :param attempt: the attempt id.
    :param owner: identity of the job; its later tries take its leftover locks over.
    :param lease: a lock not renewed for this long may be taken over.
    """

    dest: Destination
    attempt: str
    owner: str | None
    lease: timedelta
    held: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _renewer: threading.Thread | None = None

    def _body(self) -> bytes:
        now = datetime.now(timezone.utc)
        return json.dumps(
            {
                "attempt": self.attempt,
                "owner": self.owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "acquired_at": format_exact(now),
                "expires_at": format_exact(now + self.lease),
            }
        ).encode("utf-8")

    def acquire(self, rel: str) -> None:
        """Take the lock ``rel`` or raise :class:`AIGatewayExportConflictError`."""
        if self.dest.create_exclusive(rel, self._body()):
            self.held.append(rel)
            return
        current = self._read(rel)
        if current is not None and self._may_take_over(current, rel):
            # Another taker may race us here; only one exclusive create wins, and the loser is
            # refused. A holder checks the lock is still its own before it commits.
            self.dest.remove(rel)
            if self.dest.create_exclusive(rel, self._body()):
                log.warning(
                    "took over lock %s of attempt %s (%s)",
                    self.dest.uri(rel),
                    current.get("attempt"),
                    "an earlier try of this job" if current.get("owner") == self.owner else "lease expired",
                )
                self.held.append(rel)
                return
            current = self._read(rel) or current
        elif current is None and self.dest.create_exclusive(rel, self._body()):  # released meanwhile
            self.held.append(rel)
            return
        holder = current or {}
        raise AIGatewayExportConflictError(
            f"another export of this window and format is running: {self.dest.uri(rel)} is held by attempt "
            f"{holder.get('attempt')!r} (owner {holder.get('owner')!r}, host {holder.get('host')!r}, since "
            f"{holder.get('acquired_at')}, lease until {holder.get('expires_at')}). Nothing was written. "
            "Retry when it has finished; if no export is running (a killed worker), delete that lock object"
        )

    def keep_alive(self) -> None:
        """Renew the held locks every third of the lease until :meth:`release`."""
        if self._renewer is not None:
            return
        interval = max(self.lease.total_seconds() / 3, 0.1)
        self._renewer = threading.Thread(
            target=self._renew_loop, args=(interval,), name=f"aigw-export-lock-{self.attempt}", daemon=True
        )
        self._renewer.start()

    def _renew_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.renew()

    def renew(self) -> None:
        """Push the lease of every held lock that is still this attempt's."""
        for rel in list(self.held):
            try:
                current = self._read(rel)
                if current is not None and current.get("attempt") == self.attempt:
                    self.dest.write_bytes(rel, self._body())
            except AIGatewayError as err:  # the next renewal tries again; the commit re-checks
                log.warning("could not renew lock %s: %s", self.dest.uri(rel), err)

    def _may_take_over(self, current: Mapping[str, Any], rel: str) -> bool:
        if self.owner is not None and current.get("owner") == self.owner:
            return True
        try:
            expires = parse_created_at(current["expires_at"])
        except Exception:  # unreadable (a writer died creating it): judged by its age
            try:
                modified = self.dest.fs.modified(self.dest.full(rel))
            except Exception:
                return False
            if modified.tzinfo is None:
                modified = modified.replace(tzinfo=timezone.utc)
            expires = modified + self.lease
        return expires <= datetime.now(timezone.utc)

    def _read(self, rel: str) -> dict[str, Any] | None:
        data = self.dest.read_bytes_or_none(rel)
        if data is None:
            return None
        try:
            value = json.loads(data)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def check_held(self) -> None:
        """Raise if another attempt took any of the locks over (checked right before the commit)."""
        for rel in self.held:
            current = self._read(rel)
            if current is None or current.get("attempt") != self.attempt:
                raise AIGatewayExportConflictError(
                    f"lock {self.dest.uri(rel)} was taken over by attempt "
                    f"{(current or {}).get('attempt')!r}: this attempt does not commit"
                )

    def release(self) -> None:
        """Stop renewing, then delete the locks that are still this attempt's."""
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        for rel in reversed(self.held):
            try:
                current = self._read(rel)
                if current is not None and current.get("attempt") == self.attempt:
                    self.dest.remove(rel)
            except AIGatewayError as err:  # a leftover lock only delays the next run until its lease ends
                log.warning("could not release lock %s: %s", self.dest.uri(rel), err)
        self.held.clear()

    def __enter__(self) -> WindowLock:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.release()


# --- committed manifests -------------------------------------------------------------------------


def list_committed(window: WindowArchive) -> list[Committed]:
    """Committed manifests of the window's format and filters whose windows overlap it.

    Manifests of the old layout (``<tag>.json``, one per window for any format) count when they
    hold the format.
    """
    dest, fmt, start, end = window.dest, window.fmt, window.start, window.end
    found: list[Committed] = []
    directory = manifests_dir(window.gw_dir)
    for full in dest.listdir(directory):
        name = full.rsplit("/", 1)[-1]
        m = parse_manifest_name(name)
        if m is None or m.filters_suffix != window.filters_suffix or m.format not in (None, fmt):
            continue
        if not (m.start < end and start < m.end):
            continue
        rel = f"{directory}/{name}"
        raw = dest.read_bytes_or_none(rel)
        if raw is None:  # removed since the listing
            continue
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise AIGatewayError(f"{dest.uri(rel)} is not valid JSON: {exc}") from exc
        if m.format is None and manifest.get("format") != fmt:
            continue
        found.append(Committed(rel, m.tag, m.start, m.end, raw, manifest))
    return found


def check_overlaps(committed: Iterable[Committed], window: WindowArchive) -> None:
    """Refuse a window that overlaps a committed one without containing it."""
    start, end = window.start, window.end
    for c in committed:
        if start <= c.start and c.end <= end:
            continue
        raise AIGatewayExportConflictError(
            f"window [{format_exact(start)}, {format_exact(end)}) overlaps the exported window "
            f"[{format_exact(c.start)}, {format_exact(c.end)}) ({window.dest.uri(c.rel)}) without containing it: "
            "exporting it would archive some logs twice. Export a window that contains it (it is then replaced or "
            "extended) or one that does not overlap it"
        )


def check_unchanged(dest: Destination, before: list[Committed], now: list[Committed]) -> None:
    """Raise when the committed manifests changed since the attempt started (optimistic check)."""
    if {(c.rel, c.raw) for c in before} != {(c.rel, c.raw) for c in now}:
        changed = sorted({c.rel for c in before} ^ {c.rel for c in now}) or sorted(c.rel for c in now)
        raise AIGatewayExportConflictError(
            f"the committed export changed while this attempt ran ({', '.join(dest.uri(r) for r in changed)}): "
            "another export of an overlapping window committed; this attempt does not commit. Retry"
        )


# --- archived ids --------------------------------------------------------------------------------


class IdIndex:
    """The ids of the previous manifests as sorted 64-bit hashes (8 bytes per id, not a set of str).

    A hash collision (about 1 in 10^13 per lookup at a million ids) would at worst leave a new log
    out of a union export; the manifest delete then refuses to delete it.
    """

    def __init__(self, ids: Iterable[Any]) -> None:
        values = sorted({self._key(i) for i in ids})
        self._keys = array("Q", values)
        self._seen = bytearray(len(values))
        self.seen = 0

    @staticmethod
    def _key(log_id: Any) -> int:
        digest = hashlib.blake2b(str(log_id).encode("utf-8"), digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def __len__(self) -> int:
        return len(self._keys)

    def mark(self, log_id: Any) -> bool:
        """Whether ``log_id`` is archived already; remembers that it was seen."""
        if not self._keys:
            return False
        key = self._key(log_id)
        pos = bisect.bisect_left(self._keys, key)
        if pos == len(self._keys) or self._keys[pos] != key:
            return False
        if not self._seen[pos]:
            self._seen[pos] = 1
            self.seen += 1
        return True

    @property
    def all_seen(self) -> bool:
        """Whether every archived id was marked."""
        return self.seen == len(self._keys)




def archived_ids(dest: Destination, previous: list[Committed]) -> IdIndex:
    """Index of the ids named by the previous manifests (reads their parts once)."""

    def ids() -> Iterator[Any]:
        for c in previous:
            for f in c.manifest.get("files", []):
                yield from _iter_part_ids(dest, f["path"])

    return IdIndex(ids())


def _iter_part_ids(dest: Destination, rel: str) -> Iterator[Any]:
    fmt = format_of(rel)
    try:
        raw = dest.fs.open(dest.full(rel), "rb")
    except FileNotFoundError as exc:
        raise AIGatewayError(f"{dest.uri(rel)} is named by the committed manifest but does not exist") from exc
    with raw:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(raw).iter_batches(columns=["id"]):
                yield from batch.column(0).to_pylist()
        else:
            for record in read_jsonl_records(raw, gzipped=fmt == "jsonl.gz"):
                yield record.get("id")


# --- the manifest --------------------------------------------------------------------------------


def manifest_contents(
    dest: Destination,
    previous: list[Committed],
    archived: IdIndex,
    fresh: PartStream,
    again: PartStream,
    partition_by: str,
    allow_shrink: bool,
) -> dict[str, Any]:
    """The manifest's files, counts, commit record, schema, usage and body stats.

    ``replace`` (or ``create``) when every archived log was read again or ``allow_shrink``;
    otherwise ``union``: the archived files stay and the logs not archived yet (``fresh``) are
    added. ``again`` holds the logs read again that were archived already.
    """
    walked = fresh.rows + again.rows
    if allow_shrink or archived.all_seen:
        mode = "replace" if previous else "create"
        files, added, kept = fresh.files + again.files, walked, 0
        body_stats = _window_stats([fresh.body_stats, again.body_stats])
        usage = merge_usage([fresh.usage.to_dict(), again.usage.to_dict()])
        if again.files and fresh.files:
            files.sort(key=lambda f: f["path"])
    else:
        mode, added = "union", fresh.rows
        kept = sum(int(c.manifest.get("count", 0)) for c in previous)
        files = [dict(f) for c in previous for f in c.manifest.get("files", [])] + fresh.files
        body_stats = _window_stats([fresh.body_stats, *(c.manifest.get("body_stats", {}) for c in previous)])
        # archived rows are counted in their manifests' usage (none before schema 2)
        archived_usage = [c.manifest["usage"] for c in previous if "usage" in c.manifest]
        usage = merge_usage([fresh.usage.to_dict(), *archived_usage])
        log.warning(
            "%d of the %d archived logs of this window are gone from the gateway: keeping the archived "
            "files and adding the %d logs not archived yet (pass allow_shrink=True to drop them)",
            len(archived) - archived.seen,
            len(archived),
            fresh.rows,
        )
    for f in files:
        f["uri"] = dest.plain_uri(f["path"])
        f.setdefault("attempt", None)
    contents: dict[str, Any] = {
        "count": sum(int(f["rows"]) for f in files),
        "bytes": sum(int(f["bytes"]) for f in files),
        "files": [{k: f[k] for k in FILE_KEYS} for f in files],
        "commit": {
            "mode": mode,
            "walked": walked,
            "added": added,
            "kept": kept,
            "replaced": [c.manifest.get("attempt") for c in previous],
        },
        # the one schema of every format, and the window's usage (mergeable)
        "schema": manifest_schema(partition_by),
        "usage": usage,
    }
    if body_stats:
        contents["body_stats"] = body_stats
    return contents


def _window_stats(stats: Iterable[Mapping[str, Mapping[str, int]]]) -> dict[str, dict[str, int]]:
    """Statistics of the committed rows, merged from those of each stream and kept manifest.

    The union of a re-run merges what each side counted, so every per-window summary of the
    manifest has to be mergeable this way (counts add up).
    """
    merged: dict[str, dict[str, int]] = {}
    for other in stats:
        for name, counts in other.items():
            target = merged.setdefault(name, {})
            for label, n in counts.items():
                target[label] = target.get(label, 0) + int(n)
    return merged


def commit_manifest(
    window: WindowArchive,
    lock: WindowLock,
    manifest: Mapping[str, Any],
    previous: list[Committed],
    archived: IdIndex,
    *,
    allow_shrink: bool,
) -> None:
    """Write the window's manifest: the commit point (step 4).

    Refused when the committed manifests changed since ``previous`` was read, when the manifest
    would hold fewer logs than were archived (unless ``allow_shrink``), or when another attempt
    took a lock over.

    :raises AIGatewayExportConflictError: another export committed or took the lock meanwhile.
    :raises AIGatewayError: the shrink guard, or the write failed.
    """
    rel = window.manifest_rel
    check_unchanged(window.dest, previous, list_committed(window))
    count = manifest["count"]
    if not allow_shrink and count < len(archived):  # the shrink guard, against the committed ids
        raise AIGatewayError(
            f"refusing to commit {count} logs over an export of {len(archived)} ({rel}); "
            "pass allow_shrink=True to replace it anyway"
        )
    lock.check_held()
    window.dest.write_bytes(rel, to_utf8(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"))


# --- collection ----------------------------------------------------------------------------------


def collect(window: WindowArchive, previous: list[Committed], manifest: Mapping[str, Any]) -> None:
    """Remove the superseded manifests and every part the live manifest does not name (step 5).

    Best effort: the export is committed already, and the next export collects leftovers.
    """
    dest, rel = window.dest, window.manifest_rel
    try:
        for c in previous:
            if c.rel != rel:
                dest.remove(c.rel)
        keep = {f["path"] for f in manifest["files"]}
        removed = _remove_parts(window, {window.tag, *(c.tag for c in previous)}, keep)
        if removed:
            log.info("removed %d superseded part file(s) of window %s (%s)", removed, window.tag, window.fmt)
    except AIGatewayError as err:  # committed already: leftovers are collected by the next export
        log.warning("export committed, but removing superseded files failed: %s", err)


def _remove_parts(window: WindowArchive, tags: set[str], keep: set[str]) -> int:
    """Delete the parts of ``tags`` and the window's format that are not in ``keep`` (relative paths).

    Lists only the date partitions of the window, so the cost follows the window, not the archive.
    """
    dest, gw_dir = window.dest, window.gw_dir
    ext = EXTENSIONS[window.fmt]
    removed = 0
    day = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
    last = window.end - timedelta(microseconds=1)
    prefix = dest.norm(dest.full(gw_dir)) + "/"
    while day <= last:
        for found in dest.find(date_dir(gw_dir, day)):
            norm = dest.norm(found)
            part = parse_part_name(norm.rsplit("/", 1)[-1])
            if part is None or part.ext != ext or part.tag not in tags:
                continue
            if not norm.startswith(prefix) or f"{gw_dir}/{norm[len(prefix) :]}" in keep:
                continue
            dest.remove_full(found)
            dest.prune_empty_dirs(found, gw_dir)
            removed += 1
        day += timedelta(days=1)
    return removed
