"""The managers' dashboard in a real browser: charts with data, a filter, a CSV matching the API.

Starts only the web service (`python -m handoff serve`) on a SQLite store holding the known
history of tests/handoff/report_history.py; the reports need no assistant.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from handoff import migrate
from handoff.agents.service import AgentService
from handoff.db import create_engine, session_factory
from tests.e2e.conftest import web_service_alone
from tests.e2e.test_console_browser import browser  # noqa: F401  (the shared Chromium)
from tests.handoff.report_history import FIRST, LAST, write_known_history

PASSWORD = "a-long-password-1"


async def _prepare(database_url: str) -> None:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    await write_known_history(sessions)
    agents = AgentService(sessions)
    await agents.create("manager@shop.example", "Mona Manager", PASSWORD, role="manager")
    await agents.create("agent@shop.example", "Andy Agent", PASSWORD, role="agent")
    await engine.dispose()


@pytest.fixture(scope="module")
def web_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("reports")
    database_url = f"sqlite+aiosqlite:///{tmp}/support.db"
    asyncio.run(_prepare(database_url))
    with web_service_alone(tmp, database_url, SUPPORT_BUSINESS_HOURS="mon-fri 08:00-20:00",
                           SUPPORT_TIMEZONE="Europe/Berlin") as url:
        yield url


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    problems: list[str] = []
    # script errors and CSP refusals ("Refused to ..."); a failed favicon load is not one
    page.on("console", lambda m: problems.append(m.text) if m.type == "error"
            and not m.text.startswith("Failed to load resource") else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems  # type: ignore[attr-defined]
    yield page
    context.close()


def log_in(page: Page, web_url: str, email: str) -> None:
    page.goto(f"{web_url}/console")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#me")).to_be_visible()


def summary_value(page: Page, metric: str) -> str:
    row = page.locator('section[data-table="summary"] tr', has_text=metric).first
    return row.locator("td").nth(1).inner_text()


def test_manager_sees_charts_filters_and_downloads_matching_csv(web_url: str, page: Page) -> None:
    log_in(page, web_url, "manager@shop.example")
    expect(page.locator("#open-reports")).to_be_visible()
    page.goto(f"{web_url}/console/reports?from={FIRST}&to={LAST}")
    daily = page.locator('section[data-table="daily"]')
    expect(daily.locator("canvas")).to_be_visible()
    box = daily.locator("canvas").bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 100
    # Chart.js drew on the canvas: some pixel is not blank
    painted = page.evaluate("""() => {
        const canvas = document.querySelector('section[data-table="daily"] canvas');
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        return data.some((value, i) => i % 4 === 3 && value > 0);
    }""")
    assert painted
    expect(daily.locator("tbody tr")).to_have_count(3)
    assert summary_value(page, "conversations") == "6"
    expect(page.locator("#live-waiting")).to_have_text("0")

    page.select_option("#channel", "whatsapp")
    page.click("#apply")
    expect(page.locator('section[data-table="channels"] tbody tr')).to_have_count(1)
    assert summary_value(page, "conversations") == "1"
    assert "channel=whatsapp" in page.url

    page.select_option("#channel", "")
    page.fill("#topic", "complaint")  # conversation B is the one with this intent
    page.click("#apply")
    expect(page).to_have_url(re.compile(r"[?&]topic=complaint"))  # the report was redrawn
    expect(page.locator('section[data-table="topics"] tbody tr')).to_have_count(1)
    assert summary_value(page, "conversations") == "1"
    page.fill("#topic", "weather")
    page.click("#apply")
    expect(page.locator("#error")).to_contain_text("unknown topic")

    page.fill("#topic", "")
    page.click("#apply")
    expect(page.locator('section[data-table="handoff_reasons"] tbody tr')).to_have_count(3)
    with page.expect_download() as info:
        page.click('section[data-table="handoff_reasons"] a.csv')
    download = info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    api = page.request.get(f"{web_url}/console/api/reports?from={FIRST}&to={LAST}").json()
    assert [(r["reason"], int(r["handoffs"])) for r in rows] == [
        (r["reason"], r["handoffs"]) for r in api["handoff_reasons"]]
    assert sum(int(r["handoffs"]) for r in rows) == 5
    assert page.problems == []  # type: ignore[attr-defined]  (no CSP violation, no script error)


def test_an_agent_is_refused(web_url: str, page: Page) -> None:
    log_in(page, web_url, "agent@shop.example")
    expect(page.locator("#open-reports")).to_be_hidden()
    response = page.goto(f"{web_url}/console/reports")
    assert response is not None and response.status == 403
    api = page.request.get(f"{web_url}/console/api/reports")
    assert api.status == 403 and "managers" in api.json()["error"]
