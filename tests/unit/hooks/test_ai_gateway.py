from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import pytest

from airflow_provider_aigw.exceptions import (
    AIGatewayAPIError,
    AIGatewayConfigError,
    AIGatewayError,
    AIGatewayInputError,
)
from airflow_provider_aigw.get_provider_info import get_provider_info
from airflow_provider_aigw.hooks.ai_gateway import CONNECTION_EXTRAS, AIGatewayHook
from airflow_provider_aigw.patch import LogPatch
from airflow_provider_aigw.query import LogQuery
from airflow_provider_aigw.transport import DEFAULT_BASE_URL

ACCOUNT = "0123456789abcdef0123456789abcdef"
TOKEN = "hook-TOKEN-7f3a9c1e"
ENV = "AIRFLOW_CONN_CLOUDFLARE_AI_GATEWAY_DEFAULT"
LOGS = f"{DEFAULT_BASE_URL}/accounts/{ACCOUNT}/ai-gateway/gateways/%s/logs"
EMPTY = {"success": True, "result": [], "result_info": {"total_count": 0}}
START = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
END = START + timedelta(hours=1)


def set_conn(monkeypatch, *, conn_id: str = "cloudflare_ai_gateway_default", **fields) -> None:
    conn = {"conn_type": "cloudflare_ai_gateway", "password": TOKEN, "extra": {"account_id": ACCOUNT}}
    extra = fields.pop("extra", None)
    conn.update(fields)
    if extra is not None:
        conn["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def test_json_connection_defaults(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "from-conn"})
    requests_mock.get(LOGS % "from-conn", json=EMPTY)
    hook = AIGatewayHook()
    assert hook.client.base_url == DEFAULT_BASE_URL
    assert hook.client.timeout == 30 and hook.client.max_retries == 10
    assert hook.client.budget.max_requests == 1000 and hook.client.budget.period == 300
    assert hook.count_logs() == 0
    assert requests_mock.last_request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_gateway_precedence_method_then_hook_then_connection(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "from-conn"})
    for gw in ("from-conn", "from-hook", "from-call"):
        requests_mock.get(LOGS % gw, json=EMPTY)
    AIGatewayHook().count_logs()
    assert "/gateways/from-conn/" in requests_mock.last_request.url
    hook = AIGatewayHook(gateway_id="from-hook")
    hook.count_logs()
    assert "/gateways/from-hook/" in requests_mock.last_request.url
    hook.count_logs(gateway_id="from-call")
    assert "/gateways/from-call/" in requests_mock.last_request.url


def test_uri_connection_with_string_extras(monkeypatch):
    uri = (
        f"cloudflare-ai-gateway://:{TOKEN}@{quote('http://127.0.0.1:8787/client/v4', safe='')}"
        f"?account_id={ACCOUNT}&gateway_id=gw&timeout=12.5&max_retries=3&budget_requests=600"
        "&budget_period=60&verify_ssl=true&retry_deadline=120"
    )
    monkeypatch.setenv("AIRFLOW_CONN_AIGW_URI", uri)
    client = AIGatewayHook("aigw_uri").client
    assert client.base_url == "http://127.0.0.1:8787/client/v4"
    assert (client.timeout, client.max_retries, client.retry_deadline) == (12.5, 3, 120)
    assert (client.budget.max_requests, client.budget.period) == (600, 60)
    assert client.gateway_id == "gw" and client.verify_ssl is True


def test_host_without_scheme_is_https(monkeypatch):
    set_conn(monkeypatch, host="api.example.test", schema="client/v4")
    assert AIGatewayHook().client.base_url == "https://api.example.test/client/v4"


def test_login_switches_to_global_api_key(monkeypatch, requests_mock):
    set_conn(monkeypatch, login="me@example.com", password="global-key-0001", extra={"account_id": ACCOUNT})
    requests_mock.get(LOGS % "gw", json=EMPTY)
    AIGatewayHook(gateway_id="gw").count_logs()
    headers = requests_mock.last_request.headers
    assert headers["X-Auth-Email"] == "me@example.com" and headers["X-Auth-Key"] == "global-key-0001"
    assert "Authorization" not in headers


