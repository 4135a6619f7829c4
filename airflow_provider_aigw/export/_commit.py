"""The commit protocol of an export window, for object stores without rename.

One export of a window and format (an *attempt*) goes through these steps:

1. **Lock.** Create ``_manifests/<tag>.<format>.lock`` with an exclusive create (``O_EXCL`` on
   ``file://``, ``If-None-Match: *`` on S3, a process-wide lock on ``memory://``). If it exists,
   the export is refused, unless its lease has run out (the holder renews it while it runs) or
   it belongs to an earlier try of the same job (``owner``): then it is taken over.
2. **Read what is committed.** The window's current manifest of this format, and the manifests of
   windows of the same filters and format that lie inside this window (an earlier export with a
   shortened ``end``) are the *previous* manifests; their locks are taken too. A window that
   overlaps a committed one in any other way is refused.
3. **Write parts under names of this attempt** (``part-<tag>-a<attempt>-NNNNN.<ext>``); nothing
   committed is touched. Rows whose id a previous manifest already holds go to separate parts.
4. **Commit.** Re-read the previous manifests: if any changed, abort. If every previously
   archived id was seen again (or ``overwrite_smaller``), the new manifest replaces them; otherwise
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
import re
import socket
import threading
import uuid
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayExportConflictError
from airflow_provider_aigw.export.formats import EXTENSIONS
from airflow_provider_aigw.query import normalize_filters
from airflow_provider_aigw.timestamps import format_compact, format_exact, parse_compact, parse_created_at, utc_datetime

if TYPE_CHECKING:
    from airflow_provider_aigw.export._storage import Destination

log = logging.getLogger(__name__)

MANIFEST_DIR = "_manifests"
#: A lock not renewed for this long was left by a killed export and may be taken over. The
#: holder renews it every third of the lease from a background thread, whatever the walk does.
DEFAULT_LOCK_LEASE = timedelta(minutes=5)

_TS = r"\d{8}T\d{6}(?:\.\d{6})?Z"
_TAG = rf"(?P<start>{_TS})-(?P<end>{_TS})(?P<filters>-f[0-9a-f]{{10}})?"
_FMT = "|".join(re.escape(f) for f in sorted(EXTENSIONS, key=len, reverse=True))
_MANIFEST_RE = re.compile(rf"^(?P<tag>{_TAG})(?:\.(?P<format>{_FMT}))?\.json$")
_EXT = "|".join(re.escape(e) for e in sorted(set(EXTENSIONS.values()), key=len, reverse=True))
#: Part names, old (no attempt) and new, and the hidden temp names of ``file://`` writes.
_PART_RE = re.compile(
    rf"^\.?part-(?P<tag>{_TAG})(?:-a(?P<attempt>[0-9a-f]{{12}}))?-\d{{5,}}\.(?P<ext>{_EXT})(?:\.tmp)?$"
)


def new_attempt_id() -> str:
    """A fresh attempt id (12 hex digits), part of every part name the attempt writes."""
    return uuid.uuid4().hex[:12]


def manifest_rel(gw_dir: str, tag: str, fmt: str) -> str:
    """Relative path of the manifest of a window and format."""
    return f"{gw_dir}/{MANIFEST_DIR}/{tag}.{fmt}.json"


def lock_rel(gw_dir: str, tag: str, fmt: str) -> str:
    """Relative path of the lock object of a window and format."""
    return f"{gw_dir}/{MANIFEST_DIR}/{tag}.{fmt}.lock"


def part_name(tag: str, attempt: str, index: int, fmt: str) -> str:
    """File name of a part written by ``attempt``."""
    return f"part-{tag}-a{attempt}-{index:05d}.{EXTENSIONS[fmt]}"


def _filters_hash(filters: list[dict[str, Any]]) -> str:
    # normalized filters: ``value`` is always a list, so a scalar and a one-item list hash alike
    canon = [json.dumps(f, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for f in filters]
    digest = hashlib.sha256("\n".join(sorted(canon)).encode("utf-8")).hexdigest()
    return digest[:10]


def window_tag(start: datetime, end: datetime, filters: list[dict[str, Any]] | None = None) -> str:
    """Deterministic tag of an export window, e.g. ``20261126T000000Z-20261127T000000Z[-f<hash>]``.

    The optional ``-f<hash>`` is a short stable hash of the filters (their order and a scalar
    versus one-item ``value`` do not matter).
    """
    s = utc_datetime(start, param="start")
    e = utc_datetime(end, param="end")
    tag = f"{format_compact(s)}-{format_compact(e)}"
    flt = normalize_filters(filters)
    if flt:
        tag += f"-f{_filters_hash(flt)}"
    return tag


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
        return {f["path"] for f in self.manifest.get("files", [])}


# --- locks ---------------------------------------------------------------------------------------


@dataclass
class WindowLock:
    """The lock objects an attempt holds; released (deleted) only while they are still its own."""

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


# --- committed manifests -------------------------------------------------------------------------


def list_committed(
    dest: Destination, gw_dir: str, fmt: str, filters_suffix: str, start: datetime, end: datetime
) -> list[Committed]:
    """Committed manifests of ``fmt`` and the same filters whose windows overlap ``[start, end)``.

    Manifests of the old layout (``<tag>.json``, one per window for any format) count when they
    hold ``fmt``.
    """
    found: list[Committed] = []
    for full in dest.listdir(f"{gw_dir}/{MANIFEST_DIR}"):
        name = full.rsplit("/", 1)[-1]
        m = _MANIFEST_RE.match(name)
        if not m or (m["filters"] or "") != filters_suffix or m["format"] not in (None, fmt):
            continue
        w_start, w_end = parse_compact(m["start"]), parse_compact(m["end"])
        if not (w_start < end and start < w_end):
            continue
        rel = f"{gw_dir}/{MANIFEST_DIR}/{name}"
        raw = dest.read_bytes_or_none(rel)
        if raw is None:  # removed since the listing
            continue
        try:
            manifest = json.loads(raw)
        except ValueError as exc:
            raise AIGatewayError(f"{dest.uri(rel)} is not valid JSON: {exc}") from exc
        if m["format"] is None and manifest.get("format") != fmt:
            continue
        found.append(Committed(rel, m["tag"], w_start, w_end, raw, manifest))
    return found


def check_overlaps(committed: Iterable[Committed], start: datetime, end: datetime, uri: Any) -> None:
    """Refuse a window that overlaps a committed one without containing it."""
    for c in committed:
        if start <= c.start and c.end <= end:
            continue
        raise AIGatewayExportConflictError(
            f"window [{format_exact(start)}, {format_exact(end)}) overlaps the exported window "
            f"[{format_exact(c.start)}, {format_exact(c.end)}) ({uri(c.rel)}) without containing it: exporting it "
            "would archive some logs twice. Export a window that contains it (it is then replaced or "
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
        return self.seen == len(self._keys)


# --- collection ----------------------------------------------------------------------------------


_MEMORY_LOCK = threading.Lock()


def memory_lock() -> threading.Lock:
    """Serialises exclusive creates on ``memory://`` (one process, no atomic create there)."""
    return _MEMORY_LOCK


def collect(
    dest: Destination,
    gw_dir: str,
    tags: set[str],
    fmt: str,
    keep: set[str],
    start: datetime,
    end: datetime,
) -> int:
    """Delete the parts of ``tags`` and ``fmt`` that are not in ``keep`` (relative paths).

    Lists only the date partitions of ``[start, end)``, so the cost follows the window, not the
    archive.
    """
    ext = EXTENSIONS[fmt]
    removed = 0
    day = start.replace(hour=0, minute=0, second=0, microsecond=0)
    last = end - timedelta(microseconds=1)
    while day <= last:
        date_dir = f"{gw_dir}/date={day:%Y-%m-%d}"
        prefix = dest.norm(dest.full(gw_dir)) + "/"
        for found in dest.find(date_dir):
            norm = dest.norm(found)
            name = norm.rsplit("/", 1)[-1]
            m = _PART_RE.match(name)
            if not m or m["ext"] != ext or m["tag"] not in tags:
                continue
            if not norm.startswith(prefix) or f"{gw_dir}/{norm[len(prefix) :]}" in keep:
                continue
            dest.remove_full(found)
            dest.prune_empty_dirs(found, gw_dir)
            removed += 1
        day += timedelta(days=1)
    return removed
