"""A Logpush import end to end on local files: rows against the emulator's ground truth, the
manifest's files, unreadable records named by file and line, re-runs, late files, a file across
the window's edges, worker processes, and no key material in what the import shows."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import logging
import multiprocessing
import re
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer
from airflow_provider_aigw.emulator.logpush import LogpushEncryptor, logpush_record, write_logpush_files, write_records
from airflow_provider_aigw.exceptions import AIGatewayConfigError, AIGatewayDecryptError
from airflow_provider_aigw.export import iter_manifest_records, read_manifest
from airflow_provider_aigw.logpush import run as run_module
from airflow_provider_aigw.logpush.records import record_time_ns
from airflow_provider_aigw.logpush.run import ID_PREFIX, import_logpush
from tests.unit.logpush.conftest import KeyPair
from tests.unit.logpush.test_records import ABSENT, SHARED, api_row

UTC = timezone.utc
GW = "gw"
START = datetime(2026, 4, 18, tzinfo=UTC)
END = datetime(2026, 4, 18, 1, tzinfo=UTC)


@pytest.fixture
def emu() -> EmulatorServer:
    server = EmulatorServer()
    server.seed_logs(GW, 120, START, END, seed=5)
    server.seed_logs(GW, 10, END, END + timedelta(minutes=20), seed=6)  # after the window
    return server


def run(source: Path, dest: Path, pair: KeyPair, **options: Any) -> Any:
    options.setdefault("start", START)
    options.setdefault("end", END)
    return import_logpush(
        source.as_uri(), dest.as_uri(), private_pem=pair.private_pem, gateway_id=GW, format="jsonl", **options
    )


def archived(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return list(iter_manifest_records(read_manifest(summary["manifest_uri"])))


def test_rows_equal_the_ground_truth_and_the_manifest_names_each_file(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair
) -> None:
    written = write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)
    result = run(tmp_path / "push", tmp_path / "archive", key_pair)
    rows = sorted(archived(result.summary), key=lambda r: (r["created_at"], r["id"]))
    truth = [api_row(log, emu.get_bodies(GW, log["id"])) for log in emu.logs(GW) if log["created_at"] < "2026-04-18T01"]
    assert len(rows) == len(truth) == 120
    key = lambda r: json.dumps([r[c] for c in SHARED], sort_keys=True)  # noqa: E731
    assert sorted(map(key, rows)) == sorted(map(key, truth))
    assert all(r[c] is None for r in rows for c in ABSENT if c != "id")
    assert all(r["id"].startswith(ID_PREFIX) for r in rows) and len({r["id"] for r in rows}) == 120
    assert {(r["requested_model"], r["rate_limited"]) for r in rows} == {(t["model"], False) for t in truth}

    manifest = read_manifest(result.summary["manifest_uri"])
    assert manifest["source"] == "logpush" and manifest["count"] == 120
    # files within the margin of the window: every one holding its logs, and the one after it
    expected = {
        Path(w["path"]).name: (w["bytes"], hashlib.sha256(Path(w["path"]).read_bytes()).hexdigest()) for w in written
    }
    files = {Path(f["uri"]).name: (f["size"], f["sha256"]) for f in manifest["logpush"]["files"]}
    assert files.items() <= expected.items() and len(files) == 13  # 12 batches of 5 min and the next one
    assert sum(f["rows"] for f in manifest["logpush"]["files"]) == 120
    assert (result.summary["source"], result.summary["source_files"], result.summary["unreadable"]) == (
        "logpush",
        13,
        0,
    )


def write_unreadable_records(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, other_key_pair: KeyPair
) -> tuple[Path, list[dict[str, Any]]]:
    """A file of the first 10 minutes' logs where line 3 is sealed for another key, line 5 fails
    its tag check and line 7 is no JSON; returns it and the logs."""
    logs = [log for log in emu.logs(GW) if log["created_at"] < "2026-04-18T00:10"]
    ours, theirs = LogpushEncryptor(key_pair.public_pem), LogpushEncryptor(other_key_pair.public_pem)
    records = []
    for n, log in enumerate(logs):
        body = emu.get_bodies(GW, log["id"])
        record = logpush_record(log, *body, gateway_id=GW, encryptor=theirs if n == 2 else ours)
        if n == 4:
            record["RequestBody"] = {**ours.seal(b'{"a":1}'), "data": ours.seal(b'{"b":2}')["data"]}  # wrong tag
        records.append(record)
    assert records[2]["Metadata"] or records[2]["RequestBody"]  # something to fail on
    lines = [json.dumps(r).encode() + b"\n" for r in records]
    lines.insert(6, b"{not json\n")
    path = tmp_path / "push" / "20260418" / "20260418T000000Z_20260418T000959Z_bad.log.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(b"".join(lines)))
    return path, logs


def test_unreadable_records_are_named_by_file_and_line_and_never_written(
    tmp_path: Path,
    emu: EmulatorServer,
    key_pair: KeyPair,
    other_key_pair: KeyPair,
    caplog: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, logs = write_unreadable_records(tmp_path, emu, key_pair, other_key_pair)
    monkeypatch.setattr(run_module, "_single_threaded", lambda: False)  # decrypted in a thread
    result = run(tmp_path / "push", tmp_path / "archive", key_pair)
    with pytest.raises(AIGatewayDecryptError) as info:
        result.check_unreadable("fail")
    message = str(info.value)
    assert message.startswith("3 Logpush record(s)")
    for line in (3, 5, 7):  # the other key's log, the failed tag, the line that is no JSON
        assert f"{path}, line {line}:" in message
    assert "does not unwrap" in message and "tag check" in message and "not a JSON record" in message
    assert result.summary["manifest_uri"] in message
    manifest = read_manifest(result.summary["manifest_uri"])
    rows = list(iter_manifest_records(manifest))
    assert len(rows) == len(logs) - 2 and manifest["logpush"]["unreadable"] == 3
    assert sorted(r["created_at"] for r in rows) == sorted(
        log["created_at"] for n, log in enumerate(logs) if n not in (2, 4)
    )

    caplog.set_level(logging.WARNING)
    result.check_unreadable("warn", logging.getLogger("test"))
    assert result.unreadable == 3 and "3 Logpush record(s)" in caplog.text


def test_unreadable_records_are_named_by_file_and_line_when_a_worker_unwraps_the_keys(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, other_key_pair: KeyPair
) -> None:
    # one worker process unwraps, this process opens: a key that does not unwrap there is still
    # reported here with its field, file and line
    path, logs = write_unreadable_records(tmp_path, emu, key_pair, other_key_pair)
    out = import_in_a_fresh_process(tmp_path / "push", tmp_path / "archive", key_pair, tmp_path, workers=1)
    assert out["started"] == ["fork"]
    manifest = read_manifest(out["summary"]["manifest_uri"])
    listed = manifest["logpush"]["unreadable_listed"]
    assert manifest["logpush"]["unreadable"] == len(listed) == 3 and out["summary"]["unreadable"] == 3
    assert [m.split(": ", 1)[0] for m in listed] == [f"{path}, line {line}" for line in (3, 5, 7)]
    assert "does not unwrap" in listed[0] and "tag check" in listed[1] and "not a JSON record" in listed[2]
    assert sorted(r["created_at"] for r in iter_manifest_records(manifest)) == sorted(
        log["created_at"] for n, log in enumerate(logs) if n not in (2, 4)
    )


def test_a_rerun_is_idempotent_and_late_files_are_unioned(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair
) -> None:
    half = START + timedelta(minutes=30)
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, end=half, batch_seconds=60)
    first = run(tmp_path / "push", tmp_path / "archive", key_pair)
    early = {r["id"] for r in archived(first.summary)}
    assert len(early) == len(emu.ids(GW, START, half))

    again = run(tmp_path / "push", tmp_path / "archive", key_pair)
    assert {r["id"] for r in archived(again.summary)} == early  # same ids: not a row doubled

    # the late files arrive; written afresh (new AES keys), yet the same logs keep their ids
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, start=half, batch_seconds=60)
    late = run(tmp_path / "push", tmp_path / "archive", key_pair)
    ids = {r["id"] for r in archived(late.summary)}
    assert early < ids and len(ids) == 120 == late.summary["count"]


def test_a_file_across_the_window_edges_gives_only_its_records_inside(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair
) -> None:
    # one file of 2 hours: it starts before the window ends, and holds the later logs too
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=7200)
    inner = (START + timedelta(minutes=10), START + timedelta(minutes=50))
    result = run(tmp_path / "push", tmp_path / "archive", key_pair, start=inner[0], end=inner[1])
    rows = archived(result.summary)
    expected = sorted(
        log["created_at"] for log in emu.logs(GW) if "2026-04-18T00:10" <= log["created_at"] < "2026-04-18T00:50"
    )
    assert sorted(r["created_at"] for r in rows) == expected and len(expected) > 10
    assert result.summary["source_files"] == 1


def test_ids_do_not_depend_on_the_encryption(tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair) -> None:
    # the same logs sealed twice, under other AES keys and another key layout: the same ids
    write_logpush_files(emu, GW, str(tmp_path / "per-field"), key_pair.public_pem, batch_seconds=300)
    write_logpush_files(emu, GW, str(tmp_path / "shared"), key_pair.public_pem, batch_seconds=900, shared_key=True)
    per_field = archived(run(tmp_path / "per-field", tmp_path / "a", key_pair).summary)
    shared = archived(run(tmp_path / "shared", tmp_path / "b", key_pair).summary)
    assert len(per_field) == 120
    assert {r["id"]: r for r in per_field} == {r["id"]: r for r in shared}


def distinct_wrapped_keys(push: Path) -> set[bytes]:
    """The wrapped keys of the window's records under ``push``."""
    window = range(int(START.timestamp()) * 10**9, int(END.timestamp()) * 10**9)
    return {
        base64.b64decode(record[name]["key"])
        for path in push.rglob("*.log.gz")
        for record in map(json.loads, gzip.decompress(path.read_bytes()).splitlines())
        for name in ("Metadata", "RequestBody", "ResponseBody")
        if record_time_ns(record) in window and isinstance(record.get(name), dict)
    }


