"""The client against the bundled emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from airflow_provider_aigw.budget import RequestBudget
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayNotFoundError
from airflow_provider_aigw.hooks.ai_gateway import AIGatewayHook
from airflow_provider_aigw.patch import LogPatch
from airflow_provider_aigw.query import LogQuery

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
END = dt.datetime(2026, 11, 26, tzinfo=UTC)
START = END - dt.timedelta(days=2)
GW = "my-gateway"


def client_for(server, **kwargs) -> AIGatewayClient:
    kwargs.setdefault("budget", RequestBudget(10**6, 1))
    kwargs.setdefault("backoff_base", 0.01)
    kwargs.setdefault("backoff_max", 0.05)
    return AIGatewayClient(server.account_id, api_token=server.token, base_url=server.url, gateway_id=GW, **kwargs)


@pytest.fixture
def emulator(aigw_emulator_factory):
    return aigw_emulator_factory(gateways={GW: 10_000}, start=START, end=END)


def test_full_listing_is_exact_in_order_with_n_over_50_requests_and_the_empty_page(emulator):
    client = client_for(emulator)
    emulator.reset_stats()
    got = [log["id"] for log in client.iter_logs(LogQuery.of(start=START, end=END))]
    assert got == emulator.ids(GW, START, END)
    assert len(got) == len(set(got)) == 10_000
    assert emulator.stats["list"] == 200 + 1 == emulator.stats["total"]  # a multiple of 50: the empty page ends it


def test_descending_listing_is_exact(emulator):
    got = [log["id"] for log in client_for(emulator).iter_logs(order_by_direction="desc")]
    assert got == list(reversed(emulator.ids(GW)))


def test_filtered_window_returns_exactly_the_expected_subset(emulator):
    start, end = START + dt.timedelta(hours=5), START + dt.timedelta(hours=17)
    filters = [
        {"key": "provider", "operator": "eq", "value": ["openai", "anthropic"]},
        {"key": "success", "operator": "eq", "value": [True]},
    ]
    expected = [
        log["id"]
        for log in emulator.logs(GW)
        if start <= dt.datetime.fromisoformat(log["created_at"].replace("Z", "+00:00")) < end
        and log["provider"] in ("openai", "anthropic")
        and log["success"] is True
    ]
    assert expected, "the seed must produce matches"
    client = client_for(emulator)
    emulator.reset_stats()
    got = [log["id"] for log in client.iter_logs(LogQuery.of(filters=filters, start=start, end=end))]
    assert got == expected
    assert client.count_logs(LogQuery.of(filters=filters, start=start, end=end)) == len(expected)
    assert emulator.stats["list"] == -(-len(expected) // 50) + 1


def test_window_bounds_are_half_open_at_the_millisecond(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 0})
    edge = dt.datetime(2026, 11, 26, 12, tzinfo=UTC)
    ms = dt.timedelta(milliseconds=1)
    stamps = {"before": edge - ms, "at-start": edge, "inside": edge + ms, "last": edge + dt.timedelta(hours=1) - ms}
    stamps["at-end"] = edge + dt.timedelta(hours=1)
    ids = server.add_logs(GW, [{"created_at": t.isoformat().replace("+00:00", "Z")} for t in stamps.values()])
    by_name = dict(zip(stamps, ids, strict=True))
    got = [log["id"] for log in client_for(server).iter_logs(LogQuery.of(start=edge, end=edge + dt.timedelta(hours=1)))]
    assert got == [by_name["at-start"], by_name["inside"], by_name["last"]]


def test_delete_by_window_removes_exactly_the_matching_logs(emulator):
    client = client_for(emulator)
    start, end = START + dt.timedelta(hours=1), START + dt.timedelta(hours=3)
    doomed = set(emulator.ids(GW, start, end))
    before = set(emulator.ids(GW))
    emulator.reset_stats()
    client.delete_logs(LogQuery.of(start=start, end=end), limit=100)
    assert len(before - set(emulator.ids(GW))) == 100
    client.delete_logs(LogQuery.of(start=start, end=end))
    assert set(emulator.ids(GW)) == before - doomed
    assert client.count_logs(LogQuery.of(start=start, end=end)) == 0
    assert emulator.stats["delete"] == 2


def test_listing_survives_5xx_and_dropped_connections(emulator):
    emulator.faults.update(error_rate=0.2, drop_rate=0.05, seed=7)
    client = client_for(emulator)
    emulator.reset_stats()
    got = [log["id"] for log in client.iter_logs(LogQuery.of(start=START, end=END))]
    assert got == emulator.ids(GW, START, END)
    stats = emulator.stats
    assert stats["served_5xx"] > 20 and stats["dropped"] > 3
    assert stats["list"] == 201 + stats["served_5xx"] + stats["dropped"]


class _ForwardingProxy(BaseHTTPRequestHandler):
    """A plain-http forward proxy: records each absolute request URL and relays it."""

    server: _RecordingServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.seen.append(self.path)
        target = urlsplit(self.path)
        upstream = http.client.HTTPConnection(target.netloc, timeout=30)
        headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
        upstream.request("GET", self.path.split(target.netloc, 1)[1], headers=headers)
        response = upstream.getresponse()
        body = response.read()
        upstream.close()
        self.send_response(response.status)
        self.send_header("Content-Type", response.getheader("Content-Type") or "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _RecordingServer(ThreadingHTTPServer):
    seen: list[str]


@pytest.fixture
def forwarding_proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[_RecordingServer]:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    server = _RecordingServer(("127.0.0.1", 0), _ForwardingProxy)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1"], ids=["proxied", "no-proxy"])
def test_the_environment_proxy_carries_every_request_unless_no_proxy(
    aigw_emulator_factory, forwarding_proxy, monkeypatch, no_proxy
):
    emulator = aigw_emulator_factory(gateways={GW: 500}, start=START, end=END)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{forwarding_proxy.server_address[1]}")
    if no_proxy:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    client = client_for(emulator)
    emulator.reset_stats()
    assert [log["id"] for log in client.iter_logs(LogQuery.of(start=START, end=END))] == emulator.ids(GW, START, END)
    assert emulator.stats["list"] == 11
    logs_url = f"{emulator.url}/accounts/{emulator.account_id}/ai-gateway/gateways/{GW}/logs"
    assert [url.split("?")[0] for url in forwarding_proxy.seen] == ([] if no_proxy else [logs_url] * 11)


def test_client_budget_matching_the_rule_never_trips_the_lockout(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 2_000}, start=START, end=END)
    server.faults.update(rate_limit_requests=20, rate_limit_period_s=1.0, lockout_s=1.0)
    client = client_for(server, budget=RequestBudget(18, 1.0))
    got = [log["id"] for log in client.iter_logs()]
    assert got == server.ids(GW)
    assert server.stats["served_429"] == 0
    assert client.budget.waited_seconds > 0


def test_lockout_is_waited_out_and_the_listing_stays_exact(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 2_000}, start=START, end=END)
    server.faults.update(rate_limit_requests=15, rate_limit_period_s=1.0, lockout_s=1.0)
    client = client_for(server)  # no useful client budget: the API's 429s govern
    got = [log["id"] for log in client.iter_logs()]
    assert got == server.ids(GW)
    assert server.stats["served_429"] >= 1


def test_listing_is_exact_while_the_gateway_inserts_and_deletes_oldest(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 3_000}, start=START, end=END)
    before = set(server.ids(GW))
    server.faults.update(churn_insert_per_request=25, capacity=3_000)
    got = [log["id"] for log in client_for(server).iter_logs(LogQuery.of(end=END))]
    after = set(server.ids(GW))
    present_throughout = before & after
    assert len(before - after) > 1_000, "churn must delete logs ahead of the cursor"
    assert len(got) == len(set(got))
    assert present_throughout <= set(got) <= before


def test_page_number_pagination_would_skip_under_the_same_churn(aigw_emulator_factory):
    """Why the keyset walk exists: page numbers skip logs when the oldest are deleted."""
    server = aigw_emulator_factory(gateways={GW: 3_000}, start=START, end=END)
    before = set(server.ids(GW))
    server.faults.update(churn_insert_per_request=25, capacity=3_000)
    client = client_for(server)
    got = set()
    for page in range(1, 61):
        rows, _ = client._list_page(None, [], {"page": page, "per_page": 50, "order_by_direction": "asc"})
        got |= {r["id"] for r in rows}
    assert (before & set(server.ids(GW))) - got, "page numbers skipped nothing - the churn scenario is too weak"


def test_logs_with_many_ties_and_late_arrivals(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 500}, start=START, end=END)
    instant = (START + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    tied = server.add_logs(GW, [{"created_at": instant} for _ in range(140)])
    got = [log["id"] for log in client_for(server).iter_logs()]
    assert len(got) == len(set(got)) == 640
    assert set(tied) <= set(got)


def test_bodies_patch_and_errors(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 0})
    with_body, without = server.add_logs(
        GW,
        [
            {
                "request_body": {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
                "response_body": 'data: {"x": 1}\n\ndata: [DONE]\n\n',
            },
            {"request_body": None, "response_body": None},
        ],
    )
    client = client_for(server)
    assert client.get_log_request(with_body) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert client.get_log_response(with_body) == 'data: {"x": 1}\n\ndata: [DONE]\n\n'
    with pytest.raises(AIGatewayNotFoundError):
        client.get_log_request(without)
    client.patch_log(with_body, LogPatch.of(feedback=1, score=87.5, metadata={"reviewed": True}))
    detail = client.get_log(with_body)
    assert detail["id"] == with_body
    liked = LogQuery.of(filters={"key": "feedback", "operator": "eq", "value": 1})
    assert [log["id"] for log in client.iter_logs(liked)] == [with_body]
    with pytest.raises(AIGatewayNotFoundError):
        client.get_log("0193a7c2-5e1f-7abc-8def-0123456789ab")


def test_read_only_token_cannot_delete(aigw_emulator_factory):
    server = aigw_emulator_factory(gateways={GW: 10})
    client = AIGatewayClient(
        server.account_id,
        api_token=server.read_only_token,
        base_url=server.url,
        gateway_id=GW,
        budget=RequestBudget(100, 1),
    )
    assert client.count_logs() == 10
    with pytest.raises(AIGatewayAPIError, match="AI Gateway Write") as info:
        client.delete_logs(LogQuery.of(start=START))
    assert info.value.status == 403
    assert server.count(GW) == 10


def test_hook_from_the_fixture_connection(aigw_emulator):
    hook = AIGatewayHook()
    assert hook.test_connection() == (True, "Connected: gateway 'my-gateway' holds 1000 logs")
    assert [log["id"] for log in hook.iter_logs()] == aigw_emulator.ids(GW)


def test_hook_from_a_uri_connection(aigw_emulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_AIGW_URI", aigw_emulator.airflow_conn_uri(GW))
    assert AIGatewayHook("aigw_uri").count_logs() == 1000


def test_emulator_saw_the_single_json_filters_parameter(aigw_emulator):
    aigw_emulator.reset_stats()
    AIGatewayHook().count_logs(filters={"key": "model", "operator": "eq", "value": "gpt-4o"})
    (record,) = aigw_emulator.stats.requests
    assert json.loads(record["query"]["filters"][0]) == [{"key": "model", "operator": "eq", "value": ["gpt-4o"]}]
