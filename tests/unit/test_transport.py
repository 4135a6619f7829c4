"""The one HTTP path (:mod:`airflow_provider_aigw.transport`): auth, proxies and TLS, URLs, retries,
``Retry-After``, the budget of every attempt, and the mapping of answers to exceptions.
"""

from __future__ import annotations

import math
import traceback
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from airflow_provider_aigw.budget import RequestBudget
from airflow_provider_aigw.client import AIGatewayClient
from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayConfigError,
    AIGatewayInputError,
    AIGatewayNotFoundError,
    AIGatewayRateLimitError,
    AIGatewayURLTooLongError,
)
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.transport import MAX_URL_CHARS
from tests.unit.fake_api import ACCOUNT, BASE, LOGS, TOKEN, FakeListAPI, make_client, make_logs

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
            client.delete_logs(LogQuery.of(start="2026-11-26T00:00:00Z"))
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
    budget = RequestBudget(1000, 300, clock=fake_time.time, sleep=fake_time.sleep)
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


def test_budget_counts_every_attempt_including_retries(requests_mock, fake_time):
    budget = RequestBudget(1000, 300, clock=fake_time.time, sleep=fake_time.sleep)
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


def test_clients_with_the_same_token_share_a_budget():
    one = AIGatewayClient(ACCOUNT, api_token=TOKEN, base_url=BASE, budget_requests=7, budget_period=11)
    two = AIGatewayClient(ACCOUNT, api_token=TOKEN, base_url=BASE, budget_requests=7, budget_period=11)
    other = AIGatewayClient(ACCOUNT, api_token="another-token", base_url=BASE, budget_requests=7, budget_period=11)
    assert one.budget is two.budget
    assert other.budget is not one.budget


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
# ------------------------------------------------------- requests' exceptions, credentials, URL length


def test_every_requests_exception_is_wrapped_naming_type_method_and_route_only(requests_mock, fake_time, exc):
    client = make_client(fake_time, max_retries=1)
    requests_mock.get(LOGS, exc=exc)
    with pytest.raises(AIGatewayAPIError) as info:
        client.count_logs()
    err = info.value
    assert str(err).endswith(f"{type(exc).__name__} (GET /accounts/{ACCOUNT}/ai-gateway/gateways/gw/logs)")
    assert TOKEN not in str(err) and TOKEN not in repr(err)
    assert err.__cause__ is None and err.__suppress_context__  # the requests text is not chained
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


def test_a_414_is_final_not_retried_and_a_clear_error(requests_mock, client):
    requests_mock.delete(LOGS, status_code=414, text="<html>414 Request-URI Too Large</html>")
    too_long = r"refused the request's URL as too long: nothing of it was applied \(HTTP 414; DELETE"
    with pytest.raises(AIGatewayURLTooLongError, match=too_long):
        client.delete_logs(LogQuery.of(filters=[{"key": "id", "operator": "eq", "value": ["a"]}]))
    assert requests_mock.call_count == 1


def test_a_url_over_the_cap_is_refused_before_anything_is_sent(requests_mock, client):
    requests_mock.delete(LOGS, json={"success": True})
    ids = [f"{n:08x}-0000-7000-8000-000000000000" for n in range(MAX_URL_CHARS // 40)]
    with pytest.raises(AIGatewayURLTooLongError, match=rf"would be \d+ characters long, over the {MAX_URL_CHARS}"):
        client.delete_logs(LogQuery.of(filters=[{"key": "id", "operator": "eq", "value": ids}]))
    assert requests_mock.call_count == 0
    client.delete_logs(LogQuery.of(filters=[{"key": "id", "operator": "eq", "value": ids[:300]}]))  # ~13,500: sent
    assert requests_mock.call_count == 1


def test_a_nan_timeout_is_refused_before_any_request() -> None:
    with pytest.raises(AIGatewayConfigError, match="timeout in the client settings must be a positive number"):
        AIGatewayClient("0" * 32, api_token="t", timeout=math.nan)
