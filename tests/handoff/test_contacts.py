"""One customer record across channels, and the contact's privacy rights, against the real app
and database (SQLite and PostgreSQL): linking only on proof, the contact page and its edits,
export, erasure, the retention purge and the audit trail."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update

from handoff.app import create_app
from handoff.appkeys import AGENTS, ENGINE, MESSAGING, ROUTER, SERVICE
from handoff.channels.messaging import ChannelIdentity, Delivery, InboundMessage
from handoff.config import ConfigError, Settings
from handoff.contacts.api import PRIVACY, purge_periodically
from handoff.contacts.models import AuditEntry, ContactIdentity
from handoff.conversations.models import Base, ConversationEvent, Message, utcnow
from handoff.db import session_factory
from handoff.reports.catch_up import catch_up_projection
from tests.conftest import FakeRasa
from tests.handoff.test_console import ADMIN, Agent, Client, log_in, settings_for
from tests.handoff.test_http_api import send, start

ANNA, NOA = "anna.kowalski@example.com", "noa.levi@example.co.il"
CARD = "4242 4242 4242 4242"
WHATSAPP_NUMBER = "972541234567"


def record(event_type: str, **data: Any) -> dict[str, Any]:
    return {"custom": {"record": {"type": event_type, "data": data}}}


def scripted(text_in: str) -> list[dict[str, Any]]:
    """The assistant's replies: proofs and records as the order flows send them."""
    replies: list[dict[str, Any]] = [{"text": f"echo: {text_in}"}]
    if text_in.startswith("verify "):
        who = text_in.split(" ", 1)[1]
        proof = {"phone": who} if who.startswith("+") else {"email": who}
        replies += [record("identity_verified", order="A10001", **proof),
                    record("order_viewed", order="A10001")]
    if text_in == "billing problem":  # a record carrying a card number an action forgot to mask
        replies.append(record("billing_issue_reported", order="A10003", note=f"card {CARD} charged twice"))
    if text_in == "invoice please":
        replies.append(record("invoice_link_sent", order="A10003", invoice="INV-2026-0003"))
    if "human" in text_in:
        replies.append({"custom": {"handoff": {"reason": "customer_request"}}})
    return replies


@pytest.fixture
async def app_client(aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa) -> Client:
    fake_rasa.reply = scripted
    return await aiohttp_client(create_app(settings_for(database_url, fake_rasa.url)))


async def api_chat(client: Client, *texts: str) -> str:
    cid, auth = await start(client)
    for line in texts:
        assert (await send(client, cid, auth, text=line)).status == 200
    return cid


async def whatsapp_chat(client: Client, *texts: str, number: str = WHATSAPP_NUMBER) -> str:
    hub, router = client.app[MESSAGING], client.app[ROUTER]
    message = None
    for i, line in enumerate(texts):
        message = await hub.accept("whatsapp", InboundMessage(
            external_id=number, source_id=f"wamid.{number}.{i}.{len(line)}", text=line,
            display_name="Noa"))
        assert message is not None
        await router.route_stored(message)  # waits for (or does) the background routing
        await asyncio.gather(*hub._routing)  # and lets the hub's own routing task finish
    assert message is not None
    return message.conversation_id


async def contact_of(client: Client, cid: str) -> str:
    return (await client.app[SERVICE].get(cid)).contact_id


async def snapshot(client: Client) -> dict[str, list[Any]]:
    """Every row of every table: what a read must leave exactly as it was. The reports'
    projection is caught up first: the background catch-up of a chat just opened landing
    between two snapshots made these tests fail now and then on a busy machine."""
    await catch_up_projection(session_factory(client.app[ENGINE]))
    rows: dict[str, list[Any]] = {}
    async with client.app[ENGINE].connect() as connection:
        for table in Base.metadata.sorted_tables:
            result = await connection.execute(select(table))
            rows[table.name] = sorted((tuple(str(v) for v in row) for row in result), key=str)
    return rows


