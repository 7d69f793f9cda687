"""A known event history for the report tests, with its answers computed by hand.

Store time zone Europe/Berlin, open mon-fri 08:00-20:00. Berlin moves its clocks forward
on Sunday 2026-03-29 at 02:00 (UTC+1 -> UTC+2), inside the reported range 28-30 March.

  A  widget/en  Sat 28 11:00 local  assistant only (answered in 2 s); kb answered, helped
  B  whatsapp/de Mon 30 09:00 CEST  handed off, claimed after 60 s by ana, replied 90 s after
                                    the handoff, resolved (handling 600 s), rated 5
  C  widget/en  Sat 28 23:30 local  handed off at night, never claimed, no agent reply
                                    (spans midnight); kb abstained "Do you ship to Mars?"
  D  widget/en  Mon 30 01:30 CEST   (Sun 29 23:30 UTC: counts on the 30th) handed off at night
  E  api/en     Mon 30 10:00 CEST   claimed after 300 s by bob, first reply 360 s (breach),
                                    resolved, reopened by the customer, handed off again
  G  telegram/he Sat 28 00:30 CET   (Fri 27 23:30 UTC) assistant only; NPS 9
  F, H          just outside the range on either side (local midnight is the boundary)
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.business_hours import BusinessHours
from handoff.conversations.models import (Contact, Conversation, ConversationEvent, Message,
                                          new_id)

HOURS = BusinessHours.parse("mon-fri 08:00-20:00", "Europe/Berlin")
ANA, BOB = "a" * 32, "b" * 32
FIRST, LAST = "2026-03-28", "2026-03-30"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


class History:
    """Writes conversations with explicit times, as the service would have stored them."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def conversation(self, key: str, channel: str, language: str, at: str,
                           skills: list[str] | None = None) -> "Chat":
        contact = Contact(id=new_id())
        conversation = Conversation(id=(key * 32)[:32].lower(), contact_id=contact.id,
                                    channel=channel, language=language, token_hash="x" * 64,
                                    required_skills=skills or [],
                                    created_at=utc(at))
        self.session.add(contact)
        await self.session.flush()
        self.session.add(conversation)
        await self.session.flush()
        chat = Chat(self, conversation)
        chat.event("conversation_created", at, channel=channel, language=language)
        return chat


class Chat:
    def __init__(self, history: History, conversation: Conversation) -> None:
        self.history, self.conversation = history, conversation
        self.last_customer: Message | None = None

    def event(self, kind: str, at: str, **data: Any) -> "Chat":
        self.history.session.add(ConversationEvent(conversation_id=self.conversation.id,
                                                   type=kind, data=data, created_at=utc(at)))
        return self

    def message(self, author: str, at: str, text: str = "hi", private: bool = False) -> "Chat":
        kind = {"customer": "incoming", "system": "activity"}.get(author, "outgoing")
        message = Message(conversation_id=self.conversation.id, message_type=kind,
                          author_type=author, channel=self.conversation.channel, text=text,
                          private=private, created_at=utc(at))
        self.history.session.add(message)
        return self

    async def customer(self, at: str, text: str = "hello") -> "Chat":
        message = Message(conversation_id=self.conversation.id, message_type="incoming",
                          author_type="customer", channel=self.conversation.channel, text=text,
                          created_at=utc(at), routed_at=utc(at))
        self.history.session.add(message)
        await self.history.session.flush()
        self.last_customer = message
        return self

    def assistant(self, at: str) -> "Chat":
        assert self.last_customer is not None
        self.history.session.add(Message(
            conversation_id=self.conversation.id, message_type="outgoing", author_type="assistant",
            channel=self.conversation.channel, text="answer", reply_to_id=self.last_customer.id,
            created_at=utc(at)))
        return self


async def write_known_history(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        h = History(session)
        a = await (await h.conversation("A", "widget", "en", "2026-03-28T10:00:00")).customer("2026-03-28T10:00:00")
        a.assistant("2026-03-28T10:00:02")
        a.event("message_understood", "2026-03-28T10:00:02", intent="order_status", confidence=0.9)
        a.event("kb_answered", "2026-03-28T10:00:02", article="shipping-times", score=0.8)
        a.event("kb_feedback", "2026-03-28T10:01:00", article="shipping-times", helped=True)
        # Rasa validated twice as the form started: one start (same message)
        a.event("flow_started", "2026-03-28T10:02:00", flow="change_address", message_id=7)
        a.event("flow_started", "2026-03-28T10:02:00", flow="change_address", message_id=7)
        a.event("flow_completed", "2026-03-28T10:03:00", flow="change_address", message_id=8)

        b = await (await h.conversation("B", "whatsapp", "de", "2026-03-30T07:00:00",
                                         ["language:de"])).customer("2026-03-30T07:00:00")
        b.assistant("2026-03-30T07:00:04")
        b.event("message_understood", "2026-03-30T07:00:04", intent="complaint", confidence=0.9)
        b.event("handed_off", "2026-03-30T07:00:05", reason="customer_request")
        b.event("claimed", "2026-03-30T07:01:05", agent_id=ANA)
        b.message("agent", "2026-03-30T07:01:20", "a note", private=True)  # notes are no reply
        b.message("agent", "2026-03-30T07:01:35", "Hello, Ana here")
        b.event("resolved", "2026-03-30T07:11:05", code="solved", agent_id=ANA)
        b.event("csat_submitted", "2026-03-30T07:12:00", score=5, comment=None)

        c = await (await h.conversation("C", "widget", "en", "2026-03-28T22:30:00")).customer("2026-03-28T22:30:00")
        c.event("kb_abstained", "2026-03-28T22:30:02", question="Do you ship to Mars?")
        c.event("handed_off", "2026-03-28T22:30:10", reason="low_confidence")
        c.event("flow_started", "2026-03-28T22:31:00", flow="refund")
        c.event("flow_abandoned", "2026-03-28T22:35:00", flow="refund")

        d = await (await h.conversation("D", "widget", "en", "2026-03-29T23:30:00")).customer("2026-03-29T23:30:00")
        d.assistant("2026-03-29T23:30:03")
        d.event("handed_off", "2026-03-29T23:30:05", reason="customer_request")

        e = await (await h.conversation("E", "api", "en", "2026-03-30T08:00:00",
                                         ["topic:billing", "language:de"])).customer("2026-03-30T08:00:00")
        e.event("handed_off", "2026-03-30T08:00:10", reason="customer_request")
        e.event("claimed", "2026-03-30T08:05:10", agent_id=BOB)
        e.message("agent", "2026-03-30T08:06:10", "Bob here")
        e.event("resolved", "2026-03-30T08:20:10", code="solved", agent_id=BOB)
        e.event("returned_to_bot", "2026-03-30T08:30:00", reason="customer_wrote_after_close",
                agent_id=None)
        e.event("kb_abstained", "2026-03-30T08:30:30", question="do you ship to MARS??")
        e.event("handed_off", "2026-03-30T08:31:00", reason="frustration")

        g = await (await h.conversation("G", "telegram", "he", "2026-03-27T23:30:00")).customer("2026-03-27T23:30:00")
        g.event("nps_submitted", "2026-03-27T23:40:00", score=9)

        # outside: 00:00 CEST on the 31st, and 23:59 CET on the 27th
        f = await (await h.conversation("F", "widget", "en", "2026-03-30T22:00:00")).customer("2026-03-30T22:00:00")
        f.event("handed_off", "2026-03-30T22:00:05", reason="customer_request")
        await (await h.conversation("H", "widget", "en", "2026-03-27T22:59:00")).customer("2026-03-27T22:59:00")
