"""Browser test of the connection form, run by ``make test-ui`` only (``AIGW_UI=1``).

A real Airflow api-server (SQLite, a throwaway home) and the emulator run on loopback; headless
Debian chromium, driven by Playwright, uses the UI as a person would. Screenshots go to
``docs/screenshots/`` (shown in docs/connections.rst and docs/example_dags.rst).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if os.environ.get("AIGW_UI") != "1":
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("AIGW_CHROMIUM", "/usr/bin/chromium")
#: The flags of a quiet, reproducible headless run (no first-run UI, no network of its own).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_READY_S = 300.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AirflowServer:
    """An ``airflow api-server`` on loopback with its own home, plus its CLI."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        dags = home / "dags"
        dags.mkdir(parents=True)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTEST"))},
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        """Run ``airflow ARGS`` against this home; returns stdout, raises with the output on failure."""
        airflow = Path(sys.executable).parent / "airflow"
        done = subprocess.run(
            [str(airflow), *args], env=self.env, capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done.stdout

    def start(self) -> None:
        self.cli("db", "migrate")
        airflow = Path(sys.executable).parent / "airflow"
        log = (self.home / "api-server.log").open("wb")
        self.proc = subprocess.Popen(
            [str(airflow), "api-server", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + SERVER_READY_S
        while True:  # bounded polling of the server's readiness, not a fixed sleep
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited: {(self.home / 'api-server.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/v2/version", timeout=5) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"api-server not ready after {SERVER_READY_S:.0f}s")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the REST API (the simple auth manager lets everyone in as admin here)."""
        request = urllib.request.Request(
            f"{self.url}/api/v2{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


@pytest.fixture(scope="session")
def airflow_server() -> Iterator[AirflowServer]:
    home = Path(tempfile.mkdtemp(prefix="aigw-ui-airflow-"))
    server = AirflowServer(home)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def browser_context() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-ui` installs Debian's chromium (apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="aigw-ui-chromium-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1200, "height": 900},
            timezone_id="UTC",
        )
        context.set_default_timeout(60_000)
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    page = browser_context.new_page()
    yield page
    page.close()


@pytest.fixture(scope="session")
def screenshot() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str, **kwargs: Any) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), **kwargs)

    return take