async def manager(aiohttp_client: Any, client: Client) -> Agent:
    await client.app[AGENTS].create("mia@shop.example", "Mia", "a-long-password-1", role="manager")
    return await log_in(aiohttp_client, client, "mia@shop.example", "a-long-password-1")


async def plain_agent(aiohttp_client: Any, client: Client) -> Agent:
    await client.app[AGENTS].create("bea@shop.example", "Bea", "a-long-password-1")
    return await log_in(aiohttp_client, client, "bea@shop.example", "a-long-password-1")


# --- one record across channels ------------------------------------------------------------


async def test_a_proof_on_two_channels_makes_one_contact_with_everything(
    aiohttp_client: Any, app_client: Client
) -> None:
    web_chat = await api_chat(app_client, "hello", f"verify {ANNA.upper()}", "invoice please")
    phone_chat = await whatsapp_chat(app_client, "hi from my phone")
    phone_contact = await contact_of(app_client, phone_chat)
    assert phone_contact != await contact_of(app_client, web_chat)  # nothing proved yet
    await whatsapp_chat(app_client, f"verify {ANNA}", "human please")

    contact_id = await contact_of(app_client, web_chat)
    assert await contact_of(app_client, phone_chat) == contact_id
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    status, page = await admin.call("GET", f"/console/api/contacts/{contact_id}")
    assert status == 200
    assert page["contact"]["email"] == ANNA
    assert {c["channel"] for c in page["conversations"]} == {"api", "whatsapp"}
    assert {c["id"] for c in page["conversations"]} == {web_chat, phone_chat}
    identities = {(i["channel"], i["external_id"]): i["verified_at"] for i in page["identities"]}
    assert identities[("email", ANNA)] is not None
    assert ("whatsapp", WHATSAPP_NUMBER) in identities and ("api", web_chat) in identities
    assert [(o["type"], o["data"]["order"]) for o in page["orders"]] == [
        ("order_viewed", "A10001"), ("invoice_link_sent", "A10003"), ("order_viewed", "A10001")]
    assert [h["reason"] for h in (x["data"] for x in page["handoffs"])] == ["customer_request"]
    assert page["handoffs"][0]["conversation_id"] == phone_chat
    # An agent takes the WhatsApp chat, closes it, and the customer's rating shows up too.
    assert (await admin.call("POST", f"/console/api/conversations/{phone_chat}/claim"))[0] == 200
    status, _ = await admin.call("POST", f"/console/api/conversations/{phone_chat}/resolve",
                                 {"resolution_code": "answered"})
    assert status == 200
    await whatsapp_chat(app_client, "5")
    page = (await admin.call("GET", f"/console/api/contacts/{contact_id}"))[1]
    assert [(s["conversation_id"], s["data"]["score"]) for s in page["surveys"]] == [(phone_chat, 5)]
    # The WhatsApp chat's own record was folded in, not left behind half-empty.
    status, body = await admin.call("GET", f"/console/api/contacts/{phone_contact}")
    assert status == 404 and body["error"] == "contact not found"
    events = [e.type for e in await app_client.app[SERVICE].events(phone_chat)]
    assert "contact_linked" in events


async def test_a_proof_by_phone_links_too(app_client: Client) -> None:
    first = await api_chat(app_client, "verify +14155550101")
    second = await whatsapp_chat(app_client, "verify +1 415 555 0101")
    assert await contact_of(app_client, first) == await contact_of(app_client, second)


