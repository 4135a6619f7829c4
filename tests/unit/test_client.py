from __future__ import annotations

import datetime as dt
import json
import logging
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_aigw.client import AIGatewayClient, RequestBudget, build_patch_body
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayConfigError,
    AIGatewayInputError,
    AIGatewayNotFoundError,
    AIGatewayRateLimitError,
    AIGatewayURLTooLongError,
)
from airflow_provider_aigw.transport import MAX_URL_CHARS
from tests.fake_time import FakeTime

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "tok-SECRET-d5f1e2a9"
BASE = "https://api.example.test/client/v4"
LOGS = f"{BASE}/accounts/{ACCOUNT}/ai-gateway/gateways/gw/logs"
UTC = dt.timezone.utc


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def client(fake_time: FakeTime) -> AIGatewayClient:
    return make_client(fake_time)


def make_client(fake_time: FakeTime, **kwargs) -> AIGatewayClient:
    kwargs.setdefault("api_token", TOKEN)
    kwargs.setdefault("base_url", BASE)
    kwargs.setdefault("gateway_id", "gw")
    kwargs.setdefault("budget", RequestBudget(10**6, 1, clock=fake_time.clock, sleep=fake_time.sleep))
    return AIGatewayClient(ACCOUNT, sleep=fake_time.sleep, clock=fake_time.clock, **kwargs)


def query_of(request) -> dict[str, list[str]]:
    return parse_qs(urlsplit(request.url).query, keep_blank_values=True)


def make_logs(n: int, *, start=dt.datetime(2026, 11, 26, tzinfo=UTC), same_instant: int = 1) -> list[dict]:
    """n logs, ``same_instant`` of them sharing each millisecond."""
    return [
        {
            "id": f"log-{i:06d}",
            "created_at": (start + dt.timedelta(milliseconds=i // same_instant)).strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{(i // same_instant) % 1000:03d}Z",
            "model": "gpt-4o",
        }
        for i in range(n)
    ]


class FakeListAPI:
    """Serves GET .../logs honouring created_at gt/lt, id neq and page numbers (asc/desc)."""

    def __init__(self, logs: list[dict], *, honour_neq: bool = True, ignore_created_at: tuple[str, ...] = ()) -> None:
        self.logs = logs
        self.honour_neq = honour_neq
        self.ignore_created_at = ignore_created_at  # created_at operators the fake does not apply
        self.queries: list[dict[str, list[str]]] = []

    def __call__(self, request, context):
        query = query_of(request)
        self.queries.append(query)
        filters = json.loads(query["filters"][0]) if "filters" in query else []
        rows = list(self.logs)
        for f in filters:
            if f["key"] == "created_at" and f["operator"] not in self.ignore_created_at:
                bound = f["value"][0]
                rows = [
                    r for r in rows if (r["created_at"] > bound if f["operator"] == "gt" else r["created_at"] < bound)
                ]
            elif f["key"] == "id" and f["operator"] == "neq" and self.honour_neq:
                rows = [r for r in rows if r["id"] not in f["value"]]
        if query.get("order_by_direction") == ["desc"]:
            rows.reverse()
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        chunk = rows[(page - 1) * per_page : page * per_page]
        return {
            "success": True,
            "result": chunk,
            "result_info": {"page": page, "per_page": per_page, "count": len(chunk), "total_count": len(rows)},
        }


# ---------------------------------------------------------------- construction


def test_token_auth_header_and_no_token_in_repr(requests_mock, client):
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    assert client.count_logs() == 0
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in repr(client)


def test_global_api_key_auth(requests_mock, fake_time):
    client = make_client(fake_time, api_token=None, email="me@example.com", api_key="global-KEY-123")
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    client.count_logs()
    headers = requests_mock.last_request.headers
    assert headers["X-Auth-Email"] == "me@example.com"
    assert headers["X-Auth-Key"] == "global-KEY-123"
    assert "Authorization" not in headers


PROXY = "http://proxy.example.test:3128"
PROXY_ENV = ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE")


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


@pytest.mark.parametrize("given_session", [False, True], ids=["own-session", "given-session"])
def test_proxy_and_ca_bundle_from_the_environment_apply_to_every_request(
    requests_mock, fake_time, clean_proxy_env, given_session
):
    clean_proxy_env.setenv("HTTPS_PROXY", PROXY)
    clean_proxy_env.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/ca.pem")
    client = make_client(fake_time, session=requests.Session() if given_session else None)
    api = FakeListAPI(make_logs(120))
    requests_mock.get(LOGS, json=api)
    assert len(list(client.iter_logs())) == 120
    assert requests_mock.call_count == 3
    assert [r.proxies.get("https") for r in requests_mock.request_history] == [PROXY] * 3
    assert [r.verify for r in requests_mock.request_history] == ["/etc/corp/ca.pem"] * 3


@pytest.mark.parametrize("no_proxy", ["api.example.test", ".example.test", "*"])
def test_no_proxy_in_the_environment_bypasses_the_proxy(requests_mock, fake_time, clean_proxy_env, no_proxy):
    clean_proxy_env.setenv("HTTPS_PROXY", PROXY)
    clean_proxy_env.setenv("NO_PROXY", no_proxy)
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    make_client(fake_time).count_logs()
    assert "https" not in requests_mock.last_request.proxies
    assert requests_mock.last_request.verify is True


def test_verify_ssl_false_wins_over_a_ca_bundle_in_the_environment(requests_mock, fake_time, clean_proxy_env):
    clean_proxy_env.setenv("REQUESTS_CA_BUNDLE", "/etc/corp/ca.pem")
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    make_client(fake_time, verify_ssl=False).count_logs()
    assert requests_mock.last_request.verify is False


def test_the_query_goes_out_exactly_as_requests_would_prepare_it(requests_mock, client):
    # The query is appended after requests prepared the rest of the URL: it must already be in
    # the form requests would give it, i.e. preparing the sent URL again changes nothing.
    values = ["a b&c=d+e%f~g/h?i#j", "ünï €", '[{"key":"id","value":["x,y:z"]}]', "", "'()*!;@$"]
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {}})
    client._request("GET", client._logs_path(None), params={"v": values, "flag": True, "n": 7})
    sent = requests_mock.last_request.url
    assert requests.Request("GET", sent).prepare().url == sent
    assert parse_qs(urlsplit(sent).query, keep_blank_values=True) == {"v": values, "flag": ["true"], "n": ["7"]}


