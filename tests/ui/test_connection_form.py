"""The connection form and its Test button in Airflow's own UI, driven in headless chromium.

What a new user does: Admin > Connections > Add Connection, pick "Cloudflare AI Gateway", fill
the form as its labels say, save, press Test. Asserted against a real api-server and the emulator.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_aigw.emulator import EmulatorServer

pytestmark = pytest.mark.ui

ACCOUNT = "0123456789abcdef0123456789abcdef"
GATEWAY = "my-gateway"
LOGS = 250


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorServer]:
    server = EmulatorServer(host="127.0.0.1", port=0, account_id=ACCOUNT)
    server.create_gateway(GATEWAY)
    server.seed_logs(GATEWAY, LOGS, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", return_ids=False)
    server.start()
    yield server
    server.stop()


def airflow_accepts_port_0_for_no_port() -> bool:
    """Whether this Airflow has apache/airflow#73298 (its Test button works for connections without a port)."""
    from airflow.api_fastapi.core_api.routes.public.connections import _same_endpoint

    return bool(_same_endpoint(0, None))


def open_add_form(page: Any, base_url: str) -> Any:
    page.goto(f"{base_url}/connections")
    page.get_by_role("button", name="Add Connection").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("combobox").fill("Cloudflare")
    page.keyboard.press("Enter")
    dialog.locator("label", has_text="Account ID").wait_for(state="attached")
    return dialog


def label_of(dialog: Any, field: Any) -> Any:
    """The label of a form field (the label of its Field.Root)."""
    return field.locator("xpath=ancestor::*[@data-scope='field' and @data-part='root'][1]//label")


def test_form_renders_every_field_then_saves_exactly_what_was_entered(
    page: Any, airflow_server: Any, emu: EmulatorServer, screenshot: Any
) -> None:
    dialog = open_add_form(page, airflow_server.url)
    dialog.locator("input[name=connection_id]").fill("aigw_from_form")

    # Standard fields: relabelled, with placeholders; schema hidden, the port asks for 0.
    standard = {
        "host": ("API base URL", "https://api.cloudflare.com/client/v4"),
        "login": ("Email (Global API Key auth only)", "leave empty for API token auth"),
        "password": ("API Token", "Cloudflare API token with AI Gateway Read (and Write to patch/delete)"),
        "port": ("Port: enter 0 (for the Test button)", "0 (unused; Airflow 3.3.2's Test button needs a port)"),
    }
    for name, (label, placeholder) in standard.items():
        field = dialog.locator(f"input[name={name}]")
        assert field.get_attribute("placeholder") == placeholder
        assert label_of(dialog, field).inner_text().strip() == label
    assert dialog.locator("input[name=schema]").count() == 0
    assert dialog.locator("input[name=password]").get_attribute("type") == "password"
    screenshot(page, "01-standard-fields")
    dialog.locator("input[name=host]").fill(emu.url)
    dialog.locator("input[name=password]").fill(emu.token)
    dialog.locator("input[name=port]").fill("0")

    # Extra fields: Account ID required (mark + message, Save disabled), length-bounded input.
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    account = dialog.locator("#element_account_id")
    gateway = dialog.locator("#element_gateway_id")
    account.wait_for()
    account_label = label_of(dialog, account)
    assert " ".join(account_label.inner_text().split()) == "Account ID *"  # the required mark
    assert account_label.get_attribute("data-required") is not None
    assert gateway.get_attribute("required") is None
    assert label_of(dialog, gateway).inner_text().strip() == "Default gateway ID"
    assert (account.get_attribute("minlength"), account.get_attribute("maxlength")) == ("32", "32")
    assert dialog.get_by_text("This field is required").is_visible()
    assert dialog.get_by_text("32 hex characters: the id in your dashboard URL").is_visible()
    assert dialog.get_by_text("Gateway used when a task does not name one, e.g. my-gateway").is_visible()
    assert dialog.get_by_text("AIRFLOW__CORE__TEST_CONNECTION=Enabled").is_visible()
    save = dialog.get_by_role("button", name="Save")
    assert save.is_disabled()
    screenshot(page, "02-extra-fields-required")

    account.fill(ACCOUNT)
    gateway.fill(GATEWAY)
    assert not dialog.get_by_text("This field is required").is_visible()
    assert save.is_enabled()

    # The Extra JSON holds what was entered: no defaults, no tuning knobs.
    dialog.get_by_role("button", name="Extra Fields JSON").click()
    editor = dialog.locator(".view-lines")
    editor.wait_for()
    shown = json.loads(editor.inner_text().replace("\xa0", " "))
    assert shown == {"account_id": ACCOUNT, "gateway_id": GATEWAY}
    screenshot(page, "03-extra-json")

    save.click()
    page.locator("tr", has_text="aigw_from_form").wait_for()
    status, stored = airflow_server.api("GET", "/connections/aigw_from_form")
    assert status == 200
    assert json.loads(stored["extra"]) == {"account_id": ACCOUNT, "gateway_id": GATEWAY}
    assert (stored["conn_type"], stored["host"], stored["port"]) == ("cloudflare_ai_gateway", emu.url, 0)


