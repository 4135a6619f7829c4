"""Security: requests never leave the logs routes, credentials never travel in clear to a remote
host, TLS verification stays on unless explicitly (and loudly) turned off.

The token-leak scan of every example DAG is in ``test_secret_scan.py``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import logging
import random
import re
import ssl
import string
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayConfigError, AIGatewayError
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.operators.ai_gateway import (
    AIGatewayDeleteLogsOperator,
    AIGatewayExportLogsOperator,
    AIGatewayListLogsOperator,
    AIGatewayPatchLogOperator,
)
from airflow_provider_aigw.sensors.ai_gateway import AIGatewayLogsSensor

from .conftest import CONN_ENV, END, FAST_RETRIES, GW, START, TOKEN, export_context

pytestmark = pytest.mark.integration

ACCOUNT = "0123456789abcdef0123456789abcdef"
ALLOWED_ROUTE = re.compile(
    rf"^/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/[a-z0-9_]+(?:-[a-z0-9_]+)*/logs"
    r"(?:/[A-Za-z0-9_-]{1,128}(?:/(?:request|response))?)?$"
)
HOSTILE = [
    "..",
    "../..",
    "../../../user/tokens",
    "my-gateway/../../../user",
    "my-gateway/logs",
    "my-gateway?x=1",
    "my-gateway#frag",
    "my-gateway%2F..%2F..",
    "%2e%2e",
    "my-gateway\n",
    "my-gateway\r\nX-Injected: 1",
    "my-gateway\x00",
    " my-gateway",
    "my gateway",
    "MY-GATEWAY",
    "my--gateway",
    "-my-gateway",
    "my-gateway-",
    "mÿ-gateway",
    "my-gatewa\u0443",  # Cyrillic u
    "g" * 65,
    "",
    "/",
    "//evil.example.com/x",
    "http://evil.example.com/",
    "@evil.example.com",
    ";rm -rf",
    "{{ conn.password }}",
    "$(id)",
    "logs/../../..",
]


def random_ids(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + "-_./%?#&=;:@ \\\t\n\"'~+!$()*,[]{}|^`<>" + "\u00e9\u0430\u2028"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(n)]


def attempts(log_id: str, gateway: str) -> list[Any]:
    """Every public entry point that puts an id in a URL."""
    hook = AIGatewayHook()
    return [
        lambda: hook.get_log(log_id),
        lambda: hook.get_log_request(log_id),
        lambda: hook.get_log_response(log_id),
        lambda: hook.patch_log(log_id, feedback=1),
        lambda: hook.get_log(log_id, gateway_id=gateway),
        lambda: hook.count_logs(gateway_id=gateway),
        lambda: hook.list_logs(gateway_id=gateway, max_results=1),
        lambda: hook.delete_logs(gateway_id=gateway, start=START, end=START + dt.timedelta(seconds=1)),
        lambda: AIGatewayHook(gateway_id=gateway).count_logs(),
        lambda: AIGatewayListLogsOperator(task_id="l", gateway_id=gateway, max_results=1).execute({}),
        lambda: AIGatewayPatchLogOperator(task_id="p", log_id=log_id, score=1).execute({}),
        lambda: AIGatewayPatchLogOperator(task_id="p", gateway_id=gateway, log_id="abc", score=1).execute({}),
        lambda: AIGatewayLogsSensor(task_id="s", gateway_id=gateway).poke({}),
        lambda: AIGatewayDeleteLogsOperator(task_id="d", gateway_id=gateway, start=START, dry_run=True).execute({}),
    ]


def test_no_request_reaches_a_route_outside_the_logs_whatever_ids_are_passed(make_emulator, tmp_path):
    server = make_emulator(in_window=3, before=0, after=0)
    refused = answered = 0
    ids = HOSTILE + random_ids(150)
    for i, hostile in enumerate(ids):
        for call in attempts(hostile, hostile):
            server.reset_stats()
            try:
                call()
                answered += 1
            except AIGatewayError:
                refused += 1
            for record in server.stats.requests:
                assert ALLOWED_ROUTE.match(record["path"]), f"{hostile!r} reached {record['path']!r}"
                assert not record["query"].keys() - {
                    "page",
                    "per_page",
                    "order_by",
                    "order_by_direction",
                    "filters",
                    "limit",
                }
        if i % 20 == 0:  # exports write files: try fewer of them
            server.reset_stats()
            with pytest.raises(AIGatewayError, match="gateway_id"):
                AIGatewayExportLogsOperator(task_id="e", destination=f"file://{tmp_path}", gateway_id=hostile).execute(
                    export_context()
                )
            assert server.stats["total"] == 0
    assert refused > 0 and answered > 0  # the valid ids among the random ones went through


class _Redirector(BaseHTTPRequestHandler):
    """Answers every request under /client/v4 with a redirect; records every path it sees."""

    seen: list[tuple[str, dict[str, str]]] = []
    target = "/client/v4/user/tokens"

    def log_message(self, *args: Any) -> None:
        pass

    def _any(self) -> None:
        type(self).seen.append((self.path, dict(self.headers)))
        if self.path.startswith("/client/v4/accounts/"):
            self.send_response(302)
            self.send_header("Location", self.target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"success": True, "result": [], "result_info": {"total_count": 0}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_DELETE = do_PATCH = _any


@pytest.fixture
def redirector() -> Iterator[ThreadingHTTPServer]:
    _Redirector.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("auth", ["token", "global_api_key"])
@pytest.mark.parametrize("call", ["count", "delete", "patch"])
def test_redirects_are_never_followed(redirector, monkeypatch, auth, call):
    conn: dict[str, Any] = {
        "conn_type": "cloudflare_ai_gateway",
        "host": f"http://127.0.0.1:{redirector.server_address[1]}/client/v4",
        "password": TOKEN,
        "extra": {"account_id": ACCOUNT, "gateway_id": GW, **FAST_RETRIES},
    }
    if auth == "global_api_key":
        conn["login"] = "me@example.com"
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    hook = AIGatewayHook()
    with pytest.raises(AIGatewayAPIError, match="redirect") as failure:
        if call == "count":
            hook.count_logs()
        elif call == "delete":
            hook.delete_logs(start=START, end=END)
        else:
            hook.patch_log("abc", feedback=1)
    assert failure.value.status == 302
    assert [path.split("?")[0] for path, _ in _Redirector.seen] == [
        f"/client/v4/accounts/{ACCOUNT}/ai-gateway/gateways/{GW}/logs" + ("/abc" if call == "patch" else "")
    ]
    assert TOKEN not in str(failure.value)


# ------------------------------------------------------------------------- plain http


REMOTE_HTTP = [
    "http://api.cloudflare.com/client/v4",
    "http://example.com:8080/client/v4",
    "http://10.1.2.3/client/v4",
    "http://192.168.0.10:8787",
    "http://0.0.0.0:8080",
    "http://localhost.example.com/client/v4",
    "http://127.0.0.1.nip.io/client/v4",
    "http://[2001:db8::1]:8080",
    "HTTP://EXAMPLE.COM/client/v4",
]


@pytest.mark.parametrize("host", REMOTE_HTTP)
@pytest.mark.parametrize("form", ["json", "json-login", "uri"])
def test_credentials_are_refused_over_plain_http_to_remote_hosts(host, form, monkeypatch):
    sent: list[Any] = []
    monkeypatch.setattr(requests.Session, "send", lambda self, request, **kw: sent.append(request))
    if form == "uri":
        scheme, rest = host.split("://", 1)
        value = (
            f"cloudflare-ai-gateway://{scheme.lower()}://:{TOKEN}@{requests.utils.quote(rest, safe='')}"
            f"/?account_id={ACCOUNT}&gateway_id={GW}"
        )
    else:
        conn: dict[str, Any] = {
            "conn_type": "cloudflare_ai_gateway",
            "host": host,
            "password": TOKEN,
            "extra": {"account_id": ACCOUNT, "gateway_id": GW},
        }
        if form == "json-login":
            conn["login"] = "me@example.com"
        value = json.dumps(conn)
    monkeypatch.setenv(CONN_ENV, value)
    with pytest.raises(AIGatewayConfigError, match=r"Refusing to send credentials over plain http://") as failure:
        AIGatewayHook().count_logs()
    assert not sent
    assert TOKEN not in str(failure.value)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "127.0.0.2", "[::1]"])
def test_plain_http_is_allowed_to_loopback_only(host, monkeypatch, make_emulator):
    server = make_emulator(in_window=4, before=0, after=0)
    conn = json.loads(server.airflow_conn_json(GW, **FAST_RETRIES))
    conn["host"] = server.url.replace("127.0.0.1", host)
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))
    hook = AIGatewayHook()
    assert hook.client.base_url == conn["host"]  # accepted: no AIGatewayConfigError
    if host in ("127.0.0.1", "localhost"):  # where the emulator listens
        assert hook.count_logs() == 4


# ---------------------------------------------------------------------------------- TLS


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class _TLSHandler(BaseHTTPRequestHandler):
    served = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        type(self).served += 1
        body = json.dumps(
            {"success": True, "errors": [], "result": [], "result_info": {"page": 1, "per_page": 1, "total_count": 7}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS API stand-in on 127.0.0.1 with a self-signed certificate: ``(base_url, cert_file)``."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TLSHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _TLSHandler.served = 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/client/v4", cert
    server.shutdown()
    server.server_close()


def tls_conn(monkeypatch: pytest.MonkeyPatch, url: str, **extra: Any) -> None:
    conn = {
        "conn_type": "cloudflare_ai_gateway",
        "host": url,
        "password": TOKEN,
        "extra": {"account_id": ACCOUNT, "gateway_id": GW, **FAST_RETRIES, **extra},
    }
    monkeypatch.setenv(CONN_ENV, json.dumps(conn))


@pytest.mark.parametrize(
    "environment",
    [
        {},
        {"CURL_CA_BUNDLE": "", "REQUESTS_CA_BUNDLE": ""},
        {"PYTHONHTTPSVERIFY": "0"},
    ],
    ids=["default", "empty-ca-bundle-env", "pythonhttpsverify-0"],
)
def test_tls_verification_is_on_and_fails_fast_on_an_untrusted_certificate(tls_server, monkeypatch, environment):
    url, _cert = tls_server
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    tls_conn(monkeypatch, url)
    hook = AIGatewayHook()
    with pytest.raises(AIGatewayAPIError, match=r"TLS certificate verification failed.*verify_ssl") as failure:
        hook.count_logs()
    assert hook.client.requests_sent == 1  # a certificate problem is not retried
    assert _TLSHandler.served == 0
    assert TOKEN not in str(failure.value)


@pytest.mark.parametrize("extra", [{"verify": False}, {"ssl": "false"}, {"insecure": True}, {"verify_ssl": ""}])
def test_tls_verification_cannot_be_turned_off_by_other_extras(tls_server, monkeypatch, extra):
    url, _cert = tls_server
    tls_conn(monkeypatch, url, **extra)
    with pytest.raises(AIGatewayAPIError, match="TLS certificate verification failed"):
        AIGatewayHook().count_logs()
    assert _TLSHandler.served == 0


@pytest.mark.parametrize("value", [False, "false", "0", "no", "off"])
def test_verify_ssl_extra_turns_it_off_with_a_warning(tls_server, monkeypatch, caplog, value):
    url, _cert = tls_server
    tls_conn(monkeypatch, url, verify_ssl=value)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_aigw.client"):
        assert AIGatewayHook().count_logs() == 7
    warnings = [r.getMessage() for r in caplog.records if r.name == "airflow_provider_aigw.client"]
    assert any("TLS certificate verification is OFF" in w and "verify_ssl=false" in w for w in warnings), warnings


def test_a_trusted_ca_bundle_verifies(tls_server, monkeypatch, caplog):
    url, cert = tls_server
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    tls_conn(monkeypatch, url)
    with caplog.at_level(logging.WARNING, logger="airflow_provider_aigw.client"):
        assert AIGatewayHook().count_logs() == 7
    assert not [r for r in caplog.records if "verification is OFF" in r.getMessage()]