@pytest.mark.parametrize(
    "url", ["http://api.cloudflare.com/client/v4", "http://10.0.0.5:8080/client/v4", "http://example.com"]
)
def test_plain_http_to_a_remote_host_is_refused(fake_time, url):
    with pytest.raises(AIGatewayConfigError, match="Refusing to send credentials over plain http"):
        make_client(fake_time, base_url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/client/v4", "http://localhost:1/client/v4", "http://[::1]:9/x", "http://127.0.0.2"]
)
def test_plain_http_to_loopback_is_allowed(fake_time, url):
    assert make_client(fake_time, base_url=url).base_url == url.rstrip("/")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": "ftp://x"}, "must be an https:// URL"),
        ({"base_url": "https://user:pw@api.example.test"}, "must not carry"),
        ({"api_token": None}, "No credentials"),
        ({"timeout": 0}, "timeout .* must be a positive number"),
        ({"max_retries": -1}, "max_retries .* integer >= 0"),
    ],
)
def test_bad_client_settings(fake_time, kwargs, message):
    with pytest.raises(AIGatewayConfigError, match=message):
        make_client(fake_time, **kwargs)


def test_missing_or_bad_account_id(fake_time):
    with pytest.raises(AIGatewayInputError, match="account_id is missing: set 'account_id' in the extra of conn x"):
        AIGatewayClient("", api_token=TOKEN, source="conn x")
    with pytest.raises(AIGatewayInputError, match="32 lowercase hex"):
        AIGatewayClient("not-an-account", api_token=TOKEN)


# --------------------------------------------------------------------- listing


def test_filters_go_on_the_wire_as_one_json_parameter(requests_mock, client):
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    list(
        client.iter_logs(
            filters=[{"key": "model", "operator": "eq", "value": "gpt-4o"}],
            start="2026-11-26T00:00:00Z",
            end="2026-11-27T00:00:00Z",
        )
    )
    request = requests_mock.last_request
    raw_query = urlsplit(request.url).query
    assert "filters." not in raw_query and "filters%5B" not in raw_query and "filters[" not in raw_query
    query = query_of(request)
    assert sorted(query) == ["filters", "order_by", "order_by_direction", "page", "per_page"]
    assert json.loads(query["filters"][0]) == [
        {"key": "model", "operator": "eq", "value": ["gpt-4o"]},
        {"key": "created_at", "operator": "gt", "value": ["2026-11-25T23:59:59.999Z"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]},
    ]
    assert query["per_page"] == ["50"] and query["order_by"] == ["created_at"]
    assert query["order_by_direction"] == ["asc"]