async def test_claims_and_malformed_proofs_never_link(
    app_client: Client, fake_rasa: FakeRasa
) -> None:
    # Waiting customers leave the same email; the service keeps it but links nothing.
    first = await api_chat(app_client, "human please", f"write me at {ANNA}")
    second = await api_chat(app_client, "human please", f"write me at {ANNA}")
    assert (await app_client.app[SERVICE].contact(await contact_of(app_client, first))).email == ANNA
    assert await contact_of(app_client, first) != await contact_of(app_client, second)
    # Back with the assistant, a proof of another email shows the proven one instead of the
    # typed one; a later, different proof does not replace the first.
    await app_client.app[SERVICE].return_to_bot(first, None, "test")
    await send_more(app_client, first, f"verify {NOA}")
    assert (await app_client.app[SERVICE].contact(await contact_of(app_client, first))).email == NOA
    await send_more(app_client, first, "verify +14155550101")
    await send_more(app_client, first, "verify other@example.com")
    contact = await app_client.app[SERVICE].contact(await contact_of(app_client, first))
    assert (contact.email, contact.phone) == (NOA, "+14155550101")
    # A proof without a usable email or phone is stored as said, but links nothing.
    fake_rasa.reply = lambda text_in: [{"text": "ok"}, record("identity_verified", email="nobody")]
    third = await api_chat(app_client, "x")
    fourth = await api_chat(app_client, "x")
    assert await contact_of(app_client, third) != await contact_of(app_client, fourth)
    async with session_factory(app_client.app[ENGINE])() as session:
        assert await session.scalar(select(func.count()).select_from(ContactIdentity).where(
            ContactIdentity.contact_id.in_([await contact_of(app_client, c) for c in (third, fourth)]))) == 0


async def test_two_proven_records_are_never_merged_by_the_service(app_client: Client) -> None:
    anna_chat = await api_chat(app_client, f"verify {ANNA}")
    noa_chat = await api_chat(app_client, f"verify {NOA}")
    await send_more(app_client, noa_chat, f"verify {ANNA}")  # one person, two people's orders?
    assert await contact_of(app_client, noa_chat) != await contact_of(app_client, anna_chat)
    events = [e.type for e in await app_client.app[SERVICE].events(noa_chat)]
    assert "contact_link_conflict" in events
    # A third chat that proved nothing else joins Anna's record.
    third = await api_chat(app_client, "hello", f"verify {ANNA}")
    assert await contact_of(app_client, third) == await contact_of(app_client, anna_chat)


async def test_two_chats_proving_the_same_email_at_once_end_in_one_contact(
    app_client: Client
) -> None:
    chats = [await start(app_client) for _ in range(4)]
    answers = await asyncio.gather(*(send(app_client, cid, auth, text=f"verify {ANNA}")
                                     for cid, auth in chats))
    assert [a.status for a in answers] == [200] * 4  # no customer loses a reply to the race
    assert len({await contact_of(app_client, cid) for cid, _ in chats}) == 1


async def send_more(client: Client, cid: str, line: str) -> None:
    """Another message in an existing chat, through the router (tokens are not kept here)."""
    await client.app[ROUTER].handle_incoming(cid, line, None, "api")


# --- the contact page: reads and edits -----------------------------------------------------


async def test_agents_edit_name_notes_and_tags(aiohttp_client: Any, app_client: Client) -> None:
    cid = await api_chat(app_client, "hello")
    contact_id = await contact_of(app_client, cid)
    agent = await plain_agent(aiohttp_client, app_client)
    status, body = await agent.call("PATCH", f"/console/api/contacts/{contact_id}", {
        "name": "  Anna K. ", "notes": "Prefers email.\nVIP since 2024.", "tags": ["vip", "vip", "b2b"]})
    assert status == 200, body
    assert body["contact"] | {"created_at": None} == {
        "id": contact_id, "name": "Anna K.", "email": None, "phone": None,
        "notes": "Prefers email.\nVIP since 2024.", "tags": ["vip", "b2b"], "created_at": None,
        "erased_at": None}
    status, page = await agent.call("GET", f"/console/api/contacts/{contact_id}")
    assert page["contact"]["tags"] == ["vip", "b2b"] and page["contact"]["name"] == "Anna K."
    status, body = await agent.call("PATCH", f"/console/api/contacts/{contact_id}", {"notes": None})
    assert status == 200 and body["contact"]["notes"] is None and body["contact"]["name"] == "Anna K."


