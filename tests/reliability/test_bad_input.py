"""Bad input refused: one table of invalid calls across hook, operators and sensor.

Every case must fail with a clear message naming the offending parameter, send zero requests
(the emulator's request counter stays at 0) and write nothing to the export destination.
"""

from __future__ import annotations

import json
import math
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_aigw.exceptions import AIGatewayError
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

LOG_ID = "0193a7c2-5e1f-7abc-8def-0123456789ab"
NAIVE = datetime(2026, 1, 9)
EMPTY_MANIFEST = {
    "complete": True,
    "files": [],
    "gateway_id": GW,
    "window": {"start": "2026-01-09T00:00:00Z", "end": "2026-01-10T00:00:00Z"},
    "count": 0,
}


@dataclass
class Env:
    dest: Path  # export destination (must stay empty)
    blocker: Path  # a regular file: a destination below it cannot be written


@dataclass
class Case:
    id: str
    call: Callable[[Env], Any]
    match: str
    #: builds the connection (env value) from the emulator, instead of the default one
    conn: Callable[[Any], str] | None = field(default=None)


def hook() -> AIGatewayHook:
    return AIGatewayHook()


def export_op(env: Env, **kwargs: Any) -> Any:
    kwargs.setdefault("destination", f"file://{env.dest}")
    return AIGatewayExportLogsOperator(task_id="export", **kwargs).execute(export_context())


def with_extra(**changes: Any) -> Callable[[Any], str]:
    def conn(server: Any) -> str:
        value = json.loads(server.airflow_conn_json(GW, **FAST_RETRIES))
        value["extra"].update(changes)
        value["extra"] = {k: v for k, v in value["extra"].items() if v is not None}
        return json.dumps(value)

    return conn


def uri_with(**extras: str) -> Callable[[Any], str]:
    def conn(server: Any) -> str:
        return server.airflow_conn_uri(GW, **extras)

    return conn


def with_password(password: str, login: str | None = None) -> Callable[[Any], str]:
    def conn(server: Any) -> str:
        value = json.loads(server.airflow_conn_json(GW, **FAST_RETRIES))
        value["password"] = password
        if login is not None:
            value["login"] = login
        return json.dumps(value)

    return conn


def no_token(server: Any) -> str:
    value = json.loads(server.airflow_conn_json(GW))
    value.pop("password")
    return json.dumps(value)


def flt(**item: Any) -> list[dict[str, Any]]:
    return [item]


