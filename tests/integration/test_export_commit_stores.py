"""Concurrent exports of one window in two processes, on file:// and on S3 (a moto server on
loopback, started by the test): the window lock (O_EXCL / If-None-Match) refuses the second,
the committed manifest verifies file by file against its rows, and no log is missing. Also a
process killed between its part writes and its manifest, then the retry of the same task.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.export import file_uri, iter_file_records, read_manifest, verify_file
from tests.export_helpers import TAG, spread_logs
from tests.s3_server import moto_s3

pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")
pytest.importorskip("s3fs")

WORKER = Path(__file__).with_name("export_commit_worker.py")
ROOT = Path(__file__).resolve().parents[2]
BUCKET = "aigw-commit"
N = 60


class Store:
    """An export root and a way to list every object under it."""

    def __init__(self, url: str, list_keys: Any) -> None:
        self.url = url
        self.list_keys = list_keys

    def manifest_uri(self) -> str:
        return f"{self.url}/gateway=gw-1/_manifests/{TAG}.jsonl.gz.json"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    if request.param == "file":
        root = tmp_path / "archive"

        def list_file_keys() -> set[str]:
            return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

        return Store(f"file://{root}", list_file_keys)
    endpoint = request.getfixturevalue("moto_endpoint")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    conn = {"conn_type": "aws", "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"}}
    monkeypatch.setenv("AIRFLOW_CONN_AWS_MOTO", json.dumps(conn))
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    prefix = f"run-{request.node.name.replace('[', '-').rstrip(']')}"
    if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket=BUCKET)

    def list_s3_keys() -> set[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/")
        return {o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", [])}

    return Store(f"s3://aws_moto@{BUCKET}/{prefix}", list_s3_keys)


def start_worker(store: Store, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), store.url, str(N), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def wait_locked(proc: subprocess.Popen[str]) -> None:
    """Read the worker's output (Airflow may log to it) up to its ``LOCKED`` line."""
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == "LOCKED":
            return
    raise AssertionError(f"worker ended before taking the lock: {proc.wait()} {proc.stderr and proc.stderr.read()}")


def finish(proc: subprocess.Popen[str], stdin: str = "") -> tuple[int, str]:
    out, err = proc.communicate(stdin, timeout=300)
    assert proc.returncode in (0, 3, 9), err
    return proc.returncode, out


def assert_archive_exact(store: Store) -> dict[str, Any]:
    """The manifest verifies file by file, holds every log once, and nothing else is stored."""
    manifest = read_manifest(store.manifest_uri())
    ids: list[str] = []
    for entry in manifest["files"]:
        uri = file_uri(manifest, entry)
        verify_file({**entry, "uri": uri})
        rows = list(iter_file_records(uri))
        assert len(rows) == entry["rows"]
        ids += [r["id"] for r in rows]
        assert "@" not in entry["uri"], "plain URIs, no connection id"
    assert sorted(ids) == sorted(log["id"] for log in spread_logs(N)), "no log missing, none twice"
    expected = {f["path"] for f in manifest["files"]} | {f"gateway=gw-1/_manifests/{TAG}.jsonl.gz.json"}
    assert store.list_keys() == expected, "no orphan part, no lock left"
    return manifest


def test_second_process_is_refused_while_the_first_holds_the_window(store: Store) -> None:
    a = start_worker(store, "--gate")
    wait_locked(a)
    b = start_worker(store)
    code_b, out_b = finish(b)
    assert code_b == 3 and "another export of this window and format is running" in out_b
    code_a, _ = finish(a, "go\n")
    assert code_a == 0
    assert_archive_exact(store)


# file:// runs of the next two are in tests/unit/export/test_commit.py (threads, a killed process).
@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_process_starting_inside_a_reexport_cannot_break_the_committed_manifest(store: Store) -> None:
    assert finish(start_worker(store))[0] == 0
    first = assert_archive_exact(store)
    b = start_worker(store, "--gate")  # re-export of the same window, paused half-way
    wait_locked(b)
    assert finish(start_worker(store))[0] == 3
    # While B is paused, the committed manifest is still A's and still exact (parts of B are extra).
    manifest = read_manifest(store.manifest_uri())
    assert manifest["attempt"] == first["attempt"]
    for entry in manifest["files"]:
        verify_file({**entry, "uri": file_uri(manifest, entry)})
    assert finish(b, "go\n")[0] == 0
    assert assert_archive_exact(store)["attempt"] != first["attempt"]


def test_two_processes_racing_leave_one_exact_archive(store: Store) -> None:
    procs = [start_worker(store), start_worker(store)]
    codes = sorted(finish(p)[0] for p in procs)
    assert codes in ([0, 0], [0, 3])  # serialised by the lock, or one refused
    assert_archive_exact(store)


@pytest.mark.parametrize("store", ["s3"], indirect=True)
def test_kill_between_parts_and_manifest_then_retry_of_the_same_task(store: Store) -> None:
    assert finish(start_worker(store, "--die-before-commit", "--owner", "dag/export/run/-1"))[0] == 9
    assert f"gateway=gw-1/_manifests/{TAG}.jsonl.gz.lock" in store.list_keys()
    assert finish(start_worker(store, "--owner", "dag/export/other-run/-1"))[0] == 3
    assert finish(start_worker(store, "--owner", "dag/export/run/-1"))[0] == 0
    assert_archive_exact(store)