@pytest.mark.parametrize(
    ("n", "expected_requests"), [(0, 1), (1, 1), (49, 1), (50, 2), (51, 2), (100, 3), (437, 9), (1234, 25)]
)
def test_full_listing_costs_ceil_n_over_50_requests(requests_mock, client, n, expected_requests):
    api = FakeListAPI(make_logs(n))
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs()]
    assert got == [r["id"] for r in api.logs]
    assert requests_mock.call_count == expected_requests


def test_keyset_cursor_resumes_after_last_instant_excluding_seen_ids(requests_mock, client):
    api = FakeListAPI(make_logs(60))
    requests_mock.get(LOGS, json=api)
    list(client.iter_logs(end="2026-11-27T00:00:00Z"))
    second = json.loads(api.queries[1]["filters"][0])
    assert second == [
        {"key": "created_at", "operator": "lt", "value": ["2026-11-27T00:00:00.000Z"]},
        {"key": "created_at", "operator": "gt", "value": ["2026-11-26T00:00:00.048Z"]},
        {"key": "id", "operator": "neq", "value": ["log-000049"]},
    ]
    assert api.queries[1]["page"] == ["1"]


def test_descending_keyset(requests_mock, client):
    api = FakeListAPI(make_logs(120))
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs(order_by_direction="desc")]
    assert got == [r["id"] for r in reversed(api.logs)]
    assert requests_mock.call_count == 3


def test_more_logs_than_a_page_sharing_one_instant(requests_mock, client):
    # 130 logs share each millisecond: the walk must neither loop nor skip nor repeat.
    api = FakeListAPI(make_logs(400, same_instant=130))
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs()]
    assert sorted(got) == [r["id"] for r in api.logs]
    assert len(got) == len(set(got)) == 400


def test_api_ignoring_the_id_exclusion_never_yields_twice(requests_mock, client):
    api = FakeListAPI(make_logs(300, same_instant=3), honour_neq=False)
    requests_mock.get(LOGS, json=api)
    got = [r["id"] for r in client.iter_logs()]
    assert sorted(got) == [r["id"] for r in api.logs]


def test_max_results_stops_without_fetching_more_pages(requests_mock, client):
    requests_mock.get(LOGS, json=FakeListAPI(make_logs(500)))
    assert len(list(client.iter_logs(max_results=50))) == 50
    assert requests_mock.call_count == 1
    assert len(list(client.iter_logs(max_results=75))) == 75
    assert requests_mock.call_count == 3


def test_other_orders_use_page_numbers(requests_mock, client):
    api = FakeListAPI(make_logs(120))
    requests_mock.get(LOGS, json=api)
    assert len(list(client.iter_logs(order_by="model"))) == 120
    assert [q["page"] for q in api.queries] == [["1"], ["2"], ["3"]]


def test_search_and_extra_params_pass_through(requests_mock, client):
    requests_mock.get(LOGS, json=FakeListAPI([]))
    list(client.iter_logs(search="invoice", meta_info=True))
    query = query_of(requests_mock.last_request)
    assert query["search"] == ["invoice"] and query["meta_info"] == ["true"]


def test_count_logs_is_one_request_with_per_page_1(requests_mock, client):
    requests_mock.get(LOGS, json=FakeListAPI(make_logs(77)))
    assert client.count_logs(start="2026-11-26T00:00:00Z") == 77
    assert requests_mock.call_count == 1
    assert query_of(requests_mock.last_request)["per_page"] == ["1"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_page": 51}, "per_page must be an integer from 1 to 50"),
        ({"per_page": 0}, "per_page"),
        ({"max_results": 0}, "max_results must be a positive integer"),
        ({"order_by": "cost"}, "order_by must be one of"),
        ({"order_by_direction": "up"}, "order_by_direction"),
        ({"filters": "model=gpt"}, "filters must be a list"),
        ({"start": dt.datetime(2026, 1, 1)}, "naive"),
        ({"start": "2026-11-27T00:00:00Z", "end": "2026-11-26T00:00:00Z"}, "must be after start"),
        ({"gateway_id": "../../zones"}, "not a valid gateway id"),
        ({"page": 3}, r"\['page'\] cannot be passed"),
    ],
)
def test_bad_list_input_raises_before_any_request(requests_mock, client, kwargs, message):
    gateway_id = kwargs.pop("gateway_id", None)
    with pytest.raises(AIGatewayInputError, match=message):
        client.iter_logs(gateway_id, **kwargs)
    assert requests_mock.call_count == 0


