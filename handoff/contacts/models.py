"""A contact's identities (how they reach us, what they proved) and the privacy audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations.models import Base, utcnow


class IdentityKind:
    """What an identity's `channel` names: a channel the customer writes on, or a proof."""

    EMAIL = "email"  # an email the customer proved (order number + email matched the shop)
    PHONE = "phone"
    PROVEN = (EMAIL, PHONE)


class ContactIdentity(Base):
    """One way a contact is known: a channel and that channel's id for them (a WhatsApp number,
    a Telegram chat, a widget chat), or an email/phone they proved. Unique across contacts:
    an identity belongs to one contact, and only a proof moves it (see contacts/service.py)."""

    __tablename__ = "contact_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("contacts.id"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(320))
    # When the customer proved it (email/phone); channel identities are linked by that proof.
    verified_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_contact_identity"),)


class AuditAction:
    """What an audit entry records (its `action`)."""

    EXPORTED = "contact_exported"
    ERASED = "contact_erased"
    EDITED = "contact_edited"  # details: which fields, never their values
    PURGED = "transcripts_purged"  # the retention purge; no actor, no contact
    ALL = (EXPORTED, ERASED, EDITED, PURGED)


class AuditEntry(Base):
    """Who exported, erased or purged what, and when. Never holds the personal data itself."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(48))  # an AuditAction
    actor_id: Mapped[str | None] = mapped_column(String(64))  # an agent id; None: the service itself
    contact_id: Mapped[str | None] = mapped_column(String(32), index=True)
    details: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