@pytest.mark.parametrize("edit, says", [
    ({"name": "x" * 201}, "at most 200"),
    ({"notes": "n" * 4001}, "at most 4000"),
    ({"name": 42}, "must be a string"),
    ({"tags": "vip"}, "list of strings"),
    ({"tags": [1]}, "list of strings"),
    ({"tags": ["VIP"]}, "bad tag"),
    ({"tags": ["has space"]}, "bad tag"),
    ({"tags": ["a" * 33]}, "bad tag"),
    ({"tags": [f"t{i}" for i in range(21)]}, "at most 20"),
    ({"email": "x@example.com"}, "unknown field"),
    ({}, "at least one"),
    ({"name": "ok", "notes": "bell\x07"}, "control characters"),
])
async def test_bad_edits_are_400_and_change_nothing(
    aiohttp_client: Any, app_client: Client, edit: dict[str, Any], says: str
) -> None:
    contact_id = await contact_of(app_client, await api_chat(app_client, "hello"))
    agent = await plain_agent(aiohttp_client, app_client)
    before = await snapshot(app_client)
    status, body = await agent.call("PATCH", f"/console/api/contacts/{contact_id}", edit)
    assert status == 400 and says in body["error"]
    assert await snapshot(app_client) == before


async def test_not_json_and_unknown_contacts(aiohttp_client: Any, app_client: Client) -> None:
    contact_id = await contact_of(app_client, await api_chat(app_client, "hello"))
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    before = await snapshot(app_client)
    response = await admin.client.patch(f"/console/api/contacts/{contact_id}", data=b"[1,",
                                        headers={"X-CSRF-Token": admin.csrf})
    assert response.status == 400 and "not valid JSON" in (await response.json())["error"]
    for method, path, body in [
        ("GET", "/console/api/contacts/nope", None),
        ("GET", "/console/api/contacts/" + "x" * 5000, None),
        ("PATCH", "/console/api/contacts/nope", {"name": "A"}),
        ("POST", "/console/api/contacts/nope/export", None),
        ("POST", "/console/api/contacts/nope/erase", {"confirm": "nope"}),
    ]:
        status, answer = await admin.call(method, path, body)
        assert (status, answer) == (404, {"error": "contact not found"}), (method, path)
    assert await snapshot(app_client) == before


async def test_reads_change_nothing(aiohttp_client: Any, app_client: Client) -> None:
    cid = await api_chat(app_client, "hello", f"verify {ANNA}", "human please")
    contact_id = await contact_of(app_client, cid)
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    before = await snapshot(app_client)
    assert (await admin.call("GET", f"/console/api/contacts/{contact_id}"))[0] == 200
    assert (await admin.call("GET", f"/console/api/audit?contact_id={contact_id}"))[0] == 200
    assert (await admin.client.get(f"/console/contacts/{contact_id}")).status == 200
    assert await snapshot(app_client) == before


async def test_contact_api_needs_a_session_csrf_and_for_privacy_a_manager(
    aiohttp_client: Any, app_client: Client
) -> None:
    contact_id = await contact_of(app_client, await api_chat(app_client, "hello"))
    path = f"/console/api/contacts/{contact_id}"
    assert (await app_client.get(path)).status == 401
    agent = await plain_agent(aiohttp_client, app_client)
    response = await agent.client.patch(path, json={"name": "A"})  # no CSRF header
    assert response.status == 403
    for method, sub, body in [("POST", "/export", None), ("POST", "/erase", {"confirm": contact_id})]:
        status, answer = await agent.call(method, path + sub, body)
        assert status == 403 and "managers and admins" in answer["error"]
    assert (await agent.call("GET", "/console/api/audit"))[0] == 403
    boss = await manager(aiohttp_client, app_client)
    assert (await boss.call("POST", path + "/export"))[0] == 200
    response = await boss.client.post(path + "/export")  # no CSRF header
    assert response.status == 403