def test_each_wrapped_key_is_unwrapped_once_by_the_reading_threads(
    tmp_path: Path,
    emu: EmulatorServer,
    key_pair: KeyPair,
    monkeypatch: pytest.MonkeyPatch,
    caplog: Any,
    rsa_calls: list[bytes],
) -> None:
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)
    distinct = distinct_wrapped_keys(tmp_path / "push")
    monkeypatch.setattr(run_module, "_single_threaded", lambda: False)
    caplog.set_level(logging.INFO, logger="airflow_provider_aigw")
    result = run(tmp_path / "push", tmp_path / "archive", key_pair)
    assert started_by(caplog) == ["thread"] and result.summary["count"] == 120
    assert len(rsa_calls) == len(set(rsa_calls)) == len(distinct) > 120  # one per field, each once
    assert set(rsa_calls) == distinct


@pytest.mark.parametrize("workers", [1, 2])
def test_each_wrapped_key_is_unwrapped_once_by_the_worker_processes(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, workers: int
) -> None:
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)
    distinct = {hashlib.sha256(wrapped).hexdigest() for wrapped in distinct_wrapped_keys(tmp_path / "push")}
    out = import_in_a_fresh_process(tmp_path / "push", tmp_path / "archive", key_pair, tmp_path, workers=workers)
    assert out["started"] == ["fork"] and out["summary"]["count"] == 120
    digests = [digest for _pid, digest in out["unwraps"]]
    assert len(digests) == len(set(digests)) == len(distinct) > 120 and set(digests) == distinct
    # every RSA operation in a worker, none in the task's process
    pids = {pid for pid, _digest in out["unwraps"]}
    assert out["pid"] not in pids and len(pids) == workers


