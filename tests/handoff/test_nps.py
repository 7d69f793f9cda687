"""The optional 0-10 question: off by default, asked after a rating at most once per contact
per N days, answered by a number 0-10; anything else goes to the assistant as usual."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from sqlalchemy import select

from handoff.app import create_app
from handoff.appkeys import QUEUE, SERVICE
from handoff.conversations.models import Conversation, ConversationEvent, Message
from handoff.conversations.nps import NPS_TEXT, NpsSurvey, nps_answer
from tests.conftest import FakeRasa
from tests.handoff.test_console import ADMIN, Client, escalated, log_in, settings_for
from tests.handoff.test_http_api import send


async def make(aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa, days: int) -> Client:
    fake_rasa.reply = lambda text: (
        [{"text": "Connecting you."}, {"custom": {"handoff": {"reason": "customer_request"}}}]
        if "human" in text else [{"text": f"echo: {text}"}])
    settings = dataclasses.replace(settings_for(database_url, fake_rasa.url), nps_every_days=days)
    return await aiohttp_client(create_app(settings))


async def rated(aiohttp_client: Any, client: Client) -> tuple[str, dict[str, str], dict[str, Any]]:
    """A conversation handed off, resolved by the admin and rated 4; returns the rating's answer."""
    admin = await log_in(aiohttp_client, client, *ADMIN)
    cid, auth = await escalated(client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    await admin.call("POST", f"/console/api/conversations/{cid}/resolve", {"resolution_code": "answered"})
    return cid, auth, await (await send(client, cid, auth, text="4")).json()


async def events(client: Client, cid: str, kind: str) -> list[dict[str, Any]]:
    async with client.app[QUEUE].sessions() as session:
        rows = await session.scalars(select(ConversationEvent).where(
            ConversationEvent.conversation_id == cid, ConversationEvent.type == kind))
        return [e.data or {} for e in rows]


def test_answers_are_numbers_from_0_to_10() -> None:
    assert [nps_answer(t) for t in ("0", " 10 ", "9/10", "7.", "11", "-1", "9 great", "")] == [
        0, 10, 9, 7, None, None, None, None]


async def test_off_by_default(aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa) -> None:
    client = await make(aiohttp_client, database_url, fake_rasa, days=0)
    _, _, answered = await rated(aiohttp_client, client)
    assert [r["text"] for r in answered["replies"]] == [
        "Thank you for your feedback! If you need anything else, just ask."]


async def test_asked_after_the_rating_and_a_number_answers_it(
        aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa) -> None:
    client = await make(aiohttp_client, database_url, fake_rasa, days=30)
    cid, auth, answered = await rated(aiohttp_client, client)
    question = answered["replies"][-1]
    assert question["text"] == NPS_TEXT and len(question["payload"]["buttons"]) == 11
    sent_to_rasa = len(fake_rasa.received)
    reply = await (await send(client, cid, auth, text="9")).json()
    assert reply["replies"][0]["text"].startswith("Thank you")
    assert len(fake_rasa.received) == sent_to_rasa  # the answer is not a question for the assistant
    assert [e["score"] for e in await events(client, cid, "nps_submitted")] == [9]
    after = await (await send(client, cid, auth, text="10")).json()  # asked once, answered once
    assert after["replies"][0]["text"] == "echo: 10"
    assert len(await events(client, cid, "nps_submitted")) == 1


async def test_anything_else_drops_the_question(aiohttp_client: Any, database_url: str,
                                               fake_rasa: FakeRasa) -> None:
    client = await make(aiohttp_client, database_url, fake_rasa, days=30)
    cid, auth, _ = await rated(aiohttp_client, client)
    reply = await (await send(client, cid, auth, text="where is my order")).json()
    assert reply["replies"][0]["text"] == "echo: where is my order"
    assert await events(client, cid, "nps_submitted") == []
    assert (await client.app[SERVICE].get(cid)).nps_pending is False


@pytest.mark.parametrize("days, asked_again", [(30, False), (0, False)])
async def test_once_per_contact_in_the_period(aiohttp_client: Any, database_url: str,
                                             fake_rasa: FakeRasa, days: int, asked_again: bool) -> None:
    client = await make(aiohttp_client, database_url, fake_rasa, days=30)
    sessions = client.app[QUEUE].sessions
    first, _ = await client.app[SERVICE].start("widget")
    second, _ = await client.app[SERVICE].start("widget")
    async with sessions.begin() as session:  # the same customer, back with a new chat
        found = await session.get(Conversation, second.id)
        assert found is not None
        found.contact_id = first.contact_id
        incoming = [Message(conversation_id=c.id, message_type="incoming", author_type="customer",
                            channel="widget", text="4") for c in (first, second)]
        session.add_all(incoming)
    survey = NpsSurvey(sessions, days)
    asked = await survey.ask_after_rating(first.id, incoming[0])
    assert len(asked) == (1 if days else 0)
    assert (len(await survey.ask_after_rating(second.id, incoming[1])) == 1) is asked_again
