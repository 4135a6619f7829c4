"""The emulator's server: routes and envelopes, detail and body routes, authentication, seeding
and ground truth, late logs, admin routes and the Airflow connection it describes."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from airflow_provider_aigw.emulator import EmulatorServer, generate_logs
from airflow_provider_aigw.emulator.data import parse_ts_ms
from tests.unit.emulator.logs_api import GW, Api, get, total


def test_list_envelope_and_defaults(emu: EmulatorServer, api: Api) -> None:
    body = api.result()
    assert body["success"] is True and body["errors"] == [] and body["messages"] == []
    info = body["result_info"]
    assert (info["page"], info["per_page"], info["count"], info["total_count"]) == (1, 20, 20, 600)
    assert "total_pages" not in info
    for k in ("min_cost", "max_cost", "min_duration", "max_duration", "min_tokens_in", "max_tokens_in"):
        assert k in info
    created = [parse_ts_ms(x["created_at"]) for x in body["result"]]
    assert created == sorted(created, reverse=True), "default order is created_at desc"
    newest = emu.logs(GW)[::-1][:20]
    assert [x["id"] for x in body["result"]] == [x["id"] for x in newest]
    log = body["result"][0]
    for field in ("id", "created_at", "provider", "model", "path", "duration", "success", "cached"):
        assert field in log
    assert log["created_at"].endswith("Z") and len(log["created_at"]) == 24


def test_detail_and_bodies(emu: EmulatorServer, api: Api) -> None:
    logs = emu.logs(GW)
    with_body = next(
        x
        for x in logs
        if emu.get_bodies(GW, x["id"])[0] is not None and x["response_content_type"] == "application/json"
    )
    r = api.s.get(f"{api.url}/{with_body['id']}")
    assert r.status_code == 200
    detail = r.json()["result"]
    for k in (
        "request_head",
        "request_head_complete",
        "request_size",
        "response_head",
        "response_head_complete",
        "response_size",
    ):
        assert k in detail
    r = api.s.get(f"{api.url}/{with_body['id']}/request")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    req = r.json()
    assert "success" not in req and req["model"] == with_body["model"], "no envelope"
    assert detail["request_head"] == r.text[:1024]
    assert detail["request_size"] == len(r.content)
    r = api.s.get(f"{api.url}/{with_body['id']}/response")
    assert r.status_code == 200 and "success" not in r.json()

    streamed = next(
        x
        for x in logs
        if x["response_content_type"] == "text/event-stream"
        and x["success"]
        and emu.get_bodies(GW, x["id"])[1] is not None
    )
    r = api.s.get(f"{api.url}/{streamed['id']}/response")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.text.startswith("data: {") and r.text.rstrip().endswith("data: [DONE]")

    absent = [x for x in logs if emu.get_bodies(GW, x["id"]) == (None, None)]
    assert 0.04 * len(logs) < len(absent) < 0.2 * len(logs)
    for kind in ("request", "response"):
        r = api.s.get(f"{api.url}/{absent[0]['id']}/{kind}")
        assert r.status_code == 404
        assert r.json()["errors"] == [{"code": 7002, "message": "Not Found"}]
    assert api.s.get(f"{api.url}/{absent[0]['id']}").status_code == 200


def test_not_found_and_bad_gateway(emu: EmulatorServer, api: Api) -> None:
    nf = {"code": 7002, "message": "Not Found"}
    r = api.s.get(f"{api.url}/0190a5b4-0000-7000-8000-000000000000")
    assert r.status_code == 404 and r.json()["errors"] == [nf] and r.json()["success"] is False
    r = api.s.get(f"{api.url}/not-an-id/request")
    assert r.status_code == 404
    r = api.s.get(emu.logs_url("other-gateway"))
    assert r.status_code == 404 and r.json()["errors"] == [nf]
    r = api.s.get(api.url.replace(emu.account_id, "f" * 32))
    assert r.status_code == 404 and r.json()["errors"] == [nf]
    r = api.s.get(f"{emu.url}/accounts/{emu.account_id}/nothing-here")
    assert r.status_code == 404 and r.json()["errors"] == [nf]
    for bad in ("My-Gateway", "-x", "a--b", "a" * 65, "a.b"):
        r = api.s.get(emu.logs_url(bad))
        assert r.status_code == 400, bad
        assert r.json()["errors"][0]["code"] == 7001


def test_auth(emu: EmulatorServer, api: Api) -> None:
    auth_err = {
        "success": False,
        "errors": [{"code": 10000, "message": "Authentication error"}],
        "messages": [],
        "result": None,
    }
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": emu.token},
        {"X-Auth-Email": emu.email, "X-Auth-Key": "wrong"},
    ):
        r = requests.get(api.url, headers=headers, timeout=10)
        assert r.status_code == 403 and r.json() == auth_err, headers
    r = requests.get(api.url, headers={"X-Auth-Email": emu.email, "X-Auth-Key": emu.api_key}, timeout=10)
    assert r.status_code == 200
    ro = Api(emu, token=emu.read_only_token)
    assert ro.list().status_code == 200
    log_id = emu.logs(GW)[0]["id"]
    assert ro.s.get(f"{ro.url}/{log_id}").status_code == 200
    assert ro.s.get(f"{ro.url}/{log_id}/request").status_code in (200, 404)
    r = ro.s.patch(f"{ro.url}/{log_id}", json={"score": 1})
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    r = ro.delete(limit=1)
    assert r.status_code == 403 and r.json()["errors"][0]["code"] == 10000
    assert emu.count(GW) == 600


def test_patch_explicit_log(emu: EmulatorServer, api: Api) -> None:
    [log_id] = emu.add_logs(GW, [{"created_at": "2026-11-24T10:00:00.5Z", "provider": "openai", "model": "gpt-4o"}])
    assert api.s.patch(f"{api.url}/{log_id}", json={"score": 3}).status_code == 200
    assert emu.get_log(GW, log_id)["score"] == 3  # type: ignore[index]
    assert emu.get_log(GW, log_id)["created_at"] == "2026-11-24T10:00:00.500Z"  # type: ignore[index]


def test_late_logs(emu: EmulatorServer) -> None:
    late = generate_logs(5, "2026-11-24T00:00:00Z", "2026-11-24T01:00:00Z", seed=9, gateway_id=GW)
    window = {"start_date": "2026-11-24T00:00:00Z", "end_date": "2026-11-24T00:59:59.999Z"}
    before = total(emu, **window)
    emu.schedule_late_logs(GW, late, after_requests=2)
    assert total(emu, **window) == before
    assert total(emu, **window) == before
    assert total(emu, **window) == before + 5
    got = get(emu, per_page=50, order_by_direction="asc", **window).json()["result"]
    assert {x["id"] for x in late} <= {x["id"] for x in got}
    # admin route with generated logs, immediately
    r = requests.post(
        f"{emu.base_url}/__emulator__/gateways/{GW}/late-logs",
        json={
            "count": 3,
            "start": "2026-11-24T00:10:00Z",
            "end": "2026-11-24T00:20:00Z",
            "seed": 4,
            "after_requests": 0,
        },
        timeout=10,
    )
    assert r.status_code == 200
    assert total(emu, **window) == before + 8


def test_admin_routes(emu: EmulatorServer) -> None:
    base = emu.base_url + "/__emulator__"
    r = requests.post(f"{base}/faults", json={"latency_ms": 2}, timeout=10)
    assert r.status_code == 200 and r.json()["latency_ms"] == 2 and emu.faults.latency_ms == 2
    assert requests.get(f"{base}/faults", timeout=10).json()["latency_ms"] == 2
    assert requests.post(f"{base}/faults", json={"nope": 1}, timeout=10).status_code == 400
    r = requests.post(
        f"{base}/gateways/second/logs",
        json={"count": 30, "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z"},
        timeout=10,
    )
    assert r.status_code == 200 and r.json()["count"] == 30
    r = requests.post(
        f"{base}/gateways/second/logs",
        json=[
            {"created_at": "2026-11-01T05:00:00Z", "model": "gpt-4o", "request_body": None, "response_body": {"ok": 1}}
        ],
        timeout=10,
    )
    [explicit] = r.json()["ids"]
    ids = requests.get(
        f"{base}/gateways/second/ids",
        params={"start": "2026-11-01T00:00:00Z", "end": "2026-11-01T12:00:00Z"},
        timeout=10,
    ).json()
    assert ids["ids"] == emu.ids("second", "2026-11-01T00:00:00Z", "2026-11-01T12:00:00Z")
    assert explicit in ids["ids"]
    url = emu.logs_url("second")
    assert requests.get(f"{url}/{explicit}/request", headers=emu.auth_headers, timeout=10).status_code == 404
    r = requests.get(f"{url}/{explicit}/response", headers=emu.auth_headers, timeout=10)
    assert r.json() == {"ok": 1}
    assert requests.get(f"{base}/gateways/absent/ids", timeout=10).status_code == 404
    assert emu.stats["total"] == 2


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