# --- privacy -------------------------------------------------------------------------------


async def test_an_export_holds_everything_and_never_a_card_number(
    aiohttp_client: Any, app_client: Client
) -> None:
    cid = await api_chat(app_client, f"verify {ANNA}", f"my card is {CARD}, it was charged twice",
                         "billing problem", "human please")
    phone_chat = await whatsapp_chat(app_client, f"verify {ANNA}", f"card {CARD.replace(' ', '-')}")
    contact_id = await contact_of(app_client, cid)
    boss = await manager(aiohttp_client, app_client)
    response = await boss.client.post(f"/console/api/contacts/{contact_id}/export",
                                      headers={"X-CSRF-Token": boss.csrf})
    assert response.status == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="contact-{contact_id}.json"'
    raw = await response.text()
    export = json.loads(raw)
    digits = CARD.replace(" ", "")
    assert digits not in raw.replace(" ", "").replace("-", "")
    assert export["contact"]["email"] == ANNA
    assert {c["conversation"]["id"] for c in export["conversations"]} == {cid, phone_chat}
    texts = [m["text"] for c in export["conversations"] for m in c["messages"]]
    assert "my card is •••• 4242, it was charged twice" in texts and "card •••• 4242" in texts
    assert ("whatsapp", WHATSAPP_NUMBER) in {(i["channel"], i["external_id"]) for i in export["identities"]}
    notes = [e["data"].get("note") for c in export["conversations"] for e in c["events"]
             if e["type"] == "billing_issue_reported"]
    assert notes == ["card •••• 4242 charged twice"]  # masked before it was stored
    async with session_factory(app_client.app[ENGINE])() as session:
        stored = await session.scalar(select(ConversationEvent.data).where(
            ConversationEvent.type == "billing_issue_reported"))
    assert stored is not None and stored["note"] == "card •••• 4242 charged twice"
    # A row stored before masking existed is masked on the way out, on the page and in the export.
    async with session_factory(app_client.app[ENGINE]).begin() as session:
        session.add(ConversationEvent(conversation_id=cid, type="order_viewed",
                                      data={"order": "A10001", "note": f"old {CARD}"}))
    status, page = await boss.call("GET", f"/console/api/contacts/{contact_id}")
    assert "old •••• 4242" in [o["data"].get("note") for o in page["orders"]]
    assert digits not in json.dumps(page).replace(" ", "")
    status, again = await boss.call("POST", f"/console/api/contacts/{contact_id}/export")
    assert digits not in json.dumps(again).replace(" ", "")
    status, audit = await boss.call("GET", f"/console/api/audit?contact_id={contact_id}")
    assert status == 200
    assert [(e["action"], e["actor_id"]) for e in audit["entries"]] == [("contact_exported", boss.me["id"])] * 2


