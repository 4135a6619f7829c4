"""The emulator's command line: its options, a server started and stopped, fault settings from flags,
and the admin routes its help lists."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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
