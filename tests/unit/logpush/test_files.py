"""The files of a window (date folders, names, edges) and their records, streamed and filtered by
their own Timestamp."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import fsspec
import pytest

from airflow_provider_aigw.exceptions import AIGatewayDecryptError
from airflow_provider_aigw.logpush.files import LogpushFile, iter_records, parse_file_name, select_files

UTC = timezone.utc
START = datetime(2026, 4, 18, tzinfo=UTC)
END = datetime(2026, 4, 19, tzinfo=UTC)
FS = fsspec.filesystem("file")


def ns(text: str) -> int:
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


def write(path: Path, lines: list[Any], *, compress: bool = True) -> Path:
    """A Logpush-like file: each item a record (JSON-encoded) or a raw line (bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def record(timestamp: Any, n: int = 0) -> dict[str, Any]:
    return {"Timestamp": timestamp, "Provider": "openai", "StatusCode": 200, "N": n}


# --- names and selection ---------------------------------------------------------------------


def test_parse_file_name() -> None:
    assert parse_file_name("20260418/20260418T000210Z_20260418T000240Z_a3cfe972.log.gz") == (
        datetime(2026, 4, 18, 0, 2, 10, tzinfo=UTC),
        datetime(2026, 4, 18, 0, 2, 40, tzinfo=UTC),
    )
    for name in (
        "ownership-challenge-1a2b.txt",
        "20260418T000210Z.log.gz",
        "x_20260418T000210Z_20260418T000240Z_a.log.gz",
        "20261318T000000Z_20261318T000030Z_a.log.gz",  # month 13
    ):
        assert parse_file_name(name) is None


LAYOUT = {
    "20260416/20260416T235950Z_20260417T000020Z_a.log.gz": "the day before the day before: not listed",
    "20260417/20260417T120000Z_20260417T120030Z_b.log.gz": "before the window",
    "20260417/20260417T235929Z_20260417T235959Z_c.log.gz": "ends in the window's first second's predecessor",
    "20260417/20260417T235950Z_20260418T000020Z_d.log.gz": "spans the window's start",
    "20260418/20260418T000210Z_20260418T000240Z_e.log.gz": "inside",
    "20260418/gateway-a/20260418T120000Z_20260418T120030Z_f.log.gz": "inside, one folder down",
    "20260418/batch-without-a-parsable-name.log.gz": "name does not parse: read, filtered by record",
    "20260418/ownership-challenge-1a2b.txt": "not log data",
    "20260418/20260418T235950Z_20260419T000020Z_g.log.gz": "spans the window's end",
    "20260419/20260419T000000Z_20260419T000030Z_h.log.gz": "starts at the window's end",
    "20260419/20260419T000300Z_20260419T000330Z_i.log.gz": "after the window",
    "not-a-date/20260418T000210Z_20260418T000240Z_j.log.gz": "not a date folder",
    "20260418T060000Z_20260418T060030Z_k.log.gz": "directly under the root (a job without {DATE})",
}


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    for name in LAYOUT:
        write(tmp_path / name, [record(0)])
    return tmp_path


def names(files: list[LogpushFile]) -> list[str]:
    return [f.path.rsplit("/", 1)[-1] for f in files]


def test_select_files_of_a_window_by_folder_and_name(layout: Path) -> None:
    files = select_files(FS, str(layout), START, END, margin=timedelta(0))
    assert names(files) == [
        "batch-without-a-parsable-name.log.gz",  # no range: first
        "20260417T235950Z_20260418T000020Z_d.log.gz",
        "20260418T000210Z_20260418T000240Z_e.log.gz",
        "20260418T060000Z_20260418T060030Z_k.log.gz",
        "20260418T120000Z_20260418T120030Z_f.log.gz",
        "20260418T235950Z_20260419T000020Z_g.log.gz",
    ]
    by_name = {f.path.rsplit("/", 1)[-1]: f for f in files}
    assert by_name["batch-without-a-parsable-name.log.gz"].start is None
    d = by_name["20260417T235950Z_20260418T000020Z_d.log.gz"]
    assert (d.start, d.end) == (START - timedelta(seconds=10), START + timedelta(seconds=20))
    assert d.size == (layout / "20260417/20260417T235950Z_20260418T000020Z_d.log.gz").stat().st_size


def test_the_margin_reads_files_named_just_outside_the_window(layout: Path) -> None:
    files = select_files(FS, str(layout), START, END)  # default margin: 5 minutes
    assert set(names(files)) - set(names(select_files(FS, str(layout), START, END, margin=timedelta(0)))) == {
        "20260417T235929Z_20260417T235959Z_c.log.gz",
        "20260419T000000Z_20260419T000030Z_h.log.gz",
        "20260419T000300Z_20260419T000330Z_i.log.gz",
    }


def test_a_window_of_a_few_seconds_picks_the_files_that_overlap_it(layout: Path) -> None:
    second = START + timedelta(seconds=20)
    files = select_files(FS, str(layout), second, second + timedelta(seconds=1), margin=timedelta(0))
    # d ends at 00:00:20 (that second included)
    assert names(files) == ["batch-without-a-parsable-name.log.gz", "20260417T235950Z_20260418T000020Z_d.log.gz"]


def test_an_empty_root_has_no_files(tmp_path: Path) -> None:
    assert select_files(FS, str(tmp_path), START, END) == []


# --- records ---------------------------------------------------------------------------------


def test_records_of_a_file_spanning_the_start_are_filtered_by_their_own_timestamp(tmp_path: Path) -> None:
    path = write(
        tmp_path / "20260417/20260417T235950Z_20260418T000020Z_d.log.gz",
        [
            record(ns("2026-04-17T23:59:55.000+0000"), 1),  # unixnano
            record("2026-04-17T23:59:59.999Z", 2),  # rfc3339 with ms
            record(ns("2026-04-18T00:00:00.000+0000") // 10**9, 3),  # unix: exactly the start
            record("2026-04-18T00:00:15Z", 4),  # rfc3339
        ],
    )
    got = list(iter_records(FS, str(path), START, END))
    assert [(line, r["N"]) for line, _ns, r in got] == [(3, 3), (4, 4)]
    assert [t for _line, t, _r in got] == [ns("2026-04-18T00:00:00.000+0000"), ns("2026-04-18T00:00:15.000+0000")]


def test_records_of_a_file_spanning_the_end_are_filtered_by_their_own_timestamp(tmp_path: Path) -> None:
    path = write(
        tmp_path / "g.log.gz",
        [record(ns("2026-04-18T23:59:59.999+0000"), 1), record(ns("2026-04-19T00:00:00.000+0000"), 2)],
    )
    assert [r["N"] for _l, _t, r in iter_records(FS, LogpushFile(str(path), None, None, None), START, END)] == [1]


def test_a_window_read_from_its_files_is_exact(tmp_path: Path) -> None:
    # batches of 40 s over 00:00-00:10, records every 7 s; window [00:01:03.5, 00:04:17)
    first = datetime(2026, 4, 18, tzinfo=UTC)
    times = [first + timedelta(seconds=7 * i, milliseconds=i % 1000) for i in range(86)]
    for batch in range(15):
        lo, hi = first + timedelta(seconds=40 * batch), first + timedelta(seconds=40 * (batch + 1))
        name = f"{lo:%Y%m%d}/{lo:%Y%m%dT%H%M%SZ}_{hi:%Y%m%dT%H%M%SZ}_{batch:08x}.log.gz"
        write(tmp_path / name, [record(f"{t:%Y-%m-%dT%H:%M:%S.%f}Z", i) for i, t in enumerate(times) if lo <= t < hi])
    start, end = first + timedelta(minutes=1, seconds=3, milliseconds=500), first + timedelta(minutes=4, seconds=17)
    files = select_files(FS, str(tmp_path), start, end, margin=timedelta(0))
    assert len(files) == 6  # 00:00:40-00:01:20 ... 00:04:00-00:04:40
    read = [r["N"] for f in files for _l, _t, r in iter_records(FS, f, start, end)]
    assert read == [i for i, t in enumerate(times) if start <= t < end]


def test_plain_files_are_read_too_whatever_their_name(tmp_path: Path) -> None:
    plain = write(tmp_path / "a.log.gz", [record(ns("2026-04-18T01:00:00.000+0000"))], compress=False)
    packed = write(tmp_path / "b.json", [record(ns("2026-04-18T01:00:00.000+0000"))], compress=True)
    for path in (plain, packed):
        assert len(list(iter_records(FS, str(path), START, END))) == 1


def test_a_line_that_is_not_a_record_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path / "x.log.gz",
        [
            record(ns("2026-04-18T01:00:00.000+0000"), 1),
            b"{not json",
            b"[1, 2]",
            {"Provider": "openai"},
            b"   ",
            record("yesterday", 5),
            record(ns("2026-04-18T01:00:01.000+0000"), 6),
        ],
    )
    records = iter_records(FS, str(path), START, END)
    assert next(records)[2]["N"] == 1
    with pytest.raises(AIGatewayDecryptError, match=f"^{path}, line 2: not a JSON record$") as info:
        next(records)
    assert (info.value.file, info.value.line) == (str(path), 2)

    errors: list[AIGatewayDecryptError] = []
    got = [r["N"] for _l, _t, r in iter_records(FS, str(path), START, END, on_error=errors.append)]
    assert got == [1, 6]
    assert [(e.line, e.field) for e in errors] == [(2, None), (3, None), (4, "Timestamp"), (6, "Timestamp")]
    assert str(errors[1]) == f"{path}, line 3: a JSON list, not a record"
    assert str(errors[2]) == f"{path}, line 4: the record has no Timestamp"


def test_a_truncated_file_yields_what_precedes_the_break_then_an_error(tmp_path: Path) -> None:
    lines = [record(ns("2026-04-18T01:00:00.000+0000") + i * 10**9, i) for i in range(2000)]
    path = write(tmp_path / "cut.log.gz", lines)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    errors: list[AIGatewayDecryptError] = []
    got = [r["N"] for _l, _t, r in iter_records(FS, str(path), START, END, on_error=errors.append)]
    assert 0 < len(got) < 2000 and got == list(range(len(got)))
    assert len(errors) == 1 and "the file breaks off after line" in str(errors[0])
    with pytest.raises(AIGatewayDecryptError, match="breaks off"):
        list(iter_records(FS, str(path), START, END))


def test_a_damaged_gzip_stream_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    # zlib-ng inflates the files; its error for damaged data is not zlib's
    lines = [record(ns("2026-04-18T01:00:00.000+0000") + i * 10**9, i) for i in range(2000)]
    path = write(tmp_path / "damaged.log.gz", lines)
    packed = path.read_bytes()
    path.write_bytes(packed[:100] + bytes(50) + packed[150:])  # "invalid distance too far back"
    errors: list[AIGatewayDecryptError] = []
    got = [r["N"] for _l, _t, r in iter_records(FS, str(path), START, END, on_error=errors.append)]
    assert got == list(range(len(got))) and len(got) < 2000
    assert len(errors) == 1 and errors[0].file == str(path) and errors[0].line == len(got) + 1
    assert str(errors[0]).startswith(f"{path}, line {len(got) + 1}: the file breaks off after line {len(got)}")