def started_by(caplog: Any) -> list[str]:
    """How the import's decryption was started (thread, fork, spawn), from its log line."""
    return re.findall(r"worker\(s\): (\w+)\)", caplog.text)


def reading_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("aigw-logpush")]


# An import in a fresh interpreter: one thread, as a task's process, so its workers are forked;
# the key's PEM comes on stdin. Each RSA operation is noted (process id, SHA-256 of the wrapped
# key) in a file, which the forked workers inherit. Prints how the workers started and the result.
IMPORT_IN_A_FRESH_PROCESS = """
import hashlib, json, os, sys
from datetime import datetime
from airflow_provider_aigw.logpush.decrypt import LogpushPrivateKey
from airflow_provider_aigw.logpush.run import import_logpush
lines = []
class Log:
    def info(self, message, *args):
        lines.append(message % args)
    warning = info
source, dest, start, end, workers, unwraps = sys.argv[1:]
real_unwrap = LogpushPrivateKey.unwrap
def noted_unwrap(self, wrapped):
    with open(unwraps, "a") as out:
        out.write(f"{os.getpid()} {hashlib.sha256(wrapped).hexdigest()}\\n")
    return real_unwrap(self, wrapped)
LogpushPrivateKey.unwrap = noted_unwrap
result = import_logpush(
    source, dest, private_pem=sys.stdin.buffer.read(), gateway_id="gw", format="jsonl",
    start=datetime.fromisoformat(start), end=datetime.fromisoformat(end), max_workers=int(workers), logger=Log(),
)
print(json.dumps({"pid": os.getpid(), "lines": lines, "summary": result.summary}))
"""