CASES = [
    # ------------------------------------------------------------------ hook: filters
    Case("hook-filters-not-a-list", lambda e: hook().list_logs(filters="model=gpt-4o"), r"filters must be a list"),
    Case("hook-filters-int", lambda e: hook().count_logs(filters=42), r"filters must be a list"),
    Case(
        "hook-filter-missing-key",
        lambda e: hook().count_logs(filters=flt(operator="eq", value=["x"])),
        r"filters\[0\]\.key",
    ),
    Case(
        "hook-filter-missing-operator",
        lambda e: hook().list_logs(filters=flt(key="model", value=["x"])),
        r"filters\[0\]\.operator",
    ),
    Case(
        "hook-filter-unknown-operator",
        lambda e: hook().list_logs(filters={"key": "model", "operator": "like", "value": "gpt%"}),
        r"filters\[0\]\.operator must be one of",
    ),
    Case(
        "hook-filter-missing-value",
        lambda e: hook().list_logs(filters=flt(key="model", operator="eq")),
        r"filters\[0\]\.value is required",
    ),
    Case(
        "hook-filter-value-wrong-type",
        lambda e: hook().list_logs(filters=flt(key="model", operator="eq", value=[{"a": 1}])),
        r"filters\[0\]\.value items must be",
    ),
    Case(
        "hook-filter-value-nan",
        lambda e: hook().count_logs(filters=flt(key="cost", operator="gt", value=math.nan)),
        r"filters\[0\]\.value items must be finite",
    ),
    Case(
        "hook-filter-unknown-field",
        lambda e: hook().count_logs(filters=flt(key="model", operator="eq", value="x", op="eq")),
        r"filters\[0\] has unexpected field",
    ),
    # ------------------------------------------------------------------ hook: windows
    Case("hook-naive-start", lambda e: hook().list_logs(start=NAIVE), r"start is a naive datetime"),
    Case("hook-end-before-start", lambda e: hook().count_logs(start=END, end=START), r"end \(.*\) must be after start"),
    Case(
        "hook-end-equals-start", lambda e: hook().list_logs(start=START, end=START), r"end \(.*\) must be after start"
    ),
    Case("hook-non-iso-start", lambda e: hook().list_logs(start="yesterday"), r"start must be an ISO 8601"),
    Case("hook-iso-without-timezone", lambda e: hook().list_logs(end="2026-01-09T00:00:00"), r"end has no timezone"),
    Case("hook-start-wrong-type", lambda e: hook().count_logs(start=1736380800), r"start must be a timezone-aware"),
    # ------------------------------------------------------------------ hook: ids and values
    Case("hook-gateway-pattern", lambda e: hook().list_logs(gateway_id="My Gateway"), r"gateway_id 'My Gateway'"),
    Case(
        "hook-gateway-path-traversal",
        lambda e: hook().count_logs(gateway_id="../../../user/tokens"),
        r"gateway_id '\.\./\.\./\.\./user/tokens' is not a valid",
    ),
    Case("hook-gateway-too-long", lambda e: hook().count_logs(gateway_id="g" * 65), r"gateway_id 'g{65}'"),
    Case("hook-log-id-slash", lambda e: hook().get_log("abc/def"), r"log_id 'abc/def' is not a valid log id"),
    Case("hook-log-id-dotdot", lambda e: hook().get_log_request(".."), r"log_id '\.\.' is not a valid log id"),
    Case("hook-log-id-query", lambda e: hook().get_log_response("x?page=2"), r"log_id 'x\?page=2'"),
    Case("hook-feedback-out-of-range", lambda e: hook().patch_log(LOG_ID, feedback=2), r"feedback must be a number"),
    Case("hook-feedback-bool", lambda e: hook().patch_log(LOG_ID, feedback=True), r"feedback must be a number"),
    Case("hook-score-out-of-range", lambda e: hook().patch_log(LOG_ID, score=100.5), r"score must be a number"),
    Case(
        "hook-nested-metadata",
        lambda e: hook().patch_log(LOG_ID, metadata={"a": {"b": 1}}),
        r"metadata\['a'\] must be a string",
    ),
    Case(
        "hook-too-much-metadata",
        lambda e: hook().patch_log(LOG_ID, metadata={str(i): i for i in range(6)}),
        r"metadata holds at most 5",
    ),
    Case("hook-nothing-to-patch", lambda e: hook().patch_log(LOG_ID), r"nothing to patch"),
    Case("hook-max-results-zero", lambda e: hook().list_logs(max_results=0), r"max_results must be a positive"),
    Case("hook-max-results-negative", lambda e: hook().list_logs(max_results=-5), r"max_results must be a positive"),
    Case("hook-per-page-51", lambda e: hook().list_logs(per_page=51), r"per_page must be an integer from 1 to 50"),
    Case("hook-per-page-zero", lambda e: hook().list_logs(per_page=0), r"per_page must be an integer from 1 to 50"),
    Case("hook-order-by", lambda e: hook().list_logs(order_by="cost; drop"), r"order_by must be one of"),
    Case("hook-reserved-param", lambda e: hook().list_logs(page=3), r"\['page'\] cannot be passed"),
    Case("hook-delete-unfiltered", lambda e: hook().delete_logs(), r"delete_logs needs filters or a start/end"),
    Case("hook-delete-limit", lambda e: hook().delete_logs(start=START, limit=10_001), r"limit must be an integer"),
    # ------------------------------------------------------------------ connection
    Case("conn-missing", lambda e: AIGatewayHook("no_such_conn").count_logs(), r"no_such_conn"),
    Case(
        "conn-missing-account-id",
        lambda e: hook().count_logs(),
        r"account_id is missing: set 'account_id' in the extra of connection 'cloudflare_ai_gateway_default'",
        conn=with_extra(account_id=None),
    ),
    Case(
        "conn-bad-account-id",
        lambda e: hook().count_logs(),
        r"account_id in connection 'cloudflare_ai_gateway_default' must be 32",
        conn=with_extra(account_id="../../zones"),
    ),
    Case(
        "conn-uri-string-extra-not-a-number",
        lambda e: hook().count_logs(),
        r"extra 'max_retries' of connection 'cloudflare_ai_gateway_default' must be a int, got 'many'",
        conn=uri_with(max_retries="many"),
    ),
    Case(
        "conn-uri-string-extra-not-a-bool",
        lambda e: hook().count_logs(),
        r"extra 'verify_ssl' .* got 'sometimes'",
        conn=uri_with(verify_ssl="sometimes"),
    ),
    Case(
        "conn-uri-negative-timeout",
        lambda e: hook().count_logs(),
        r"timeout in connection 'cloudflare_ai_gateway_default' must be a positive number",
        conn=uri_with(timeout="-1"),
    ),
    Case("conn-no-token", lambda e: hook().count_logs(), r"No credentials in connection", conn=no_token),
    Case(
        "conn-token-inner-newline",
        lambda e: hook().count_logs(),
        r"the password \(API token\) of connection 'cloudflare_ai_gateway_default' contains whitespace or "
        r"control characters inside it \(value not shown\)",
        conn=with_password(TOKEN + "\nX-Injected: 1"),
    ),
    Case(
        "conn-token-inner-space",
        lambda e: hook().count_logs(),
        r"the password \(API token\) of connection .* contains whitespace",
        conn=with_password(TOKEN[:10] + " " + TOKEN[10:]),
    ),
    Case(
        "conn-token-control-character",
        lambda e: hook().count_logs(),
        r"the password \(API token\) of connection .* control characters",
        conn=with_password(TOKEN + "\x1b"),
    ),
    Case(
        "conn-global-key-inner-tab",
        lambda e: hook().count_logs(),
        r"the password \(Global API Key\) of connection .* contains whitespace",
        conn=with_password(TOKEN[:10] + "\t" + TOKEN[10:], login="me@example.com"),
    ),
    Case(
        "conn-login-inner-space",
        lambda e: hook().count_logs(),
        r"the login \(account e-mail\) of connection .* contains whitespace",
        conn=with_password(TOKEN, login="me@exa mple.com"),
    ),
    Case(
        "conn-bad-default-gateway",
        lambda e: hook().count_logs(),
        r"gateway_id 'Bad/Gateway' is not a valid",
        conn=with_extra(gateway_id="Bad/Gateway"),
    ),
    # ------------------------------------------------------------------ list operator
    Case("list-max-results-zero", lambda e: AIGatewayListLogsOperator(task_id="l", max_results=0), r"max_results"),
    Case(
        "list-rendered-filters-missing-operator",
        lambda e: AIGatewayListLogsOperator(task_id="l", filters='[{"key": "model", "value": ["x"]}]').execute({}),
        r"filters\[0\]\.operator",
    ),
    Case(
        "list-unparseable-rendered-filters",
        lambda e: AIGatewayListLogsOperator(task_id="l", filters="[{'key': 'model',").execute({}),
        r"filters looks like a list or dict but cannot be parsed",
    ),
    Case(
        "list-naive-end",
        lambda e: AIGatewayListLogsOperator(task_id="l", start=START, end=NAIVE).execute({}),
        r"end is a naive datetime",
    ),
    Case("list-fields-empty", lambda e: AIGatewayListLogsOperator(task_id="l", fields=[]), r"fields must be"),
    # ------------------------------------------------------------------ export operator
    Case("export-unknown-format", lambda e: export_op(e, format="csv"), r"format"),
    Case(
        "export-templated-unknown-format",
        lambda e: _export_rendered_format(e),
        r"format",
    ),
    Case(
        "export-unregistered-scheme",
        lambda e: export_op(e, destination="nosuchfs://bucket/prefix"),
        # upath 0.3 (Airflow 3.2+) refuses the URL, 0.2 finds no filesystem for it: both name it
        r"destination 'nosuchfs://bucket/prefix'.*'nosuchfs'",
    ),
    Case(
        "export-scheme-without-provider",
        # s3 is registered in the test environment (the amazon provider is a dev dependency)
        lambda e: export_op(e, destination="abfs://azure_default@container/prefix"),
        r"no filesystem is registered for scheme 'abfs' .*apache-airflow-providers-microsoft-azure",
    ),
    Case("export-no-scheme", lambda e: export_op(e, destination="/tmp/x"), r"destination '/tmp/x' has no scheme"),
    Case(
        "export-destination-not-writable",
        lambda e: export_op(e, destination=f"file://{e.blocker}/archive"),
        r"destination .* is not writable",
    ),
    Case("export-end-before-start", lambda e: export_op(e, start=END, end=START), r"end \(.*\) must be after start"),
    Case("export-start-only", lambda e: export_op(e, start=START), r"give both start and end"),
    Case("export-naive-start", lambda e: export_op(e, start=NAIVE, end=END), r"start is a naive datetime"),
    Case("export-non-iso-end", lambda e: export_op(e, start=START, end="tomorrow"), r"end must be an ISO 8601"),
    Case(
        "export-gateway-path-traversal",
        lambda e: export_op(e, gateway_id="../other"),
        r"gateway_id '\.\./other' is not a valid",
    ),
    Case(
        "export-filter-value-wrong-type",
        lambda e: export_op(e, filters=flt(key="model", operator="eq", value=[["nested"]])),
        r"filters\[0\]\.value items must be",
    ),
    Case("export-rows-per-part-zero", lambda e: export_op(e, rows_per_part=0), r"rows_per_part"),
    Case("export-partition-by", lambda e: export_op(e, partition_by="minute"), r"partition_by"),
    Case(
        "export-on-body-error",
        lambda e: export_op(e, include_bodies=True, on_body_error="ignore"),
        r"on_body_error must be one of \['fail', 'warn'\], got 'ignore'",
    ),
    # ------------------------------------------------------------------ delete operator
    Case("delete-unfiltered", lambda e: AIGatewayDeleteLogsOperator(task_id="d"), r"refusing to delete with neither"),
    Case(
        "delete-rendered-empty-window",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", filters="[]").execute({}),
        r"refusing to delete with neither",
    ),
    Case(
        "delete-manifest-and-other-window",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", manifest=EMPTY_MANIFEST, end=START).execute({}),
        r"end 2026-01-09T00:00:00.000Z differs from the manifest's window \[2026-01-09T00:00:00.000Z, "
        r"2026-01-10T00:00:00.000Z\)",
    ),
    Case(
        "delete-manifest-and-other-filters",
        lambda e: AIGatewayDeleteLogsOperator(
            task_id="d", manifest=EMPTY_MANIFEST, filters=flt(key="model", operator="eq", value="x")
        ).execute({}),
        r"filters \[.*\] differ from the manifest's \[\]",
    ),
    Case(
        "delete-manifest-other-account",
        lambda e: AIGatewayDeleteLogsOperator(
            task_id="d", manifest={**EMPTY_MANIFEST, "account_id": "f" * 32}
        ).execute({}),
        r"the manifest comes from account 'f{32}', but connection 'cloudflare_ai_gateway_default' is for account",
    ),
    Case(
        "delete-manifest-undocumented-filter-key",
        lambda e: AIGatewayDeleteLogsOperator(
            task_id="d", manifest={**EMPTY_MANIFEST, "filters": flt(key="metadata.user", operator="eq", value="u")}
        ).execute({}),
        r"manifest filters\[0\]\.key 'metadata\.user' is not a documented filter key",
    ),
    Case(
        "delete-undocumented-filter-key",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", filters=flt(key="user_id", operator="eq", value="u")),
        r"filters\[0\]\.key 'user_id' is not a documented filter key, and a DELETE only takes documented keys",
    ),
    Case(
        "delete-rendered-undocumented-filter-key",
        lambda e: AIGatewayDeleteLogsOperator(
            task_id="d", filters='[{"key": "Model", "operator": "eq", "value": ["x"]}]'
        ).execute({}),
        r"filters\[0\]\.key 'Model' is not a documented filter key",
    ),
    Case(
        "hook-delete-undocumented-filter-key",
        lambda e: hook().delete_logs(filters=flt(key="metadata", operator="eq", value="u"), start=START),
        r"filters\[0\]\.key 'metadata' is not a documented filter key",
    ),
    Case(
        "delete-order-by",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", start=START, order_by="score"),
        r"order_by must be one of",
    ),
    Case(
        "delete-not-a-manifest",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", manifest={"count": 3}).execute({}),
        r"manifest dict has neither 'manifest_uri' nor manifest content",
    ),
    Case(
        "delete-manifest-wrong-type",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", manifest=12).execute({}),
        r"manifest must be the export task's XCom",
    ),
    Case(
        "delete-limit-too-big",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", start=START, limit=10_001),
        r"limit must be an integer from 1 to 10000",
    ),
    Case(
        "delete-naive-end",
        lambda e: AIGatewayDeleteLogsOperator(task_id="d", start=START, end=NAIVE).execute({}),
        r"end is a naive datetime",
    ),
    # ------------------------------------------------------------------ patch operator
    Case(
        "patch-log-id-traversal",
        lambda e: AIGatewayPatchLogOperator(task_id="p", log_id="../../user", feedback=1).execute({}),
        r"log_id\[0\] '\.\./\.\./user' is not a valid log id",
    ),
    Case(
        "patch-log-id-slash-in-list",
        lambda e: AIGatewayPatchLogOperator(task_id="p", log_id=[LOG_ID, "a/b"], feedback=1).execute({}),
        r"log_id\[1\] 'a/b'",
    ),
    Case(
        "patch-score-out-of-range",
        lambda e: AIGatewayPatchLogOperator(task_id="p", log_id=LOG_ID, score=150),
        r"score must be a number from 0 to 100",
    ),
    Case(
        "patch-feedback-out-of-range",
        lambda e: AIGatewayPatchLogOperator(task_id="p", log_id=LOG_ID, feedback=-2),
        r"feedback must be a number from -1 to 1",
    ),
    Case(
        "patch-rendered-nested-metadata",
        lambda e: AIGatewayPatchLogOperator(task_id="p", log_id=LOG_ID, metadata='{"a": {"b": 1}}').execute({}),
        r"metadata\['a'\] must be a string",
    ),
    Case(
        "patch-nothing",
        lambda e: AIGatewayPatchLogOperator(task_id="p", log_id=LOG_ID),
        r"nothing to patch",
    ),
    # ------------------------------------------------------------------ sensor
    Case("sensor-min-count-zero", lambda e: AIGatewayLogsSensor(task_id="s", min_count=0), r"min_count"),
    Case("sensor-max-matches", lambda e: AIGatewayLogsSensor(task_id="s", max_matches=51), r"max_matches"),
    Case("sensor-settle-lag-negative", lambda e: AIGatewayLogsSensor(task_id="s", settle_lag=-1), r"settle_lag"),
    Case(
        "sensor-settle-lag-without-end",
        lambda e: AIGatewayLogsSensor(task_id="s", settle_lag=60).poke({}),
        r"settle_lag needs an end",
    ),
    Case("sensor-filters-not-a-list", lambda e: AIGatewayLogsSensor(task_id="s", filters=42).poke({}), r"filters"),
    Case(
        "sensor-filter-unknown-operator",
        lambda e: AIGatewayLogsSensor(task_id="s", filters=flt(key="model", operator="in", value=["x"])).poke({}),
        r"filters\[0\]\.operator",
    ),
    Case("sensor-naive-start", lambda e: AIGatewayLogsSensor(task_id="s", start=NAIVE).poke({}), r"start"),
    Case(
        "sensor-end-before-start",
        lambda e: AIGatewayLogsSensor(task_id="s", start=END, end=START).poke({}),
        r"end \(.*\) must be after start",
    ),
    Case(
        "sensor-gateway-path-traversal",
        lambda e: AIGatewayLogsSensor(task_id="s", gateway_id="..").poke({}),
        r"gateway_id '\.\.' is not a valid",
    ),
    Case(
        "sensor-deferrable-bad-filter",
        lambda e: AIGatewayLogsSensor(task_id="s", deferrable=True, filters=flt(key="model", operator="eq")).execute(
            {}
        ),
        r"filters\[0\]\.value is required",
    ),
]


