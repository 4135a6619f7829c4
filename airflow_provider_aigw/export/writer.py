"""Streaming, partitioned export of AI Gateway logs to any Airflow object storage destination.

Layout under the destination (hive-style, partitioned by ``created_at`` in UTC)::

    gateway=<gateway_id>/date=YYYY-MM-DD/hour=HH/part-<WINDOWTAG>-00000.jsonl.gz
    gateway=<gateway_id>/_manifests/<WINDOWTAG>.json

``WINDOWTAG`` is ``<start>-<end>`` in compact UTC (``20261126T000000Z-20261127T000000Z``),
followed by ``-f<hash>`` when filters are given, so equal inputs give equal names: a retry or a
re-run overwrites instead of duplicating. The manifest is written last and is the commit point.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from airflow_provider_aigw.exceptions import AIGatewayError, AIGatewayInputError
from airflow_provider_aigw.export._storage import Destination, _AtomicWriter, _open_destination
from airflow_provider_aigw.export.formats import (
    EXTENSIONS,
    SCHEMA_VERSION,
    RecordWriter,
    format_of,
    format_ts,
    make_writer,
    parse_created_at,
    read_jsonl_records,
    read_parquet_records,
    validate_format,
)

if TYPE_CHECKING:
    from airflow_provider_aigw.compat import ObjectStoragePath
    from airflow_provider_aigw.export._storage import HashingWriter

log = logging.getLogger(__name__)

PARTITION_BY: tuple[str, ...] = ("hour", "day")
DEFAULT_ROWS_PER_PART = 100_000
#: ``summary()`` lists file URIs only up to this many files.
SUMMARY_MAX_PATHS = 100
PROGRESS_EVERY = 10_000
MANIFEST_DIR = "_manifests"
BODY_STATUS_FIELDS: tuple[str, ...] = ("request_body_status", "response_body_status")

_GATEWAY_ID_RE = re.compile(r"^[A-Za-z0-9_]+(?:-[A-Za-z0-9_]+)*$")


# --- validation helpers ------------------------------------------------------------------------


def _check_datetime(name: str, value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise AIGatewayInputError(f"{name} must be a timezone-aware datetime, got {value!r}") from exc
    if not isinstance(value, datetime):
        raise AIGatewayInputError(f"{name} must be a timezone-aware datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise AIGatewayInputError(
            f"{name} must be timezone-aware (got naive {value.isoformat()}); e.g. use "
            "datetime(..., tzinfo=timezone.utc) or pendulum.datetime(...)"
        )
    u = value.astimezone(timezone.utc)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=timezone.utc)


def _check_gateway_id(gateway_id: Any) -> str:
    if not isinstance(gateway_id, str) or not gateway_id or len(gateway_id) > 64:
        raise AIGatewayInputError(
            f"gateway_id must be a non-empty string of at most 64 chars, got {gateway_id!r}"
        )
    if not _GATEWAY_ID_RE.match(gateway_id):
        raise AIGatewayInputError(
            f"gateway_id {gateway_id!r} is not a valid AI Gateway id (letters, digits, '_' and single '-')"
        )
    return gateway_id


def _check_filters(filters: Any) -> list[dict[str, Any]]:
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        filters = [filters]
    if not isinstance(filters, (list, tuple)):
        raise AIGatewayInputError(f"filters must be a list of filter dicts, got {type(filters).__name__}")
    result: list[dict[str, Any]] = []
    for item in filters:
        if not isinstance(item, Mapping):
            raise AIGatewayInputError(f"filters must be a list of filter dicts, got item {item!r}")
        result.append(dict(item))
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise AIGatewayInputError(f"filters must be JSON-serialisable: {exc}") from exc
    return result


def _filters_hash(filters: list[dict[str, Any]]) -> str:
    canon = []
    for f in filters:
        item = dict(f)
        if "value" in item and not isinstance(item["value"], list):
            item["value"] = [item["value"]]
        canon.append(json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    digest = hashlib.sha256("\n".join(sorted(canon)).encode("utf-8")).hexdigest()
    return digest[:10]


def _compact_ts(dt: datetime) -> str:
    text = dt.strftime("%Y%m%dT%H%M%S")
    if dt.microsecond:
        text += f".{dt.microsecond:06d}"
    return text + "Z"


def window_tag(start: datetime, end: datetime, filters: list[dict[str, Any]] | None = None) -> str:
    """Deterministic tag of an export window, e.g. ``20261126T000000Z-20261127T000000Z[-f<hash>]``.

    The optional ``-f<hash>`` is a short stable hash of the filters (their order and a scalar
    versus one-item ``value`` do not matter).
    """
    s = _check_datetime("start", start)
    e = _check_datetime("end", end)
    tag = f"{_compact_ts(s)}-{_compact_ts(e)}"
    flt = _check_filters(filters)
    if flt:
        tag += f"-f{_filters_hash(flt)}"
    return tag


def _part_name_re(tag: str) -> re.Pattern[str]:
    exts = "|".join(re.escape(ext) for ext in sorted(set(EXTENSIONS.values()), key=len, reverse=True))
    return re.compile(rf"^\.?part-{re.escape(tag)}-\d{{5,}}\.(?:{exts})(?:\.tmp)?$")


# --- result --------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    """Outcome of :func:`export_logs`: the manifest written and where it lives."""

    manifest: dict[str, Any]
    manifest_uri: str

    @property
    def count(self) -> int:
        """Number of logs exported."""
        return int(self.manifest["count"])

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
        }
        if len(files) <= SUMMARY_MAX_PATHS:
            out["paths"] = [f["uri"] for f in files]
        return out


# --- the export ----------------------------------------------------------------------------------


class _OpenPart:
    """One part file being written."""

    def __init__(self, dest: Destination, rel: str, format: str) -> None:
        self.rel = rel
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
            "min_created_at": format_ts(self.min_dt),
            "max_created_at": format_ts(self.max_dt),
        }

    def abort(self, exc: BaseException) -> None:
        self._ctx.__exit__(type(exc), exc, exc.__traceback__)


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
    partition_by: str = "hour",
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    on_progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Stream ``logs`` into partitioned part files under ``destination`` and write a manifest last.

    Every argument is validated and the destination's filesystem resolved and probed for
    writability before the first log is consumed. ``logs`` is consumed once; at most one part
    file is open at a time. Logs should arrive in ascending ``created_at`` (de-duplicated by
    ``id``); an out-of-order log is written to a new part in its own partition.

    Re-running with the same gateway, window and filters rewrites the same paths: the old
    manifest of the window is deleted first, part files of the window that this run did not
    write are deleted after the last part, then the manifest is written.

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
    :param partition_by: ``hour`` (default) or ``day``.
    :param rows_per_part: a partition rolls to a new part file after this many rows.
    :param on_progress: called with the number of logs written so far, every 10,000 logs and
        once at the end.
    :raises AIGatewayInputError: invalid argument, unusable or unwritable destination, or a log
        without a parseable ``created_at``.
    :raises AIGatewayError: a write to the destination failed.
    """
    fmt = validate_format(format)
    if partition_by not in PARTITION_BY:
        raise AIGatewayInputError(
            f"partition_by must be one of {', '.join(PARTITION_BY)}; got {partition_by!r}"
        )
    if isinstance(rows_per_part, bool) or not isinstance(rows_per_part, int) or rows_per_part < 1:
        raise AIGatewayInputError(f"rows_per_part must be a positive integer, got {rows_per_part!r}")
    gw = _check_gateway_id(gateway_id)
    s = _check_datetime("start", start)
    e = _check_datetime("end", end)
    if not s < e:
        raise AIGatewayInputError(f"start ({format_ts(s)}) must be before end ({format_ts(e)})")
    flt = _check_filters(filters)
    if on_progress is not None and not callable(on_progress):
        raise AIGatewayInputError("on_progress must be callable")

    dest = _open_destination(destination)
    tag = window_tag(s, e, flt)
    gw_dir = f"gateway={gw}"
    manifest_rel = f"{gw_dir}/{MANIFEST_DIR}/{tag}.json"

    dest.check_writable(f"{gw_dir}/{MANIFEST_DIR}")
    # No reader may see the old manifest next to new parts.
    dest.remove(manifest_rel)

    ext = EXTENSIONS[fmt]
    files: list[dict[str, Any]] = []
    part_counts: dict[str, int] = {}
    body_stats: dict[str, dict[str, int]] = {}
    count = 0
    outside = 0
    current: _OpenPart | None = None
    current_key: tuple[int, int, int, int] | None = None
    current_dir = ""
    hourly = partition_by == "hour"

    try:
        for item in logs:
            if not isinstance(item, Mapping):
                raise AIGatewayInputError(f"each log must be a mapping, got {type(item).__name__}")
            try:
                created = item["created_at"]
            except KeyError:
                raise AIGatewayInputError(f"log {item.get('id')!r} has no created_at") from None
            dt = parse_created_at(created)
            key = (dt.year, dt.month, dt.day, dt.hour if hourly else 0)
            if key != current_key:
                current_key = key
                current_dir = f"{gw_dir}/date={key[0]:04d}-{key[1]:02d}-{key[2]:02d}"
                if hourly:
                    current_dir += f"/hour={key[3]:02d}"
                if current is not None:
                    files.append(current.finish())
                    current = None
            elif current is not None and current.rows >= rows_per_part:
                files.append(current.finish())
                current = None
            if current is None:
                index = part_counts.get(current_dir, 0)
                part_counts[current_dir] = index + 1
                current = _OpenPart(dest, f"{current_dir}/part-{tag}-{index:05d}.{ext}", fmt)
            current.write(item, dt)
            count += 1
            if not s <= dt < e:
                outside += 1
            for status_field in BODY_STATUS_FIELDS:
                if status_field in item:
                    status = item[status_field]
                    counts = body_stats.setdefault(status_field, {})
                    label = "null" if status is None else str(status)
                    counts[label] = counts.get(label, 0) + 1
            if on_progress is not None and count % PROGRESS_EVERY == 0:
                on_progress(count)
        if current is not None:
            files.append(current.finish())
            current = None
    except BaseException as exc:
        if current is not None:
            current.abort(exc)
        raise

    if outside:
        log.warning(
            "%d of %d logs lie outside the window [%s, %s)", outside, count, format_ts(s), format_ts(e)
        )

    # Remove what an earlier attempt of this window wrote and this one did not.
    written = {dest.norm(dest.full(f["path"])) for f in files}
    pattern = _part_name_re(tag)
    manifests_prefix = dest.norm(dest.full(f"{gw_dir}/{MANIFEST_DIR}")) + "/"
    removed = 0
    for found in dest.find(gw_dir):
        norm = dest.norm(found)
        if norm in written or norm.startswith(manifests_prefix):
            continue
        if pattern.match(norm.rsplit("/", 1)[-1]):
            dest.remove_full(found)
            dest.prune_empty_dirs(found, gw_dir)
            removed += 1
    if removed:
        log.info("removed %d stale part file(s) of window %s", removed, tag)

    for f in files:
        f["uri"] = dest.uri(f["path"])
    total_bytes = sum(f["bytes"] for f in files)

    from airflow_provider_aigw import __version__

    manifest: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "provider_version": __version__,
        "account_id": account_id,
        "gateway_id": gw,
        "window": {"start": format_ts(s), "end": format_ts(e)},
        "window_tag": tag,
        "filters": flt,
        "format": fmt,
        "partition_by": partition_by,
        "rows_per_part": rows_per_part,
        "count": count,
        "bytes": total_bytes,
        "files": [
            {k: f[k] for k in ("path", "uri", "rows", "bytes", "sha256", "min_created_at", "max_created_at")}
            for f in files
        ],
    }
    if body_stats:
        manifest["body_stats"] = body_stats
    if outside:
        manifest["outside_window"] = outside
    manifest["created_at"] = format_ts(datetime.now(timezone.utc))
    manifest["complete"] = True

    body = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    dest.write_bytes(manifest_rel, body.encode("utf-8"))
    if on_progress is not None:
        on_progress(count)
    return ExportResult(manifest=manifest, manifest_uri=dest.uri(manifest_rel))