def test_no_gateway_anywhere_is_a_clear_error(requests_mock, fake_time):
    client = make_client(fake_time, gateway_id=None)
    with pytest.raises(AIGatewayInputError, match="gateway_id is required"):
        client.count_logs()
    assert requests_mock.call_count == 0


# ---------------------------------------------------------------------- errors


def test_400_is_not_retried_and_carries_codes(requests_mock, client):
    requests_mock.get(
        LOGS,
        status_code=400,
        json={
            "success": False,
            "errors": [{"code": 7001, "message": "Number must be less than or equal to 50", "path": ["per_page"]}],
            "result": {},
        },
    )
    with pytest.raises(AIGatewayAPIError) as info:
        client.count_logs()
    err = info.value
    assert (err.status, err.codes, err.method) == (400, [7001], "GET")
    assert err.path == f"/accounts/{ACCOUNT}/ai-gateway/gateways/gw/logs"
    # the explanation leads, the method and route come last
    assert str(err) == f"[7001] Number must be less than or equal to 50 (HTTP 400; GET {err.path})"
    assert requests_mock.call_count == 1


@pytest.mark.parametrize(("method", "permission"), [("GET", "AI Gateway Read"), ("DELETE", "AI Gateway Write")])
def test_403_names_the_needed_permission(requests_mock, client, method, permission):
    body = {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}
    requests_mock.register_uri(method, LOGS, status_code=403, json=body)
    with pytest.raises(AIGatewayAPIError, match=rf"^Access denied: .*'{permission}.*\(HTTP 403; {method} /acc") as info:
        if method == "GET":
            client.count_logs()
        else:
            client.delete_logs(start="2026-11-26T00:00:00Z")
    assert info.value.codes == [10000]
    assert TOKEN not in str(info.value) and TOKEN not in repr(info.value)
    assert requests_mock.call_count == 1


def test_404_on_logs_route_hints_at_account_id_and_workers_observability(requests_mock, client):
    requests_mock.get(
        LOGS, status_code=404, json={"success": False, "errors": [{"code": 7002, "message": "Not Found"}]}
    )
    with pytest.raises(
        AIGatewayNotFoundError, match=r"^Gateway not found: .*Workers Observability.*GET /acc.*/logs\)$"
    ) as info:
        client.count_logs()
    # A wrong account_id makes every gateway "not found": the message says so first, with the id used.
    assert str(info.value).startswith(
        f"Gateway not found: check the account_id in the connection's extra (now {ACCOUNT}; a wrong one makes "
        "every gateway 'not found') and the gateway id."
    )


def test_404_on_a_log(requests_mock, client):
    requests_mock.get(
        f"{LOGS}/abc", status_code=404, json={"success": False, "errors": [{"code": 7002, "message": "Not Found"}]}
    )
    # the explanation leads (a log view cuts long lines), the method and route follow
    with pytest.raises(AIGatewayNotFoundError, match=r"^Not found: \[7002\] Not Found \(HTTP 404; GET /.*/logs/abc\)$"):
        client.get_log("abc")


def test_5xx_is_retried_with_exponential_backoff(requests_mock, client, fake_time):
    requests_mock.get(
        LOGS,
        [
            {"status_code": 502, "text": "<html>bad gateway</html>"},
            {"status_code": 503, "json": {"success": False, "errors": [{"code": 1, "message": "x"}]}},
            {"status_code": 500, "text": ""},
            {"json": {"success": True, "result": [], "result_info": {"total_count": 5}}},
        ],
    )
    assert client.count_logs() == 5
    assert requests_mock.call_count == 4
    assert len(fake_time.sleeps) == 3
    # base 1 s doubling, jitter in [50%, 100%]
    for attempt, slept in enumerate(fake_time.sleeps):
        assert 0.5 * 2**attempt <= slept <= 2**attempt


def test_dropped_connections_and_timeouts_are_retried(requests_mock, client):
    requests_mock.get(
        LOGS,
        [
            {"exc": requests.exceptions.ConnectionError("reset by peer")},
            {"exc": requests.exceptions.ReadTimeout("slow")},
            {"exc": requests.exceptions.ChunkedEncodingError("cut")},
            {"json": {"success": True, "result": [], "result_info": {"total_count": 1}}},
        ],
    )
    assert client.count_logs() == 1
    assert requests_mock.call_count == 4