def _export_rendered_format(env: Env) -> Any:
    """A templated format is checked at execute time, once rendered."""
    op = AIGatewayExportLogsOperator(task_id="export", destination=f"file://{env.dest}", format="{{ params.f }}")
    op.format = "xml"  # what the template rendered to
    return op.execute(export_context())


def test_the_table_is_big_enough():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_refused_before_any_request_and_write(case, make_emulator, monkeypatch, tmp_path):
    server = make_emulator(in_window=5, before=0, after=0)
    if case.conn is not None:
        monkeypatch.setenv(CONN_ENV, case.conn(server))
    env = Env(dest=tmp_path / "dest", blocker=tmp_path / "blocker")
    env.dest.mkdir()
    env.blocker.write_text("not a directory")
    server.reset_stats()

    with pytest.raises(Exception) as failure:
        case.call(env)
    # the provider's own errors; a missing connection is Airflow's to report
    assert isinstance(failure.value, AIGatewayError) or type(failure.value).__name__ == "AirflowNotFoundException"

    message = str(failure.value)
    assert failure.match(case.match), message
    assert TOKEN not in message and TOKEN not in repr(failure.value)
    assert TOKEN[10:] not in "".join(traceback.format_exception(failure.value)), "a piece of the token leaked"
    assert server.stats["total"] == 0, f"{server.stats['total']} request(s) sent: {server.stats.requests}"
    assert not [p for p in env.dest.rglob("*")], "something was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "dest"]
    assert env.blocker.read_text() == "not a directory"
