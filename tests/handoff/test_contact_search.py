"""Finding a contact from the console, and reading a long history by pages, against the real
app and database (SQLite and PostgreSQL): every way a customer is known, any script's case,
erased contacts never found, stable keyset pages, and a clear 400 for every bad input."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import select, update

from handoff import migrate
from handoff.appkeys import ENGINE
from handoff.channels.messaging import ChannelIdentity
from handoff.contacts.folding import fold, phone_digits
from handoff.contacts.models import ContactIdentity
from handoff.conversations.models import Contact, Conversation
from handoff.db import create_engine, session_factory
from tests.handoff.test_console import ADMIN, Agent, Client, app_client, log_in  # noqa: F401
from tests.handoff.test_contacts import plain_agent, snapshot

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


async def add_contact(client: Client, created_at: datetime, **fields: Any) -> str:
    """A contact as the service stores one (through the ORM, so its search column is filled)."""
    async with session_factory(client.app[ENGINE]).begin() as session:
        contact = Contact(created_at=created_at, **fields)
        session.add(contact)
        await session.flush()
        return contact.id


async def add_conversations(client: Client, contact_id: str, count: int,
                            channel: str = "widget") -> list[str]:
    """`count` conversations of the contact, one a minute from T0 (ids in creation order)."""
    async with session_factory(client.app[ENGINE]).begin() as session:
        rows = [Conversation(contact_id=contact_id, channel=channel, token_hash="x" * 64,
                             created_at=T0 + timedelta(minutes=i)) for i in range(count)]
        session.add_all(rows)
        await session.flush()
        return [c.id for c in rows]


async def add_identities(client: Client, contact_id: str, proven_email: str | None,
                         whatsapp: str | None) -> None:
    """A proven email (a contact identity) and a WhatsApp chat not linked by any proof (the
    number is only on the conversation's channel identity)."""
    chat = (await add_conversations(client, contact_id, 1, channel="whatsapp"))[0] if whatsapp else None
    async with session_factory(client.app[ENGINE]).begin() as session:
        if proven_email:
            session.add(ContactIdentity(contact_id=contact_id, channel="email",
                                        external_id=proven_email, verified_at=T0))
        if whatsapp and chat:
            session.add(ChannelIdentity(channel="whatsapp", external_id=whatsapp,
                                        conversation_id=chat))


async def found(agent: Agent, query: str) -> list[str]:
    status, body = await agent.call("GET", f"/console/api/contacts?q={quote(query)}&limit=100")
    assert status == 200, body
    assert body["next_cursor"] is None
    return [c["id"] for c in body["contacts"]]


def test_folding_and_phone_queries() -> None:
    assert fold("ПЁТР Straße") == fold("пётр STRASSE") == "пётр strasse"
    assert fold("ＡＢＣ１２") == "abc12"  # full-width letters and digits, as some keyboards type
    assert fold("דנה לוי") == "דנה לוי"  # no case: unchanged
    assert phone_digits("054-123 4567") == "541234567"
    assert phone_digits("+972 (54) 123-4567") == "972541234567"
    assert phone_digits("Anna") is None and phone_digits("12") is None


async def test_a_contact_is_found_by_every_way_it_is_known(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    petr = await add_contact(app_client, T0, name="Пётр Иванов", email="petr@example.com")
    dana = await add_contact(app_client, T0 + timedelta(seconds=1), name="דנה לוי",
                             phone="+972541234567", tags=["vip"])
    layla = await add_contact(app_client, T0 + timedelta(seconds=2), name="ليلى حسن")
    hans = await add_contact(app_client, T0 + timedelta(seconds=3), name="Hans Straße",
                             tags=["b2b"])
    proven = await add_contact(app_client, T0 + timedelta(seconds=4))
    on_whatsapp = await add_contact(app_client, T0 + timedelta(seconds=5), name="Noa")
    await add_identities(app_client, proven, "mark.twain@example.org", None)
    await add_identities(app_client, on_whatsapp, None, "972509998877")
    bea = await plain_agent(aiohttp_client, app_client)  # every agent may search

    assert await found(bea, "пётр") == await found(bea, "ПЁТР") == [petr]
    assert await found(bea, "ИВАНОВ") == [petr]
    assert await found(bea, "PETR@EXAMPLE") == [petr]
    assert await found(bea, "דנה") == [dana]
    assert await found(bea, "ليلى") == [layla]
    assert await found(bea, "STRASSE") == await found(bea, "straße") == [hans]
    assert await found(bea, "054-123 4567") == await found(bea, "+972 54 123 4567") == [dana]
    assert await found(bea, "VIP") == [dana]
    assert await found(bea, "mark.twain") == [proven]  # a proven email (an identity)
    assert await found(bea, "050 999 8877") == [on_whatsapp]  # a WhatsApp number
    assert await found(bea, petr) == [petr]  # an id pasted from elsewhere
    assert set(await found(bea, "example")) == {petr, proven}  # newest first:
    assert await found(bea, "example") == [proven, petr]
    assert await found(bea, "%%") == [] and await found(bea, "e_a") == []  # literal, not wildcards

    # An edit through the console refreshes what search sees.
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    status, _ = await admin.call("PATCH", f"/console/api/contacts/{petr}",
                                 {"name": "Пётр Сидоров", "tags": ["wholesale"]})
    assert status == 200
    assert await found(bea, "иванов") == [] and await found(bea, "СИДОРОВ") == [petr]
    assert await found(bea, "WHOLESALE") == [petr]


async def test_erased_contacts_are_never_found(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    gone = await add_contact(app_client, T0, name="Zelda Erased", email="zelda@example.com",
                             tags=["vip"])
    kept = await add_contact(app_client, T0 + timedelta(seconds=1), name="Zelda Kept")
    await add_identities(app_client, gone, "zelda@example.com", "15550001111")
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    assert await found(admin, "zelda") == [kept, gone]
    status, _ = await admin.call("POST", f"/console/api/contacts/{gone}/erase", {"confirm": gone})
    assert status == 200
    for query in ("zelda", "zelda@example.com", "555 000 1111", "vip", gone):
        assert gone not in await found(admin, query), query
    assert await found(admin, "zelda") == [kept]
    # Even a row whose fields somehow remained is filtered out by its erasure mark.
    async with session_factory(app_client.app[ENGINE]).begin() as session:
        await session.execute(update(Contact).where(Contact.id == kept)
                              .values(erased_at=T0, search_text="zelda kept"))
    assert await found(admin, "zelda") == []


async def test_search_pages_continue_exactly_after_the_last_row(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    ids = [await add_contact(app_client, T0 + timedelta(seconds=i // 3), name=f"Page Person {i}")
           for i in range(45)]  # three at each instant: the id breaks the ties
    await add_contact(app_client, T0, name="Somebody else")
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    seen: list[str] = []
    pages: list[int] = []
    cursor = None
    while True:
        path = "/console/api/contacts?q=page+person&limit=20"
        status, body = await admin.call("GET", path + (f"&cursor={cursor}" if cursor else ""))
        assert status == 200, body
        seen += [c["id"] for c in body["contacts"]]
        pages.append(len(body["contacts"]))
        if not pages[1:]:  # a new match arriving after the first page does not shift the rest
            await add_contact(app_client, T0 + timedelta(days=1), name="Page Person new")
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == [20, 20, 5]
    assert len(set(seen)) == 45 and set(seen) == set(ids)
    status, rows = await admin.call("GET", "/console/api/contacts?q=page+person&limit=100")
    keys = [(r["created_at"], r["id"]) for r in rows["contacts"]]
    assert keys == sorted(keys, reverse=True)  # newest first, ties by id
    assert seen == [r["id"] for r in rows["contacts"][1:]]  # the pages, in that order


async def test_each_row_says_how_many_conversations_and_when_last_seen(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    busy = await add_contact(app_client, T0, name="Rivka Busy")
    quiet = await add_contact(app_client, T0, name="Rivka Quiet")
    chats = await add_conversations(app_client, busy, 3)
    async with session_factory(app_client.app[ENGINE]).begin() as session:
        await session.execute(update(Conversation).where(Conversation.id == chats[1])
                              .values(last_message_at=T0 + timedelta(days=2)))
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    status, body = await admin.call("GET", "/console/api/contacts?q=rivka")
    rows = {r["id"]: r for r in body["contacts"]}
    assert rows[busy]["conversations"] == 3
    assert datetime.fromisoformat(rows[busy]["last_message_at"]) == T0 + timedelta(days=2)
    assert rows[quiet]["conversations"] == 0 and rows[quiet]["last_message_at"] is None
    assert rows[busy]["name"] == "Rivka Busy" and rows[busy]["tags"] == []


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("query, complaint", [
    ("", "give 'q'"),
    ("q=", "give 'q'"),
    ("q=%20%20%20", "give 'q'"),
    ("q=a", "at least 2"),
    ("q=" + "x" * 201, "at most 200"),
    ("q=ab%01", "control characters"),
    ("q=anna&limit=0", "'limit'"),
    ("q=anna&limit=101", "'limit'"),
    ("q=anna&limit=ten", "'limit'"),
    ("q=anna&limit=%D9%A3", "'limit'"),  # an Arabic-Indic digit is no page size
    ("q=anna&cursor=", "'cursor'"),
    ("q=anna&cursor=not-a-cursor!", "'cursor'"),
    ("q=anna&cursor=" + _cursor(["2026-03-01T12:00:00+00:00"]), "'cursor'"),
    ("q=anna&cursor=" + _cursor(["2026-03-01T12:00:00", "abc"]), "'cursor'"),  # no time zone
    ("q=anna&cursor=" + _cursor(["yesterday", "abc"]), "'cursor'"),
    ("q=anna&cursor=" + _cursor([1, 2]), "'cursor'"),
    ("q=anna&cursor=" + _cursor({"a": 1}), "'cursor'"),
    ("q=anna&cursor=" + "A" * 201, "'cursor'"),
])
async def test_bad_search_input_is_a_clear_400_and_changes_nothing(
    aiohttp_client: Any, app_client: Client, query: str, complaint: str  # noqa: F811
) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    before = await snapshot(app_client)
    status, body = await admin.call("GET", f"/console/api/contacts?{query}")
    assert status == 400 and complaint in body["error"], (query, body)
    assert await snapshot(app_client) == before


async def test_search_needs_a_login(app_client: Client) -> None:  # noqa: F811
    response = await app_client.get("/console/api/contacts?q=anna")
    assert response.status == 401


async def test_a_long_history_is_read_by_pages(
    aiohttp_client: Any, app_client: Client  # noqa: F811
) -> None:
    regular = await add_contact(app_client, T0, name="Regular Customer")
    chats = await add_conversations(app_client, regular, 250)
    newest_first = list(reversed(chats))
    bea = await plain_agent(aiohttp_client, app_client)

    status, page = await bea.call("GET", f"/console/api/contacts/{regular}")
    assert status == 200 and page["conversation_count"] == 250
    assert [c["id"] for c in page["conversations"]] == newest_first[:20]  # not all 250
    seen = [c["id"] for c in page["conversations"]]
    cursor, sizes = page["conversations_next"], []
    while cursor:
        status, more = await bea.call(
            "GET", f"/console/api/contacts/{regular}/conversations?limit=100&cursor={cursor}")
        assert status == 200, more
        sizes.append(len(more["conversations"]))
        seen += [c["id"] for c in more["conversations"]]
        cursor = more["next_cursor"]
    assert sizes == [100, 100, 30] and seen == newest_first

    status, first = await bea.call("GET", f"/console/api/contacts/{regular}/conversations")
    assert [c["id"] for c in first["conversations"]] == newest_first[:20]
    for query in ("limit=0", "limit=101", "cursor=zzz", "cursor=" + _cursor([1])):
        status, body = await bea.call("GET", f"/console/api/contacts/{regular}/conversations?{query}")
        assert status == 400 and "error" in body, query
    status, _ = await bea.call("GET", "/console/api/contacts/no-such-contact/conversations")
    assert status == 404


async def test_the_migration_fills_the_search_column_of_existing_contacts(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine, "0007")
        async with engine.begin() as connection:
            await connection.exec_driver_sql(
                "INSERT INTO contacts (id, name, email, phone, created_at, tags) VALUES "
                "('c1', 'ОЛЕНА Шевченко', 'Olena@Example.com', NULL, '2026-01-01 00:00:00', "
                "'[\"vip\"]'), ('c2', NULL, NULL, NULL, '2026-01-01 00:00:00', '[]')")
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            rows = dict((await connection.execute(select(Contact.id, Contact.search_text))).all())
        assert rows == {"c1": "олена шевченко\nolena@example.com\nvip", "c2": ""}
    finally:
        await engine.dispose()
