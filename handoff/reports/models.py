"""The reports' projection of the stored events: one narrow row of facts per conversation and
its tallies (how often each reason, rating, topic, article... occurred in it).

Both are derived data (handoff/reports/projection.py): the transaction that writes an event
or message marks its conversation in `report_pending`, and the conversation is recomputed
before the next report reads (and every few seconds in the background), so a report reads a
row per conversation instead of every message and event, and a customer's turn does not pay
for the recompute. The events stay the source of truth: `rebuild` recomputes everything.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations.models import Base


class ConversationFacts(Base):
    """When each of one conversation's clocks started and stopped (None: it never did)."""

    __tablename__ = "conversation_facts"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    opened_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(16))
    # The skills it needs, sorted and written "|a|b|" ("" for none): filtered with LIKE.
    skills: Mapped[str] = mapped_column(String(400), default="")
    handed_off_at: Mapped[datetime | None]  # first handed_off
    claimed_at: Mapped[datetime | None]  # first claimed
    resolved_at: Mapped[datetime | None]  # first resolved
    first_customer_at: Mapped[datetime | None]
    first_assistant_reply_at: Mapped[datetime | None]  # first assistant message with reply_to_id
    first_agent_reply_at: Mapped[datetime | None]  # first agent message that was not private
    reopened: Mapped[bool] = mapped_column(Boolean, default=False)

    # the daily table counts from the first index alone (365 small range scans a year)
    __table_args__ = (Index("ix_conversation_facts_opened", "opened_at", "handed_off_at",
                            "resolved_at", "channel", "language"),
                      Index("ix_conversation_facts_handed_off", "handed_off_at"))


class ConversationTally(Base):
    """How many times something of one `kind` with one `key` happened in a conversation
    (kind 'reason', key 'low_confidence', n 2). `value` carries a per-key duration where a
    metric needs one (an agent's handling time). The conversation's opening time, channel,
    language and whether it went to a person are repeated so reports need no join."""

    __tablename__ = "conversation_tallies"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=1)
    value: Mapped[float | None] = mapped_column(Float)
    opened_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(32))
    language: Mapped[str | None] = mapped_column(String(16))
    handed_off: Mapped[bool] = mapped_column(Boolean, default=False)

    # every tally of a range from the index alone, a channel or language filter included
    __table_args__ = (Index("ix_conversation_tallies_opened", "opened_at", "kind", "key", "n",
                            "handed_off", "value", "channel", "language"),
                      # medians walk one kind's values in order; the topic and agent filters
                      Index("ix_conversation_tallies_kind_value", "kind", "key", "value",
                            "opened_at", "channel", "language"))


class ReportDay(Base):
    """The tallies of the conversations opened on one UTC day, summed per slice: all of them
    (slice ""), those of one channel ("channel:widget"), of one language ("language:he").
    An unfiltered or channel- or language-filtered report reads these for each whole UTC
    day of its range (a year is ~365 x kinds rows), the partial days at its edges coming
    from the tallies. UTC days, not the team's local ones, so a change of time zone or of
    DST rules changes nothing stored."""

    __tablename__ = "report_days"

    slice: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(24), primary_key=True)
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)  # occurrences
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    handed_off: Mapped[int] = mapped_column(Integer, default=0)
    value_sum: Mapped[float] = mapped_column(Float, default=0.0)
    value_count: Mapped[int] = mapped_column(Integer, default=0)


class ReportPending(Base):
    """A conversation whose projection is behind its stored rows. Written in the transaction
    that changed the conversation (so it commits and rolls back with it); `version` grows with
    each mark, so a catch-up that read version 3 never deletes a mark made after it read."""

    __tablename__ = "report_pending"

    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