def press_test(page: Any, base_url: str, conn_id: str) -> tuple[str, dict[str, Any]]:
    """Press the row's Test button; return the toast's text and the API's answer."""
    page.goto(f"{base_url}/connections")
    row = page.locator("tr", has_text=conn_id)
    with page.expect_response(re.compile(r"/api/v2/connections/test$")) as answer:
        row.get_by_role("button", name="Test Connection").click()
    response = answer.value
    toast = page.locator("[data-scope=toast][data-part=root]").last
    toast.wait_for()
    # Fully slid in (for the screenshot): its bottom inside the window.
    page.wait_for_function("el => el.getBoundingClientRect().bottom <= window.innerHeight", arg=toast.element_handle())
    return toast.inner_text(), {"status": response.status, "body": response.json()}


def icon_colour_after_test(page: Any, conn_id: str) -> str:
    """The colour of the row's Test button icon after a test (green: passed, red: failed)."""
    button = page.locator("tr", has_text=conn_id).get_by_role("button", name="Test Connection")
    return str(button.locator("svg").get_attribute("color"))


def add_connection(airflow_server: Any, conn_id: str, emu: EmulatorServer, *, token: str, port: int | None) -> None:
    """``airflow connections add`` as the README shows it (the JSON form drops a port of 0)."""
    args = ["connections", "add", conn_id, "--conn-type", "cloudflare_ai_gateway", "--conn-host", emu.url]
    args += ["--conn-password", token, "--conn-extra", json.dumps({"account_id": ACCOUNT, "gateway_id": GATEWAY})]
    if port is not None:
        args += ["--conn-port", str(port)]
    airflow_server.cli(*args)
    status, stored = airflow_server.api("GET", f"/connections/{conn_id}")
    assert status == 200 and stored["port"] == port


def add_in_the_form(page: Any, base_url: str, conn_id: str, emu: EmulatorServer, *, port: str) -> None:
    """Create a connection in the Add Connection form only (no CLI, no API) and save it."""
    dialog = open_add_form(page, base_url)
    dialog.locator("input[name=connection_id]").fill(conn_id)
    dialog.locator("input[name=host]").fill(emu.url)
    dialog.locator("input[name=password]").fill(emu.token)
    dialog.locator("input[name=port]").fill(port)
    dialog.get_by_role("button", name="Extra Fields", exact=True).click()
    dialog.locator("#element_account_id").fill(ACCOUNT)
    dialog.locator("#element_gateway_id").fill(GATEWAY)
    dialog.get_by_role("button", name="Save").click()
    page.locator("tr", has_text=conn_id).wait_for()


def test_a_connection_made_in_the_form_as_labelled_tests_green(
    page: Any, airflow_server: Any, emu: EmulatorServer, screenshot: Any
) -> None:
    # The port field says "enter 0": the saved port is 0, which Airflow 3.3.2's Test button sends
    # back unchanged, so its API reuses the stored token and the provider's test runs.
    add_in_the_form(page, airflow_server.url, "aigw_form_port_0", emu, port="0")
    status, stored = airflow_server.api("GET", "/connections/aigw_form_port_0")
    assert (status, stored["port"]) == (200, 0)
    emu.reset_stats()
    text, answer = press_test(page, airflow_server.url, "aigw_form_port_0")
    screenshot(page, "05-test-success")
    message = f"Connected: gateway '{GATEWAY}' holds {LOGS} logs"
    assert answer == {"status": 200, "body": {"status": True, "message": message}}
    assert "Test Connection Successful" in text and message in text  # the provider's message in the toast
    assert icon_colour_after_test(page, "aigw_form_port_0") == "green"
    assert emu.stats["total"] == 1  # one list call


