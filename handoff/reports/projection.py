"""Keeps the reports' projection (handoff/reports/models.py) equal to the stored events.

Why a session listener and not calls in each verb: events and messages are written by the
conversation service, the NPS question, the contact record and the privacy purge; one
`after_flush` hook sees every ORM write of every one of them, in the transaction that writes
it, so no path can forget the projection and a rollback takes both away together.

A conversation whose events (or skills) changed is recomputed from its stored rows by
`project`, the same function `rebuild` runs over the whole store (migration 0008, the
`python -m handoff rebuild-reports` command, the benchmark's bulk-written history). A new
message only moves one "first ... at" time, so it is a single UPDATE keeping the minimum.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, event, func, insert, inspect, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, UOWTransaction

from handoff.conversations.models import AuthorType, Conversation, ConversationEvent, Message
from handoff.reports.models import ConversationFacts, ConversationTally

REOPEN_REASON = "customer_wrote_after_close"
CHUNK = 500
# Attributes of a conversation the projection copies; a change to one recomputes it.
_COPIED = ("created_at", "channel", "language", "required_skills")

E, M = ConversationEvent, Message
_CUSTOMER = M.author_type == AuthorType.CUSTOMER.value
_ASSISTANT_REPLY = and_(M.author_type == AuthorType.ASSISTANT.value, M.reply_to_id.is_not(None))
_AGENT_REPLY = and_(M.author_type == AuthorType.AGENT.value, M.private.is_(False))
_FIRSTS = (("first_customer_at", _CUSTOMER), ("first_assistant_reply_at", _ASSISTANT_REPLY),
           ("first_agent_reply_at", _AGENT_REPLY))


def normalise_question(text: str) -> str:
    """Groups questions that differ only in case, punctuation and spacing."""
    return " ".join(re.findall(r"\w+", text.lower()))


def skills_text(skills: Iterable[str] | None) -> str:
    """Skills as stored in the facts row: sorted between bars, so LIKE '%|skill|%' finds one."""
    names = sorted(set(skills or []))
    return f"|{'|'.join(names)}|" if names else ""


def _seconds(stop: datetime | None, start: datetime | None) -> float | None:
    if stop is None or start is None or stop < start:
        return None
    return (stop - start).total_seconds()


def project(conversation: Any, events: Sequence[Any], firsts: dict[str, datetime | None]
            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One conversation's facts row and tallies from its row, its events in stored (id) order
    and the times of its first customer, assistant-reply and agent-reply messages.

    Each tally mirrors one definition of docs/metrics.md: every handoff's reason; each intent
    and each flow message once; every rating, answer, abstention and feedback."""
    facts: dict[str, Any] = {
        "conversation_id": conversation.id, "opened_at": conversation.created_at,
        "channel": conversation.channel, "language": conversation.language,
        "skills": skills_text(conversation.required_skills), "reopened": False,
        "handed_off_at": None, "claimed_at": None, "resolved_at": None, **firsts}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    values: dict[tuple[str, str], float | None] = {}
    topics: set[str] = set()
    flow_messages: dict[tuple[str, str], set[str]] = defaultdict(set)
    first_claim: datetime | None = None
    for e in events:
        data = e.data if isinstance(e.data, dict) else {}
        at = e.created_at
        if e.type in ("handed_off", "claimed", "resolved"):
            column = f"{e.type}_at"
            if facts[column] is None or at < facts[column]:
                facts[column] = at
        if e.type == "handed_off":
            counts["reason", str(data.get("reason") or "")] += 1
        elif e.type == "claimed":
            first_claim = first_claim or at
            if data.get("agent_id"):
                counts["claimed", str(data["agent_id"])] += 1
        elif e.type == "resolved":
            who = str(data.get("agent_id") or "")
            if who and ("resolved_by", who) not in values:
                values["resolved_by", who] = _seconds(at, first_claim)
                counts["resolved_by", who] = 1
        elif e.type == "returned_to_bot" and data.get("reason") == REOPEN_REASON:
            facts["reopened"] = True
        elif e.type == "message_understood":
            topics.add(str(data.get("intent") or ""))
        elif e.type in ("csat_submitted", "nps_submitted"):
            if isinstance(data.get("score"), int) and not isinstance(data["score"], bool):
                counts[e.type.removesuffix("_submitted"), str(data["score"])] += 1
        elif e.type == "kb_answered":
            counts["kb_answered", str(data.get("article") or "")] += 1
        elif e.type == "kb_abstained":
            counts["kb_abstained", normalise_question(str(data.get("question") or ""))[:320]] += 1
        elif e.type == "kb_feedback" and isinstance(data.get("helped"), bool):
            counts["kb_feedback", "yes" if data["helped"] else "no"] += 1
        elif e.type in ("flow_started", "flow_completed", "flow_abandoned"):
            flow_messages[e.type, str(data.get("flow") or "unknown")].add(
                repr(data.get("message_id")))
    for topic in topics:
        counts["topic", topic] = 1
    for (kind, flow), messages in flow_messages.items():
        counts[kind, flow] = len(messages)
    shared = {"conversation_id": conversation.id, "opened_at": conversation.created_at,
              "channel": conversation.channel, "language": conversation.language,
              "handed_off": facts["handed_off_at"] is not None}
    tallies = [{**shared, "kind": kind, "key": key, "n": n, "value": values.get((kind, key))}
               for (kind, key), n in sorted(counts.items())]
    return facts, tallies