# --- reading back -------------------------------------------------------------------------------


def _read_uri_bytes(uri: str | ObjectStoragePath) -> bytes:
    dest = _open_destination(uri)
    try:
        data: bytes = dest.fs.cat_file(dest.root)
    except FileNotFoundError as exc:
        raise AIGatewayError(f"{dest.uri_root!r} does not exist") from exc
    except Exception as exc:
        raise AIGatewayError(f"cannot read {dest.uri_root!r}: {type(exc).__name__}: {exc}") from exc
    return data


def read_manifest(uri_or_path: str | ObjectStoragePath | Mapping[str, Any]) -> dict[str, Any]:
    """Load an export manifest.

    :param uri_or_path: the manifest URL / ``ObjectStoragePath``, or the export's XCom summary
        (a dict with ``manifest_uri``), or an already loaded manifest (returned as a copy).
    :raises AIGatewayError: the manifest is missing, unreadable or not a complete manifest.
    """
    if isinstance(uri_or_path, Mapping):
        if "files" in uri_or_path and "complete" in uri_or_path:
            return dict(uri_or_path)
        uri = uri_or_path.get("manifest_uri")
        if not uri:
            raise AIGatewayInputError("manifest dict has neither 'manifest_uri' nor manifest content")
        return read_manifest(uri)
    data = _read_uri_bytes(uri_or_path)
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise AIGatewayError(f"manifest {str(uri_or_path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("complete") is not True:
        raise AIGatewayError(f"{str(uri_or_path)!r} is not a complete export manifest")
    return manifest


def iter_file_records(uri: str | ObjectStoragePath) -> Iterator[dict[str, Any]]:
    """Yield the log dicts of one exported part file (format taken from its name).

    Parquet rows come back as described in :func:`~.formats.parquet_row_to_record`.
    """
    dest = _open_destination(uri)
    fmt = format_of(dest.root)
    try:
        raw = dest.fs.open(dest.root, "rb")
    except FileNotFoundError as exc:
        raise AIGatewayError(f"{dest.uri_root!r} does not exist") from exc
    with raw:
        if fmt == "parquet":
            yield from read_parquet_records(raw)
        else:
            yield from read_jsonl_records(raw, gzipped=fmt == "jsonl.gz")


def iter_manifest_records(
    manifest: str | ObjectStoragePath | Mapping[str, Any], *, verify: bool = False
) -> Iterator[dict[str, Any]]:
    """Yield every log of an export, file by file in manifest order.

    :param manifest: as accepted by :func:`read_manifest`.
    :param verify: check each file's sha256 and byte count against the manifest first (reads
        each file twice).
    """
    m = read_manifest(manifest)
    for f in m["files"]:
        if verify:
            verify_file(f)
        yield from iter_file_records(f["uri"])


def verify_file(entry: Mapping[str, Any]) -> None:
    """Check one manifest file entry's byte count and sha256 against the stored object."""
    dest = _open_destination(entry["uri"])
    sha = hashlib.sha256()
    size = 0
    with dest.fs.open(dest.root, "rb") as raw:
        while chunk := raw.read(1024 * 1024):
            sha.update(chunk)
            size += len(chunk)
    if size != entry["bytes"] or sha.hexdigest() != entry["sha256"]:
        raise AIGatewayError(
            f"{entry['uri']!r} does not match its manifest entry "
            f"(bytes {size} vs {entry['bytes']}, sha256 {sha.hexdigest()} vs {entry['sha256']})"
        )