def test_missing_account_id_names_the_connection(monkeypatch, requests_mock):
    set_conn(monkeypatch, conn_id="my_cf", extra={"gateway_id": "gw"})
    with pytest.raises(
        AIGatewayInputError, match="account_id is missing: set 'account_id' in the extra of connection 'my_cf'"
    ):
        AIGatewayHook("my_cf").count_logs()
    assert requests_mock.call_count == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"timeout": "soon"}, "extra 'timeout' of connection 'cloudflare_ai_gateway_default' must be a float"),
        ({"max_retries": "2.5"}, "extra 'max_retries' .* must be a int"),
        ({"verify_ssl": "maybe"}, "extra 'verify_ssl' .* must be a bool"),
        ({"budget_requests": "0"}, "budget_requests must be a positive integer"),
    ],
)
def test_bad_extras(monkeypatch, requests_mock, extra, message):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, **extra})
    with pytest.raises((AIGatewayConfigError, AIGatewayInputError), match=message):
        AIGatewayHook().client  # noqa: B018
    assert requests_mock.call_count == 0


def test_plain_http_remote_host_refused(monkeypatch):
    set_conn(monkeypatch, host="http://api.cloudflare.com/client/v4")
    with pytest.raises(AIGatewayConfigError, match="Refusing to send credentials over plain http"):
        AIGatewayHook().client  # noqa: B018


def test_verify_ssl_off_warns(monkeypatch, caplog):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "verify_ssl": False})
    with caplog.at_level("WARNING"):
        assert AIGatewayHook().client.verify_ssl is False
    assert "TLS certificate verification is OFF" in caplog.text


def test_missing_connection_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    with pytest.raises(Exception, match=r"isn't defined|not defined|does not exist"):
        AIGatewayHook("no_such_conn").client  # noqa: B018


def test_test_connection(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    requests_mock.get(LOGS % "gw", json={"success": True, "result": [{}], "result_info": {"total_count": 42}})
    assert AIGatewayHook().test_connection() == (True, "Connected: gateway 'gw' holds 42 logs")
    requests_mock.get(
        LOGS % "gw",
        status_code=403,
        json={"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]},
    )
    ok, message = AIGatewayHook().test_connection()
    assert not ok and "Authentication error" in message and "AI Gateway Read" in message
    assert TOKEN not in message


def test_test_connection_without_gateway(monkeypatch, requests_mock):
    set_conn(monkeypatch)
    ok, message = AIGatewayHook().test_connection()
    assert not ok and "set 'gateway_id'" in message
    assert requests_mock.call_count == 0


def test_reprs_hold_no_token(monkeypatch):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    hook = AIGatewayHook()
    assert TOKEN not in repr(hook) and TOKEN not in repr(hook.client) and TOKEN not in repr(hook.client.budget)


def test_token_is_registered_with_the_secrets_masker(monkeypatch):
    # the masker that compat.mask_secret registers with, per Airflow version
    try:  # 3.1+
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:
        try:  # 3.0
            from airflow.sdk.execution_time.secrets_masker import redact
        except ImportError:  # 2.x
            from airflow.utils.log.secrets_masker import redact
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    AIGatewayHook().client  # noqa: B018
    assert TOKEN not in str(redact(f"Authorization: Bearer {TOKEN}"))


def test_ui_metadata_for_airflow_2_and_3():
    # Airflow < 3.2 calls the classmethod and validates snake_case keys; 3.2+ reads the provider info.
    behaviour = AIGatewayHook.get_ui_field_behaviour()
    # The port stays visible: Airflow 3.3.2's Test button only works for a connection saved with
    # one (0, which the provider ignores), and the label asks for it (tests/ui proves it).
    assert behaviour["hidden_fields"] == ["schema"]
    assert behaviour["relabeling"] == {
        "password": "API Token",
        "host": "API base URL",
        "login": "Email (Global API Key auth only)",
        "port": "Port: enter 0 (for the Test button)",
    }
    (conn_type,) = get_provider_info()["connection-types"]
    assert conn_type["connection-type"] == "cloudflare_ai_gateway"
    assert conn_type["hook-class-name"] == "airflow_provider_aigw.hooks.ai_gateway.AIGatewayHook"
    assert conn_type["ui-field-behaviour"]["hidden-fields"] == behaviour["hidden_fields"]
    assert {k: v for k, v in conn_type["ui-field-behaviour"].items() if k != "hidden-fields"} == {
        k: v for k, v in behaviour.items() if k != "hidden_fields"
    }
    # The form shows the two settings every connection needs; tuning knobs go in the Extra JSON.
    fields = conn_type["conn-fields"]
    assert set(fields) == {"account_id", "gateway_id"}
    # Airflow 3.3 marks a field required when its type does not allow null, and writes a field's
    # default into the extra: account_id is required, nothing has a default.
    assert fields["account_id"]["schema"]["type"] == "string"
    assert fields["gateway_id"]["schema"]["type"] == ["string", "null"]
    assert not [name for name, field in fields.items() if "default" in field["schema"]]
    assert re.fullmatch(fields["account_id"]["schema"]["pattern"], ACCOUNT)
    assert not re.fullmatch(fields["account_id"]["schema"]["pattern"], "not-an-account")
    assert set(fields) <= set(CONNECTION_EXTRAS)


def test_test_connection_does_not_retry_for_minutes(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw", "backoff_base": 0.001})
    requests_mock.get(LOGS % "gw", status_code=503, text="unavailable")
    hook = AIGatewayHook()
    ok, message = hook.test_connection()
    assert not ok and "HTTP 503" in message
    assert requests_mock.call_count == 2
    assert hook.client.max_retries == 10  # the tasks' client keeps its patience


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"account_id": "not-an-account", "gateway_id": "gw"}, "account_id in this connection must be 32"),
        ({"gateway_id": "gw"}, "account_id is missing: set 'account_id' in the extra of this connection"),
        ({"account_id": ACCOUNT, "gateway_id": "gw", "timeout": "soon"}, "extra 'timeout' of this connection must"),
    ],
)
def test_test_connection_names_no_throwaway_conn_id(monkeypatch, requests_mock, extra, expected):
    # The UI and the REST API test a copy stored under a random id (e.g. 'qx5qDZql'): naming it
    # would point the user at a connection that does not exist.
    set_conn(monkeypatch, conn_id="qx5qDZql", extra=extra)
    ok, message = AIGatewayHook(aigw_conn_id="qx5qDZql").test_connection()
    assert not ok and message.startswith(expected) and "qx5qDZql" not in message
    assert requests_mock.call_count == 0  # refused before any request


