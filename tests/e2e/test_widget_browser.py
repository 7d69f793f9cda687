"""The website widget in a real browser, on the demo store page, against the whole system."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import RunningSystem
from tests.e2e.test_console_browser import SCRIPT_PAYLOAD, browser, log_in, page  # noqa: F401


def open_chat(page: Page, system: RunningSystem) -> None:
    page.goto(f"{system.web_url}/demo")
    page.click(".sw-launcher")
    expect(page.locator(".sw-panel")).to_be_visible()


def say(page: Page, text: str) -> None:
    page.fill(".sw-form textarea", text)
    page.keyboard.press("Enter")


def test_customer_chats_reloads_and_keeps_the_conversation(
    system: RunningSystem, page: Page  # noqa: F811
) -> None:
    open_chat(page, system)
    say(page, "hello")
    expect(page.locator(".sw-assistant").first).to_contain_text("virtual assistant")
    say(page, "שלום, איפה ההזמנה שלי?")
    hebrew = page.locator(".sw-customer", has_text="שלום")
    expect(hebrew).to_have_attribute("dir", "auto")
    # an auto-retrying check: the waiting bubble is replaced by the stored one when the
    # message is confirmed, and a one-shot evaluate could land on the detached one ('')
    expect(hebrew).to_have_css("direction", "rtl")
    english = page.locator(".sw-customer", has_text="hello")
    expect(english).to_have_css("direction", "ltr")
    expect(page.locator(".sw-assistant")).to_have_count(2)

    page.reload()
    page.click(".sw-launcher")
    expect(page.locator(".sw-customer")).to_have_count(2)  # history restored, no duplicates
    expect(page.locator(".sw-assistant")).to_have_count(2)
    assert page.locator(".sw-pending").count() == 0


def test_person_joins_replies_and_leaves_with_a_survey(
    system: RunningSystem, browser: Browser, page: Page  # noqa: F811
) -> None:
    open_chat(page, system)
    say(page, "I want to talk to a real person")
    expect(page.locator(".sw-status")).not_to_be_empty()  # queue place or "team is away"

    console = browser.new_context().new_page()
    log_in(console, system)
    cid = page.evaluate("JSON.parse(localStorage.getItem('support-widget:' + location.origin)).conversation_id")
    console.locator(f'#queue li[data-conversation-id="{cid}"]').click()
    console.click("#claim")
    expect(page.locator(".sw-status")).to_contain_text("Admin joined the conversation")
    console.fill("#reply", "Hi, Admin here " + SCRIPT_PAYLOAD)
    console.click("#send")
    expect(page.locator(".sw-agent")).to_contain_text(SCRIPT_PAYLOAD)  # text, not HTML
    assert page.locator(".sw-agent img, .sw-agent script").count() == 0

    console.click("#resolve")
    expect(page.locator(".sw-replies button")).to_have_count(5)
    page.locator(".sw-replies button", has_text="5").click()
    expect(page.locator(".sw-system").last).to_contain_text("Thank you for your feedback")
    expect(page.locator(".sw-customer").last).to_have_text("5")
    console.context.close()


def test_messages_typed_while_offline_are_sent_once_when_back(
    system: RunningSystem, page: Page  # noqa: F811
) -> None:
    network = {"up": True}
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        if not network["up"]:
            ws.close()  # the connection fails, as with no network
            return
        ws.connect_to_server()
        sockets.append(ws)

    page.route_web_socket(re.compile(r".*/widget/ws$"), route)
    open_chat(page, system)
    say(page, "hi")
    expect(page.locator(".sw-assistant")).to_have_count(1)

    network["up"] = False
    for ws in sockets:
        ws.close()
    expect(page.locator(".sw-status")).to_contain_text("Reconnecting")
    say(page, "are you still there?")
    expect(page.locator(".sw-pending")).to_have_count(1)  # kept, shown as not yet sent

    network["up"] = True  # the widget's next retry gets through
    expect(page.locator(".sw-pending")).to_have_count(0, timeout=60_000)
    expect(page.locator(".sw-customer", has_text="are you still there?")).to_have_count(1)
    expect(page.locator(".sw-assistant")).to_have_count(2)
    page.reload()
    page.click(".sw-launcher")
    expect(page.locator(".sw-customer")).to_have_count(2)  # stored once, not twice


def test_on_a_phone_the_chat_fills_the_screen_and_works_by_keyboard(
    system: RunningSystem, browser: Browser  # noqa: F811
) -> None:
    context = browser.new_context(viewport={"width": 375, "height": 667}, is_mobile=True)
    phone = context.new_page()
    phone.goto(f"{system.web_url}/demo")
    phone.focus(".sw-launcher")
    phone.keyboard.press("Enter")
    panel = phone.locator(".sw-panel")
    expect(panel).to_be_visible()
    box = panel.bounding_box()
    assert box is not None and box["width"] == 375 and box["height"] == 667
    expect(phone.locator(".sw-form textarea")).to_be_focused()
    expect(phone.locator(".sw-log")).to_have_attribute("role", "log")
    phone.keyboard.type("hi")
    phone.keyboard.press("Enter")
    expect(phone.locator(".sw-assistant")).to_have_count(1)
    phone.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(phone.locator(".sw-launcher")).to_be_focused()
    context.close()
