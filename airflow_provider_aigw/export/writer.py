"""Rows to parts to a committed window: :func:`export_logs`, from any iterable of logs.

The names of what it writes are :mod:`~airflow_provider_aigw.export.naming`'s, the part files
:mod:`~airflow_provider_aigw.export.parts`', and the commit, from the window's lock to the
manifest to the collection of what that made obsolete,
:mod:`~airflow_provider_aigw.export.commit`'s; the manifest is the only thing readers trust.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayInputError
from airflow_provider_aigw.export.commit import (
    DEFAULT_LOCK_LEASE,
    IdIndex,
    WindowArchive,
    WindowLock,
    archived_ids,
    check_overlaps,
    collect,
    commit_manifest,
    list_committed,
    manifest_contents,
)
from airflow_provider_aigw.export.destination import open_destination
from airflow_provider_aigw.export.formats import validate_format
from airflow_provider_aigw.export.naming import (
    filters_suffix,
    gateway_dir,
    manifests_dir,
    new_attempt_id,
    partition_dir,
    window_tag,
)
from airflow_provider_aigw.export.parts import Attempt, PartStream
from airflow_provider_aigw.export.schema import SCHEMA_VERSION
from airflow_provider_aigw.export.usage import usage_for_xcom
from airflow_provider_aigw.query import normalize_filters
from airflow_provider_aigw.timestamps import format_exact, parse_created_at, utc_datetime
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
    allow_shrink: bool = False,
    owner: str | None = None,
    lock_lease: timedelta = DEFAULT_LOCK_LEASE,
    on_progress: Callable[[int], None] | None = None,
    total_count: int | None = None,
    provenance: Callable[[], Mapping[str, Any]] | None = None,
) -> ExportResult:
    """Stream ``logs`` into partitioned part files under ``destination`` and commit a manifest.

    Every argument is validated, the destination probed and the window's lock taken before the
    first log is consumed. ``logs`` is consumed once; at most two part files are open at a time.
    Logs should arrive in ascending ``created_at``, de-duplicated by ``id``.

    The commit (see :mod:`~airflow_provider_aigw.export.commit`): this attempt's parts get their
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
    :param allow_shrink: allow the archive to shrink: replace the committed export with exactly
        the logs read now, even when it archived logs that are gone from the gateway (they leave
        the archive).
    :param owner: identity of the job (e.g. the Airflow task instance); a lock left by a killed
        earlier try of the same owner is taken over instead of refused.
    :param lock_lease: a lock not renewed for this long is taken over (default 5 minutes; the
        holder renews it every third of that).
    :param on_progress: called with the number of logs written so far, every 10,000 logs and
        once at the end.
    :param total_count: how many logs the API's ``total_count`` said match when the export
        started; recorded with the number read in the manifest's ``count_check``
        (``{"total_count", "walked", "agrees"}``), so a disagreement is never silent.
    :param provenance: where the logs came from, called once ``logs`` is consumed: its entries
        join the manifest (a Logpush import's ``source`` and ``logpush``); none for the Logs API.
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

    dest = open_destination(destination)
    gw_dir = gateway_dir(gw)
    tag = window_tag(s, e, flt)
    window = WindowArchive(dest, gw_dir, tag, fmt, filters_suffix(flt), s, e)
    dest.check_writable(manifests_dir(gw_dir))

    attempt_id = new_attempt_id()
    with WindowLock(dest, attempt_id, owner, lock_lease) as lock:
        lock.acquire(window.lock_rel(tag))
        lock.keep_alive()
        previous = list_committed(window)
        check_overlaps(previous, window)
        for c in previous:
            if c.tag != tag:
                lock.acquire(window.lock_rel(c.tag))
        archived = archived_ids(dest, previous)
        attempt = Attempt(dest, tag, attempt_id, fmt, rows_per_part, bytes_per_part)
        fresh, again = PartStream(attempt), PartStream(attempt)
        try:
            with fresh, again:
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
                **manifest_contents(dest, previous, archived, fresh, again, partition_by, allow_shrink),
                "attempt": attempt_id,
            }
            if provenance is not None:
                manifest.update(provenance())
            if outside:
                manifest["outside_window"] = outside
            if total_count is not None:
                agrees = total_count == walked
                manifest["count_check"] = {"total_count": total_count, "walked": walked, "agrees": agrees}
            manifest["created_at"] = format_exact(datetime.now(timezone.utc))
            manifest["complete"] = True
            commit_manifest(window, lock, manifest, previous, archived, allow_shrink=allow_shrink)
        except BaseException:
            fresh.discard()
            again.discard()
            raise

        # -- collect: the new manifest is live; what it does not name is garbage.
        collect(window, previous, manifest)
    if on_progress is not None:
        on_progress(walked)
    return ExportResult(manifest=manifest, manifest_uri=dest.uri(window.manifest_rel))


def _stream(
    logs: Iterable[Mapping[str, Any]],
    fresh: PartStream,
    again: PartStream,
    archived: IdIndex,
    gw_dir: str,
    start: datetime,
    end: datetime,
    partition_by: str,
    on_progress: Callable[[int], None] | None,
) -> int:
    """Write every log to its partition (logs an earlier export archived go to ``again``) and
    return how many logs lie outside the window."""
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
            part_dir = part_dirs[slot] = partition_dir(gw_dir, dt, hourly=hourly)
        stream = again if archived.mark(item.get("id")) else fresh
        stream.write(item, dt, part_dir)
        if not start <= dt < end:
            outside += 1
        walked = fresh.rows + again.rows
        if on_progress is not None and walked % PROGRESS_EVERY == 0:
            on_progress(walked)
    if outside:
        log.warning(
            "%d of %d logs lie outside the window [%s, %s)",
            outside,
            fresh.rows + again.rows,
            format_exact(start),
            format_exact(end),
        )
    return outside