def import_in_a_fresh_process(source: Path, dest: Path, pair: KeyPair, tmp_path: Path, workers: int) -> dict[str, Any]:
    """:data:`IMPORT_IN_A_FRESH_PROCESS` of the window: its output, with ``started`` (how the
    decryption started) and ``unwraps`` (``(pid, SHA-256 of the wrapped key)`` per RSA operation)."""
    unwraps = tmp_path / f"unwraps-{dest.name}.txt"
    args = [source.as_uri(), dest.as_uri(), START.isoformat(), END.isoformat(), str(workers), str(unwraps)]
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_IN_A_FRESH_PROCESS, *args],
        input=pair.private_pem, capture_output=True, check=True, timeout=120,
    )  # fmt: skip
    out: dict[str, Any] = json.loads(done.stdout)
    out["started"] = re.findall(r"worker\(s\): (\w+)\)", " ".join(out["lines"]))
    noted = unwraps.read_text().splitlines() if unwraps.exists() else []
    out["unwraps"] = [(int(pid), digest) for pid, digest in (line.split() for line in noted)]
    return out


@pytest.mark.parametrize(
    ("workers", "thread_running"), [(1, False), (2, False), (2, True)], ids=["1 forked", "2 forked", "2 spawned"]
)
def test_worker_processes_import_the_same_rows(
    tmp_path: Path,
    emu: EmulatorServer,
    key_pair: KeyPair,
    caplog: Any,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    thread_running: bool,
) -> None:
    # A process with one thread forks the workers, which inherit the loaded key (one worker only
    # unwraps keys, more read whole files); with a thread running (any: here one that waits)
    # forking is unsafe: one worker becomes a thread, more are spawned and load the PEM. This test
    # process may hold other tests' threads (fsspec's event loop stays for good), so the forked
    # imports run in a fresh interpreter.
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300, shared_key=True)
    caplog.set_level(logging.INFO, logger="airflow_provider_aigw")
    with monkeypatch.context() as threads_only:
        threads_only.setattr(run_module, "_single_threaded", lambda: False)
        one = run(tmp_path / "push", tmp_path / "one", key_pair)
    assert started_by(caplog) == ["thread"]
    if thread_running:
        release = threading.Event()
        waiter = threading.Thread(target=release.wait)
        waiter.start()
        try:
            two = run(tmp_path / "push", tmp_path / "two", key_pair, max_workers=workers).summary
        finally:
            release.set()
            waiter.join()
        assert started_by(caplog) == ["thread", "spawn"]
    else:
        out = import_in_a_fresh_process(tmp_path / "push", tmp_path / "two", key_pair, tmp_path, workers=workers)
        assert out["started"] == ["fork"]
        two = out["summary"]
    rows_one, rows_two = archived(one.summary), archived(two)
    assert len(rows_one) == 120
    assert sorted(json.dumps(r, sort_keys=True) for r in rows_two) == sorted(
        json.dumps(r, sort_keys=True) for r in rows_one
    )
    files = lambda s: read_manifest(s["manifest_uri"])["logpush"]["files"]  # noqa: E731
    assert files(two) == files(one.summary)


def test_one_worker_decrypts_in_a_thread_when_a_thread_runs(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, caplog: Any
) -> None:
    # spawning one process would cost more than it saves on all but large imports
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)
    caplog.set_level(logging.INFO, logger="airflow_provider_aigw")
    release = threading.Event()
    waiter = threading.Thread(target=release.wait)
    waiter.start()
    try:
        result = run(tmp_path / "push", tmp_path / "archive", key_pair)
    finally:
        release.set()
        waiter.join()
    assert started_by(caplog) == ["thread"] and result.summary["count"] == 120


