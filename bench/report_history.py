"""A synthetic year of support for the reports benchmark: conversations, messages and events.

    fill(engine, conversations=100_000, messages=1_000_000, end=<datetime>)

Deterministic (seeded): about a third of conversations go to a person, most of those are
claimed, answered and resolved, some are rated, a few reopen; the knowledge base and the
forms record what they did as the actions do. Rows are written in bulk with SQLAlchemy Core.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.agents.models import Agent
from handoff.conversations.models import Contact, Conversation, ConversationEvent, Message

CHANNELS = [("widget", 60), ("whatsapp", 20), ("telegram", 10), ("api", 10)]
LANGUAGES = [("en", 70), ("de", 15), ("he", 10), ("fr", 5)]
INTENTS = ["order_status", "refund_request", "change_address", "payment_problem", "complaint",
           "shipping_times", "invoice", "greet"]
REASONS = [("customer_request", 50), ("low_confidence", 25), ("frustration", 10),
           ("assistant_unavailable", 5), ("topic:complaint", 10)]
QUESTIONS = ["Do you ship to Mars?", "can I pay with gold", "Where is the nearest shop?",
             "Do you sell gift cards", "what is your phone number", "can I pick up in store?"]
FLOWS = ["change_address", "refund_request", "payment_problem"]
CHUNK = 5_000


def _pick(rng: random.Random, weighted: list[tuple[str, int]]) -> str:
    return rng.choices([w[0] for w in weighted], [w[1] for w in weighted])[0]


class _Rows:
    """Collects rows per table with ids assigned here, so replies can point at messages."""

    def __init__(self) -> None:
        self.contacts: list[dict[str, Any]] = []
        self.conversations: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.message_id = 0
        self.event_id = 0

    def message(self, cid: str, channel: str, author: str, at: datetime,
                reply_to: int | None = None, private: bool = False) -> int:
        self.message_id += 1
        kind = {"customer": "incoming", "system": "activity"}.get(author, "outgoing")
        self.messages.append({"id": self.message_id, "conversation_id": cid, "message_type": kind,
                              "author_type": author, "author_id": None, "channel": channel,
                              "text": "synthetic", "payload": None, "source_id": None,
                              "reply_to_id": reply_to, "private": private, "created_at": at,
                              "routed_at": at if kind == "incoming" else None})
        return self.message_id

    def event(self, cid: str, kind: str, at: datetime, **data: Any) -> None:
        self.event_id += 1
        self.events.append({"id": self.event_id, "conversation_id": cid, "type": kind,
                            "data": data, "created_at": at})


def agents(count: int = 12) -> list[dict[str, Any]]:
    return [{"id": f"{i:032x}", "email": f"agent{i}@bench.example", "name": f"Agent {i}",
             "password_hash": "x", "role": "agent", "skills": [], "max_chats": 3, "active": True,
             "created_at": datetime(2020, 1, 1).astimezone()} for i in range(1, count + 1)]


def history(conversations: int, messages: int, end: datetime, seed: int = 7) -> Iterator[_Rows]:
    """Batches of rows covering the 365 days before `end`, about `messages` messages in all."""
    rng = random.Random(seed)
    team = [a["id"] for a in agents()]
    per_conversation = messages / conversations
    rows = _Rows()
    for n in range(conversations):
        cid = f"{n:032x}"
        opened = end - timedelta(seconds=rng.uniform(0, 365 * 86400))
        channel, language = _pick(rng, CHANNELS), _pick(rng, LANGUAGES)
        rows.contacts.append({"id": cid, "name": None, "email": None, "phone": None,
                              "created_at": opened})
        handed = rng.random() < 0.33
        rows.conversations.append({
            "id": cid, "contact_id": cid, "channel": channel, "language": language,
            "status": "bot", "handoff_reason": None, "waiting_since": None, "assignee_id": None,
            "priority": 0, "required_skills": [], "resolution_code": None, "resolved_at": None,
            "survey_pending": False, "token_hash": "0" * 64, "created_at": opened,
            "updated_at": opened, "last_message_at": opened})
        rows.event(cid, "conversation_created", opened, channel=channel, language=language)
        budget = max(2, rng.gauss(per_conversation, 2))
        at = opened
        turns = max(1, round(budget / 2) - (1 if handed else 0))
        for _ in range(turns):
            asked = rows.message(cid, channel, "customer", at)
            at += timedelta(seconds=rng.uniform(0.5, 4))
            rows.message(cid, channel, "assistant", at, reply_to=asked)
            rows.event(cid, "message_understood", at, message_id=asked,
                       intent=rng.choice(INTENTS), confidence=round(rng.uniform(0.3, 1), 2))
            at += timedelta(seconds=rng.uniform(5, 120))
        if rng.random() < 0.2:
            if rng.random() < 0.7:
                rows.event(cid, "kb_answered", at, article=rng.choice(INTENTS), score=0.8)
                if rng.random() < 0.5:
                    rows.event(cid, "kb_feedback", at, helped=rng.random() < 0.75)
            else:
                rows.event(cid, "kb_abstained", at, question=rng.choice(QUESTIONS))
        if rng.random() < 0.1:
            flow = rng.choice(FLOWS)
            rows.event(cid, "flow_started", at, flow=flow)
            rows.event(cid, "flow_completed" if rng.random() < 0.7 else "flow_abandoned",
                       at + timedelta(seconds=60), flow=flow)
        if handed:
            rows.event(cid, "handed_off", at, reason=_pick(rng, REASONS))
            if rng.random() < 0.9:
                agent = rng.choice(team)
                at += timedelta(seconds=rng.expovariate(1 / 150))
                rows.event(cid, "claimed", at, agent_id=agent)
                at += timedelta(seconds=rng.expovariate(1 / 40))
                rows.message(cid, channel, "agent", at)
                rows.message(cid, channel, "customer", at + timedelta(seconds=30))
                if rng.random() < 0.9:
                    at += timedelta(seconds=rng.expovariate(1 / 600))
                    rows.event(cid, "resolved", at, code="answered", agent_id=agent)
                    if rng.random() < 0.4:
                        rows.event(cid, "csat_submitted", at + timedelta(seconds=20),
                                   score=rng.choices(range(1, 6), [5, 5, 10, 30, 50])[0],
                                   comment=None)
                    if rng.random() < 0.05:
                        rows.event(cid, "returned_to_bot", at + timedelta(hours=2),
                                   reason="customer_wrote_after_close", agent_id=None)
        if rng.random() < 0.05:
            rows.event(cid, "nps_submitted", at + timedelta(seconds=30), score=rng.randint(0, 10))
        if len(rows.messages) >= CHUNK * 4:
            yield rows
            fresh = _Rows()
            fresh.message_id, fresh.event_id = rows.message_id, rows.event_id
            rows = fresh
    yield rows


async def fill(engine: AsyncEngine, conversations: int, messages: int, end: datetime) -> dict[str, int]:
    """Writes the synthetic year; returns how many rows of each kind."""
    counts = {"conversations": 0, "messages": 0, "events": 0}
    async with engine.begin() as connection:
        await connection.execute(insert(Agent), agents())
    for batch in history(conversations, messages, end):
        async with engine.begin() as connection:
            for model, rows in ((Contact, batch.contacts), (Conversation, batch.conversations),
                                (Message, batch.messages), (ConversationEvent, batch.events)):
                for i in range(0, len(rows), CHUNK):
                    await connection.execute(insert(model), rows[i:i + CHUNK])
        counts["conversations"] += len(batch.conversations)
        counts["messages"] += len(batch.messages)
        counts["events"] += len(batch.events)
    return counts