def test_429_honours_retry_after_and_pauses_the_shared_budget(requests_mock, fake_time):
    budget = RequestBudget(1000, 300, clock=fake_time.clock, sleep=fake_time.sleep)
    client = make_client(fake_time, budget=budget)
    requests_mock.get(
        LOGS,
        [
            {"status_code": 429, "headers": {"Retry-After": "120"}, "json": {"success": False, "errors": []}},
            {"json": {"success": True, "result": [], "result_info": {"total_count": 3}}},
        ],
    )
    started = fake_time.now
    assert client.count_logs() == 3
    assert 120 <= fake_time.sleeps[0] <= 121
    assert fake_time.now - started >= 120
    assert budget.acquired == 2


def test_retries_give_up_after_max_retries(requests_mock, fake_time):
    client = make_client(fake_time, max_retries=3)
    requests_mock.get(LOGS, status_code=503, text="unavailable")
    with pytest.raises(AIGatewayAPIError) as info:
        client.count_logs()
    assert info.value.status == 503
    assert requests_mock.call_count == 4


def test_a_failed_first_attempt_is_the_first_of_the_retry_loop(requests_mock, fake_time, caplog):
    # A call answered at once never enters the retry loop; one that fails hands that attempt over.
    requests_mock.get(LOGS, status_code=503, text="unavailable")
    with pytest.raises(AIGatewayAPIError) as info:
        make_client(fake_time, max_retries=0).count_logs()
    assert info.value.status == 503
    assert requests_mock.call_count == 1 and fake_time.sleeps == []

    ok = {"json": {"success": True, "result": [], "result_info": {"total_count": 1}}}
    requests_mock.get(LOGS, [{"status_code": 503, "text": "x"}, {"status_code": 502, "text": "y"}, ok])
    with caplog.at_level(logging.WARNING, logger="airflow_provider_aigw.client"):
        assert make_client(fake_time, max_retries=2).count_logs() == 1
    retries = [r.getMessage() for r in caplog.records if "; retry " in r.getMessage()]
    assert [m.split("; retry ")[1].split(" in ")[0] for m in retries] == ["1/2", "2/2"]
    assert requests_mock.call_count == 1 + 3 and len(fake_time.sleeps) == 2


def test_retries_stop_at_the_deadline(requests_mock, fake_time):
    client = make_client(fake_time, max_retries=100, retry_deadline=100, backoff_base=10, backoff_max=10)
    requests_mock.get(LOGS, exc=requests.exceptions.ConnectionError("down"))
    with pytest.raises(AIGatewayAPIError, match="ConnectionError"):
        client.count_logs()
    assert sum(fake_time.sleeps) <= 100
    assert 10 <= requests_mock.call_count <= 21


def test_persistent_429_raises_rate_limit_error(requests_mock, fake_time):
    client = make_client(fake_time, retry_deadline=400)
    requests_mock.get(
        LOGS, status_code=429, headers={"Retry-After": "300"}, json={"success": False, "errors": [{"code": 971}]}
    )
    with pytest.raises(AIGatewayRateLimitError) as info:
        client.count_logs()
    assert info.value.retry_after == 300
    assert requests_mock.call_count == 2  # a second 300 s wait would overrun the 400 s deadline


def test_success_false_with_200_is_an_error(requests_mock, client):
    requests_mock.get(LOGS, json={"success": False, "errors": [{"code": 9, "message": "odd"}]})
    with pytest.raises(AIGatewayAPIError, match=r"\[9\] odd"):
        client.count_logs()


# ---------------------------------------------------------------------- budget


def test_budget_allows_max_requests_per_sliding_period(fake_time):
    budget = RequestBudget(3, 10, clock=fake_time.clock, sleep=fake_time.sleep)
    for _ in range(3):  # at t=0, 2, 4
        budget.acquire()
        fake_time.now += 2
    assert fake_time.sleeps == []
    fake_time.now -= 2
    budget.acquire()  # t=4: waits until the first request leaves the window at t=10
    assert fake_time.sleeps == [6]
    budget.acquire()  # t=10: waits until the second one leaves at t=12
    assert fake_time.sleeps == [6, 2]
    assert budget.acquired == 5
    assert budget.waited_seconds == 8