def test_patch_logs_attempts_every_id_then_names_the_failed_ones(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    ids = [f"log-{i}" for i in range(6)]
    for log_id in ids:
        status = 400 if log_id in ("log-1", "log-4") else 200
        body = {"success": status == 200, "errors": [] if status == 200 else [{"code": 7001, "message": "bad"}],
                "result": {"id": log_id}}
        requests_mock.patch(f"{LOGS % 'gw'}/{log_id}", status_code=status, json=body)
    with pytest.raises(AIGatewayError, match=r"^2 of 6 patch\(es\) failed \(4 succeeded\): log-1: .*; log-4: "):
        AIGatewayHook().patch_logs(ids, LogPatch.of(score=80), max_concurrency=3)
    assert sorted(r.url.rsplit("/", 1)[1] for r in requests_mock.request_history) == ids
    assert all(r.json() == {"score": 80} for r in requests_mock.request_history)
    requests_mock.reset_mock()
    assert AIGatewayHook().patch_logs(["log-0", "log-2"], LogPatch.of(feedback=None)) == 2
    assert [r.json() for r in requests_mock.request_history] == [{"feedback": None}] * 2


def test_patch_logs_checks_concurrency_before_any_request(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    with pytest.raises(AIGatewayInputError, match="max_concurrency must be an integer from 1 to 32, got 0"):
        AIGatewayHook().patch_logs(["log-0"], LogPatch.of(score=1), max_concurrency=0)
    assert requests_mock.call_count == 0


def test_patch_log_validates_the_values_before_any_request(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    with pytest.raises(AIGatewayInputError, match="score must be a number from 0 to 100"):
        AIGatewayHook().patch_log("log-0", score=101)
    with pytest.raises(AIGatewayInputError, match="nothing to patch"):
        AIGatewayHook().patch_log("log-0")
    assert requests_mock.call_count == 0
    requests_mock.patch(f"{LOGS % 'gw'}/log-0", json={"success": True, "result": {"id": "log-0", "score": 5}})
    assert AIGatewayHook().patch_log("log-0", score=5, metadata=None) == {"id": "log-0", "score": 5}
    assert requests_mock.last_request.json() == {"score": 5, "metadata": None}


# ------------------------------------------------------------------ the tasks' loops


def page(rows: list[dict], total: int) -> dict:
    return {"success": True, "result": rows, "result_info": {"total_count": total}}


def test_check_logs_counts_and_fetches_the_newest_matches_in_one_request(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    newest = [{"id": f"log-{i}", "created_at": f"2026-11-20T12:0{i}:00.000Z"} for i in (4, 3)]
    requests_mock.get(LOGS % "gw", json=page(newest, 7))
    query = LogQuery.of(filters={"key": "model", "operator": "eq", "value": "gpt-4o"}, start=START, end=END)
    result = AIGatewayHook().check_logs(query, min_count=3, max_matches=1)
    assert result == {
        "count": 7,
        "min_count": 3,
        "gateway_id": "gw",  # the connection's, as the query names none
        "start": "2026-11-20T12:00:00.000Z",
        "end": "2026-11-20T13:00:00.000Z",
        "matches": newest[:1],
    }
    assert requests_mock.call_count == 1
    sent = requests_mock.last_request.qs
    assert (sent["per_page"], sent["order_by"], sent["order_by_direction"]) == (["1"], ["created_at"], ["desc"])
    assert json.loads(requests_mock.last_request.qs["filters"][0])[0] == {
        "key": "model",
        "operator": "eq",
        "value": ["gpt-4o"],
    }


def test_check_logs_with_no_time_left_makes_one_attempt_on_a_copy_of_the_client(monkeypatch, requests_mock):
    extra = {"account_id": ACCOUNT, "gateway_id": "gw", "backoff_base": 0.001, "max_retries": 2}
    set_conn(monkeypatch, extra=extra)
    requests_mock.get(LOGS % "gw", status_code=503, text="unavailable")
    hook = AIGatewayHook()
    with pytest.raises(AIGatewayAPIError, match="HTTP 503"):
        hook.check_logs(LogQuery.of(), min_count=1, max_matches=0, time_left=0)
    assert requests_mock.call_count == 1  # no retry once the time is up
    assert (hook.client.max_retries, hook.client.retry_deadline, hook.client.timeout) == (2, 900.0, 30.0)
    requests_mock.reset_mock()
    with pytest.raises(AIGatewayAPIError, match="HTTP 503"):
        hook.check_logs(LogQuery.of(), min_count=1, max_matches=0, time_left=None)
    assert requests_mock.call_count == 3  # the connection's own patience: 2 retries


def test_resolve_gateway_id_names_the_connection_when_there_is_none(monkeypatch, requests_mock):
    set_conn(monkeypatch, conn_id="no_gw")
    hook = AIGatewayHook("no_gw")
    with pytest.raises(AIGatewayInputError, match=r"gateway_id is required: .* extra of connection 'no_gw'"):
        hook.resolve_gateway_id()
    with pytest.raises(AIGatewayInputError, match="gateway_id is required"):
        hook.with_gateway(LogQuery.of(start=START))
    assert hook.resolve_gateway_id("given") == "given"
    assert hook.with_gateway(LogQuery.of(gateway_id="own")).gateway_id == "own"
    assert AIGatewayHook("no_gw", gateway_id="hooks").with_gateway(LogQuery.of()).gateway_id == "hooks"
    assert requests_mock.call_count == 0


def test_contract_methods_take_a_query_or_its_parts_not_both(monkeypatch, requests_mock):
    set_conn(monkeypatch, extra={"account_id": ACCOUNT, "gateway_id": "gw"})
    requests_mock.get(LOGS % "other", json=page([], 0))
    hook = AIGatewayHook()
    query = LogQuery.of(gateway_id="other", start=START, end=END)
    assert hook.count_logs(query=query) == 0 and hook.list_logs(query=query) == []
    assert requests_mock.call_count == 2
    assert all("/gateways/other/" in r.url for r in requests_mock.request_history)
    for method in (hook.count_logs, hook.list_logs, hook.delete_logs):
        with pytest.raises(AIGatewayInputError, match=r"pass query= or \['end', 'filters'\], not both"):
            method(query=query, filters={"key": "model", "operator": "eq", "value": "x"}, end=END)
    assert requests_mock.call_count == 2
