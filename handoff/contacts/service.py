"""One customer record across channels: linking on proof, the contact page, agents' edits.

The linking rule (the only way two records become one):
- A conversation starts with a contact of its own. Nothing a customer merely claims (a name,
  an email typed while waiting) ever joins two records.
- When the customer *proves* an email or phone (the order flows' identity check: order number
  plus the email or phone on that order), the action records `identity_verified`, and in the
  same transaction `link_verified` gives the conversation to the contact that owns that proof:
  - nobody owns it yet: the conversation's contact becomes its owner (a contact may own
    several proven emails and phones; the first proven one is shown as its email/phone,
    replacing one the customer merely typed);
  - another contact owns it and the conversation's contact has proved nothing itself: the
    conversation's contact is merged into the owner (its conversations, identities, notes and
    tags move over; the owner's own name and details win, empty ones are filled) and deleted;
  - both have proved something different (one person showed two orders with different
    emails): nothing is merged — two proven records are never joined by the service; the
    conversation records `contact_link_conflict` so an agent can see why.
- The conversation's channel identity (the WhatsApp number, the Telegram chat, the widget
  chat) is attached to the contact it was linked to.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.channels.messaging import ChannelIdentity
from handoff.contacts.models import AuditAction, AuditEntry, ContactIdentity, IdentityKind
from handoff.db_locks import advisory_key
from handoff.conversations.errors import ConversationError, ConversationNotFound
from handoff.conversations.models import (
    ROW_LOCK,
    AuthorType,
    Contact,
    Conversation,
    ConversationEvent,
    Participant,
    utcnow,
)
from handoff.conversations.redaction import redact_card_numbers_in
from handoff.pagination import encode_cursor, keyset_before

logger = logging.getLogger(__name__)

MAX_CONTACT_ID = 64  # longer than any id the service makes
MAX_NAME = 200
MAX_NOTES = 4000
MAX_TAGS = 20
TAG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s]+$")
_PHONE = re.compile(r"^\+?\d{7,15}$")
# What the actions record about orders, invoices and refunds the customer asked about.
ORDER_RECORD_PREFIXES = ("order", "invoice", "refund", "billing")
# The contact page shows this many conversations at first (then "more", by the page), and
# the newest this many orders, handoffs and survey answers.
CONVERSATIONS_PAGE = 20
EVENTS_SHOWN = 100


class ContactNotFound(ConversationNotFound):
    """No contact with that id (or it was merged into another)."""


class InvalidContactEdit(ConversationError):
    status = 400


class ContactErased(ConversationError):
    """The contact was erased on request: nothing about them may be written again."""

    status = 409


@dataclass(frozen=True)
class ContactEdit:
    """A validated change to what agents keep about a contact; unset fields stay as they are."""

    fields: dict[str, Any]


def parse_edit(body: dict[str, Any]) -> ContactEdit:
    """Checks an edit from the console; raises InvalidContactEdit saying what is wrong.

    name: a string of 1-200 characters, or null; notes: up to 4000 characters, or null;
    tags: up to 20 distinct lower-case words (a-z, 0-9, '_' and '-', at most 32 characters).
    """
    unknown = set(body) - {"name", "notes", "tags"}
    if unknown:
        raise InvalidContactEdit(f"unknown field(s): {', '.join(sorted(unknown))}; "
                                 "you may edit name, notes and tags")
    if not body:
        raise InvalidContactEdit("give at least one of name, notes and tags")
    fields: dict[str, Any] = {}
    if "name" in body:
        fields["name"] = _text(body["name"], "name", MAX_NAME)
    if "notes" in body:
        fields["notes"] = _text(body["notes"], "notes", MAX_NOTES)
    if "tags" in body:
        tags = body["tags"]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidContactEdit("'tags' must be a list of strings")
        if len(tags) > MAX_TAGS:
            raise InvalidContactEdit(f"at most {MAX_TAGS} tags")
        bad = [t for t in tags if not TAG.match(t)]
        if bad:
            raise InvalidContactEdit(f"bad tag {bad[0][:40]!r}: tags are lower-case words of "
                                     "a-z, 0-9, '_' and '-', at most 32 characters")
        fields["tags"] = list(dict.fromkeys(tags))
    return ContactEdit(fields)


def _text(value: Any, key: str, max_len: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidContactEdit(f"'{key}' must be a string or null")
    value = value.strip()
    if len(value) > max_len:
        raise InvalidContactEdit(f"'{key}' may be at most {max_len} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in value):
        raise InvalidContactEdit(f"'{key}' holds control characters")
    return value or None


def proven_identity(data: dict[str, Any]) -> tuple[str, str] | None:
    """The (kind, value) an `identity_verified` record proves, normalised; None if malformed."""
    email, phone = data.get("email"), data.get("phone")
    if isinstance(email, str) and _EMAIL.match(email.strip()) and len(email) <= 320:
        return IdentityKind.EMAIL, email.strip().lower()
    if isinstance(phone, str):
        digits = ("+" if phone.strip().startswith("+") else "") + re.sub(r"\D", "", phone)
        if _PHONE.match(digits):
            return IdentityKind.PHONE, digits
    return None


async def channel_identity(session: AsyncSession, conversation: Conversation) -> tuple[str, str]:
    """How the customer of this conversation reaches us: the platform's id for them
    (WhatsApp, Telegram), else the chat itself (the widget keeps one token per chat)."""
    found = await session.scalar(select(ChannelIdentity).where(
        ChannelIdentity.conversation_id == conversation.id))
    if found is not None:
        return found.channel, found.external_id
    return conversation.channel, conversation.id


async def link_verified(session: AsyncSession, conversation_id: str, data: dict[str, Any]) -> None:
    """Links the conversation to the contact owning what the customer just proved (module
    docstring: the rule). Runs inside the assistant turn's transaction that records the proof."""
    proof = proven_identity(data)
    if proof is None:
        logger.warning("identity_verified without a usable email or phone in %s", conversation_id)
        return
    kind, value = proof
    if session.bind.dialect.name == "postgresql":
        # Two chats proving the same email at once: the second waits, then finds the owner.
        # (SQLite: the turn's events were written first, so this transaction holds the write lock.)
        await session.execute(select(func.pg_advisory_xact_lock(advisory_key(f"identity:{kind}:{value}"))))
    conversation = await session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
    if conversation is None:
        return
    now = utcnow()
    current = await session.get(Contact, conversation.contact_id)
    assert current is not None
    if current.erased_at is not None:  # an erased record is never filled again
        current = Contact()
        session.add(current)
        await session.flush()
        await _move_conversation(session, conversation, current.id)
    owner_row = await session.scalar(select(ContactIdentity).where(
        ContactIdentity.channel == kind, ContactIdentity.external_id == value))
    merged_from: str | None = None
    if owner_row is None:
        target = current
        session.add(ContactIdentity(contact_id=target.id, channel=kind, external_id=value,
                                    verified_at=now))
    elif owner_row.contact_id == current.id:
        target = current
        owner_row.verified_at = now
    else:
        owner = await session.get(Contact, owner_row.contact_id)
        assert owner is not None
        owner_row.verified_at = now
        if await _has_proof(session, current.id):
            session.add(ConversationEvent(
                conversation_id=conversation_id, type="contact_link_conflict",
                data={"contact_id": current.id, "proven_by_contact": owner.id, "kind": kind}))
            return
        await _merge(session, source=current, target=owner)
        target, merged_from = owner, current.id
    await _fill_detail(session, target, kind, value)
    channel, external_id = await channel_identity(session, conversation)
    row = await session.scalar(select(ContactIdentity).where(
        ContactIdentity.channel == channel, ContactIdentity.external_id == external_id))
    if row is None:
        session.add(ContactIdentity(contact_id=target.id, channel=channel, external_id=external_id))
    else:
        row.contact_id = target.id
    session.add(ConversationEvent(conversation_id=conversation_id, type="contact_linked",
                                  data={"contact_id": target.id, "kind": kind,
                                        "merged_from": merged_from}, created_at=now))