def test_a_connection_made_in_the_form_without_the_port(
    page: Any, airflow_server: Any, emu: EmulatorServer, screenshot: Any
) -> None:
    # Port left empty: the form saves null, Airflow 3.3.2's Test button sends port 0 for it
    # (Number(null)) and its API refuses that as "another destination" before the provider runs
    # (apache/airflow#73298, merged after 3.3.2). Nothing provider-side reaches that toast.
    add_in_the_form(page, airflow_server.url, "aigw_form_no_port", emu, port="")
    status, stored = airflow_server.api("GET", "/connections/aigw_form_no_port")
    assert (status, stored["port"]) == (200, None)
    text, answer = press_test(page, airflow_server.url, "aigw_form_no_port")
    screenshot(page, "04-test-no-port")
    if airflow_accepts_port_0_for_no_port():
        assert answer == {"status": 200, "body": {"status": True, "message": answer["body"]["message"]}}
        assert f"Connected: gateway '{GATEWAY}' holds {LOGS} logs" in text
    else:
        assert answer["status"] == 400
        assert answer["body"]["detail"].startswith("The host or port to test differs from the stored connection")
        assert text.splitlines() == ["Test Connection Failed", "Bad Request"]  # Airflow's toast, not ours
        assert icon_colour_after_test(page, "aigw_form_no_port") == "red"
    # Where the docs send users instead: the same connection passes through the REST API (no port
    # in the body; the provider's message in the answer) and `airflow connections test` (which
    # prints the provider's message only on failure).
    message = f"Connected: gateway '{GATEWAY}' holds {LOGS} logs"
    status, body = airflow_server.api(
        "POST",
        "/connections/test",
        {"connection_id": "aigw_form_no_port", "conn_type": "cloudflare_ai_gateway", "host": emu.url},
    )
    assert (status, body) == (200, {"status": True, "message": message})
    assert "Connection success!" in airflow_server.cli("connections", "test", "aigw_form_no_port")


def test_test_button_succeeds_for_a_connection_added_with_the_cli(
    page: Any, airflow_server: Any, emu: EmulatorServer, screenshot: Any
) -> None:
    # A connection stored with port 0 (the provider ignores the port) is what the Test button
    # sends back, so Airflow 3.3.2 reuses its stored token and the provider's test runs.
    add_connection(airflow_server, "aigw_saved", emu, token=emu.token, port=0)
    emu.reset_stats()
    text, answer = press_test(page, airflow_server.url, "aigw_saved")
    message = f"Connected: gateway '{GATEWAY}' holds {LOGS} logs"
    assert answer == {"status": 200, "body": {"status": True, "message": message}}
    assert "Test Connection Successful" in text and message in text
    assert emu.stats["total"] == 1  # one list call


def test_test_button_shows_the_providers_message_for_a_wrong_token(
    page: Any, airflow_server: Any, emu: EmulatorServer, screenshot: Any
) -> None:
    add_connection(airflow_server, "aigw_wrong_token", emu, token="not-the-token", port=0)
    text, answer = press_test(page, airflow_server.url, "aigw_wrong_token")
    screenshot(page, "06-test-wrong-token")
    assert answer["status"] == 200 and answer["body"]["status"] is False
    message = answer["body"]["message"]
    assert "HTTP 401" in message or "Authentication" in message, message
    assert "not-the-token" not in message
    assert "Test Connection Failed" in text and message[:60] in text


def test_test_of_a_new_connection_through_the_rest_api(airflow_server: Any, emu: EmulatorServer) -> None:
    # A connection not saved yet, tested with everything in the body (as the REST API documents);
    # the message names no throwaway connection id.
    body = {
        "connection_id": "aigw_not_saved",
        "conn_type": "cloudflare_ai_gateway",
        "host": emu.url,
        "password": emu.token,
        "port": 0,
        "extra": json.dumps({"account_id": "not-an-account", "gateway_id": GATEWAY}),
    }
    status, answer = airflow_server.api("POST", "/connections/test", body)
    assert status == 200 and answer["status"] is False
    assert answer["message"].startswith("account_id in this connection must be 32")
    body["extra"] = json.dumps({"account_id": ACCOUNT, "gateway_id": GATEWAY})
    status, answer = airflow_server.api("POST", "/connections/test", body)
    assert (status, answer) == (200, {"status": True, "message": f"Connected: gateway '{GATEWAY}' holds {LOGS} logs"})