def test_budget_pause(fake_time):
    budget = RequestBudget(100, 10, clock=fake_time.clock, sleep=fake_time.sleep)
    budget.pause_for(30)
    budget.acquire()
    assert fake_time.sleeps == [30]


def test_budget_counts_every_attempt_including_retries(requests_mock, fake_time):
    budget = RequestBudget(1000, 300, clock=fake_time.clock, sleep=fake_time.sleep)
    client = make_client(fake_time, budget=budget)
    requests_mock.get(
        LOGS,
        [
            {"status_code": 500, "text": ""},
            {"json": {"success": True, "result": [], "result_info": {"total_count": 0}}},
        ],
    )
    client.count_logs()
    assert budget.acquired == 2 == client.requests_sent


def test_shared_budget_is_one_per_credentials_and_limits():
    a = RequestBudget.shared("k1", 10, 60)
    assert RequestBudget.shared("k1", 10, 60) is a
    assert RequestBudget.shared("k2", 10, 60) is not a


def test_clients_with_the_same_token_share_a_budget():
    one = AIGatewayClient(ACCOUNT, api_token=TOKEN, base_url=BASE, budget_requests=7, budget_period=11)
    two = AIGatewayClient(ACCOUNT, api_token=TOKEN, base_url=BASE, budget_requests=7, budget_period=11)
    other = AIGatewayClient(ACCOUNT, api_token="another-token", base_url=BASE, budget_requests=7, budget_period=11)
    assert one.budget is two.budget
    assert other.budget is not one.budget


@pytest.mark.parametrize(("requests_", "period"), [(0, 10), (10, 0), (True, 10)])
def test_bad_budget(requests_, period):
    with pytest.raises(AIGatewayInputError, match="budget_"):
        RequestBudget(requests_, period)


# ---------------------------------------------------------------- single logs


def test_get_log_and_bodies(requests_mock, client):
    requests_mock.get(f"{LOGS}/abc", json={"success": True, "result": {"id": "abc", "request_size": 10}})
    requests_mock.get(f"{LOGS}/abc/request", json={"model": "gpt-4o", "messages": []})
    requests_mock.get(
        f"{LOGS}/abc/response", text="data: {}\n\ndata: [DONE]\n\n", headers={"Content-Type": "text/event-stream"}
    )
    assert client.get_log("abc") == {"id": "abc", "request_size": 10}
    assert client.get_log_request("abc") == {"model": "gpt-4o", "messages": []}
    assert client.get_log_response("abc") == "data: {}\n\ndata: [DONE]\n\n"


def test_absent_body_raises_not_found(requests_mock, client):
    requests_mock.get(
        f"{LOGS}/abc/request",
        status_code=404,
        json={"success": False, "errors": [{"code": 7002, "message": "Not Found"}]},
    )
    with pytest.raises(AIGatewayNotFoundError):
        client.get_log_request("abc")


@pytest.mark.parametrize("log_id", ["../../../zones", "a/b", "a?x=1", "..", ""])
def test_log_ids_cannot_reach_other_routes(requests_mock, client, log_id):
    with pytest.raises(AIGatewayInputError, match="log_id"):
        client.get_log(log_id)
    with pytest.raises(AIGatewayInputError, match="log_id"):
        client.patch_log(log_id, feedback=1)
    assert requests_mock.call_count == 0


def test_patch_sends_only_given_fields_and_none_clears(requests_mock, client):
    requests_mock.patch(f"{LOGS}/abc", json={"success": True, "result": {}})
    assert client.patch_log("abc", feedback=-1, metadata={"team": "search", "n": 3, "ok": True}) == {}
    assert requests_mock.last_request.json() == {"feedback": -1, "metadata": {"team": "search", "n": 3, "ok": True}}
    client.patch_log("abc", score=None)
    assert requests_mock.last_request.json() == {"score": None}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "nothing to patch"),
        ({"feedback": 2}, "feedback must be a number from -1 to 1"),
        ({"feedback": True}, "feedback"),
        ({"feedback": "1"}, "feedback"),
        ({"score": 101}, "score must be a number from 0 to 100"),
        ({"score": -0.5}, "score"),
        ({"score": float("nan")}, "score"),
        ({"metadata": {"a": {"nested": 1}}}, r"metadata\['a'\] must be a string"),
        ({"metadata": {"a": [1]}}, "metadata"),
        ({"metadata": "k=v"}, "metadata must be a dict"),
        ({"metadata": {str(i): i for i in range(6)}}, "at most 5 entries"),
        ({"metadata": {"x": float("inf")}}, "finite"),
    ],
)
def test_bad_patch_values_raise_before_any_request(requests_mock, client, kwargs, message):
    with pytest.raises(AIGatewayInputError, match=message):
        client.patch_log("abc", **kwargs)
    with pytest.raises(AIGatewayInputError, match=message):
        build_patch_body(**kwargs)
    assert requests_mock.call_count == 0


