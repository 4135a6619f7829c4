"""The emulator CLI and the pytest plugin fixtures."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests

if TYPE_CHECKING:
    from airflow_provider_aigw.emulator import EmulatorServer


def test_cli_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "airflow_provider_aigw.emulator", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    for flag in (
        "--port",
        "--gateway",
        "--days",
        "--ready-file",
        "--rate-limit",
        "--error-rate",
        "--drop-rate",
        "--churn-per-request",
        "--capacity",
        "--lockout-s",
        "--seed",
        "--ignore-filter-key",
        "--ignore-delete-filter-key",
        "--fail-body-id",
        "--fail-body-status",
        "--envelope-bodies",
        "--max-url-bytes",
        "--delete-order",
        "--delete-max-logs",
        "--total-count-factor",
        "--total-count-page-only",
        "--shuffle-ties",
        "--ignore-list-filter-operator",
    ):
        assert flag in out


def test_cli_fault_mode_flags_reach_the_fault_settings() -> None:
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "airflow_provider_aigw.emulator", "--gateway", "gw:0"),
            *("--ignore-filter-key", "metadata.value", "--ignore-filter-key", "model"),
            *("--ignore-delete-filter-key", "id", "--fail-body-id", "*", "--fail-body-status", "403"),
            "--envelope-bodies",
            *("--max-url-bytes", "4000", "--delete-order", "desc", "--delete-max-logs", "3"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())  # blocks until the server is listening
        faults = requests.get(info["url"].replace("/client/v4", "/__emulator__/faults"), timeout=10).json()
        assert {k: faults[k] for k in ("ignore_filter_keys", "ignore_delete_filter_keys", "fail_body_ids")} == {
            "ignore_filter_keys": ["metadata.value", "model"],
            "ignore_delete_filter_keys": ["id"],
            "fail_body_ids": ["*"],
        }
        assert faults["fail_body_status"] == 403 and faults["envelope_bodies"] is True
        assert (faults["max_url_bytes"], faults["delete_order"], faults["delete_max_logs"]) == (4000, "desc", 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_starts_serves_and_stops(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airflow_provider_aigw.emulator",
            "--port",
            "0",
            "--gateway",
            "gw-a:500",
            "--gateway",
            "gw-b:0",
            "--days",
            "1",
            "--seed",
            "3",
            "--ready-file",
            str(ready),
            "--rate-limit",
            "1000/60",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the server is listening
        info = json.loads(line)
        assert json.loads(ready.read_text()) == info
        assert info["gateways"] == {"gw-a": 500, "gw-b": 0}
        assert info["url"] == f"http://127.0.0.1:{info['port']}/client/v4"
        url = f"{info['url']}/accounts/{info['account_id']}/ai-gateway/gateways/gw-a/logs"
        r = requests.get(url, headers={"Authorization": f"Bearer {info['token']}"}, params={"per_page": 1}, timeout=10)
        assert r.status_code == 200 and r.json()["result_info"]["total_count"] == 500
        assert r.headers["ratelimit-policy"] == '"default";q=1000;w=60'
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_aigw_emulator_fixture(aigw_emulator: EmulatorServer) -> None:
    conn = json.loads(os.environ["AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"])
    assert conn == {
        "conn_type": "cloudflare_ai_gateway",
        "host": aigw_emulator.url,
        "password": aigw_emulator.token,
        "extra": {"account_id": aigw_emulator.account_id, "gateway_id": "my-gateway"},
    }
    assert aigw_emulator.count("my-gateway") == 1000
    r = requests.get(aigw_emulator.logs_url("my-gateway"), headers=aigw_emulator.auth_headers, timeout=10)
    assert r.json()["result_info"]["total_count"] == 1000


def test_factory_passes_faults_and_server_kwargs(aigw_emulator_factory) -> None:  # type: ignore[no-untyped-def]
    emu = aigw_emulator_factory(gateways={"a": 5, "b": 7}, token="t0k", error_rate=0.5, seed=9)
    assert emu.token == "t0k" and emu.faults.error_rate == 0.5
    assert emu.count("a") == 5 and emu.count("b") == 7
    conn = json.loads(emu.airflow_conn_json("b", timeout=5))
    assert conn["extra"] == {"account_id": emu.account_id, "gateway_id": "b", "timeout": 5}


def test_emulator_never_imports_airflow() -> None:
    code = (
        "import sys, airflow_provider_aigw.emulator, airflow_provider_aigw.emulator.pytest_plugin;"
        "import airflow_provider_aigw.emulator.__main__;"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_loading_the_pytest_plugin_imports_only_pytest_and_the_standard_library() -> None:
    # pytest loads the plugin in every environment where the provider is installed.
    code = (
        "import sys, json, pytest; before = set(sys.modules);"
        "import airflow_provider_aigw.emulator.pytest_plugin as plugin;"
        "new = sorted(set(sys.modules) - before);"
        "print(json.dumps({'new': new, 'stdlib': sorted(sys.stdlib_module_names),"
        " 'hooks': [n for n in dir(plugin) if n.startswith('pytest_')]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(out.stdout)
    ours = {m for m in loaded["new"] if m.split(".")[0] not in set(loaded["stdlib"])}
    assert ours == {
        "airflow_provider_aigw",
        "airflow_provider_aigw.emulator",
        "airflow_provider_aigw.emulator.pytest_plugin",
    }
    assert loaded["hooks"] == []


def test_the_pytest_plugin_registers_only_its_two_fixtures(pytestconfig: pytest.Config) -> None:
    from airflow_provider_aigw.emulator import pytest_plugin

    plugin = pytestconfig.pluginmanager.get_plugin("aigw_emulator")
    assert plugin is pytest_plugin
    defined = {name for name in vars(pytest_plugin) if not name.startswith("_")}
    assert {n for n in defined if n.startswith("pytest_")} == set()
    fixture_marks = ("_fixture_function_marker", "_pytestfixturefunction")  # pytest >= 8.4, older
    fixtures = {n for n in defined if any(hasattr(getattr(pytest_plugin, n), mark) for mark in fixture_marks)}
    assert fixtures == {"aigw_emulator", "aigw_emulator_factory"}


def test_the_runtime_never_imports_the_emulator() -> None:
    package = Path(__file__).resolve().parents[3] / "airflow_provider_aigw"
    runtime = [p for p in package.rglob("*.py") if "emulator" not in p.relative_to(package).parts]
    importers = [
        str(p.relative_to(package))
        for p in runtime
        for node in ast.walk(ast.parse(p.read_text()))
        if isinstance(node, (ast.Import, ast.ImportFrom))
        and any("emulator" in (name or "") for name in [getattr(node, "module", None), *(a.name for a in node.names)])
    ]
    assert importers == []
    modules = sorted(
        ".".join(p.relative_to(package.parent).with_suffix("").parts).removesuffix(".__init__") for p in runtime
    )
    code = (
        "import importlib, sys, json;"
        f"[importlib.import_module(m) for m in {modules!r} if not m.endswith('__main__')];"
        "print(json.dumps(sorted(m for m in sys.modules if 'emulator' in m)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout) == []
    assert len(modules) > 20


def test_conn_uri_parses_in_airflow(aigw_emulator: EmulatorServer) -> None:
    code = (
        "import json, sys\n"
        "from airflow.models.connection import Connection\n"
        "c = Connection(conn_id='x', uri=sys.argv[1])\n"
        "print(json.dumps([c.conn_type, c.host, c.password, c.extra_dejson]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, aigw_emulator.airflow_conn_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    conn_type, host, password, extra = json.loads(out.stdout.strip().splitlines()[-1])
    assert conn_type == "cloudflare_ai_gateway"
    assert host == aigw_emulator.url and password == aigw_emulator.token
    assert extra == {"account_id": aigw_emulator.account_id, "gateway_id": "my-gateway"}


def test_every_admin_route_in_the_help_answers(aigw_emulator: EmulatorServer, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from airflow_provider_aigw.emulator.__main__ import ADMIN_ROUTES, build_parser

    help_text = build_parser().format_help()
    public_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    bodies = {
        "/__emulator__/gateways/ID/logpush": {"destination": str(tmp_path), "public_key_pem": public_pem.decode()},
        "/__emulator__/faults": {"latency_ms": 0},
        "/__emulator__/gateways/ID/logs": {"count": 3, "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
        "/__emulator__/gateways/ID/late-logs": {
            "count": 1,
            "start": "2026-01-01T00:00:00Z",
            "end": "2026-01-02T00:00:00Z",
            "after_requests": 1,
        },
    }
    for route, _ in ADMIN_ROUTES:
        assert route in help_text
        method, path = route.split()
        url = aigw_emulator.base_url + path.replace("ID", "my-gateway").replace("=ISO", "=2026-01-01T00:00:00Z")
        resp = requests.request(method, url, json=bodies.get(path.split("?")[0]), timeout=10)
        assert resp.status_code == 200, (route, resp.text)
    # and nothing else answers
    assert requests.get(aigw_emulator.base_url + "/__emulator__/nope", timeout=10).status_code == 404