async def test_erasure_anonymises_and_the_conversations_still_count(
    aiohttp_client: Any, app_client: Client
) -> None:
    cid = await api_chat(app_client, f"verify {ANNA}", "I live at 1 Main St", "human please")
    phone_chat = await whatsapp_chat(app_client, f"verify {ANNA}")
    other = await api_chat(app_client, "someone else entirely")
    contact_id = await contact_of(app_client, cid)
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    await admin.call("PATCH", f"/console/api/contacts/{contact_id}", {"notes": "Anna, VIP", "tags": ["vip"]})

    async def counts() -> tuple[int, int, int]:
        async with session_factory(app_client.app[ENGINE])() as session:
            return (await session.scalar(select(func.count()).select_from(Message).where(
                        Message.conversation_id.in_([cid, phone_chat]))) or 0,
                    await session.scalar(select(func.count()).select_from(ConversationEvent).where(
                        ConversationEvent.conversation_id.in_([cid, phone_chat]))) or 0,
                    await session.scalar(select(func.count()).select_from(ConversationEvent).where(
                        ConversationEvent.type == "handed_off")) or 0)

    async with session_factory(app_client.app[ENGINE]).begin() as session:  # a reply not yet sent
        reply_id = await session.scalar(select(Message.id).where(
            Message.conversation_id == phone_chat, Message.author_type == "assistant"))
        delivery = await session.scalar(select(Delivery).where(Delivery.message_id == reply_id))
        assert delivery is not None  # put in the outbox with the reply itself
        delivery.status = "pending"
    before = await counts()
    status, body = await admin.call("POST", f"/console/api/contacts/{contact_id}/erase", {"confirm": "yes"})
    assert status == 400 and "confirm" in body["error"]  # no erasure by accident
    status, body = await admin.call("POST", f"/console/api/contacts/{contact_id}/erase",
                                    {"confirm": contact_id})
    assert status == 200 and body["conversations"] == 2 and body["identities"] >= 3

    assert await counts() == before  # every message and event row is still there to count
    status, page = await admin.call("GET", f"/console/api/contacts/{contact_id}")
    assert page["contact"] | {"created_at": None, "erased_at": None} == {
        "id": contact_id, "name": None, "email": None, "phone": None, "notes": None, "tags": [],
        "created_at": None, "erased_at": None}
    assert page["contact"]["erased_at"] and page["identities"] == []
    assert {c["id"] for c in page["conversations"]} == {cid, phone_chat}
    async with session_factory(app_client.app[ENGINE])() as session:
        erased = list(await session.scalars(select(Message).where(
            Message.conversation_id.in_([cid, phone_chat]))))
        assert all(m.text is None and m.payload is None and m.source_id is None for m in erased)
        data = [e.data for e in await session.scalars(select(ConversationEvent).where(
            ConversationEvent.conversation_id.in_([cid, phone_chat])))]
        assert ANNA not in json.dumps(data) and "1 Main St" not in json.dumps(data)
        assert await session.scalar(select(func.count()).select_from(ChannelIdentity)) == 0
        assert await session.scalar(select(Delivery.status)) == "skipped"  # never sent now
        kept = await session.scalar(select(Message.text).where(Message.conversation_id == other,
                                                               Message.author_type == "customer"))
        assert kept == "someone else entirely"  # nobody else's transcript is touched
    status, audit = await admin.call("GET", f"/console/api/audit?contact_id={contact_id}")
    assert [e["action"] for e in audit["entries"]] == ["contact_erased", "contact_edited"]
    assert audit["entries"][0]["details"]["conversations"] == 2
    # the edit is recorded by the fields it changed, never their values
    assert audit["entries"][1]["details"] == {"fields": ["notes", "tags"]}
    assert ANNA not in json.dumps(audit) and "VIP" not in json.dumps(audit)

    before_again = await snapshot(app_client)
    status, body = await admin.call("POST", f"/console/api/contacts/{contact_id}/erase", {"confirm": contact_id})
    assert status == 409
    status, body = await admin.call("PATCH", f"/console/api/contacts/{contact_id}", {"name": "Anna"})
    assert status == 409
    assert await snapshot(app_client) == before_again
    # The customer proves the same email again later: a fresh record, never the erased one.
    again = await api_chat(app_client, f"verify {ANNA}")
    assert await contact_of(app_client, again) != contact_id


