"""The Logpush files of a window, and their records, read line by line.

A Logpush job with ``{DATE}`` in its path writes daily folders ``YYYYMMDD/`` of objects named
``<start>_<end>_<hash>.log.gz`` (``20260418T000210Z_20260418T000240Z_a3cfe972.log.gz``; the
general Logpush naming, **unverified** for ``ai_gateway_events``). :func:`select_files` picks the
files of a window by folder and name; :func:`iter_records` streams one file's records and keeps
those whose own ``Timestamp`` lies in the window, so the window is exact whatever the files span.

Tolerant where the layout is not pinned down: files directly under the root and at any depth of
a date folder count; a file whose name does not parse is read (its records filtered one by one)
when it looks like log data; a file is gzip when its bytes say so, whatever its name.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from zlib_ng import gzip_ng, zlib_ng

from airflow_provider_aigw.exceptions import AIGatewayDecryptError
from airflow_provider_aigw.jsoncodec import decode_json
from airflow_provider_aigw.logpush.records import record_time_ns

__all__ = ["DEFAULT_MARGIN", "FileDigest", "LogpushFile", "iter_records", "parse_file_name", "select_files"]

#: Files whose names' range lies this close outside the window are read too (their records are
#: filtered one by one): covers names that tell when a batch was pushed rather than the times of
#: its logs (**unverified**).
DEFAULT_MARGIN = dt.timedelta(minutes=5)

_UTC = dt.timezone.utc
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=_UTC)
_NAME = re.compile(r"(\d{8}T\d{6}Z)_(\d{8}T\d{6}Z)_", re.ASCII)
_DAY_FOLDER = re.compile(r"\d{8}", re.ASCII)
# Names that hold log data when they do not parse (not e.g. Logpush's ownership-challenge .txt).
_LOG_SUFFIXES = (".log.gz", ".log", ".gz", ".json", ".ndjson", ".jsonl", ".json.gz", ".ndjson.gz", ".jsonl.gz")
_GZIP_MAGIC = b"\x1f\x8b"
# What a gzip stream that breaks off or is damaged raises: zlib-ng's error is not zlib's (its
# stubs declare the class an instance).
_BROKEN_STREAM: tuple[type[BaseException], ...] = (EOFError, OSError, zlib_ng.error)  # type: ignore[assignment]


@dataclass(frozen=True)
class LogpushFile:
    """One Logpush object: its path on the filesystem, its size and the range its name gives.

    ``start`` and ``end`` are the name's times (whole seconds, ``end`` included), ``None`` when
    the name does not parse.
    """

    path: str
    size: int | None
    start: dt.datetime | None
    end: dt.datetime | None


@dataclass
class FileDigest:
    """Size and SHA-256 of a file's bytes as read (compressed, whole file), filled by
    :func:`iter_records`: what a manifest records of the files it was made from."""

    size: int = 0
    sha256: str = ""
    _hash: Any = field(default_factory=hashlib.sha256, init=False, repr=False, compare=False)

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def finish(self) -> None:
        self.sha256 = self._hash.hexdigest()
        self._hash = None  # done: the digest now pickles (a worker process sends it back)


class _Tally(io.RawIOBase):
    """A readable stream that counts and hashes every byte read from ``raw``."""

    def __init__(self, raw: Any, digest: FileDigest) -> None:
        self._raw = raw
        self._digest = digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        size = len(data)
        buffer[:size] = data
        self._digest.update(data)
        return size

    def drain(self) -> None:
        """Read the rest: the digest covers the whole file however far its records were read."""
        while self.read(1 << 20):
            pass


def parse_file_name(name: str) -> tuple[dt.datetime, dt.datetime] | None:
    """``(start, end)`` of a Logpush object's name (its last path segment), or None."""
    match = _NAME.match(name.rsplit("/", 1)[-1])
    if match is None:
        return None
    try:
        start, end = (dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=_UTC) for text in match.groups())
    except ValueError:
        return None
    return start, end


def _day(name: str) -> dt.date | None:
    if not _DAY_FOLDER.fullmatch(name):
        return None
    try:
        return dt.datetime.strptime(name, "%Y%m%d").date()
    except ValueError:
        return None


