"""One import of Logpush files: the records of a window, decrypted, mapped and committed as an export.

The walk: :func:`~.files.select_files` (date folders, names) -> :func:`~.files.iter_records`
(streamed, filtered by each record's own ``Timestamp``, each file's size and SHA-256 taken while
reading) -> the gateway's records -> batches whose wrapped keys are unwrapped back to back ->
:func:`~.records.to_log` with a synthetic ``id`` -> :func:`~airflow_provider_aigw.export.writer.export_logs`,
the export's own commit protocol (exclusive, atomic, idempotent per window, never shrinking
unless asked). The manifest records ``source: "logpush"`` and, under ``logpush``, every file read.

Logpush records carry no log id, while the writer matches rows by id to union re-runs: each row
gets ``logpush-`` and the SHA-256 (32 hex digits) of its decrypted content, ``Timestamp`` to the
nanosecond included. It does not depend on the file, the encryption or the run, so a re-run (late
files, a repeated delivery) unions exactly; two records identical in every field and nanosecond
are taken for one log delivered twice.

With ``max_workers`` above 1, files are decrypted in that many processes (started fresh, so each
one loads the key from its PEM: the key itself never pickles), a few files ahead of the writer,
in file order; each process keeps its own cache of unwrapped keys, so no wrapped key is unwrapped
twice in a process. Memory stays flat: a record at a time, or a few files of rows with workers.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_aigw.exceptions import AIGatewayDecryptError
from airflow_provider_aigw.export.destination import open_destination, resolve_destination, strip_userinfo
from airflow_provider_aigw.export.writer import export_logs
from airflow_provider_aigw.logpush.decrypt import EnvelopeDecryptor, LogpushPrivateKey
from airflow_provider_aigw.logpush.files import DEFAULT_MARGIN, FileDigest, LogpushFile, iter_records, select_files
from airflow_provider_aigw.logpush.records import ENCRYPTED_FIELDS, GATEWAY_FIELD, to_log
from airflow_provider_aigw.timestamps import format_time, utc_datetime
from airflow_provider_aigw.validation import validate_choice, validate_positive

__all__ = [
    "ID_PREFIX",
    "MAX_WORKERS",
    "ON_DECRYPT_ERROR",
    "LogpushImport",
    "import_logpush",
    "synthetic_id",
]

log = logging.getLogger(__name__)

#: What an unreadable record does to the task: fail it (after writing the rest) or warn.
ON_DECRYPT_ERROR = ("fail", "warn")
MAX_WORKERS = 64
ID_PREFIX = "logpush-"
#: Unreadable records named (file and line) in messages and the manifest; the rest are counted.
MAX_LISTED_ERRORS = 20
#: Records read, then their wrapped keys unwrapped back to back (warm caches), then mapped.
PRELOAD_BATCH = 64
#: Files handed to the workers ahead of the writer, per worker.
FILES_AHEAD = 2


def synthetic_id(log_record: dict[str, Any]) -> str:
    """The stable id of a Logpush row: ``logpush-`` + SHA-256 of its decrypted content (32 hex)."""
    text = json.dumps(log_record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return ID_PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass
class _Unreadable:
    """Records that did not become rows: counted, the first few named by file and line."""

    count: int = 0
    listed: list[str] = field(default_factory=list)

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.listed) < MAX_LISTED_ERRORS:
            self.listed.append(message)

    def merge(self, other: _Unreadable) -> None:
        self.count += other.count
        self.listed.extend(other.listed[: MAX_LISTED_ERRORS - len(self.listed)])


@dataclass
class _FileRead:
    """What reading one file gave besides its rows."""

    path: str
    digest: FileDigest = field(default_factory=FileDigest)
    rows: int = 0
    other_gateways: int = 0
    unreadable: _Unreadable = field(default_factory=_Unreadable)


def _file_logs(
    fs: Any,
    file: LogpushFile,
    start: datetime,
    end: datetime,
    gateway: str,
    decryptor: EnvelopeDecryptor,
    read: _FileRead,
) -> Iterator[dict[str, Any]]:
    """The rows (Logs API shape, with their synthetic id) of one file's records of the window."""
    batch: list[tuple[int, int, dict[str, Any]]] = []

    def flush() -> Iterator[dict[str, Any]]:
        decryptor.preload(record.get(name) for _line, _ns, record in batch for name in ENCRYPTED_FIELDS)
        for line, ns, record in batch:
            try:
                item = to_log(record, decryptor, time_ns=ns)
            except AIGatewayDecryptError as err:
                read.unreadable.add(str(err.located(file.path, line)))
                continue
            item["id"] = synthetic_id(item)
            read.rows += 1
            yield item
        batch.clear()

    def unreadable(err: AIGatewayDecryptError) -> None:
        read.unreadable.add(str(err))

    for line, ns, record in iter_records(fs, file, start, end, on_error=unreadable, digest=read.digest):
        owner = record.get(GATEWAY_FIELD)
        if owner is not None and owner != gateway:  # a job of the whole account: other gateways' logs
            read.other_gateways += 1
            continue
        batch.append((line, ns, record))
        if len(batch) == PRELOAD_BATCH:
            yield from flush()
    yield from flush()