async def _fill_detail(session: AsyncSession, contact: Contact, kind: str, value: str) -> None:
    """A proven email/phone is shown on the contact unless another proven one already is: it
    replaces what the customer merely typed while waiting (note_contact_details)."""
    field = "email" if kind == IdentityKind.EMAIL else "phone"
    current = getattr(contact, field)
    if current and current != value and await session.scalar(select(ContactIdentity.id).where(
            ContactIdentity.contact_id == contact.id, ContactIdentity.channel == kind,
            ContactIdentity.external_id == current, ContactIdentity.verified_at.is_not(None))):
        return
    setattr(contact, field, value)


async def _has_proof(session: AsyncSession, contact_id: str) -> bool:
    return await session.scalar(select(ContactIdentity.id).where(
        ContactIdentity.contact_id == contact_id,
        ContactIdentity.channel.in_(IdentityKind.PROVEN)).limit(1)) is not None


async def _move_conversation(session: AsyncSession, conversation: Conversation,
                             contact_id: str) -> None:
    await session.execute(update(Participant).where(
        Participant.conversation_id == conversation.id,
        Participant.role == AuthorType.CUSTOMER.value,
        Participant.participant_ref == conversation.contact_id).values(participant_ref=contact_id))
    conversation.contact_id = contact_id


