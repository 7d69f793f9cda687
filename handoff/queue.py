"""The queue of conversations waiting for a person: order, position, wait estimate, who is online."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.business_hours import BusinessHours
from handoff.conversations.models import (
    Contact,
    Conversation,
    ConversationEvent,
    ConversationStatus,
)

DEFAULT_HANDLING_MINUTES = 4.0  # until the team has resolved enough conversations to measure


@dataclass(frozen=True)
class QueueSpot:
    position: int
    eta_minutes: int


class AgentPresence:
    """Which agents have a console open in this process (their WebSockets)."""

    def __init__(self) -> None:
        self._connections: Counter[str] = Counter()

    def connected(self, agent_id: str) -> None:
        self._connections[agent_id] += 1

    def disconnected(self, agent_id: str) -> None:
        self._connections[agent_id] -= 1
        if self._connections[agent_id] <= 0:
            del self._connections[agent_id]

    def online(self) -> set[str]:
        return set(self._connections)


class SupportQueue:
    """Reads the queue; changes go through ConversationService."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], presence: AgentPresence,
                 hours: BusinessHours) -> None:
        self._sessions = sessions
        self.presence = presence
        self.hours = hours  # replaced when an admin saves new hours

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return self._sessions

    def team_available(self, now: datetime) -> bool:
        return self.hours.is_open(now) and bool(self.presence.online())

    async def waiting(self) -> list[tuple[Conversation, Contact]]:
        """Waiting conversations, highest priority first, then longest waiting."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Conversation, Contact)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.status == ConversationStatus.WAITING.value)
                .order_by(Conversation.priority.desc(), Conversation.waiting_since,
                          Conversation.id)
            )
            return [(c, k) for c, k in rows.tuples()]

    async def assigned_to(self, agent_id: str) -> list[tuple[Conversation, Contact]]:
        async with self._sessions() as session:
            rows = await session.execute(
                select(Conversation, Contact)
                .join(Contact, Contact.id == Conversation.contact_id)
                .where(Conversation.status == ConversationStatus.WITH_AGENT.value,
                       Conversation.assignee_id == agent_id)
                .order_by(Conversation.last_message_at.desc())
            )
            return [(c, k) for c, k in rows.tuples()]

    async def spot(self, conversation_id: str) -> QueueSpot | None:
        """Where a waiting conversation stands and roughly how long until a person answers."""
        async with self._sessions() as session:
            me = await session.get(Conversation, conversation_id)
            if me is None or me.status != ConversationStatus.WAITING.value or not me.waiting_since:
                return None
            ahead = await session.scalar(
                select(func.count()).select_from(Conversation).where(
                    Conversation.status == ConversationStatus.WAITING.value,
                    or_(Conversation.priority > me.priority,
                        and_(Conversation.priority == me.priority,
                             Conversation.waiting_since < me.waiting_since)),
                )
            )
            handling = await self._handling_minutes(session)
        position = int(ahead or 0) + 1
        agents = max(len(self.presence.online()), 1)
        return QueueSpot(position, max(1, math.ceil(position * handling / agents)))

    @staticmethod
    async def _handling_minutes(session: AsyncSession) -> float:
        """Mean minutes from claim to resolution over the last 50 resolved conversations."""
        claims = (
            select(ConversationEvent.conversation_id,
                   func.max(ConversationEvent.created_at).label("claimed_at"))
            .where(ConversationEvent.type == "claimed")
            .group_by(ConversationEvent.conversation_id)
            .subquery()
        )
        rows = (await session.execute(
            select(claims.c.claimed_at, Conversation.resolved_at)
            .join(Conversation, Conversation.id == claims.c.conversation_id)
            .where(Conversation.resolved_at.is_not(None))
            .order_by(Conversation.resolved_at.desc()).limit(50)
        )).all()
        durations = [
            (resolved - claimed).total_seconds() / 60
            for claimed, resolved in rows
            if claimed and resolved and resolved > claimed
        ]
        return sum(durations) / len(durations) if len(durations) >= 5 else DEFAULT_HANDLING_MINUTES
