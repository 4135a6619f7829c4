"""Streaming, partitioned export of AI Gateway logs to any Airflow object storage destination.

Layout under the destination (hive-style, partitioned by ``created_at`` in UTC)::

    gateway=<gateway_id>/date=YYYY-MM-DD/[hour=HH/]part-<WINDOWTAG>-a<ATTEMPT>-00000.<ext>
    gateway=<gateway_id>/_manifests/<WINDOWTAG>.<format>.json
    gateway=<gateway_id>/_manifests/<WINDOWTAG>.<format>.lock     (while an export runs)

``WINDOWTAG`` is ``<start>-<end>`` in compact UTC (``20261126T000000Z-20261127T000000Z``),
followed by ``-f<hash>`` when filters are given. Each attempt writes parts under its own
``ATTEMPT`` id and commits by writing the manifest, which is the only thing readers trust; see
:mod:`airflow_provider_aigw.export._commit` for the protocol.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export import _commit
from airflow_provider_aigw.export._commit import MANIFEST_DIR, Committed, IdIndex, WindowLock, window_tag
from airflow_provider_aigw.export._parts import _Attempt, _PartStream
from airflow_provider_aigw.export._storage import Destination, _open_destination
from airflow_provider_aigw.export.formats import (
    SCHEMA_VERSION,
    format_of,
    parse_created_at,
    read_jsonl_records,
    validate_format,
)
from airflow_provider_aigw.export.schema import manifest_schema
from airflow_provider_aigw.export.usage import merge_usage, usage_for_xcom
from airflow_provider_aigw.query import normalize_filters
from airflow_provider_aigw.timestamps import format_exact, utc_datetime
from airflow_provider_aigw.validation import validate_choice, validate_duration, validate_gateway_id, validate_positive

if TYPE_CHECKING:
    from airflow_provider_aigw.compat import ObjectStoragePath

log = logging.getLogger(__name__)

PARTITION_BY: tuple[str, ...] = ("day", "hour")
DEFAULT_PARTITION_BY = "day"
DEFAULT_ROWS_PER_PART = 1_000_000
#: A part rolls over once this many (compressed) bytes are written.
DEFAULT_BYTES_PER_PART = 128 * 1024 * 1024
#: ``summary()`` lists file URIs only up to this many files.
SUMMARY_MAX_PATHS = 100
PROGRESS_EVERY = 10_000
FILE_KEYS = ("path", "uri", "rows", "bytes", "sha256", "min_created_at", "max_created_at", "attempt")

# --- result --------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    """Outcome of :func:`export_logs`: the manifest written and where it lives."""

    manifest: dict[str, Any]
    manifest_uri: str

    @property
    def count(self) -> int:
        """Number of logs in the committed export (earlier attempts' rows included)."""
        return int(self.manifest["count"])

    @property
    def written(self) -> int:
        """Number of logs this attempt read from ``logs``."""
        return int(self.manifest["commit"]["walked"])

    def summary(self) -> dict[str, Any]:
        """Small JSON-serialisable dict for XCom (file URIs only when there are at most 100 files)."""
        m = self.manifest
        files = m["files"]
        out: dict[str, Any] = {
            "manifest_uri": self.manifest_uri,
            "gateway_id": m["gateway_id"],
            "start": m["window"]["start"],
            "end": m["window"]["end"],
            "filters": m["filters"],
            "format": m["format"],
            "count": m["count"],
            "files": len(files),
            "bytes": m["bytes"],
            "commit": {k: m["commit"][k] for k in ("mode", "added", "kept")},
        }
        if len(files) <= SUMMARY_MAX_PATHS:
            out["paths"] = [f["uri"] for f in files]
        if "count_check" in m:
            out["count_check"] = m["count_check"]
        if "usage" in m:  # dataset: per-model usage, without the duration buckets
            out["usage"] = usage_for_xcom(m["usage"])
        return out


# --- the export ----------------------------------------------------------------------------------


def _archived_ids(dest: Destination, previous: list[Committed]) -> IdIndex:
    """Index of the ids named by the previous manifests (reads their parts once)."""

    def ids() -> Iterator[Any]:
        for c in previous:
            for f in c.manifest.get("files", []):
                yield from _iter_part_ids(dest, f["path"])

    return IdIndex(ids())


def _iter_part_ids(dest: Destination, rel: str) -> Iterator[Any]:
    full = dest.full(rel)
    fmt = format_of(rel)
    try:
        raw = dest.fs.open(full, "rb")
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


def _window_stats(streams: list[_PartStream], kept: list[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Statistics of the committed rows: those of ``streams`` plus those of the ``kept`` manifests.

    The union of a re-run merges what each side counted, so every per-window summary of the
    manifest has to be mergeable this way (counts add up).
    """
    merged: dict[str, dict[str, int]] = {}
    for other in [*(s.body_stats for s in streams), *(m.get("body_stats", {}) for m in kept)]:
        for name, counts in other.items():
            target = merged.setdefault(name, {})
            for label, n in counts.items():
                target[label] = target.get(label, 0) + int(n)
    return merged


def export_logs(
    logs: Iterable[Mapping[str, Any]],
    destination: str | ObjectStoragePath,
    *,
    gateway_id: str,
    start: datetime,
    end: datetime,
    filters: list[dict[str, Any]] | None = None,
    account_id: str | None = None,
    format: str = "jsonl.gz",
    partition_by: str = DEFAULT_PARTITION_BY,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    bytes_per_part: int = DEFAULT_BYTES_PER_PART,
    overwrite_smaller: bool = False,
    owner: str | None = None,
    lock_lease: timedelta = _commit.DEFAULT_LOCK_LEASE,
    on_progress: Callable[[int], None] | None = None,
    total_count: int | None = None,
) -> ExportResult:
    """Stream ``logs`` into partitioned part files under ``destination`` and commit a manifest.

    Every argument is validated, the destination probed and the window's lock taken before the
    first log is consumed. ``logs`` is consumed once; at most two part files are open at a time.
    Logs should arrive in ascending ``created_at``, de-duplicated by ``id``.

    The commit (see :mod:`~airflow_provider_aigw.export._commit`): this attempt's parts get their
    own names, the previous manifest stays valid until the new one is written, superseded parts
    are deleted afterwards. A concurrent export of the same window and format is refused. When an
    export of the window (or of windows inside it) is committed already, the new manifest
    replaces it if every log it archived was read again; otherwise it keeps those files and adds
    the logs not archived yet (``commit.mode`` ``"union"``), so the archive never shrinks.

    :param logs: log dicts as the API returns them; every field is kept.
    :param destination: ``ObjectStoragePath`` or URL (``file://``, ``s3://conn@bucket/prefix``,
        ``gs://``, ``memory://`` ...).
    :param gateway_id: the gateway the logs come from (first partition level).
    :param start: window start (inclusive), timezone-aware.
    :param end: window end (exclusive), timezone-aware.
    :param filters: the API filters used to select the logs (recorded; part of the names).
    :param account_id: the Cloudflare account the logs come from (recorded; a delete with the
        manifest refuses another account).
    :param format: ``jsonl``, ``jsonl.gz`` (default) or ``parquet`` (needs the ``parquet`` extra).
    :param partition_by: ``day`` (default) or ``hour``.
    :param rows_per_part: a part rolls over after this many rows (default 1,000,000).
    :param bytes_per_part: ... or once this many bytes are written (default 128 MiB).
    :param overwrite_smaller: replace the committed export with exactly the logs read now, even
        when it archived logs that are gone from the gateway (they leave the archive).
    :param owner: identity of the job (e.g. the Airflow task instance); a lock left by a killed
        earlier try of the same owner is taken over instead of refused.
    :param lock_lease: a lock not renewed for this long is taken over (default 5 minutes; the
        holder renews it every third of that).
    :param on_progress: called with the number of logs written so far, every 10,000 logs and
        once at the end.
    :param total_count: how many logs the API's ``total_count`` said match when the export
        started; recorded with the number read in the manifest's ``count_check``
        (``{"total_count", "walked", "agrees"}``), so a disagreement is never silent.
    :raises AIGatewayInputError: invalid argument, unusable or unwritable destination, or a log
        without a parseable ``created_at``.
    :raises AIGatewayExportConflictError: another export of the window runs or committed meanwhile,
        or the window overlaps an exported one without containing it.
    :raises AIGatewayError: a write to the destination failed.
    """
    fmt = validate_format(format)
    validate_choice(partition_by, PARTITION_BY, param="partition_by")
    validate_positive(rows_per_part, param="rows_per_part")
    validate_positive(bytes_per_part, param="bytes_per_part")
    lock_lease = validate_duration(lock_lease, param="lock_lease", allow_zero=False)
    gw = validate_gateway_id(gateway_id)
    s = utc_datetime(start, param="start")
    e = utc_datetime(end, param="end")
    if not s < e:
        raise AIGatewayInputError(f"start ({format_exact(s)}) must be before end ({format_exact(e)})")
    flt = normalize_filters(filters)
    if on_progress is not None and not callable(on_progress):
        raise AIGatewayInputError("on_progress must be callable")

    dest = _open_destination(destination)
    tag = window_tag(s, e, flt)
    filters_suffix = tag[len(window_tag(s, e)) :]
    gw_dir = f"gateway={gw}"
    manifest_rel = _commit.manifest_rel(gw_dir, tag, fmt)
    dest.check_writable(f"{gw_dir}/{MANIFEST_DIR}")

    attempt = _commit.new_attempt_id()
    lock = WindowLock(dest, attempt, owner, lock_lease)
    lock.acquire(_commit.lock_rel(gw_dir, tag, fmt))
    lock.keep_alive()
    x = _Attempt(dest, tag, attempt, fmt, rows_per_part, bytes_per_part, {})
    streams: list[_PartStream] = []
    try:
        previous = _commit.list_committed(dest, gw_dir, fmt, filters_suffix, s, e)
        _commit.check_overlaps(previous, s, e, dest.uri)
        for c in previous:
            if c.tag != tag:
                lock.acquire(_commit.lock_rel(gw_dir, c.tag, fmt))
        archived = _archived_ids(dest, previous)
        fresh, again = _PartStream(x), _PartStream(x)
        streams = [fresh, again]
        outside = _stream(logs, fresh, again, archived, gw_dir, s, e, partition_by, on_progress)
        walked = fresh.rows + again.rows

        # -- commit: nothing committed has been touched so far.
        from airflow_provider_aigw import __version__

        manifest: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "provider_version": __version__,
            "account_id": account_id,
            "gateway_id": gw,
            "window": {"start": format_exact(s), "end": format_exact(e)},
            "window_tag": tag,
            "filters": flt,
            "format": fmt,
            "partition_by": partition_by,
            "rows_per_part": rows_per_part,
            "bytes_per_part": bytes_per_part,
            "root": dest.plain_root,
            **_contents(dest, previous, archived, fresh, again, partition_by, overwrite_smaller),
            "attempt": attempt,
        }
        if outside:
            manifest["outside_window"] = outside
        if total_count is not None:
            manifest["count_check"] = {"total_count": total_count, "walked": walked, "agrees": total_count == walked}
        manifest["created_at"] = format_exact(datetime.now(timezone.utc))
        manifest["complete"] = True
        count = manifest["count"]

        _commit.check_unchanged(dest, previous, _commit.list_committed(dest, gw_dir, fmt, filters_suffix, s, e))
        if not overwrite_smaller and count < len(archived):  # the shrink guard, against the committed ids
            raise AIGatewayError(
                f"refusing to commit {count} logs over an export of {len(archived)} ({manifest_rel}); "
                "pass overwrite_smaller=True to replace it anyway"
            )
        lock.check_held()
        dest.write_bytes(manifest_rel, (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    except BaseException as exc:
        for stream in streams:
            stream.abort(exc)
        _discard(dest, [f["path"] for stream in streams for f in stream.files])
        lock.release()
        raise

    # -- collect: the new manifest is live; what it does not name is garbage.
    try:
        _collect(dest, previous, manifest, manifest_rel, gw_dir, s, e)
    finally:
        lock.release()
    if on_progress is not None:
        on_progress(walked)
    return ExportResult(manifest=manifest, manifest_uri=dest.uri(manifest_rel))



def _stream(
    logs: Iterable[Mapping[str, Any]],
    fresh: _PartStream,
    again: _PartStream,
    archived: IdIndex,
    gw_dir: str,
    start: datetime,
    end: datetime,
    partition_by: str,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Write every log to its partition (logs an earlier export archived go to ``again``), close
    the parts, and return how many logs lie outside the window."""
    outside = 0
    hourly = partition_by == "hour"
    part_dirs: dict[tuple[int, int, int, int], str] = {}  # (y, m, d, h) -> directory: strftime is dear
    for item in logs:
        if type(item) is not dict and not isinstance(item, Mapping):
            raise AIGatewayInputError(f"each log must be a mapping, got {type(item).__name__}")
        try:
            created = item["created_at"]
        except KeyError:
            raise AIGatewayInputError(f"log {item.get('id')!r} has no created_at") from None
        dt = parse_created_at(created)
        slot = (dt.year, dt.month, dt.day, dt.hour if hourly else 0)
        part_dir = part_dirs.get(slot)
        if part_dir is None:
            part_dir = part_dirs[slot] = f"{gw_dir}/date={dt:%Y-%m-%d}" + (f"/hour={dt.hour:02d}" if hourly else "")
        stream = again if archived.mark(item.get("id")) else fresh
        stream.write(item, dt, part_dir)
        if not start <= dt < end:
            outside += 1
        walked = fresh.rows + again.rows
        if on_progress is not None and walked % PROGRESS_EVERY == 0:
            on_progress(walked)
    fresh.close()
    again.close()
    if outside:
        log.warning(
            "%d of %d logs lie outside the window [%s, %s)",
            outside,
            fresh.rows + again.rows,
            format_exact(start),
            format_exact(end),
        )
    return outside


def _contents(
    dest: Destination,
    previous: list[Committed],
    archived: IdIndex,
    fresh: _PartStream,
    again: _PartStream,
    partition_by: str,
    overwrite_smaller: bool,
) -> dict[str, Any]:
    """The manifest's files, counts, commit record, schema, usage and body stats.

    ``replace`` (or ``create``) when every archived log was read again or ``overwrite_smaller``;
    otherwise ``union``: the archived files stay and the logs not archived yet are added.
    """
    walked = fresh.rows + again.rows
    if overwrite_smaller or archived.all_seen:
        mode = "replace" if previous else "create"
        files, added, kept = fresh.files + again.files, walked, 0
        body_stats = _window_stats([fresh, again], [])
        usage = merge_usage([fresh.usage.to_dict(), again.usage.to_dict()])
        if again.files and fresh.files:
            files.sort(key=lambda f: f["path"])
    else:
        mode, added = "union", fresh.rows
        kept = sum(int(c.manifest.get("count", 0)) for c in previous)
        files = [dict(f) for c in previous for f in c.manifest.get("files", [])] + fresh.files
        body_stats = _window_stats([fresh], [c.manifest for c in previous])
        # archived rows are counted in their manifests' usage (none before schema 2)
        archived_usage = [c.manifest["usage"] for c in previous if "usage" in c.manifest]
        usage = merge_usage([fresh.usage.to_dict(), *archived_usage])
        log.warning(
            "%d of the %d archived logs of this window are gone from the gateway: keeping the archived "
            "files and adding the %d logs not archived yet (pass overwrite_smaller=True to drop them)",
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


def _collect(
    dest: Destination,
    previous: list[Committed],
    manifest: Mapping[str, Any],
    manifest_rel: str,
    gw_dir: str,
    start: datetime,
    end: datetime,
) -> None:
    """Remove the superseded manifests and every part the live manifest does not name."""
    tag, fmt = manifest["window_tag"], manifest["format"]
    try:
        for c in previous:
            if c.rel != manifest_rel:
                dest.remove(c.rel)
        keep = {f["path"] for f in manifest["files"]}
        removed = _commit.collect(dest, gw_dir, {tag, *(c.tag for c in previous)}, fmt, keep, start, end)
        if removed:
            log.info("removed %d superseded part file(s) of window %s (%s)", removed, tag, fmt)
    except AIGatewayError as err:  # committed already: leftovers are collected by the next export
        log.warning("export committed, but removing superseded files failed: %s", err)

def _discard(dest: Destination, rels: list[str]) -> None:
    """Best-effort removal of the parts of an attempt that did not commit."""
    for rel in rels:
        try:
            dest.remove(rel)
        except AIGatewayError as err:
            log.warning("could not remove uncommitted part %s: %s", dest.uri(rel), err)
