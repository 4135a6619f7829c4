"""Logs, destinations and checks shared by the export tests (unit and integration).

The fixtures built on them (``dest``, ``fdest``) are in ``tests/unit/export/conftest.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import fsspec

from airflow_provider_aigw.export import (
    ExportResult,
    export_logs,
    iter_file_records,
    iter_manifest_records,
    read_manifest,
    verify_file,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

UTC = timezone.utc
START = datetime(2026, 11, 26, tzinfo=UTC)
END = datetime(2026, 11, 28, tzinfo=UTC)
TAG = "20261126T000000Z-20261128T000000Z"
FORMATS = ["jsonl", "jsonl.gz", "parquet"]


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def make_log(i: int, when: datetime, **extra: Any) -> dict[str, Any]:
    log: dict[str, Any] = {
        "id": f"01J{i:010d}",
        "created_at": ts(when),
        "provider": "openai",
        "model": "gpt-4o-mini",
        "model_type": "chat",
        "path": "chat/completions",
        "duration": 100 + i,
        "success": i % 7 != 0,
        "cached": i % 5 == 0,
        "tokens_in": None if i % 11 == 0 else 10 + i,
        "tokens_out": 20 + i,
        "cost": 0.0001 * i,
        "metadata": json.dumps({"team": "a", "n": i}),
        "request_content_type": "application/json",
        "response_content_type": "application/json",
        "status_code": 200,
        "step": 0,
    }
    log.update(extra)
    return log


def spread_logs(n: int, start: datetime = START, step: timedelta = timedelta(minutes=13)) -> list[dict]:
    return [make_log(i, start + step * i) for i in range(n)]


class Dest:
    """A test destination (file:// under tmp_path or a private memory:// bucket)."""

    def __init__(self, kind: str, tmp_path: Any) -> None:
        self.kind = kind
        if kind == "file":
            self.root = str(tmp_path / "export")
            self.url = f"file://{self.root}"
            self.fs = fsspec.filesystem("file")
        else:
            self.root = f"/aigw-test-{uuid.uuid4().hex}/prefix"
            self.url = f"memory:/{self.root}"
            self.fs = fsspec.filesystem("memory")

    def files(self) -> dict[str, bytes]:
        """Relative path -> content of every file under the root (hidden files included)."""
        try:
            found = self.fs.find(self.root)
        except FileNotFoundError:
            return {}
        root = self.root.rstrip("/") + "/"
        out = {}
        for p in found:
            p = str(p)
            rel = p[p.index(root) + len(root) :] if root in p else p
            out[rel] = self.fs.cat_file(p)
        return out

    def parts(self) -> dict[str, bytes]:
        return {k: v for k, v in self.files().items() if "/_manifests/" not in k}

    def cleanup(self) -> None:
        if self.kind == "memory":
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.root.rsplit("/", 1)[0], recursive=True)


def tricky_logs() -> list[dict]:
    """Logs with every kind of odd value: objects for strings, values that fit no column, bodies."""
    logs = spread_logs(30)
    logs[0]["metadata"] = {"team": "a", "n": 1}  # object instead of JSON string
    logs[1]["request_body"] = {"messages": [{"role": "user", "content": "héllo"}]}
    logs[1]["response_body"] = "data: streamed text"
    logs[1]["request_body_status"] = "collected"
    logs[1]["response_body_status"] = "collected"
    logs[2]["request_body"] = None
    logs[2]["request_body_status"] = "not_collected"
    logs[3]["usage_metadata"] = {"cache": {"read": 3}}
    logs[3]["extra"] = "a field literally called extra"
    logs[4]["duration"] = 12.5  # does not fit int64
    logs[5]["status_code"] = "200"  # does not fit int64
    logs[6]["created_at"] = "2026-11-26T01:02:03.123456+00:00"  # non-canonical created_at
    logs[7]["cost"] = 3  # int cost
    logs[8]["custom_cost"] = True
    logs[9]["tokens_out"] = 2**70  # too big for int64
    logs[10]["success"] = 1  # not a bool
    logs[11]["event_id"] = "evt-1"
    logs[12]["model_type"] = None
    del logs[13]["cost"]
    logs[14]["metadata"] = '{"team": "a", "n": 14}'
    logs[15]["metadata"] = "not json {"
    logs[16].update(feedback=1, score=87.5)
    return logs


def plain(path: str) -> str:
    """A part path without its attempt id (``-a<12 hex>``), to compare with fixed names."""
    return re.sub(r"-a[0-9a-f]{12}-", "-", path)


def paths(result: ExportResult) -> list[str]:
    return [plain(f["path"]) for f in result.manifest["files"]]


def manifest_path(fmt: str = "jsonl.gz", tag: str = TAG) -> str:
    return f"gateway=gw-1/_manifests/{tag}.{fmt}.json"


def lock_path(fmt: str = "jsonl.gz", tag: str = TAG) -> str:
    return f"gateway=gw-1/_manifests/{tag}.{fmt}.lock"


def read_records(uri: str) -> list[dict]:
    return list(iter_file_records(uri))


def all_ids(result: ExportResult) -> list[str]:
    return [r["id"] for r in iter_manifest_records(result.manifest_uri)]


def run(logs: Any, d: Dest, **kw: Any) -> ExportResult:
    kw.setdefault("gateway_id", "gw-1")
    kw.setdefault("start", START)
    kw.setdefault("end", END)
    return export_logs(iter(logs), d.url, **kw)


def assert_exact(result: Any, logs: list[dict], d: Dest) -> None:
    """The committed manifest verifies file by file, holds exactly ``logs``, and every part file
    of its format under the gateway is named by it (no duplicates for folder readers)."""
    m = read_manifest(result.manifest_uri)
    ids: list[str] = []
    for f in m["files"]:
        verify_file(f)
        rows = list(iter_file_records(f["uri"]))
        assert len(rows) == f["rows"]
        ids += [r["id"] for r in rows]
    assert sorted(ids) == sorted(log["id"] for log in logs), "exactly the expected logs"
    assert len(ids) == len(set(ids)) == m["count"]
    ext = "." + m["format"]
    on_disk = {k for k in d.parts() if k.endswith(ext)}
    assert on_disk == {f["path"] for f in m["files"]}
    assert not [k for k in d.files() if k.endswith(".lock")], "lock released"


def assert_exact_manifest_only(uri: str, logs: list[dict]) -> None:
    ids = [r["id"] for r in iter_manifest_records(uri, verify=True)]
    assert sorted(ids) == sorted(log["id"] for log in logs)


class Tracking:
    """An iterator that records how many logs were consumed and can fail after N."""

    def __init__(self, logs: list[dict], fail_after: int | None = None) -> None:
        self.logs = logs
        self.fail_after = fail_after
        self.consumed = 0

    def __iter__(self) -> Iterator[dict]:
        for log in self.logs:
            if self.fail_after is not None and self.consumed >= self.fail_after:
                raise RuntimeError("simulated crash while fetching")
            self.consumed += 1
            yield log


class Gate:
    """An iterator of logs that stops after ``after`` logs until released (no sleeps)."""

    def __init__(self, logs: list[dict], after: int = 1) -> None:
        self.logs = logs
        self.after = after
        self.reached = threading.Event()
        self.go = threading.Event()

    def __iter__(self) -> Iterator[dict]:
        for i, log in enumerate(self.logs):
            if i == self.after:
                self.reached.set()
                assert self.go.wait(60)
            yield log
