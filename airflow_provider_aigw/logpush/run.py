"""One import of Logpush files: the records of a window, decrypted, mapped and committed as an export.

The walk: :func:`~.files.select_files` (date folders, names) -> :func:`~.files.iter_records`
(streamed, filtered by each record's own ``Timestamp``, each file's size and SHA-256 taken while
reading) -> the gateway's records -> batches whose wrapped keys are unwrapped back to back ->
:func:`~.records.to_log` with a synthetic ``id`` -> :func:`~airflow_provider_aigw.export.writer.export_logs`,
the export's own commit protocol (exclusive, atomic, idempotent per window, never shrinking
unless asked). The manifest records ``source: "logpush"`` and, under ``logpush``, every file read.

Logpush records carry no log id, while the writer matches rows by id to union re-runs: each row
gets ``logpush-`` and the SHA-256 (32 hex digits) of its decrypted content (the row's fields, and
the plaintexts of the encrypted fields as decrypted), ``Timestamp`` to the nanosecond included.
It does not depend on the file, the encryption or the run, so a re-run (late files, a repeated
delivery) unions exactly; two records identical in every field and nanosecond are taken for one
log delivered twice.

With ``max_workers`` 1, one worker process does the RSA operations and nothing else: the files
are parsed in a thread of the task's process, which sends each batch's wrapped keys to the worker
as soon as the batch is parsed, a few batches ahead; the task then opens and maps the records
with the AES keys the worker sent back (in memory, over the pool's pipe) and writes the archive,
on another core. The worker's RSA runs back to back, as fast as a bare loop, and never waits for
a GIL. When the worker cannot be forked (below), or the task's process is daemonic (a pool's
worker, which may not start processes), the unwrapping runs in a thread instead: one thread
parses, another unwraps and opens, each a few batches ahead of the next stage and of the writer
(RSA, AES, zlib and SHA-256 release the GIL).

With ``max_workers`` above 1, files are decrypted in that many processes, a few files ahead of the
writer, in file order. Each process keeps its own cache of unwrapped keys, so no wrapped key is
unwrapped twice in a process.

The processes are forked when the task's process has one thread at that moment (on Linux): a
fork then copies no lock another thread holds, costs milliseconds, and the workers inherit the
loaded key (never pickled, never re-read). The pool is therefore started before anything that
starts a thread (fsspec's event loop for ``s3://`` and ``gs://``, the window lock's keep-alive).
Otherwise (a thread already running, or not Linux) they are spawned: each then imports the
provider, and with it Airflow (about 1.5 s here: the provider's exceptions derive from
``AirflowException``), and loads the key from its PEM, sent over the pool's pipe.

Memory is bounded: a few batches of records in each stage, or a few files of rows with workers,
and the unwrap cache (at most 4,096 keys, about 9 MiB).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import closing, suppress
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
# The row's columns made from the encrypted fields: in an id, their plaintexts stand for them.
_OPENED_COLUMNS = frozenset({"metadata", "request_body", "response_body"})
#: Files handed to the workers ahead of the writer, per worker.
FILES_AHEAD = 2
#: Batches of records (of :data:`PRELOAD_BATCH`) each reading thread may hold ready for the next stage.
BATCHES_AHEAD = 4
# Looks, 1 ms apart, for other threads to leave the task list before the pool is spawned instead.
_THREAD_EXIT_CHECKS = 20


def synthetic_id(log_record: dict[str, Any], opened: Sequence[Any]) -> str:
    """The stable id of a Logpush row: ``logpush-`` + SHA-256 (32 hex) of its decrypted content.

    :param log_record: the row (:func:`~.records.to_log`), without ``id``.
    :param opened: the opened encrypted fields (``to_log``'s ``opened``): hashed as the plaintext
        bytes they are, not through the row's decoded bodies, which would cost a second JSON
        encoding of each body.
    """
    rest = {name: value for name, value in log_record.items() if name not in _OPENED_COLUMNS}
    digest = hashlib.sha256(
        json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode("utf-8")
    )
    for value in opened:
        if not isinstance(value, (bytes, bytearray)):  # a field that was not encrypted
            value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()
        digest.update(len(value).to_bytes(8, "big"))
        digest.update(value)
    return ID_PREFIX + digest.hexdigest()[:32]


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


def _file_batches(
    fs: Any, file: LogpushFile, start: datetime, end: datetime, gateway: str, read: _FileRead
) -> Iterator[list[tuple[int, int, dict[str, Any]] | str]]:
    """One file's records of the window and the gateway, as ``(line, ns, record)``, in batches of
    :data:`PRELOAD_BATCH`; a line that does not read is its message, in the batch in its place.

    Fills ``read.digest`` and ``read.other_gateways``; :func:`_batch_logs` the rest of ``read``
    (each of the two may run in its own thread)."""
    batch: list[tuple[int, int, dict[str, Any]] | str] = []

    def unreadable(err: AIGatewayDecryptError) -> None:
        batch.append(str(err))

    for line, ns, record in iter_records(fs, file, start, end, on_error=unreadable, digest=read.digest):
        owner = record.get(GATEWAY_FIELD)
        if owner is not None and owner != gateway:  # a job of the whole account: other gateways' logs
            read.other_gateways += 1
            continue
        batch.append((line, ns, record))
        if len(batch) >= PRELOAD_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _batch_logs(
    batch: list[tuple[int, int, dict[str, Any]] | str], decryptor: EnvelopeDecryptor, read: _FileRead
) -> list[dict[str, Any]]:
    """The rows (Logs API shape, with their synthetic id) of a batch of :func:`_file_batches`: its
    wrapped keys unwrapped back to back (unless learnt already), then each record opened and mapped."""
    decryptor.preload(_field_values(batch))
    rows = []
    for item in batch:
        if isinstance(item, str):
            read.unreadable.add(item)
            continue
        line, ns, record = item
        opened: list[Any] = []
        try:
            row = to_log(record, decryptor, time_ns=ns, opened=opened, compact_bodies=True)
        except AIGatewayDecryptError as err:
            read.unreadable.add(str(err.located(read.path, line)))
            continue
        row["id"] = synthetic_id(row, opened)
        rows.append(row)
    read.rows += len(rows)
    return rows


def _field_values(batch: list[tuple[int, int, dict[str, Any]] | str]) -> Iterator[Any]:
    """The values of the encrypted fields of a batch's records."""
    return (item[2].get(name) for item in batch if not isinstance(item, str) for name in ENCRYPTED_FIELDS)


# --- worker processes ----------------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _single_threaded() -> bool:
    """Whether this process runs one thread, Python's and any other (Linux: ``/proc/self/task``)."""
    if not sys.platform.startswith("linux"):
        return False
    for _ in range(_THREAD_EXIT_CHECKS):
        if threading.active_count() != 1:
            return False
        try:
            if len(os.listdir("/proc/self/task")) == 1:
                return True
        except OSError:
            return False
        # A thread just joined (the import's own readers, the lock's keep-alive) leaves the task
        # list a moment after Python sees it end.
        time.sleep(0.001)
    return False


def _start_pool(
    workers: int, key: LogpushPrivateKey, pem: bytes, passphrase: bytes | None, fork: bool
) -> tuple[Any, str]:
    """The worker processes and their start method: forked with the loaded key when this process
    has one thread (``fork``, :func:`_single_threaded`), else spawned with the PEM (module docstring)."""
    if fork:
        # fork passes the initializer's arguments by inheritance: the key is never pickled
        forked = multiprocessing.get_context("fork")
        return forked.Pool(workers, initializer=_worker_init, initargs=(key, None, None)), "fork"
    spawn = multiprocessing.get_context("spawn")
    return spawn.Pool(workers, initializer=_worker_init, initargs=(None, pem, passphrase)), "spawn"


def _worker_init(key: LogpushPrivateKey | None, private_pem: bytes | None, passphrase: bytes | None) -> None:
    # A forked worker inherits the task's SIGTERM handler (Airflow's on_kill): the pool ends its
    # workers with SIGTERM, which must end them, not run the task's handler in them.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if key is None:
        assert private_pem is not None
        key = LogpushPrivateKey.from_pem(private_pem, passphrase)
    _WORKER["decryptor"] = EnvelopeDecryptor(key)


class _FileBytes:
    """One file's bytes, read by the task's process, as the filesystem :func:`~.files.iter_records`
    reads in a worker: the source's filesystem (its credentials, its event loop) stays in the task."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def open(self, path: str, mode: str = "rb") -> io.BytesIO:
        return io.BytesIO(self._data)


def _worker_unwrap(wrapped: list[bytes]) -> list[bytes | str]:
    return _WORKER["decryptor"].unwrap_keys(wrapped)


def _worker_read(
    data: bytes, file: LogpushFile, start: datetime, end: datetime, gateway: str
) -> tuple[list[dict[str, Any]], _FileRead]:
    read = _FileRead(file.path)
    decryptor = _WORKER["decryptor"]
    rows: list[dict[str, Any]] = []
    for batch in _file_batches(_FileBytes(data), file, start, end, gateway, read):
        rows += _batch_logs(batch, decryptor, read)
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
    :param max_workers: processes decrypting (1: one that only unwraps keys, or a thread when it
        cannot be forked; more: each reads and decrypts whole files).
    :param margin: how far outside the window a file's name may lie and still be read.
    :param logger: where progress goes (the task's logger).
    :param writer_options: ``partition_by``, ``rows_per_part``, ``bytes_per_part``,
        ``allow_shrink`` and ``owner`` of :func:`~airflow_provider_aigw.export.writer.export_logs`.
    """
    workers = validate_positive(max_workers, param="max_workers", maximum=MAX_WORKERS)
    start, end = utc_datetime(start, param="start"), utc_datetime(end, param="end")  # stdlib, not pendulum
    key = LogpushPrivateKey.from_pem(private_pem, passphrase)
    fork = _single_threaded()
    if workers == 1 and (not fork or multiprocessing.current_process().daemon):
        # One spawned process would take ~1.5 s to start, and a daemonic process (a pool's worker)
        # may not start any: the unwrapping runs in a thread here instead.
        return _import(
            source, destination, key, None, 1, "thread", gateway_id, start, end, format, margin, logger, writer_options
        )
    pem = private_pem.encode("ascii") if isinstance(private_pem, str) else bytes(private_pem)
    secret = passphrase.encode("utf-8") if isinstance(passphrase, str) else passphrase
    # started first: before the source and the destination are opened, no thread runs yet
    pool, method = _start_pool(workers, key, pem, secret, fork)
    with pool:
        return _import(
            source,
            destination,
            key,
            pool,
            workers,
            method,
            gateway_id,
            start,
            end,
            format,
            margin,
            logger,
            writer_options,
        )


def _import(
    source: Any,
    destination: Any,
    key: LogpushPrivateKey,
    pool: Any,
    workers: int,
    method: str,
    gateway_id: str,
    start: datetime,
    end: datetime,
    format: str,
    margin: Any,
    logger: Any,
    writer_options: dict[str, Any],
) -> LogpushImport:
    """The import of :func:`import_logpush` once the key is loaded and the workers started:
    ``pool`` of ``workers`` processes started by ``method`` (one: it only unwraps keys), or None
    to decrypt in a thread."""
    origin = open_destination(source)
    target = resolve_destination(destination, check_writable=True)
    url = strip_userinfo(str(target))
    files = select_files(origin.fs, origin.root, start, end, margin=margin)
    logger.info(
        "importing the Logpush records of gateway %r, [%s, %s), from %d file(s) under %s (key %r, "
        "%d worker(s): %s) to %s",
        gateway_id,
        format_time(start),
        format_time(end),
        len(files),
        origin.plain_root,
        key,
        workers,
        method,
        url,
    )
    reads: list[_FileRead] = []
    if pool is None:
        rows = _read_in_thread(origin.fs, files, start, end, gateway_id, EnvelopeDecryptor(key), reads)
    elif workers == 1:
        rows = _read_unwrapping_in_worker(pool, origin.fs, files, start, end, gateway_id, EnvelopeDecryptor(key), reads)
    else:
        rows = _read_in_workers(pool, workers, origin.fs, files, start, end, gateway_id, reads)
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

    with closing(rows):  # the reading threads stop (or the workers' results are dropped) even when the write fails
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


def _read_in_thread(
    fs: Any,
    files: Iterable[LogpushFile],
    start: datetime,
    end: datetime,
    gateway: str,
    decryptor: EnvelopeDecryptor,
    reads: list[_FileRead],
) -> Generator[dict[str, Any], None, None]:
    """The rows of ``files``: parsed in one thread, decrypted in another, each up to
    :data:`BATCHES_AHEAD` batches ahead of the next stage. The decrypting thread spends its time
    in RSA (the GIL released); the parsing and the writer's encoding run meanwhile."""

    def decrypted(batches: Iterator[tuple[_FileRead, list[Any]]]) -> Generator[list[dict[str, Any]], None, None]:
        for read, batch in batches:
            yield _batch_logs(batch, decryptor, read)

    parsed = _parsed_batches(fs, files, start, end, gateway, reads)
    for rows in _ahead(decrypted(_ahead(parsed, "aigw-logpush-parse")), "aigw-logpush-decrypt"):
        yield from rows


def _read_unwrapping_in_worker(
    pool: Any,
    fs: Any,
    files: Iterable[LogpushFile],
    start: datetime,
    end: datetime,
    gateway: str,
    decryptor: EnvelopeDecryptor,
    reads: list[_FileRead],
) -> Generator[dict[str, Any], None, None]:
    """The rows of ``files`` with one worker process that only unwraps keys: the files are parsed
    in a thread here, which sends each batch's wrapped keys to the worker as soon as it is parsed,
    up to :data:`BATCHES_AHEAD` batches ahead; the records are then opened and mapped here with the
    AES keys the worker sent back. The worker's core does RSA back to back, as a bare loop would,
    and nothing else; the parsing, the mapping and the writing run on another core."""

    def parsed() -> Generator[tuple[_FileRead, list[Any], list[bytes], Any], None, None]:
        for read, batch in _parsed_batches(fs, files, start, end, gateway, reads):
            wrapped = decryptor.wrapped_keys(_field_values(batch))
            yield read, batch, wrapped, pool.apply_async(_worker_unwrap, (wrapped,))

    for read, batch, wrapped, unwrapped in _ahead(parsed(), "aigw-logpush-parse"):
        decryptor.learn(wrapped, unwrapped.get())
        yield from _batch_logs(batch, decryptor, read)


def _parsed_batches(
    fs: Any, files: Iterable[LogpushFile], start: datetime, end: datetime, gateway: str, reads: list[_FileRead]
) -> Generator[tuple[_FileRead, list[Any]], None, None]:
    """The parsed records of ``files`` in batches, each with the read of its file (appended to
    ``reads`` as the file is opened)."""
    for file in files:
        read = _FileRead(file.path)
        reads.append(read)
        for batch in _file_batches(fs, file, start, end, gateway, read):
            yield read, batch


def _ahead(items: Generator[Any, None, None], name: str) -> Iterator[Any]:
    """``items``, produced in a thread up to :data:`BATCHES_AHEAD` ahead of the consumer. An error
    of the thread is raised here; closing this generator stops the thread (and closes ``items``)."""
    ready: queue.Queue[Any] = queue.Queue(maxsize=BATCHES_AHEAD)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                ready.put(item)
                if stop.is_set():
                    break
            else:
                ready.put(done)
        except BaseException as err:  # handed to the consumer, raised there
            ready.put(err)
        finally:
            items.close()

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # a producer blocked on a full queue needs room to see the stop
            with suppress(queue.Empty):
                ready.get(timeout=0.1)
        thread.join()


def _read_in_workers(
    pool: Any,
    workers: int,
    fs: Any,
    files: list[LogpushFile],
    start: datetime,
    end: datetime,
    gateway: str,
    reads: list[_FileRead],
) -> Generator[dict[str, Any], None, None]:
    """The rows of ``files``, each file read here (the workers get its bytes, not the filesystem:
    an ``s3://`` one holds credentials and does not pickle) and decrypted in a worker, up to
    :data:`FILES_AHEAD` files per worker ahead of the writer, in file order."""
    pending: deque[Any] = deque()
    waiting = iter(files)

    def submit(file: LogpushFile) -> None:
        with fs.open(file.path, "rb") as handle:
            data = handle.read()
        pending.append(pool.apply_async(_worker_read, (data, file, start, end, gateway)))

    for file in waiting:
        submit(file)
        if len(pending) >= workers * FILES_AHEAD:
            break
    while pending:
        rows, read = pending.popleft().get()
        for file in waiting:
            submit(file)
            break
        reads.append(read)
        yield from rows
