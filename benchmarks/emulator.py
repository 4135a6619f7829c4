"""The bundled emulator as a subprocess on loopback, plus its admin routes.

A subprocess (not an in-process server) keeps the server's CPU out of the client's
``getrusage`` and off the client's GIL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

#: The fixed seeded window: every gateway's logs lie in [WINDOW_START, WINDOW_END).
WINDOW_START = "2026-01-01T00:00:00.000Z"
WINDOW_END = "2026-01-04T00:00:00.000Z"
SEED = 20261127

#: Fault settings meaning "no faults" (posted in full, so nothing lingers between runs).
NO_FAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "latency_jitter_ms": 0.0,
    "error_rate": 0.0,
    "drop_rate": 0.0,
    "rate_limit_requests": None,
    "rate_limit_period_s": 300.0,
    "lockout_s": None,
    "churn_insert_per_request": 0,
    "capacity": None,
}


def admin(base_url: str, route: str, payload: Any = None) -> Any:
    """Call an admin route (``GET`` without payload, ``POST`` with one)."""
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(
        f"{base_url}/__emulator__/{route}",
        data=data,
        method="GET" if payload is None else "POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def set_faults(base_url: str, **faults: Any) -> None:
    """Replace every fault setting: ``NO_FAULTS`` overridden by ``faults``; resets the counters."""
    admin(base_url, "faults", {**NO_FAULTS, **faults})
    admin(base_url, "reset-stats", {})


def counters(base_url: str) -> dict[str, int]:
    """Request counters since the last reset (the bounded request records are dropped)."""
    stats = admin(base_url, "stats")
    return {k: v for k, v in stats.items() if isinstance(v, int)}


class EmulatorProcess:
    """``python -m airflow_provider_aigw.emulator`` with the given gateways, until :meth:`stop`."""

    def __init__(self, gateways: dict[str, int], *, python: str = sys.executable) -> None:
        self.gateways = gateways
        self.python = python
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="aigw-bench-emu-")

    def start(self, timeout: float = 300.0) -> EmulatorProcess:
        ready = Path(self._dir.name) / "ready.json"
        cmd = [
            self.python, "-m", "airflow_provider_aigw.emulator",
            "--host", "127.0.0.1", "--port", "0",
            "--seed", str(SEED), "--start", WINDOW_START, "--end", WINDOW_END,
            "--ready-file", str(ready),
        ]  # fmt: skip
        for gateway, count in self.gateways.items():
            cmd += ["--gateway", f"{gateway}:{count}"]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=dict(os.environ))
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"emulator exited with {self._proc.returncode}: {err[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("emulator did not become ready")
            time.sleep(0.1)
        self.info = json.loads(ready.read_text())
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (admin routes live under ``/__emulator__/``)."""
        return f"http://127.0.0.1:{self.info['port']}"

    def spec(self) -> dict[str, Any]:
        """What a worker needs to reach this emulator."""
        return {
            "url": self.info["url"],
            "base_url": self.base_url,
            "account_id": self.info["account_id"],
            "token": self.info["token"],
            "start": WINDOW_START,
            "end": WINDOW_END,
        }

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr:
            proc.stderr.close()
        self._dir.cleanup()

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