# --- worker processes ----------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _worker_init(private_pem: bytes, passphrase: bytes | None, fs: Any) -> None:
    _WORKER["decryptor"] = EnvelopeDecryptor(LogpushPrivateKey.from_pem(private_pem, passphrase))
    _WORKER["fs"] = fs


def _worker_read(
    file: LogpushFile, start: datetime, end: datetime, gateway: str
) -> tuple[list[dict[str, Any]], _FileRead]:
    read = _FileRead(file.path)
    rows = list(_file_logs(_WORKER["fs"], file, start, end, gateway, _WORKER["decryptor"], read))
    return rows, read


# --- the import ----------------------------------------------------------------------------------


@dataclass
class LogpushImport:
    """What one import wrote, and what it could not read.

    :param summary: the manifest summary (the operator's XCom), with ``source`` and the number of
        files read and records unreadable.
    :param gateway: the gateway whose logs were imported.
    :param url: the destination, without user info.
    :param unreadable: how many records of the window did not become rows.
    :param unreadable_listed: the first of those, by file and line.
    """

    summary: dict[str, Any]
    gateway: str
    url: str
    unreadable: int = 0
    unreadable_listed: list[str] = field(default_factory=list)

    def check_unreadable(self, on_decrypt_error: str, logger: Any = log) -> None:
        """Fail (``"fail"``) or warn (``"warn"``) when records could not be read or decrypted.

        :raises AIGatewayDecryptError: with ``"fail"``, when any record did not become a row.
        """
        if not self.unreadable:
            return
        listed = "; ".join(self.unreadable_listed)
        more = self.unreadable - len(self.unreadable_listed)
        message = (
            f"{self.unreadable} Logpush record(s) of the window could not be read or decrypted and are not in "
            f"the archive: {listed}{f'; and {more} more' if more > 0 else ''}"
        )
        if validate_choice(on_decrypt_error, ON_DECRYPT_ERROR, param="on_decrypt_error") == "fail":
            raise AIGatewayDecryptError(
                f"{message}. The other rows and the manifest are written ({self.summary['manifest_uri']}); check "
                "the private key and the files, re-run to union what decrypts then, or pass "
                "on_decrypt_error='warn' to accept the import as it is"
            )
        logger.warning("%s", message)