# ---------------------------------------------------------------------- delete


def test_delete_sends_filters_limit_and_order_as_query(requests_mock, client):
    requests_mock.delete(LOGS, json={"success": True})
    client.delete_logs(
        filters={"key": "model", "operator": "eq", "value": "gpt-4o"},
        end="2026-11-26T00:00:00Z",
        limit=500,
        order_by="created_at",
        order_by_direction="asc",
    )
    request = requests_mock.last_request
    assert request.body is None
    query = query_of(request)
    assert json.loads(query["filters"][0]) == [
        {"key": "model", "operator": "eq", "value": ["gpt-4o"]},
        {"key": "created_at", "operator": "lt", "value": ["2026-11-26T00:00:00.000Z"]},
    ]
    assert query["limit"] == ["500"] and query["order_by"] == ["created_at"]


def test_delete_without_filters_is_refused_unless_explicit(requests_mock, client):
    requests_mock.delete(LOGS, json={"success": True})
    with pytest.raises(AIGatewayInputError, match="deletes the gateway's oldest logs"):
        client.delete_logs()
    assert requests_mock.call_count == 0
    client.delete_logs(allow_unfiltered=True, limit=10)
    assert query_of(requests_mock.last_request) == {"limit": ["10"]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "limit must be an integer from 1 to 10000"),
        ({"limit": 10001}, "limit"),
        ({"order_by": "id"}, "order_by must be one of"),
        ({"order_by_direction": "sideways"}, "order_by_direction"),
        ({"filters": [{"key": "x", "operator": "like", "value": 1}]}, "operator must be one of"),
    ],
)
def test_bad_delete_input(requests_mock, client, kwargs, message):
    kwargs.setdefault("start", "2026-11-26T00:00:00Z")
    with pytest.raises(AIGatewayInputError, match=message):
        client.delete_logs(**kwargs)
    assert requests_mock.call_count == 0


# ------------------------------------------------------- issue 10: bodies, transport, keyset


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"success": True, "result": {"model": "gpt-4o"}}, {"model": "gpt-4o"}),
        ({"success": True, "errors": [], "messages": [], "result": [1, 2]}, [1, 2]),
        ({"success": True, "result": "data: {}\n\n"}, "data: {}\n\n"),
        # not exactly an envelope: a stored provider body is kept as it is
        (
            {"success": True, "result": {"a": 1}, "id": "chatcmpl-1"},
            {"success": True, "result": {"a": 1}, "id": "chatcmpl-1"},
        ),
        ({"success": False, "result": None}, {"success": False, "result": None}),
        ({"result": {"a": 1}}, {"result": {"a": 1}}),
        ({"model": "gpt-4o"}, {"model": "gpt-4o"}),
    ],
)
def test_bodies_are_unwrapped_only_from_an_exact_envelope(requests_mock, client, body, expected):
    requests_mock.get(f"{LOGS}/abc/request", json=body)
    requests_mock.get(f"{LOGS}/abc/response", json=body)
    assert client.get_log_request("abc") == expected
    assert client.get_log_response("abc") == expected


