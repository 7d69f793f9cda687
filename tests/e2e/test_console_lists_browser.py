"""The console's contact search and audit trail in a real browser (Debian's chromium): an agent
finds customers in any script by name, phone or tag, pages through results and through a long
history; a manager filters and pages the audit trail and downloads its CSV; an agent is refused.

Starts only the web service on a SQLite store this module fills; search and the audit trail
need no assistant. The shared page fixture fails a test on any script error or CSP refusal,
so every page (common.js included) is checked to load under the console's policy.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from handoff import migrate
from handoff.agents.service import AgentService
from handoff.contacts.models import AuditEntry
from handoff.contacts.privacy import PrivacyService
from handoff.contacts.service import ContactService, parse_edit
from handoff.conversations.models import Contact, Conversation
from handoff.db import create_engine, session_factory
from tests.e2e.conftest import web_service_alone
from tests.e2e.test_console_browser import browser  # noqa: F401  (the shared Chromium)
from tests.e2e.test_reports_browser import PASSWORD, log_in, page  # noqa: F401

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)
HISTORY = 45  # conversations of one customer: more than the page shows at first
PAGE_PEOPLE = 25  # contacts matching one search: more than one page of 20
PURGES = 150  # audit entries of the retention purge: more than one page of 100


async def _prepare(database_url: str) -> dict[str, str]:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    agents = AgentService(sessions)
    manager = await agents.create("manager@shop.example", "Mona Manager", PASSWORD, role="manager")
    agent = await agents.create("agent@shop.example", "Andy Agent", PASSWORD, role="agent")
    async with sessions.begin() as session:
        people = {
            "petr": Contact(name="Пётр Иванов", email="petr@example.com", created_at=T0),
            "dana": Contact(name="דנה לוי", phone="+972541234567", tags=["vip"], created_at=T0),
            "layla": Contact(name="ليلى حسن", created_at=T0),
            "erased": Contact(name="Пётр Стёртый", created_at=T0),
        }
        session.add_all(people.values())
        session.add_all(Contact(name=f"Page Person {i}", created_at=T0 + timedelta(minutes=i))
                        for i in range(PAGE_PEOPLE))
        await session.flush()
        session.add_all(Conversation(contact_id=people["dana"].id, channel="whatsapp",
                                     token_hash="x" * 64, created_at=T0 + timedelta(hours=i))
                        for i in range(HISTORY))
        session.add_all(AuditEntry(action="transcripts_purged", actor_id=None,
                                   details={"messages": i}, created_at=T0 + timedelta(seconds=i))
                        for i in range(PURGES))
        ids = {name: contact.id for name, contact in people.items()}
    # Real actions leave the other entries: an agent's edit, a manager's export and erasure.
    await ContactService(sessions).edit(ids["petr"], parse_edit({"notes": "prefers email"}), agent.id)
    privacy = PrivacyService(sessions)
    await privacy.export(ids["dana"], manager.id, {})
    await privacy.erase(ids["erased"], manager.id)
    await engine.dispose()
    return ids


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("console-lists")
    database_url = f"sqlite+aiosqlite:///{tmp}/support.db"
    ids = asyncio.run(_prepare(database_url))
    with web_service_alone(tmp, database_url) as url:
        yield url, ids


def search_for(page: Page, words: str) -> None:
    page.fill("#contact-q", words)
    page.click("#search")


def test_agent_finds_contacts_in_any_script_and_pages_through_them(
    store: tuple[str, dict[str, str]], page: Page  # noqa: F811
) -> None:
    web_url, ids = store
    log_in(page, web_url, "agent@shop.example")
    expect(page.locator("#open-audit")).to_be_hidden()  # not for agents
    page.click("#open-contacts")
    expect(page).to_have_url(f"{web_url}/console/contacts")

    results = page.locator("#contacts-results tbody tr")
    search_for(page, "ПЁТР")  # upper case finds lower case, in Cyrillic too
    expect(results).to_have_count(1)  # the erased Пётр is never found
    expect(results.first).to_contain_text("Пётр Иванов")
    search_for(page, "דנה")
    expect(results).to_have_count(1)
    name = results.first.locator("a")
    expect(name).to_have_text("דנה לוי")
    expect(name).to_have_attribute("dir", "auto")
    expect(name).to_have_css("direction", "rtl")  # laid out right to left
    expect(results.first).to_contain_text(str(HISTORY))  # how many conversations
    search_for(page, "054-123 4567")  # the phone, typed the national way
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("דנה לוי")
    search_for(page, "VIP")
    expect(results.first).to_contain_text("דנה לוי")
    search_for(page, "ليلى")
    expect(results.first.locator("a")).to_have_text("ليلى حسن")
    search_for(page, "nobody like this")
    expect(page.locator("#contacts-none")).to_be_visible()
    expect(page.locator("#contacts-results")).to_be_hidden()

    search_for(page, "page person")
    expect(results).to_have_count(20)
    expect(results.first).to_contain_text(f"Page Person {PAGE_PEOPLE - 1}")  # newest first
    page.click("#contacts-more")
    expect(results).to_have_count(PAGE_PEOPLE)
    expect(page.locator("#contacts-more")).to_be_hidden()
    assert "q=page+person" in page.url  # the search survives a reload or a shared link

    page.goto(f"{web_url}/console/contacts?q=a")  # too short: the server says why
    expect(page.locator("#contacts-error")).to_contain_text("at least 2")

    page.goto(f"{web_url}/console/contacts?q=%D7%93%D7%A0%D7%94")  # ?q=דנה
    page.locator("#contacts-results tbody a").first.click()
    expect(page).to_have_url(f"{web_url}/console/contacts/{ids['dana']}")
    rows = page.locator("#conversations tbody tr")
    expect(rows).to_have_count(20)  # not all of them at once
    expect(page.locator("#conversation-count")).to_have_text(f"({HISTORY})")
    page.click("#conversations-more")
    expect(rows).to_have_count(40)
    page.click("#conversations-more")
    expect(rows).to_have_count(HISTORY)
    expect(page.locator("#conversations-more")).to_be_hidden()
    shown = [row.get_attribute("data-conversation-id") for row in rows.all()]
    assert len(set(shown)) == HISTORY  # no page repeated another
    assert page.problems == []  # type: ignore[attr-defined]  (no CSP violation, no script error)


def test_manager_filters_pages_and_downloads_the_audit_trail(
    store: tuple[str, dict[str, str]], page: Page  # noqa: F811
) -> None:
    web_url, ids = store
    log_in(page, web_url, "manager@shop.example")
    page.click("#open-audit")
    expect(page).to_have_url(re.compile(r"/console/audit"))
    entries = page.locator("#audit-entries tbody tr")
    expect(entries).to_have_count(100)  # the newest page
    newest = entries.first
    expect(newest).to_have_attribute("data-action", "contact_erased")
    expect(newest).to_contain_text("Mona Manager")
    page.click("#audit-more")
    expect(entries).to_have_count(PURGES + 3)
    expect(page.locator("#audit-more")).to_be_hidden()
    expect(entries.last).to_contain_text("the service")  # the purge has no person behind it

    page.select_option("#audit-action", "contact_edited")
    page.click("#audit-apply")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Andy Agent")
    expect(entries.first).to_contain_text("fields: [\"notes\"]")
    assert "prefers email" not in page.locator("#audit-entries").inner_text()  # never the values

    page.select_option("#audit-action", "")
    page.fill("#audit-from", "2026-03-02")
    page.fill("#audit-to", "2026-03-01")
    page.click("#audit-apply")
    expect(page.locator("#audit-error")).to_contain_text("'from' is after 'to'")
    expect(page.locator("#audit-entries")).to_be_hidden()

    page.fill("#audit-from", "2026-03-01")
    page.click("#audit-apply")  # the seeded purges are all on that day; the actions are today
    expect(entries).to_have_count(100)
    with page.expect_download() as info:
        page.click("#audit-csv")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8"))))
    api = page.request.get(f"{web_url}/console/api/audit?from=2026-03-01&to=2026-03-01&limit=500")
    listed = api.json()["entries"]
    assert len(rows) == len(listed) == PURGES
    assert [int(r["id"]) for r in rows] == [e["id"] for e in listed]
    assert {r["action"] for r in rows} == {"transcripts_purged"}
    assert page.problems == []  # type: ignore[attr-defined]


def test_an_agent_cannot_open_the_audit_trail(
    store: tuple[str, dict[str, str]], page: Page  # noqa: F811
) -> None:
    web_url, _ = store
    log_in(page, web_url, "agent@shop.example")
    response = page.goto(f"{web_url}/console/audit")
    assert response is not None and response.status == 403
    api = page.request.get(f"{web_url}/console/api/audit")
    assert api.status == 403 and "managers and admins" in api.json()["error"]
    csv_response = page.request.get(f"{web_url}/console/api/audit.csv")
    assert csv_response.status == 403
