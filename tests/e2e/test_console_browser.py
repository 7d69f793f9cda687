"""A person's whole handoff, in a real browser: escalate, claim, reply, close, survey, bot again."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect, sync_playwright

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, RunningSystem
from tests.e2e.test_conversation import Customer, reply_texts

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SCRIPT_PAYLOAD = '<img src=x onerror="alert(1)"><script>alert(2)</script>'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield page
    assert dialogs == [], f"customer text ran as script: {dialogs}"
    context.close()


def log_in(page: Page, system: RunningSystem) -> None:
    page.goto(f"{system.web_url}/console")
    page.fill("#login-email", ADMIN_EMAIL)
    page.fill("#login-password", ADMIN_PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#me")).to_contain_text("Admin")


def test_agent_takes_over_and_gives_back(system: RunningSystem, page: Page) -> None:
    customer = Customer(system)
    assert customer.say("I want to talk to a real person")["status"] == "waiting"
    customer.say(SCRIPT_PAYLOAD)

    log_in(page, system)
    item = page.locator(f'#queue li[data-conversation-id="{customer.id}"]')
    expect(item).to_contain_text("customer_request")
    item.click()
    expect(page.locator("#transcript")).to_contain_text("I want to talk to a real person")
    # the payload is shown as the text it is, not run
    expect(page.locator("#transcript")).to_contain_text(SCRIPT_PAYLOAD)
    assert page.locator("#transcript img").count() == 0
    page.click("#claim")
    expect(page.locator("#reply-form")).to_be_visible()

    page.fill("#reply", "Hi, I'm Ada from the support team. How can I help?")
    page.click("#send")
    expect(page.locator("#transcript")).to_contain_text("I'm Ada from the support team")
    agent_lines = [m["text"] for m in customer.transcript() if m["author"] == "agent"]
    assert agent_lines == ["Hi, I'm Ada from the support team. How can I help?"]

    # the customer writes; the agent's open page shows it live, without reloading
    customer.say("my parcel never arrived")
    expect(page.locator("#transcript")).to_contain_text("my parcel never arrived")

    page.check("#private")
    page.fill("#reply", "checked with DHL, lost in transit")
    page.click("#send")
    expect(page.locator("#transcript .private")).to_contain_text("lost in transit")
    assert "lost in transit" not in str(customer.transcript())

    page.select_option("#resolution", "order_fixed")
    page.click("#resolve")
    expect(page.locator("#conv-details")).to_contain_text("resolved")
    survey = [m for m in customer.transcript() if (m["payload"] or {}).get("survey")]
    assert len(survey) == 1

    rated = customer.say("5")
    assert rated["status"] == "bot" and "Thank you" in reply_texts(rated)[0]
    after = customer.say("hello again")
    assert after["status"] == "bot"
    assert [r["author"] for r in after["replies"]] == ["assistant"]


def test_a_message_stored_before_the_server_takes_the_watch_still_shows(
    system: RunningSystem, page: Page
) -> None:
    """Opening a conversation sends "watch" and reads the transcript at once; a message stored
    after the read and before the server takes the watch is published to no one. The page
    reads the conversation again on "watched". Here the page's watch is held at the socket
    until the customer's message is stored, which makes that window as wide as we like."""
    customer = Customer(system)
    assert customer.say("I want to talk to a real person")["status"] == "waiting"
    held: list[str | bytes] = []
    servers: list[WebSocketRoute] = []

    def route(socket: WebSocketRoute) -> None:
        server = socket.connect_to_server()
        servers.append(server)

        def from_page(frame: str | bytes) -> None:
            if not held and '"watch"' in str(frame) and customer.id in str(frame):
                held.append(frame)  # the first watch of the conversation waits
            else:
                server.send(frame)

        socket.on_message(from_page)

    page.route_web_socket("**/console/ws", route)
    log_in(page, system)
    page.locator(f'#queue li[data-conversation-id="{customer.id}"]').click()
    transcript = page.locator("#transcript")
    expect(transcript).to_contain_text("I want to talk to a real person")
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # lets Playwright hand the page's frames to the route
    assert held, "the page never sent its watch"

    customer.say("the box arrived crushed")  # stored; its event finds no one watching
    servers[-1].send(held[0])
    expect(transcript).to_contain_text("the box arrived crushed")


def test_admin_adds_an_agent_and_sets_hours_who_can_then_log_in(
    system: RunningSystem, browser: Browser, page: Page
) -> None:
    log_in(page, system)
    page.click("#open-admin")
    expect(page.locator("#agents")).to_contain_text("admin@localhost")
    page.fill("#agent-name", "Noa Levi")
    page.fill("#agent-email", "noa@shop.example")
    page.fill("#agent-password", "short")
    page.click("#agent-form button[type=submit]")  # the browser refuses: minlength
    assert "noa@shop.example" not in page.locator("#agents").inner_text()
    page.fill("#agent-password", "noa-long-password")
    page.fill("#agent-skills", "language:he, topic:billing")
    page.click("#agent-form button[type=submit]")
    expect(page.locator("#agents")).to_contain_text("language:he, topic:billing")

    page.fill("#hours", "mon-fri 25:00-26:00")
    page.click("#hours-form button[type=submit]")
    expect(page.locator("#admin-error")).to_contain_text("impossible time")
    page.fill("#hours", "mon-sun 00:00-24:00")
    page.fill("#timezone", "Asia/Jerusalem")
    page.click("#hours-form button[type=submit]")
    expect(page.locator("#hours-state")).to_have_text("open now")

    other = browser.new_context().new_page()
    other.goto(f"{system.web_url}/console")
    other.fill("#login-email", "noa@shop.example")
    other.fill("#login-password", "noa-long-password")
    other.click("#login-form button[type=submit]")
    expect(other.locator("#me")).to_contain_text("Noa Levi (agent)")
    assert other.locator("#open-admin").is_hidden()  # agents do not manage the team
    other.context.close()