def test_a_file_that_fails_to_read_fails_the_import_and_stops_its_threads(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)
    real = run_module.iter_records
    opened: list[str] = []

    def second_file_gone(fs: Any, file: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(file.path)
        if len(opened) == 2:
            raise FileNotFoundError(file.path)
        return real(fs, file, *args, **kwargs)

    monkeypatch.setattr(run_module, "iter_records", second_file_gone)
    with pytest.raises(FileNotFoundError) as info:
        run(tmp_path / "push", tmp_path / "archive", key_pair)
    assert len(opened) == 2 and str(info.value) == opened[1]
    assert reading_threads() == []
    assert not list((tmp_path / "archive").rglob("*.json"))  # nothing committed


def test_a_write_that_fails_stops_the_reading_threads(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)

    def one_row_then_fail(rows: Any, *args: Any, **kwargs: Any) -> Any:
        next(iter(rows))
        raise OSError("the destination went away")

    monkeypatch.setattr(run_module, "export_logs", one_row_then_fail)
    with pytest.raises(OSError, match="went away") as info:
        run(tmp_path / "push", tmp_path / "archive", key_pair)
    # the traceback (held, as a task's error handling holds it) keeps the import's frames alive:
    # the threads must have stopped all the same
    assert info.traceback and reading_threads() == []


def test_records_of_other_gateways_are_skipped(tmp_path: Path, key_pair: KeyPair) -> None:
    server = EmulatorServer()
    server.seed_logs(GW, 20, START, END, seed=1)
    server.seed_logs("other", 15, START, END, seed=2)
    encryptor = LogpushEncryptor(key_pair.public_pem)
    pairs = []
    for gateway in (GW, "other"):
        for log in server.logs(gateway):
            record = logpush_record(
                log, *server.get_bodies(gateway, log["id"]), gateway_id=gateway, encryptor=encryptor
            )
            pairs.append(
                (int(datetime.fromisoformat(log["created_at"].replace("Z", "+00:00")).timestamp() * 1000), record)
            )
    write_records(sorted(pairs, key=lambda p: p[0]), str(tmp_path / "push"), batch_seconds=600)
    result = run(tmp_path / "push", tmp_path / "archive", key_pair)
    assert result.summary["count"] == 20
    assert read_manifest(result.summary["manifest_uri"])["logpush"]["other_gateways"] == 15


def test_a_bad_key_fails_before_anything_is_read_or_written(tmp_path: Path, key_pair: KeyPair) -> None:
    with pytest.raises(AIGatewayConfigError, match="not a PEM private key"):
        import_logpush(
            (tmp_path / "missing").as_uri(), (tmp_path / "archive").as_uri(), private_pem="nope", gateway_id=GW,
            start=START, end=END,
        )  # fmt: skip
    assert not (tmp_path / "archive").exists()


def test_no_key_material_in_the_summary_manifest_or_reprs(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, caplog: Any
) -> None:
    from cryptography.hazmat.primitives import serialization

    passphrase = "correct horse battery staple"
    encrypted_pem = key_pair.private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase.encode()),
    )
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=600)
    caplog.set_level(logging.DEBUG)
    result = import_logpush(
        (tmp_path / "push").as_uri(), (tmp_path / "archive").as_uri(), private_pem=encrypted_pem, passphrase=passphrase,
        gateway_id=GW, start=START, end=END, logger=logging.getLogger("import"),
    )  # fmt: skip
    assert result.summary["count"] == 120
    manifest_text = Path(result.summary["manifest_uri"].removeprefix("file://")).read_text()
    body_lines = [ln for ln in key_pair.private_pem.decode().splitlines() if "PRIVATE KEY" not in ln]
    enc_lines = [ln for ln in encrypted_pem.decode().splitlines() if "PRIVATE KEY" not in ln]
    for text in (json.dumps(result.summary), manifest_text, repr(result), caplog.text):
        assert passphrase not in text
        assert not any(line in text for line in body_lines + enc_lines)


def test_one_worker_decrypts_in_a_thread_in_a_daemonic_process(
    tmp_path: Path, emu: EmulatorServer, key_pair: KeyPair, caplog: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a pool's worker (daemonic) may not start processes: one worker is a thread there
    write_logpush_files(emu, GW, str(tmp_path / "push"), key_pair.public_pem, batch_seconds=300)
    caplog.set_level(logging.INFO, logger="airflow_provider_aigw")
    monkeypatch.setattr(run_module, "_single_threaded", lambda: True)
    monkeypatch.setitem(multiprocessing.current_process()._config, "daemon", True)  # type: ignore[attr-defined]
    result = run(tmp_path / "push", tmp_path / "archive", key_pair)
    assert started_by(caplog) == ["thread"] and result.summary["count"] == 120
