"""One customer on two channels, in a real browser: the widget and the HTTP API both prove the
same order's email, and the agent's contact page shows both conversations and keeps edits."""

from __future__ import annotations

import json
import re
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import RunningSystem
from tests.e2e.test_console_browser import browser, log_in, page  # noqa: F401
from tests.e2e.test_conversation import Customer, reply_texts
from tests.e2e.test_widget_browser import open_chat, say

ANNA = "anna.kowalski@example.com"
NOA = "noa.levi@example.co.il"  # owner of A10005
CARD = "4111 1111 1111 1111"


def test_agent_sees_one_contact_across_channels_and_edits_it(
    system: RunningSystem, browser: Browser, page: Page  # noqa: F811
) -> None:
    # On the website widget: the customer proves order A10001 is theirs.
    open_chat(page, system)
    say(page, "where is my order?")
    expect(page.locator(".sw-assistant").last).to_contain_text(re.compile("order number", re.I))
    say(page, "#a10001")
    expect(page.locator(".sw-assistant").last).to_contain_text(re.compile("email", re.I))
    say(page, ANNA)
    expect(page.locator(".sw-assistant", has_text="tracking number")).to_have_count(1)
    widget_chat = page.evaluate(
        "JSON.parse(localStorage.getItem('support-widget:' + location.origin)).conversation_id")

    # Later, over the HTTP API: the same proof, then a person is asked for.
    customer = Customer(system)
    customer.say("where is my order?")
    customer.say("#a10001")
    assert "tracking number" in " ".join(reply_texts(customer.say(ANNA)))
    assert customer.say("I want to talk to a real person")["status"] == "waiting"

    console = browser.new_context().new_page()
    log_in(console, system)
    console.locator(f'#queue li[data-conversation-id="{customer.id}"]').click()
    expect(console.locator("#contact-link")).to_be_visible()
    console.click("#contact-link")
    expect(console.locator("#contact-details")).to_contain_text(ANNA)
    rows = console.locator("#conversations tbody tr")
    expect(rows).to_have_count(2)
    expect(console.locator(f'#conversations tr[data-conversation-id="{widget_chat}"]')).to_contain_text("widget")
    expect(console.locator(f'#conversations tr[data-conversation-id="{customer.id}"]')).to_contain_text("api")
    expect(console.locator("#orders")).to_contain_text("A10001")
    expect(console.locator("#identities")).to_contain_text(f"email: {ANNA} (proved")
    expect(console.locator("#handoffs")).to_contain_text("customer_request")

    console.fill("#contact-tags", "VIP")  # a bad tag: the server says why, nothing is saved
    console.click("#contact-save")
    expect(console.locator("#contact-error")).to_contain_text("bad tag")
    console.fill("#contact-name", "Anna Kowalski")
    console.fill("#contact-notes", "Prefers email. <b>not bold</b>")
    console.fill("#contact-tags", "vip, repeat-buyer")
    console.click("#contact-save")
    expect(console.locator("#save-state")).to_have_text("Saved")
    console.reload()
    expect(console.locator("#contact-title")).to_have_text("Anna Kowalski")
    expect(console.locator("#contact-notes")).to_have_value("Prefers email. <b>not bold</b>")
    expect(console.locator("#contact-details")).to_contain_text("vip, repeat-buyer")
    assert console.locator("#contact-page b").count() == 0  # stored text is never HTML
    expect(console.locator("#privacy")).to_be_visible()  # the admin may export or erase
    console.context.close()


def test_admin_exports_then_erases_a_contact(
    system: RunningSystem, browser: Browser, page: Page  # noqa: F811
) -> None:
    customer = Customer(system)
    customer.say("where is my order?")
    customer.say("#a10005")
    assert "A10005" in " ".join(reply_texts(customer.say(NOA)))
    customer.say(f"my card is {CARD}")
    assert customer.say("I want to talk to a real person")["status"] == "waiting"

    log_in(page, system)
    page.locator(f'#queue li[data-conversation-id="{customer.id}"]').click()
    page.click("#contact-link")
    expect(page.locator("#contact-details")).to_contain_text(NOA)
    contact_id = page.url.rsplit("/", 1)[1]
    with page.expect_download() as download:
        page.click("#export")
    exported = Path(download.value.path()).read_text(encoding="utf-8")
    assert json.loads(exported)["contact"]["email"] == NOA
    assert CARD.replace(" ", "") not in exported.replace(" ", "") and "•••• 1111" in exported
    expect(page.locator("#audit")).to_contain_text("contact_exported")

    page.fill("#erase-confirm", "not the id")
    page.click("#erase")
    expect(page.locator("#privacy-state")).to_contain_text("confirm")
    page.fill("#erase-confirm", contact_id)
    page.click("#erase")
    expect(page.locator("#privacy-state")).to_contain_text("Erased")
    expect(page.locator("#contact-details")).to_contain_text("Erased")
    expect(page.locator("#contact-details")).not_to_contain_text(NOA)
    expect(page.locator("#audit")).to_contain_text("contact_erased")
    expect(page.locator("#contact-save")).to_be_disabled()
    assert all(m["text"] is None for m in customer.transcript())  # the customer's side too
