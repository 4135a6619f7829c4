from __future__ import annotations

import pytest

from airflow_provider_aigw.exceptions import AIGatewayAPIError, AIGatewayInputError, is_transient, outage_message


@pytest.mark.parametrize(
    ("status", "transient"),
    [(None, True), (429, True), (500, True), (503, True), (400, False), (403, False), (404, False)],
)
def test_is_transient(status, transient):
    assert is_transient(AIGatewayAPIError("x", status=status)) is transient
    assert is_transient(AIGatewayInputError("x")) is False


def test_outage_message_says_why_the_task_fails_rather_than_times_out():
    message = outage_message(AIGatewayAPIError("GET .../logs failed: HTTP 503", status=503))
    assert message.startswith("The AI Gateway API was still failing when the sensor's timeout ran out: GET")
    assert "soft_fail never mistakes an outage for a window without logs" in message
