"""The reports API and page: managers and admins only, every bad input a clear 4xx, CSV = JSON."""

from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

import pytest
from sqlalchemy import func, select

from handoff.app import create_app
from handoff.appkeys import AGENTS, QUEUE
from handoff.conversations.models import Conversation, ConversationEvent, Message
from handoff.reports.api import TABLES
from tests.conftest import FakeRasa
from tests.handoff.report_history import FIRST, HOURS, LAST, write_known_history
from tests.handoff.test_console import ADMIN, Client, escalated, log_in, settings_for

RANGE = f"from={FIRST}&to={LAST}"


@pytest.fixture
async def app_client(aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa) -> Client:
    fake_rasa.reply = lambda text: (
        [{"text": "Connecting you."}, {"custom": {"handoff": {"reason": "customer_request"}}}]
        if "human" in text else [{"text": f"echo: {text}"}])
    settings = dataclasses.replace(settings_for(database_url, fake_rasa.url), business_hours=HOURS)
    client = await aiohttp_client(create_app(settings))
    await write_known_history(client.app[QUEUE].sessions)
    return client


async def person(aiohttp_client: Any, app_client: Client, role: str) -> Client:
    email = f"{role}@shop.example"
    await app_client.app[AGENTS].create(email, role.title(), "a-long-password-1", role=role)
    return (await log_in(aiohttp_client, app_client, email, "a-long-password-1")).client


async def table_counts(app_client: Client) -> tuple[int, ...]:
    async with app_client.app[QUEUE].sessions() as session:
        return tuple([(await session.scalar(select(func.count()).select_from(model))) or 0
                      for model in (Conversation, ConversationEvent, Message)])


async def test_manager_reads_the_report_and_admins_may_too(aiohttp_client: Any,
                                                            app_client: Client) -> None:
    manager = await person(aiohttp_client, app_client, "manager")
    response = await manager.get(f"/console/api/reports?{RANGE}")
    assert response.status == 200
    body = await response.json()
    assert body["summary"]["conversations"] == 6
    assert body["filters"]["timezone"] == "Europe/Berlin"
    await log_in(aiohttp_client, app_client, *ADMIN)
    assert (await app_client.get(f"/console/api/reports?{RANGE}")).status == 200
    page = await manager.get("/console/reports")
    assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    chart_lib = await manager.get("/console/static/vendor/chart.umd.min.js")
    assert chart_lib.status == 200 and "Chart.js" in (await chart_lib.text())[:200]


