"""The stored conversation: contacts, conversations, participants, messages and events.

Vocabulary follows helpdesk practice (Chatwoot): a message is `incoming` (from the customer),
`outgoing` (to the customer, from the assistant or an agent) or `activity` (what happened,
e.g. "handed to the support team"); `source_id` is the sender's own id for a message and
is unique per conversation, which is how a retried send is recognised and not stored twice.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy import TypeDecorator, UniqueConstraint, event, false
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, Mapper, mapped_column, relationship

from handoff.contacts.folding import search_text


def utcnow() -> datetime:
    """Timezone-aware now; every stored time is UTC."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    return uuid.uuid4().hex


# How a row is locked to change it (`session.get(..., with_for_update=ROW_LOCK)`): on
# PostgreSQL FOR NO KEY UPDATE, not FOR UPDATE. Inserting a row that refers to it (a message,
# an event, the reports' facts) takes a KEY SHARE lock on it, which FOR UPDATE blocks and
# NO KEY UPDATE does not: in the cluster soak the reports' catch-up, inserting facts, and an
# agent's resolve, holding its conversation FOR UPDATE, deadlocked ~4 times a minute.
ROW_LOCK: dict[str, Any] = {"key_share": True}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC time on every database (SQLite drops the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    """Declarative base for the web service's tables."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[str]: JSON}


class ConversationStatus(str, enum.Enum):
    """Who has the conversation. Explicit names instead of Chatwoot's pending/open."""

    BOT = "bot"  # the assistant answers
    WAITING = "waiting"  # handed off, waiting for an agent to claim it
    WITH_AGENT = "with_agent"  # an agent has it; the assistant is silent
    RESOLVED = "resolved"


class MessageType(str, enum.Enum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"
    ACTIVITY = "activity"


class AuthorType(str, enum.Enum):
    CUSTOMER = "customer"
    ASSISTANT = "assistant"
    AGENT = "agent"
    SYSTEM = "system"


class Contact(Base):
    """The customer, across conversations."""

    __tablename__ = "contacts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What agents keep about the customer (handoff/contacts/service.py validates edits).
    notes: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(default=list)
    # Set when the contact was erased on request: the row stays so conversations still count.
    erased_at: Mapped[datetime | None]
    # Name, email, phone and tags folded for search (handoff/contacts/folding.py); kept in step
    # by the listener below at every ORM insert and update, whoever changes the contact.
    search_text: Mapped[str] = mapped_column(Text, default="")

    # Search and lists walk contacts newest first (keyset on created_at, id).
    __table_args__ = (Index("ix_contacts_created_id", "created_at", "id"),)


@event.listens_for(Contact, "before_insert")
@event.listens_for(Contact, "before_update")
def _refold(mapper: Mapper[Contact], connection: Connection, contact: Contact) -> None:
    """Recomputes the search column from the fields it folds (an erased contact's is empty)."""
    contact.search_text = search_text(contact.name, contact.email, contact.phone, contact.tags)


class Conversation(Base):
    """One support conversation on one channel."""

    __tablename__ = "conversations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=ConversationStatus.BOT.value)
    handoff_reason: Mapped[str | None] = mapped_column(String(120))
    waiting_since: Mapped[datetime | None]
    assignee_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # Queue order: higher priority first, then first come first served (waiting_since).
    priority: Mapped[int] = mapped_column(Integer, default=0)
    # Skills an agent needs to take it, e.g. ["language:he"]; empty means anyone.
    required_skills: Mapped[list[str]] = mapped_column(default=list)
    resolution_code: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None]
    # Set when an agent closes; the customer's next message may answer the 1-5 survey.
    survey_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when the optional 0-10 question was asked (handoff/conversations/nps.py).
    nps_pending: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # sha256 of the customer's bearer token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[datetime | None]

    contact: Mapped[Contact] = relationship(lazy="raise")

    __table_args__ = (Index("ix_conversations_status_waiting", "status", "waiting_since"),
                      Index("ix_conversations_created_at", "created_at"))


class Participant(Base):
    """Who took part in a conversation and when: the customer, the assistant, agents."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))  # an AuthorType value
    participant_ref: Mapped[str] = mapped_column(String(64))
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    left_at: Mapped[datetime | None]


class Message(Base):
    """One message in the transcript, in the order it was stored (id is monotonic)."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    message_type: Mapped[str] = mapped_column(String(16))
    author_type: Mapped[str] = mapped_column(String(16))
    author_id: Mapped[str | None] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(Text)
    # Buttons, images and other structured content the assistant sent.
    payload: Mapped[dict[str, Any] | None]
    source_id: Mapped[str | None] = mapped_column(String(128))
    # The incoming message an outgoing reply answers (lets a retried send get its replies).
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    private: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set once an incoming message has been passed on (to Rasa or to the agents' side);
    # incoming messages with no routed_at are re-routed at start-up.
    routed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("conversation_id", "source_id", name="uq_messages_conversation_source"),
        Index("ix_messages_conversation_id", "conversation_id", "id"),
        Index("ix_messages_unrouted", "message_type", "routed_at"),
        Index("ix_messages_conversation_author", "conversation_id", "author_type", "created_at",
              "private", "reply_to_id"),
    )


class ConversationEvent(Base):
    """What happened in a conversation and when: the record reports are computed from."""

    __tablename__ = "conversation_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), index=True)
    type: Mapped[str] = mapped_column(String(48))
    data: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_conversation_events_type_created", "type", "created_at"),
                      Index("ix_conversation_events_conversation_type", "conversation_id", "type",
                            "created_at"))