@pytest.mark.parametrize(
    "exc",
    [
        requests.exceptions.InvalidHeader(f"Invalid return character or leading space in header: Bearer {TOKEN}"),
        requests.exceptions.ConnectionError(f"HTTPSConnectionPool: Max retries exceeded with url: /x?token={TOKEN}"),
        requests.exceptions.InvalidURL(f"Invalid URL 'https://{TOKEN}@x'"),
        requests.exceptions.ProxyError(f"Cannot connect to proxy with Bearer {TOKEN}"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_requests_exception_is_wrapped_naming_type_method_and_route_only(requests_mock, fake_time, exc):
    client = make_client(fake_time, max_retries=1)
    requests_mock.get(LOGS, exc=exc)
    with pytest.raises(AIGatewayAPIError) as info:
        client.count_logs()
    err = info.value
    assert str(err).endswith(f"{type(exc).__name__} (GET /accounts/{ACCOUNT}/ai-gateway/gateways/gw/logs)")
    assert TOKEN not in str(err) and TOKEN not in repr(err)
    assert err.__cause__ is None and err.__suppress_context__  # the requests text is not chained
    import traceback

    assert TOKEN not in "".join(traceback.format_exception(err))


@pytest.mark.parametrize(
    ("kwargs", "header", "value"),
    [
        ({"api_token": f"{TOKEN}\n"}, "Authorization", f"Bearer {TOKEN}"),
        ({"api_token": f"  {TOKEN}\r\n"}, "Authorization", f"Bearer {TOKEN}"),
        ({"api_token": None, "email": " me@example.com\n", "api_key": f"{TOKEN}\n"}, "X-Auth-Key", TOKEN),
        ({"api_token": None, "email": " me@example.com\n", "api_key": f"{TOKEN}\n"}, "X-Auth-Email", "me@example.com"),
    ],
)
def test_credentials_are_stripped_of_surrounding_whitespace(requests_mock, fake_time, kwargs, header, value):
    requests_mock.get(LOGS, json={"success": True, "result": [], "result_info": {"total_count": 0}})
    make_client(fake_time, **kwargs).count_logs()
    assert requests_mock.last_request.headers[header] == value


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"api_token": f"{TOKEN}\nX-Injected: 1"}, "api_token"),
        ({"api_token": f"{TOKEN[:5]} {TOKEN[5:]}"}, "api_token"),
        ({"api_token": f"{TOKEN}\x00"}, "api_token"),
        ({"api_token": None, "email": "me@example.com", "api_key": f"{TOKEN}\t{TOKEN}"}, "api_key"),
        ({"api_token": None, "email": "me@ex ample.com", "api_key": TOKEN}, "email"),
    ],
)
def test_credentials_with_inner_whitespace_or_control_characters_are_refused(requests_mock, fake_time, kwargs, field):
    with pytest.raises(AIGatewayConfigError, match=rf"the {field} of the client settings contains whitespace") as info:
        make_client(fake_time, **kwargs)
    assert TOKEN not in str(info.value) and TOKEN[5:] not in str(info.value) and "ex ample" not in str(info.value)
    assert requests_mock.call_count == 0


class RetentionListAPI(FakeListAPI):
    """Deletes the oldest ``drop`` logs right after serving its first request (once)."""

    def __init__(self, logs: list[dict], drop: int) -> None:
        super().__init__(logs)
        self.drop = drop

    def __call__(self, request, context):
        answer = super().__call__(request, context)
        if self.drop:
            del self.logs[: self.drop]
            self.drop = 0
        return answer


def test_an_instant_of_more_than_50_logs_stays_exact_under_oldest_deletion(requests_mock, client):
    logs = make_logs(200, same_instant=200)  # 200 logs in one millisecond
    api = RetentionListAPI(list(logs), drop=50)
    requests_mock.get(LOGS, json=api)
    seen = [row["id"] for row in client.iter_logs()]
    assert len(seen) == len(set(seen)) == 200
    # every request excludes the ids seen at the instant: 4 full pages, then the empty one
    assert len(api.queries) == 5


def test_a_414_is_final_not_retried_and_a_clear_error(requests_mock, client):
    requests_mock.delete(LOGS, status_code=414, text="<html>414 Request-URI Too Large</html>")
    too_long = r"refused the request's URL as too long: nothing of it was applied \(HTTP 414; DELETE"
    with pytest.raises(AIGatewayURLTooLongError, match=too_long):
        client.delete_logs(filters=[{"key": "id", "operator": "eq", "value": ["a"]}])
    assert requests_mock.call_count == 1


def test_a_url_over_the_cap_is_refused_before_anything_is_sent(requests_mock, client):
    requests_mock.delete(LOGS, json={"success": True})
    ids = [f"{n:08x}-0000-7000-8000-000000000000" for n in range(MAX_URL_CHARS // 40)]
    with pytest.raises(AIGatewayURLTooLongError, match=rf"would be \d+ characters long, over the {MAX_URL_CHARS}"):
        client.delete_logs(filters=[{"key": "id", "operator": "eq", "value": ids}])
    assert requests_mock.call_count == 0
    client.delete_logs(filters=[{"key": "id", "operator": "eq", "value": ids[:300]}])  # about 13,500: sent
    assert requests_mock.call_count == 1