async def _merge(session: AsyncSession, source: Contact, target: Contact) -> None:
    """Folds an unproven contact into a proven one: everything moves, the target's own values win."""
    conversations = list(await session.scalars(
        select(Conversation).where(Conversation.contact_id == source.id)))
    for conversation in conversations:
        await _move_conversation(session, conversation, target.id)
    await session.execute(update(ContactIdentity).where(ContactIdentity.contact_id == source.id)
                          .values(contact_id=target.id))
    target.name = target.name or source.name
    target.email = target.email or source.email
    target.phone = target.phone or source.phone
    if source.notes:
        target.notes = f"{target.notes}\n\n{source.notes}" if target.notes else source.notes
        target.notes = target.notes[:MAX_NOTES]
    target.tags = list(dict.fromkeys([*(target.tags or []), *(source.tags or [])]))[:MAX_TAGS]
    await session.flush()
    await session.execute(delete(Contact).where(Contact.id == source.id))


def contact_record_json(contact: Contact) -> dict[str, Any]:
    """The contact's own fields as the console shows them."""
    return {"id": contact.id, "name": contact.name, "email": contact.email,
            "phone": contact.phone, "notes": contact.notes, "tags": list(contact.tags or []),
            "created_at": contact.created_at.isoformat(),
            "erased_at": contact.erased_at.isoformat() if contact.erased_at else None}


async def load_contact(session: AsyncSession, contact_id: str
                       ) -> tuple[Contact, list[Conversation], list[dict[str, Any]]]:
    """The contact, all their conversations (oldest first) and every way they are known
    (for the export, which must hold everything; the page reads conversations by the page)."""
    contact = await _contact(session, contact_id)
    conversations = list(await session.scalars(
        select(Conversation).where(Conversation.contact_id == contact_id)
        .order_by(Conversation.created_at, Conversation.id)))
    return contact, conversations, await _identities(session, contact_id)


async def _contact(session: AsyncSession, contact_id: str) -> Contact:
    contact = await session.get(Contact, contact_id)
    if contact is None:
        raise ContactNotFound("contact not found")
    return contact


async def _identities(session: AsyncSession, contact_id: str) -> list[dict[str, Any]]:
    """Linked and proven identities, and the platform ids of the contact's conversations not
    linked yet (read through a join: the conversations themselves are not loaded)."""
    linked = await session.scalars(select(ContactIdentity).where(
        ContactIdentity.contact_id == contact_id).order_by(ContactIdentity.id))
    identities = {(i.channel, i.external_id): i.verified_at.isoformat() if i.verified_at else None
                  for i in linked}
    platform = await session.execute(
        select(ChannelIdentity.channel, ChannelIdentity.external_id)
        .join(Conversation, Conversation.id == ChannelIdentity.conversation_id)
        .where(Conversation.contact_id == contact_id).order_by(ChannelIdentity.id))
    for channel, external_id in platform:
        identities.setdefault((channel, external_id), None)
    return [{"channel": channel, "external_id": external_id, "verified_at": verified_at}
            for (channel, external_id), verified_at in identities.items()]


def _conversation_row(c: Conversation) -> dict[str, Any]:
    return {"id": c.id, "channel": c.channel, "status": c.status, "language": c.language,
            "handoff_reason": c.handoff_reason, "resolution_code": c.resolution_code,
            "created_at": c.created_at.isoformat(),
            "last_message_at": c.last_message_at.isoformat() if c.last_message_at else None}