async def test_agents_and_strangers_are_refused(aiohttp_client: Any, app_client: Client) -> None:
    agent = await person(aiohttp_client, app_client, "agent")
    for path in ("/console/api/reports", "/console/api/reports/live",
                 "/console/api/reports/daily.csv", "/console/reports"):
        response = await agent.get(path, allow_redirects=False)
        assert response.status == 403, path
        assert "managers" in (await response.json())["error"]
    stranger = await aiohttp_client(app_client.server)
    assert (await stranger.get("/console/api/reports")).status == 401
    page = await stranger.get("/console/reports", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"] == "/console"


@pytest.mark.parametrize("query, status, words", [
    ("from=2026-03-30&to=2026-03-28", 400, "after 'to'"),
    ("from=2016-01-01&to=2026-01-01", 400, "at most 400 days"),
    ("from=yesterday", 400, "YYYY-MM-DD"),
    ("channel=fax", 400, "unknown channel"),
    ("language=<script>", 400, "language code"),
    ("agent=nobody", 400, "agent id"),
    ("agent=" + "c" * 32, 400, "unknown agent"),
    ("colour=red", 400, "unknown parameter"),
    ("topic=weather", 400, "unknown topic"),
    ("topic=<b>", 400, "'topic' must be"),
    ("skill=language:xx", 400, "unknown skill"),
    ("skill=a%25b", 400, "'skill' must be"),
])
async def test_bad_input_is_a_clear_400_and_changes_nothing(
        aiohttp_client: Any, app_client: Client, query: str, status: int, words: str) -> None:
    manager = await person(aiohttp_client, app_client, "manager")
    before = await table_counts(app_client)
    for path in ("/console/api/reports", "/console/api/reports/summary.csv"):
        response = await manager.get(f"{path}?{query}")
        assert response.status == status, await response.text()
        assert words in (await response.json())["error"]
    assert await table_counts(app_client) == before


async def test_every_csv_table_matches_the_json(aiohttp_client: Any, app_client: Client) -> None:
    manager = await person(aiohttp_client, app_client, "manager")
    body = await (await manager.get(f"/console/api/reports?{RANGE}")).json()
    for name in TABLES:
        response = await manager.get(f"/console/api/reports/{name}.csv?{RANGE}")
        assert response.status == 200, name
        assert response.headers["Content-Type"].startswith("text/csv")
        assert f'filename="{name}-{FIRST}-{LAST}.csv"' in response.headers["Content-Disposition"]
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        expected = (body["knowledge"]["articles" if name == "kb_articles" else "unanswered"]
                    if name.startswith("kb_") else
                    [{"metric": k, "value": v} for k, v in body["summary"].items()]
                    if name == "summary" else body[name])
        assert len(rows) == len(expected), name
        for row, want in zip(rows, expected, strict=True):
            assert row == {k: "" if v is None else str(v) for k, v in want.items()}, name
    reasons = list(csv.DictReader(io.StringIO(
        await (await manager.get(f"/console/api/reports/handoff_reasons.csv?{RANGE}")).text())))
    assert reasons[0] == {"reason": "customer_request", "handoffs": "3", "share": "0.6"}


@pytest.mark.parametrize("query, conversations, handed_off", [
    ("topic=complaint", 1, 1),  # B: an intent the assistant recognised
    ("topic=shipping-times", 1, 0),  # A: an article the knowledge base answered with
    ("skill=language:de", 2, 2),  # B and E
    ("skill=topic:billing", 1, 1),  # E
    ("skill=language:de&topic=complaint", 1, 1),  # B
])
async def test_topic_and_skill_filter_the_report_and_its_csv(
        aiohttp_client: Any, app_client: Client, query: str, conversations: int,
        handed_off: int) -> None:
    manager = await person(aiohttp_client, app_client, "manager")
    body = await (await manager.get(f"/console/api/reports?{RANGE}&{query}")).json()
    assert (body["summary"]["conversations"], body["summary"]["handed_off"]) == (
        conversations, handed_off)
    for part in query.split("&"):
        key, value = part.split("=")
        assert body["filters"][key] == value
    summary = await (await manager.get(f"/console/api/reports/summary.csv?{RANGE}&{query}")).text()
    rows = {row["metric"]: row["value"] for row in csv.DictReader(io.StringIO(summary))}
    assert (rows["conversations"], rows["handed_off"]) == (str(conversations), str(handed_off))


async def test_an_empty_slice_says_no_data(aiohttp_client: Any, app_client: Client) -> None:
    manager = await person(aiohttp_client, app_client, "manager")
    body = await (await manager.get(f"/console/api/reports?{RANGE}&language=fr")).json()
    assert body["no_data"] is True and body["summary"]["conversations"] == 0
    assert all(day["conversations"] == 0 for day in body["daily"])
    response = await manager.get(f"/console/api/reports/daily.csv?{RANGE}&language=fr")
    assert response.status == 404
    assert (await response.json())["error"].startswith("no data")
    unknown = await manager.get(f"/console/api/reports/secrets.csv?{RANGE}")
    assert unknown.status == 404 and "tables:" in (await unknown.json())["error"]


async def test_live_panel_counts_waiting_customers(aiohttp_client: Any, app_client: Client) -> None:
    manager = await person(aiohttp_client, app_client, "manager")
    assert (await (await manager.get("/console/api/reports/live")).json())["waiting"] == 0
    await escalated(app_client)
    now = await (await manager.get("/console/api/reports/live")).json()
    assert now["waiting"] == 1 and now["longest_wait_seconds"] >= 0