async def test_retention_purges_old_transcripts_once_and_audits_it(app_client: Client) -> None:
    old = await api_chat(app_client, f"my card {CARD} please", f"verify {ANNA}")
    waiting = await api_chat(app_client, "old but a person is on it", "human please")
    fresh = await api_chat(app_client, "new question")
    sessions = session_factory(app_client.app[ENGINE])
    now = utcnow()
    async with sessions.begin() as session:
        for cid in (old, waiting):
            await session.execute(update(Message).where(Message.conversation_id == cid)
                                  .values(created_at=now - timedelta(days=40)))
            await session.execute(update(ConversationEvent).where(ConversationEvent.conversation_id == cid)
                                  .values(created_at=now - timedelta(days=40)))
    privacy = app_client.app[PRIVACY]
    assert privacy.retention_days == 0 and await privacy.purge_expired(now) == 0  # kept forever
    privacy.retention_days = 30
    purged = await privacy.purge_expired(now)
    async with sessions() as session:
        by_chat = {cid: [m.text for m in await session.scalars(
            select(Message).where(Message.conversation_id == cid).order_by(Message.id))]
            for cid in (old, waiting, fresh)}
        old_events = [e.data for e in await session.scalars(
            select(ConversationEvent).where(ConversationEvent.conversation_id == old))]
        entries = list(await session.scalars(select(AuditEntry)))
    assert purged == len(by_chat[old]) and set(by_chat[old]) == {None}
    assert "old but a person is on it" in by_chat[waiting]  # people still need it
    assert "new question" in by_chat[fresh]
    assert ANNA not in json.dumps(old_events)
    assert [(e.action, e.actor_id, e.details["messages"]) for e in entries] == [
        ("transcripts_purged", None, purged)]
    assert await privacy.purge_expired(now) == 0  # idempotent: nothing left, no new entry
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_retention_days_are_validated() -> None:
    base = {"SUPPORT_RASA_TOKEN": "t" * 16}
    assert Settings.from_env(base).retention_days == 0
    assert Settings.from_env({**base, "SUPPORT_RETENTION_DAYS": "90"}).retention_days == 90
    for bad in ("-1", "ninety", "1.5", "99999999"):
        with pytest.raises(ConfigError, match="SUPPORT_RETENTION_DAYS"):
            Settings.from_env({**base, "SUPPORT_RETENTION_DAYS": bad})


async def test_audit_limits_are_checked(aiohttp_client: Any, app_client: Client) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    for query in ("limit=0", "limit=501", "limit=x", "contact_id=" + "x" * 65):
        status, body = await admin.call("GET", f"/console/api/audit?{query}")
        assert status == 400, query


async def test_the_periodic_purge_survives_a_failure() -> None:
    class FlakyPrivacy:
        retention_days = 30

        def __init__(self) -> None:
            self.calls = 0
            self.twice = asyncio.Event()

        async def purge_expired(self, now: Any) -> int:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("database went away")
            self.twice.set()
            return 1

    privacy = FlakyPrivacy()
    task = asyncio.create_task(purge_periodically(privacy, every_seconds=0))  # type: ignore[arg-type]
    async with asyncio.timeout(20):  # a bound on a broken loop, not a timing claim
        await privacy.twice.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert privacy.calls >= 2


async def test_the_service_purges_on_its_own_when_retention_is_set(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa
) -> None:
    fake_rasa.reply = scripted
    settings = settings_for(database_url, fake_rasa.url)
    first = await aiohttp_client(create_app(settings))
    cid = await api_chat(first, "a question from long ago")
    async with session_factory(first.app[ENGINE]).begin() as session:
        await session.execute(update(Message).values(created_at=utcnow() - timedelta(days=40)))
    await first.close()

    second = await aiohttp_client(create_app(Settings(**{**settings.__dict__, "retention_days": 30})))
    sessions = session_factory(second.app[ENGINE])
    async with asyncio.timeout(20):  # a bound on a job that never runs, not a timing claim
        while True:
            async with sessions() as session:
                texts = list(await session.scalars(select(Message.text).where(Message.conversation_id == cid)))
                if texts and set(texts) == {None}:
                    break
            await asyncio.sleep(0.05)
    async with sessions() as session:
        assert [e.action for e in await session.scalars(select(AuditEntry))] == ["transcripts_purged"]