async def _conversations_page(session: AsyncSession, contact_id: str, limit: int,
                              after: list[Any] | None) -> dict[str, Any]:
    """One page of the contact's conversations, newest first (keyset on created_at, id)."""
    query = select(Conversation).where(Conversation.contact_id == contact_id)
    if after is not None:
        query = query.where(keyset_before(Conversation.created_at, Conversation.id, after))
    rows = list(await session.scalars(
        query.order_by(Conversation.created_at.desc(), Conversation.id.desc()).limit(limit + 1)))
    page = rows[:limit]
    return {"conversations": [_conversation_row(c) for c in page],
            "next_cursor": encode_cursor(page[-1].created_at.isoformat(), page[-1].id)
            if len(rows) > limit else None}


async def _recent_events(session: AsyncSession, contact_id: str, *kinds: Any) -> list[dict[str, Any]]:
    """The newest EVENTS_SHOWN events of these kinds across the contact's conversations, oldest first."""
    rows = list(await session.scalars(
        select(ConversationEvent).where(
            ConversationEvent.conversation_id.in_(
                select(Conversation.id).where(Conversation.contact_id == contact_id)),
            or_(*kinds))
        .order_by(ConversationEvent.id.desc()).limit(EVENTS_SHOWN)))
    return [_event_json(e) for e in reversed(rows)]


class ContactService:
    """The contact page's data and agents' edits. Reads never write."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def view(self, contact_id: str) -> dict[str, Any]:
        """Everything the console's contact page shows: identities, the first page of
        conversations on every channel, the orders and invoices asked about, past handoffs
        and survey answers (the newest EVENTS_SHOWN of each)."""
        async with self._sessions() as session:
            contact = await _contact(session, contact_id)
            identities = await _identities(session, contact_id)
            first = await _conversations_page(session, contact_id, CONVERSATIONS_PAGE, None)
            count = await session.scalar(select(func.count()).select_from(Conversation).where(
                Conversation.contact_id == contact_id))
            orders = await _recent_events(session, contact_id, *(
                ConversationEvent.type.startswith(f"{prefix}_", autoescape=True)
                for prefix in ORDER_RECORD_PREFIXES))
            handoffs = await _recent_events(session, contact_id,
                                            ConversationEvent.type == "handed_off")
            surveys = await _recent_events(session, contact_id,
                                           ConversationEvent.type == "csat_submitted")
        return redact_card_numbers_in({
            "contact": contact_record_json(contact),
            "identities": identities,
            "conversations": first["conversations"],
            "conversations_next": first["next_cursor"],
            "conversation_count": count,
            "orders": orders,
            "handoffs": handoffs,
            "surveys": surveys,
        })

    async def conversations(self, contact_id: str, limit: int,
                            after: list[Any] | None) -> dict[str, Any]:
        """A further page of the contact's conversations (the page's "more" button)."""
        async with self._sessions() as session:
            await _contact(session, contact_id)
            return await _conversations_page(session, contact_id, limit, after)

    async def edit(self, contact_id: str, edit: ContactEdit, actor_id: str) -> dict[str, Any]:
        """Applies a validated edit; an unknown or erased contact changes nothing. The audit
        trail records who changed which fields (not the values: they may be personal)."""
        async with self._sessions.begin() as session:
            contact = await locked_live_contact(
                session, contact_id, "this contact was erased; it cannot be edited")
            for key, value in edit.fields.items():
                setattr(contact, key, value)
            session.add(AuditEntry(action=AuditAction.EDITED, actor_id=actor_id,
                                   contact_id=contact_id,
                                   details={"fields": sorted(edit.fields)}))
        return contact_record_json(contact)


def _event_json(event: ConversationEvent) -> dict[str, Any]:
    data = dict(event.data or {})
    data.pop("message_id", None)
    return {"type": event.type, "conversation_id": event.conversation_id,
            "at": event.created_at.isoformat(), "data": data}


async def locked_live_contact(session: AsyncSession, contact_id: str, erased: str) -> Contact:
    """The contact, row-locked for a change; 404 if unknown, 409 (`erased`) if erased."""
    contact = await session.get(Contact, contact_id, with_for_update=ROW_LOCK)
    if contact is None:
        raise ContactNotFound("contact not found")
    if contact.erased_at is not None:
        raise ContactErased(erased)
    return contact
