"""A contact's rights over their data: export everything, erase on request, and the retention
period after which transcripts are purged. Every export, erasure and purge is audited.

Erasure and purging anonymise instead of deleting rows: the conversations, their events and
the messages' times stay, so the reports still count them (first response, handled, CSAT),
while what a person wrote or could be recognised by is gone.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.channels.messaging import ChannelIdentity, Delivery
from handoff.contacts.models import AuditAction, AuditEntry, ContactIdentity
from handoff.contacts.service import (
    contact_record_json,
    load_contact,
    locked_live_contact,
)
from handoff.conversations.export import transcript_record
from handoff.conversations.models import (
    Conversation,
    ConversationEvent,
    ConversationStatus,
    Message,
    utcnow,
)
from handoff.conversations.redaction import redact_card_numbers_in

# Keys of event data that hold what a customer typed or could be recognised by.
PERSONAL_KEYS = frozenset({
    "email", "phone", "name", "contact", "comment", "address", "new_address", "question",
    "text", "collected", "description", "problem_description", "display_name",
})
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A message not yet anonymised (a JSON payload of None may be stored as JSON null, not SQL
# NULL; anonymising writes SQL NULL, so each message is anonymised once).
_NOT_ANONYMOUS = or_(Message.text.is_not(None), Message.payload.is_not(None),
                     Message.source_id.is_not(None))
# Conversations people are working on keep their transcript whatever its age.
_ACTIVE = (ConversationStatus.WAITING.value, ConversationStatus.WITH_AGENT.value)


def scrubbed(data: dict[str, Any] | None) -> dict[str, Any] | None:
    """Event data without what identifies the customer; counts, reasons and scores stay."""
    if data is None:
        return None
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key in PERSONAL_KEYS:
            continue
        clean[key] = _EMAIL.sub("[removed]", value) if isinstance(value, str) else value
    return clean


class PrivacyService:
    """Export, erasure and the retention purge; each leaves an audit entry."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], retention_days: int = 0) -> None:
        self._sessions = sessions
        self.retention_days = retention_days

    async def export(self, contact_id: str, actor_id: str,
                     agent_names: dict[str, str]) -> dict[str, Any]:
        """Everything stored about the contact, from the stored (masked) data, as JSON."""
        async with self._sessions.begin() as session:
            contact, conversations, identities = await load_contact(session, contact_id)
            ids = [c.id for c in conversations]
            messages = list(await session.scalars(
                select(Message).where(Message.conversation_id.in_(ids)).order_by(Message.id)))
            events = list(await session.scalars(
                select(ConversationEvent).where(ConversationEvent.conversation_id.in_(ids))
                .order_by(ConversationEvent.id)))
            session.add(AuditEntry(action=AuditAction.EXPORTED, actor_id=actor_id,
                                   contact_id=contact_id,
                                   details={"conversations": len(ids), "messages": len(messages)}))
        record = {
            "exported_at": utcnow().isoformat(),
            "contact": contact_record_json(contact),
            "identities": identities,
            "conversations": [
                transcript_record(c, contact, [m for m in messages if m.conversation_id == c.id],
                                  [e for e in events if e.conversation_id == c.id], agent_names)
                for c in conversations],
        }
        return dict(redact_card_numbers_in(record))

    async def erase(self, contact_id: str, actor_id: str) -> dict[str, int]:
        """Erases the contact on request: details and identities removed, every message of their
        conversations anonymised; the conversations and events stay countable."""
        now = utcnow()
        async with self._sessions.begin() as session:
            contact = await locked_live_contact(
                session, contact_id, "this contact was already erased")
            ids = list(await session.scalars(
                select(Conversation.id).where(Conversation.contact_id == contact_id)))
            contact.name = contact.email = contact.phone = contact.notes = None
            contact.tags = []
            contact.erased_at = now
            identities = await _count(session, delete(ContactIdentity).where(
                ContactIdentity.contact_id == contact_id))
            identities += await _count(session, delete(ChannelIdentity).where(
                ChannelIdentity.conversation_id.in_(ids)))
            messages = await _anonymise(session, Message.conversation_id.in_(ids))
            # Nothing is sent any more to a customer who is erased (and nowhere to send it).
            await session.execute(update(Delivery).where(
                Delivery.status == "pending",
                Delivery.message_id.in_(select(Message.id).where(Message.conversation_id.in_(ids))))
                .values(status="skipped", last_error="the contact was erased")
                .execution_options(synchronize_session=False))
            await _scrub_events(session, ConversationEvent.conversation_id.in_(ids))
            counts = {"conversations": len(ids), "messages": messages, "identities": identities}
            session.add(AuditEntry(action=AuditAction.ERASED, actor_id=actor_id,
                                   contact_id=contact_id, details=counts, created_at=now))
        return counts

    async def purge_expired(self, now: datetime) -> int:
        """Anonymises messages older than the retention period (0: keep forever), except in
        conversations waiting for or with a person. Returns how many were purged; idempotent,
        so several instances may run it (a purge that finds nothing writes no audit entry)."""
        if self.retention_days <= 0:
            return 0
        cutoff = now - timedelta(days=self.retention_days)
        settled = select(Conversation.id).where(Conversation.status.not_in(_ACTIVE))
        async with self._sessions.begin() as session:
            due = list(await session.scalars(select(Message.conversation_id).distinct().where(
                Message.conversation_id.in_(settled), Message.created_at < cutoff, _NOT_ANONYMOUS)))
            if not due:
                return 0
            purged = await _anonymise(session, Message.conversation_id.in_(due),
                                      Message.created_at < cutoff)
            await _scrub_events(session, ConversationEvent.conversation_id.in_(due),
                                ConversationEvent.created_at < cutoff)
            if purged:
                session.add(AuditEntry(action=AuditAction.PURGED, actor_id=None,
                                       details={"messages": purged,
                                                "older_than": cutoff.isoformat(),
                                                "retention_days": self.retention_days},
                                       created_at=now))
        return purged


async def _count(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def _anonymise(session: AsyncSession, *where: Any) -> int:
    """Text, structured content and the platform's message id removed; times and types stay."""
    return await _count(session, update(Message).where(*where, _NOT_ANONYMOUS)
                        .values(text=None, payload=null(), source_id=None))


async def _scrub_events(session: AsyncSession, *where: Any) -> None:
    for event in await session.scalars(select(ConversationEvent).where(*where)):
        clean = scrubbed(event.data)
        if clean != event.data:
            event.data = clean