def select_files(
    fs: Any, root: str, start: dt.datetime, end: dt.datetime, *, margin: dt.timedelta = DEFAULT_MARGIN
) -> list[LogpushFile]:
    """The files under ``root`` that may hold records of ``[start, end)``, oldest name first.

    Lists ``root`` once, then each date folder from the day before ``start - margin`` (a file
    may span midnight) to the day of ``end + margin``. A file is kept when the range of its name
    comes within ``margin`` of the window, or when its name does not parse but looks like log data.

    :param fs: an fsspec filesystem (``ObjectStoragePath.fs``, ``fsspec.filesystem("s3")``, ...).
    :param root: the job's destination path on ``fs`` (the parent of the date folders).
    :param start: the window's start (aware), included.
    :param end: the window's end (aware), excluded.
    :param margin: how far outside the window a file's name may lie and still be read.
    """
    low, high = start - margin, end + margin
    first_day, last_day = (low - dt.timedelta(days=1)).date(), high.date()
    root = root.rstrip("/")
    fs.invalidate_cache(root)  # a re-run must see the files delivered since (s3fs caches listings)
    found: dict[str, int | None] = {}
    for entry in fs.ls(root, detail=True):
        path = entry["name"].rstrip("/")
        name = path.rsplit("/", 1)[-1]
        if entry.get("type") == "directory":
            day = _day(name)
            if day is not None and first_day <= day <= last_day:
                fs.invalidate_cache(path)  # the folder's listing too: open() checks a new file against it
                for sub, info in fs.find(path, detail=True).items():
                    found[sub] = info.get("size")
        else:
            found[path] = entry.get("size")
    files: list[LogpushFile] = []
    for path, size in found.items():
        named = parse_file_name(path)
        if named is None:
            if path.lower().endswith(_LOG_SUFFIXES):
                files.append(LogpushFile(path, size, None, None))
            continue
        name_start, name_end = named
        # the name's end second is included: its logs reach up to name_end + 1 s
        if name_start < high and name_end + dt.timedelta(seconds=1) > low:
            files.append(LogpushFile(path, size, name_start, name_end))
    files.sort(key=lambda f: (f.start or _EPOCH, f.path))
    return files


def _ns(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def iter_records(
    fs: Any,
    file: LogpushFile | str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    on_error: Callable[[AIGatewayDecryptError], None] | None = None,
    digest: FileDigest | None = None,
) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """``(line number, Timestamp in ns, record)`` of the file's records in ``[start, end)``,
    streamed (gzip or plain), one line at a time.

    A line that is not a JSON object with a usable ``Timestamp`` is an error naming the file and
    line: raised, or passed to ``on_error`` and skipped. A file that breaks off (a truncated gzip
    stream) is an error too, after the records before the break; with ``on_error`` the file
    ends there.

    :param fs: the filesystem of :func:`select_files`.
    :param file: the file, or its path.
    :param start: the window's start (aware), included.
    :param end: the window's end (aware), excluded.
    :param on_error: receives each error instead of it being raised.
    :param digest: filled with the file's size and SHA-256 once its records are read (the whole
        file is read for it, past a break too).
    """
    path = file.path if isinstance(file, LogpushFile) else file
    low, high = _ns(start), _ns(end)

    def fail(message: str, line: int, field: str | None = None) -> None:
        error = AIGatewayDecryptError(f"{path}, line {line}: {message}", field=field, file=path, line=line)
        if on_error is None:
            raise error
        on_error(error)

    with fs.open(path, "rb") as handle:
        tally = None if digest is None else _Tally(handle, digest)
        raw: Any = handle if tally is None else io.BufferedReader(tally, 1 << 20)
        if tally is None:
            head = raw.read(2)
            raw.seek(0)
        else:
            head = raw.peek(2)[:2]
        # zlib-ng inflates in about 80% of zlib's time
        stream = gzip_ng.GzipNGFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
        number = 0
        try:
            for number, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = decode_json(line)
                except ValueError:
                    fail("not a JSON record", number)
                    continue
                if type(record) is not dict:
                    fail(f"a JSON {type(record).__name__}, not a record", number)
                    continue
                try:
                    ns = record_time_ns(record)
                except AIGatewayDecryptError as err:
                    fail(str(err), number, err.field)
                    continue
                if low <= ns < high:
                    yield number, ns, record
        except _BROKEN_STREAM as err:
            fail(f"the file breaks off after line {number} ({type(err).__name__})", number + 1)
        if tally is not None and digest is not None:
            tally.drain()
            digest.finish()
