"""The official ``cloudflare`` SDK drives the emulator: proof the emulator speaks the real API.

It also pins down, on the emulator, the SDK behaviour that motivates this provider: a
filtered DELETE through the SDK ignores the filter and deletes the oldest logs.
"""

from __future__ import annotations

import datetime as dt

import pytest

cloudflare = pytest.importorskip("cloudflare")

pytestmark = pytest.mark.integration

GW = "my-gateway"
UTC = dt.timezone.utc
END = dt.datetime(2026, 11, 26, tzinfo=UTC)
START = END - dt.timedelta(days=1)


@pytest.fixture
def server(aigw_emulator_factory):
    return aigw_emulator_factory(gateways={GW: 130}, start=START, end=END)


@pytest.fixture
def sdk(server):
    client = cloudflare.Cloudflare(api_token=server.token, base_url=server.url, max_retries=0)
    yield client
    client.close()


def test_sdk_pagination_terminates_and_parses_every_log(server, sdk):
    server.reset_stats()
    logs = list(sdk.ai_gateway.logs.list(GW, account_id=server.account_id))
    assert sorted(log.id for log in logs) == sorted(server.ids(GW))
    for log in logs:
        assert isinstance(log.created_at, dt.datetime)
        assert isinstance(log.success, bool) and isinstance(log.cached, bool)
        assert log.provider and log.model and log.path
    # per_page 20 by default and one extra request for the empty page that stops it
    assert server.stats["list"] == 130 // 20 + 1 + 1


def test_sdk_detail_bodies_edit_and_delete_parse(server, sdk):
    log_id = server.ids(GW)[0]
    detail = sdk.ai_gateway.logs.get(log_id, account_id=server.account_id, gateway_id=GW)
    assert detail.id == log_id and isinstance(detail.created_at, dt.datetime)
    request_body, response_body = server.get_bodies(GW, log_id)
    if request_body is not None:
        assert sdk.ai_gateway.logs.request(log_id, account_id=server.account_id, gateway_id=GW) == request_body
        assert sdk.ai_gateway.logs.response(log_id, account_id=server.account_id, gateway_id=GW) == response_body
    sdk.ai_gateway.logs.edit(log_id, account_id=server.account_id, gateway_id=GW, feedback=1, score=50)
    assert server.get_log(GW, log_id)["feedback"] == 1
    with pytest.raises(cloudflare.NotFoundError):
        sdk.ai_gateway.logs.get("0193a7c2-5e1f-7abc-8def-0123456789ab", account_id=server.account_id, gateway_id=GW)
    with pytest.raises(cloudflare.PermissionDeniedError):
        cloudflare.Cloudflare(api_token="wrong-token", base_url=server.url, max_retries=0).ai_gateway.logs.get(
            log_id, account_id=server.account_id, gateway_id=GW
        )


def test_sdk_filtered_delete_is_ignored_and_deletes_the_oldest(server, sdk):
    oldest_ten = server.ids(GW)[:10]
    newest = server.ids(GW)[-1]
    sdk.ai_gateway.logs.delete(
        GW,
        account_id=server.account_id,
        filters=[{"key": "id", "operator": "eq", "value": [newest]}],
        limit=10,
    )
    remaining = set(server.ids(GW))
    assert newest in remaining, "the SDK's dotted filters must be ignored, as by the real API"
    assert not remaining & set(oldest_ten)
