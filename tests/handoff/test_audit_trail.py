"""The audit trail for admins and managers, against the real app and database (SQLite and
PostgreSQL): every kind of entry with who/what/when, filters by action and UTC day, keyset
pages, the CSV matching the API, agents refused, and a clear 400 for every bad input."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from handoff.appkeys import AGENTS, ENGINE
from handoff.contacts.api import PRIVACY
from handoff.contacts.models import AuditEntry
from handoff.db import session_factory
from tests.handoff.test_console import ADMIN, Agent, Client, log_in
from tests.handoff.test_contacts import api_chat, app_client, contact_of, manager, plain_agent, snapshot  # noqa: F401
from tests.handoff.test_contact_search import _cursor

DAY = datetime(2026, 3, 10, tzinfo=timezone.utc)


async def entries(agent: Agent, query: str = "") -> list[dict[str, Any]]:
    """Every entry the filter selects, read page by page (2 a page, to walk the cursor)."""
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        status, body = await agent.call(
            "GET", f"/console/api/audit?limit=2&{query}" + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        assert len(body["entries"]) <= 2
        rows += body["entries"]
        cursor = body["next_cursor"]
        if cursor is None:
            return rows


async def csv_rows(agent: Agent, query: str = "") -> list[dict[str, str]]:
    response = await agent.client.get(f"/console/api/audit.csv?{query}")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(await response.text())))


async def test_every_action_is_listed_with_who_what_and_when(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    cid = await api_chat(app_client, "verify anna.kowalski@example.com")
    contact_id = await contact_of(app_client, cid)
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    mia = await manager(aiohttp_client, app_client)
    assert (await admin.call("PATCH", f"/console/api/contacts/{contact_id}", {"name": "Anna K"}))[0] == 200
    assert (await mia.call("POST", f"/console/api/contacts/{contact_id}/export"))[0] == 200
    assert (await mia.call("POST", f"/console/api/contacts/{contact_id}/erase",
                           {"confirm": contact_id}))[0] == 200
    async with session_factory(app_client.app[ENGINE]).begin() as session:
        session.add(AuditEntry(action="transcripts_purged", actor_id=None,
                               details={"messages": 7, "retention_days": 30}))

    rows = await entries(mia)
    assert [(r["action"], r["actor_name"], r["contact_id"]) for r in rows] == [
        ("transcripts_purged", None, None),  # the service itself
        ("contact_erased", "Mia", contact_id),
        ("contact_exported", "Mia", contact_id),
        ("contact_edited", "Admin", contact_id)]
    assert rows[1]["actor_id"] == mia.me["id"] and rows[3]["details"] == {"fields": ["name"]}
    assert all(datetime.fromisoformat(r["at"]).tzinfo is not None for r in rows)
    assert "anna" not in json.dumps(rows).lower()  # who and what, never the personal data
    assert [r["action"] for r in await entries(mia, "action=contact_exported")] == ["contact_exported"]
    assert [r["action"] for r in await entries(admin, f"contact_id={contact_id}")] == [
        "contact_erased", "contact_exported", "contact_edited"]


async def test_days_filter_in_utc_and_pages_continue_after_the_last_entry(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    times = [DAY - timedelta(microseconds=1), DAY, DAY + timedelta(hours=23, minutes=59),
             DAY + timedelta(days=1), DAY + timedelta(days=2, hours=12)]
    async with session_factory(app_client.app[ENGINE]).begin() as session:
        session.add_all([AuditEntry(action="contact_exported", actor_id=None, contact_id=f"c{i}",
                                    created_at=at) for i, at in enumerate(times)])
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    one_day = await entries(admin, "from=2026-03-10&to=2026-03-10")
    assert [r["contact_id"] for r in one_day] == ["c2", "c1"]
    assert [r["contact_id"] for r in await entries(admin, "from=2026-03-11")] == ["c4", "c3"]
    assert [r["contact_id"] for r in await entries(admin, "to=2026-03-09")] == ["c0"]
    assert [r["contact_id"] for r in await entries(admin)] == ["c4", "c3", "c2", "c1", "c0"]
    assert await entries(admin, "from=2026-03-10&to=2026-03-10&action=contact_erased") == []

    status, first = await admin.call("GET", "/console/api/audit?limit=2")
    async with session_factory(app_client.app[ENGINE]).begin() as session:  # written meanwhile
        session.add(AuditEntry(action="contact_erased", actor_id=None, contact_id="new"))
    status, second = await admin.call(
        "GET", f"/console/api/audit?limit=2&cursor={first['next_cursor']}")
    assert [r["contact_id"] for r in first["entries"] + second["entries"]] == ["c4", "c3", "c2", "c1"]


async def test_the_csv_holds_what_the_api_lists(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    await app_client.app[AGENTS].create("eve@shop.example", "=HYPERLINK(\"http://x\")",
                                        "a-long-password-1", role="manager")
    eve = await log_in(aiohttp_client, app_client, "eve@shop.example", "a-long-password-1")
    cid = await api_chat(app_client, "hello")
    contact_id = await contact_of(app_client, cid)
    for _ in range(3):
        assert (await eve.call("POST", f"/console/api/contacts/{contact_id}/export"))[0] == 200
    async with session_factory(app_client.app[ENGINE]).begin() as session:
        session.add_all([AuditEntry(action="transcripts_purged", actor_id=None,
                                    details={"messages": i, "older_than": "2026-01-01"})
                         for i in range(1203)])  # more than one batch of the stream

    rows = await csv_rows(eve)
    listed = (await eve.call("GET", "/console/api/audit?limit=500"))[1]["entries"]
    assert len(rows) == 1206
    assert [int(r["id"]) for r in rows[:500]] == [e["id"] for e in listed]
    assert len({r["id"] for r in rows}) == 1206  # the batches neither repeat nor skip
    exported = [r for r in rows if r["action"] == "contact_exported"]
    assert len(exported) == 3 and exported[0]["contact_id"] == contact_id
    assert exported[0]["actor_name"] == "'=HYPERLINK(\"http://x\")"  # shown as text, never run
    assert json.loads(exported[0]["details"])["conversations"] == 1
    assert json.loads(rows[0]["details"]) == {"messages": 1202, "older_than": "2026-01-01"}
    only = await csv_rows(eve, "action=contact_exported")
    assert [r["id"] for r in only] == [r["id"] for r in exported]
    empty = await csv_rows(eve, "action=contact_erased")
    assert empty == []  # a header and no rows


async def test_agents_are_refused_managers_and_admins_read(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    bea = await plain_agent(aiohttp_client, app_client)
    for path in ("/console/api/audit", "/console/api/audit.csv", "/console/api/audit?action=x"):
        response = await bea.client.get(path)
        assert response.status == 403, path
        assert "managers and admins" in (await response.json())["error"]
    anonymous = await aiohttp_client(app_client.server)
    assert (await anonymous.get("/console/api/audit")).status == 401  # not logged in
    mia = await manager(aiohttp_client, app_client)
    assert (await mia.call("GET", "/console/api/audit"))[0] == 200
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    assert (await admin.call("GET", "/console/api/audit"))[0] == 200
    page = await mia.client.get("/console/audit")  # the page itself, like the reports'
    assert page.status == 200 and "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert (await bea.client.get("/console/audit")).status == 403
    away = await anonymous.get("/console/audit", allow_redirects=False)
    assert away.status == 302 and away.headers["Location"] == "/console"


@pytest.mark.parametrize("query, complaint", [
    ("action=contact_deleted", "'action' must be one of"),
    ("from=2026-13-01", "'from' must be a date"),
    ("to=yesterday", "'to' must be a date"),
    ("from=2026-3-1", "'from' must be a date"),
    ("from=2026-03-02&to=2026-03-01", "'from' is after 'to'"),
    ("limit=0", "'limit'"),
    ("limit=501", "'limit'"),
    ("cursor=abc", "'cursor'"),
    ("cursor=" + _cursor(["12"]), "'cursor'"),
    ("cursor=" + _cursor([True]), "'cursor'"),
    ("contact_id=" + "x" * 65, "'contact_id'"),
])
async def test_bad_audit_input_is_a_clear_400_and_changes_nothing(
    aiohttp_client: Any, app_client: Client, query: str, complaint: str  # noqa: F811
) -> None:
    mia = await manager(aiohttp_client, app_client)
    before = await snapshot(app_client)
    status, body = await mia.call("GET", f"/console/api/audit?{query}")
    assert status == 400 and complaint in body["error"], (query, body)
    if "cursor" not in query and "limit" not in query:  # the CSV takes the same filters
        response = await mia.client.get(f"/console/api/audit.csv?{query}")
        assert response.status == 400 and complaint in (await response.json())["error"]
    assert await snapshot(app_client) == before


async def test_a_purge_that_finds_something_is_listed_as_the_service(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    await api_chat(app_client, "an old question")
    privacy = app_client.app[PRIVACY]
    privacy.retention_days = 1
    assert await privacy.purge_expired(datetime.now(timezone.utc) + timedelta(days=3)) > 0
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    [purge] = await entries(admin, "action=transcripts_purged")
    assert purge["actor_id"] is None and purge["actor_name"] is None
    assert purge["details"]["retention_days"] == 1
