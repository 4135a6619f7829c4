"""Fixtures of the reliability and security suite: emulators with a distinctive token, fast-retry
connections, exact read-back of exports, and a migrated metadata DB for DAG runs.

Every case asserts exact outcomes against the emulator's ground truth (``server.ids(...)``).
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer

UTC = timezone.utc
GW = "my-gateway"
CONN_ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
#: A window that ended long ago (the export's settle lag never interferes).
START = datetime(2026, 1, 9, tzinfo=UTC)
END = START + timedelta(days=1)
#: The distinctive token every emulator of this suite accepts; the security tests scan for it.
TOKEN = f"aigw-sekret-{uuid.uuid4().hex}"
#: Fast retries, generous deadline, no client budget to speak of (the emulator's faults govern).
FAST_RETRIES: dict[str, Any] = {
    "max_retries": 40,
    "retry_deadline": 120,
    "backoff_base": 0.005,
    "backoff_max": 0.02,
    "timeout": 10,
    "budget_requests": 1_000_000,
    "budget_period": 1,
}


@pytest.fixture
def make_emulator(aigw_emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., EmulatorServer]:
    """``make_emulator(in_window=600, before=50, after=50, **server_kwargs)``: a started emulator
    (token :data:`TOKEN`) whose gateway holds ``in_window`` logs in ``[START, END)`` plus some
    either side, wired to the default connection with fast retries."""

    def make(in_window: int = 600, before: int = 50, after: int = 50, **kwargs: Any) -> EmulatorServer:
        kwargs.setdefault("token", TOKEN)
        server: EmulatorServer = aigw_emulator_factory(gateways={GW: 0}, **kwargs)
        if before:
            server.seed_logs(GW, before, START - timedelta(days=1), START, seed=11)
        if in_window:
            server.seed_logs(GW, in_window, START, END, seed=12)
        if after:
            server.seed_logs(GW, after, END, END + timedelta(days=1), seed=13)
        use_connection(monkeypatch, server)
        server.reset_stats()
        return server

    return make


def use_connection(monkeypatch: pytest.MonkeyPatch, server: EmulatorServer, **extra: Any) -> str:
    """Point the default connection at ``server`` with fast retries (``extra`` overrides)."""
    value = server.airflow_conn_json(GW, **{**FAST_RETRIES, **extra})
    monkeypatch.setenv(CONN_ENV, value)
    return value


def exported_ids(summary_or_manifest: Any) -> list[str]:
    """Ids of an export read back through its manifest, every file's sha256 verified."""
    from airflow_provider_aigw.export import iter_manifest_records

    return [str(r["id"]) for r in iter_manifest_records(summary_or_manifest, verify=True)]


def assert_exact(ids: list[str], truth: list[str]) -> None:
    """Same ids as the ground truth: none missing, none extra, none twice."""
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"{len(dupes)} duplicated ids, e.g. {dupes[:3]}"
    missing, extra = set(truth) - set(ids), set(ids) - set(truth)
    assert not missing and not extra, f"{len(missing)} missing, {len(extra)} extra"


def files_of(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def plain(name: str) -> str:
    """A part name without its attempt id (each export attempt writes its own names)."""
    return re.sub(r"-a[0-9a-f]{12}-", "-", name)


def comparable(files: dict[str, bytes]) -> dict[str, Any]:
    """Files by name without attempt ids, with each manifest's creation time, attempt ids and
    file URLs dropped (all else must be equal)."""
    out: dict[str, Any] = {}
    for name, data in files.items():
        if "/_manifests/" in name and name.endswith(".json"):
            manifest = json.loads(data)
            for key in ("created_at", "attempt", "commit", "root"):
                manifest.pop(key, None)
            for entry in manifest.get("files", []):
                entry.pop("uri", None)  # holds the destination root
                entry.pop("attempt", None)
                entry["path"] = plain(entry["path"])
            out[name] = manifest
        else:
            out[plain(name)] = data
    return out


def export_context() -> dict[str, Any]:
    return {"data_interval_start": START, "data_interval_end": END}


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[None]:
    """A migrated SQLite metadata DB (tests/conftest.py points Airflow at a temp home)."""
    from airflow.utils.db import resetdb

    resetdb()
    yield