def recompute(connection: Connection, ids: Sequence[str]) -> None:
    """Replaces the projection of these conversations with one computed from their rows."""
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i:i + CHUNK])
        conversations = list(connection.execute(
            select(Conversation.id, Conversation.created_at, Conversation.channel,
                   Conversation.language, Conversation.required_skills)
            .where(Conversation.id.in_(chunk))))
        events: dict[str, list[Any]] = defaultdict(list)
        for row in connection.execute(
                select(E.conversation_id, E.type, E.data, E.created_at)
                .where(E.conversation_id.in_(chunk)).order_by(E.conversation_id, E.id)):
            events[row.conversation_id].append(row)
        firsts: dict[str, dict[str, datetime | None]] = {
            row[0]: dict(zip([name for name, _ in _FIRSTS], row[1:]))
            for row in connection.execute(
                select(M.conversation_id,
                       *(func.min(case((when, M.created_at))) for _, when in _FIRSTS))
                .where(M.conversation_id.in_(chunk)).group_by(M.conversation_id))}
        empty = {name: None for name, _ in _FIRSTS}
        facts, tallies = [], []
        for conversation in conversations:
            row, rows = project(conversation, events.get(conversation.id, []),
                                firsts.get(conversation.id, empty))
            facts.append(row)
            tallies += rows
        connection.execute(delete(ConversationTally).where(
            ConversationTally.conversation_id.in_(chunk)))
        connection.execute(delete(ConversationFacts).where(
            ConversationFacts.conversation_id.in_(chunk)))
        if facts:
            connection.execute(insert(ConversationFacts), facts)
        if tallies:
            connection.execute(insert(ConversationTally), tallies)


def rebuild(connection: Connection) -> int:
    """Recomputes the whole projection from the stored conversations; returns how many."""
    ids = list(connection.scalars(select(Conversation.id).order_by(Conversation.id)))
    connection.execute(delete(ConversationTally))
    connection.execute(delete(ConversationFacts))
    recompute(connection, ids)
    return len(ids)


def _first_column(message: Message) -> str | None:
    """Which "first ... at" time a new message may move, if any."""
    if message.author_type == AuthorType.CUSTOMER.value:
        return "first_customer_at"
    if message.author_type == AuthorType.ASSISTANT.value and message.reply_to_id is not None:
        return "first_assistant_reply_at"
    if message.author_type == AuthorType.AGENT.value and message.private is False:
        return "first_agent_reply_at"
    return None


def _changed(conversation: Conversation) -> bool:
    state = inspect(conversation)
    return any(state.attrs[name].history.has_changes() for name in _COPIED)


@event.listens_for(Session, "after_flush")
def _keep_projection(session: Session, _flush: UOWTransaction) -> None:
    """Brings the projection of whatever this flush wrote up to date, in its transaction."""
    touched: set[str] = set()
    earliest: dict[tuple[str, str], datetime] = {}
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, ConversationEvent):
            touched.add(obj.conversation_id)
        elif isinstance(obj, Conversation) and (obj in session.new or _changed(obj)):
            touched.add(obj.id)
        elif isinstance(obj, Message) and obj in session.new:
            column = _first_column(obj)
            if column is not None and obj.created_at is None:
                touched.add(obj.conversation_id)  # no time known here: recompute instead
            elif column is not None:
                key = (obj.conversation_id, column)
                earliest[key] = min(obj.created_at, earliest.get(key, obj.created_at))
    if not touched and not earliest:
        return
    connection = session.connection()
    for (cid, column), at in earliest.items():
        if cid in touched:
            continue
        current = getattr(ConversationFacts, column)
        connection.execute(
            update(ConversationFacts).where(ConversationFacts.conversation_id == cid)
            .values({column: case((current.is_(None) | (current > at), at), else_=current)}))
    if touched:
        recompute(connection, sorted(touched))