def import_logpush(
    source: Any,
    destination: Any,
    *,
    private_pem: str | bytes,
    passphrase: str | bytes | None = None,
    gateway_id: str,
    start: datetime,
    end: datetime,
    format: str = "jsonl.gz",
    max_workers: int = 1,
    margin: Any = DEFAULT_MARGIN,
    logger: Any = log,
    **writer_options: Any,
) -> LogpushImport:
    """Import the Logpush records of ``[start, end)`` of one gateway into an export archive.

    The key is loaded and the destination probed before any file is read. Every record of the
    window that reads and decrypts becomes one row; the others are counted and named in the
    result (:meth:`LogpushImport.check_unreadable`) and the manifest, never written.

    :param source: the Logpush job's destination (the parent of its date folders): URL or
        ``ObjectStoragePath`` (``s3://aws_conn@bucket/prefix``, ``gs://...``, ``file://...``).
    :param destination: the archive: URL or ``ObjectStoragePath``.
    :param private_pem: the RSA private key (PEM) the gateway's public key belongs to.
    :param passphrase: the PEM's passphrase, when it is encrypted.
    :param gateway_id: the gateway; records of other gateways (an account-wide job) are skipped.
    :param start: window start (aware), included.
    :param end: window end (aware), excluded.
    :param format: an export format (``jsonl``, ``jsonl.gz``, ``parquet``).
    :param max_workers: processes decrypting files (1: in this process).
    :param margin: how far outside the window a file's name may lie and still be read.
    :param logger: where progress goes (the task's logger).
    :param writer_options: ``partition_by``, ``rows_per_part``, ``bytes_per_part``,
        ``allow_shrink`` and ``owner`` of :func:`~airflow_provider_aigw.export.writer.export_logs`.
    """
    workers = validate_positive(max_workers, param="max_workers", maximum=MAX_WORKERS)
    start, end = utc_datetime(start, param="start"), utc_datetime(end, param="end")  # stdlib, not pendulum
    key = LogpushPrivateKey.from_pem(private_pem, passphrase)
    origin = open_destination(source)
    target = resolve_destination(destination, check_writable=True)
    url = strip_userinfo(str(target))
    files = select_files(origin.fs, origin.root, start, end, margin=margin)
    logger.info(
        "importing the Logpush records of gateway %r, [%s, %s), from %d file(s) under %s (key %r, %d worker(s)) to %s",
        gateway_id,
        format_time(start),
        format_time(end),
        len(files),
        origin.plain_root,
        key,
        workers,
        url,
    )
    reads: list[_FileRead] = []
    if workers == 1:
        rows = _read_here(origin.fs, files, start, end, gateway_id, EnvelopeDecryptor(key), reads)
    else:
        pem = private_pem.encode("ascii") if isinstance(private_pem, str) else bytes(private_pem)
        secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
        rows = _read_in_workers(origin.fs, files, start, end, gateway_id, workers, pem, secret, reads)
    unreadable = _Unreadable()

    def provenance() -> dict[str, Any]:
        for read in reads:
            unreadable.merge(read.unreadable)
        return {
            "source": "logpush",
            "logpush": {
                "root": origin.plain_root,
                "files": [
                    {
                        "uri": f"{origin.plain_root}/{origin.norm(r.path)[len(origin.root) :].lstrip('/')}",
                        "size": r.digest.size,
                        "sha256": r.digest.sha256,
                        "rows": r.rows,
                    }
                    for r in reads
                ],
                "other_gateways": sum(r.other_gateways for r in reads),
                "unreadable": unreadable.count,
                "unreadable_listed": unreadable.listed,
            },
        }

    result = export_logs(
        rows,
        target,
        gateway_id=gateway_id,
        start=start,
        end=end,
        format=format,
        provenance=provenance,
        on_progress=lambda n: logger.info("%d logs written", n),
        **writer_options,
    )
    summary = result.summary()
    summary["source"] = "logpush"
    summary["source_files"] = len(reads)
    summary["unreadable"] = unreadable.count
    logger.info(
        "import done: %d logs from %d file(s) (%d record(s) unreadable), %d files, %d bytes, manifest %s",
        result.count,
        len(reads),
        unreadable.count,
        summary["files"],
        summary["bytes"],
        summary["manifest_uri"],
    )
    return LogpushImport(summary, gateway_id, url, unreadable.count, unreadable.listed)


def _read_here(
    fs: Any,
    files: Iterable[LogpushFile],
    start: datetime,
    end: datetime,
    gateway: str,
    decryptor: EnvelopeDecryptor,
    reads: list[_FileRead],
) -> Iterator[dict[str, Any]]:
    for file in files:
        read = _FileRead(file.path)
        reads.append(read)
        yield from _file_logs(fs, file, start, end, gateway, decryptor, read)


def _read_in_workers(
    fs: Any,
    files: list[LogpushFile],
    start: datetime,
    end: datetime,
    gateway: str,
    workers: int,
    pem: bytes,
    passphrase: bytes | None,
    reads: list[_FileRead],
) -> Iterator[dict[str, Any]]:
    # spawn, not fork: the task has threads (the window lock's keep-alive, fsspec's event loop)
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_worker_init, initargs=(pem, passphrase, fs)) as pool:
        pending: deque[Any] = deque()
        queue = iter(files)
        for file in queue:
            pending.append(pool.apply_async(_worker_read, (file, start, end, gateway)))
            if len(pending) >= workers * FILES_AHEAD:
                break
        while pending:
            rows, read = pending.popleft().get()
            for file in queue:
                pending.append(pool.apply_async(_worker_read, (file, start, end, gateway)))
                break
            reads.append(read)
            yield from rows
