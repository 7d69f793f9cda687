"""Agents, their console sessions and login attempts (for rate limiting across instances)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations.models import Base, new_id, utcnow


class Role(str, enum.Enum):
    AGENT = "agent"
    ADMIN = "admin"  # also manages agents, skills and business hours
    MANAGER = "manager"  # reads the reports dashboard; answers customers like an agent


class Agent(Base):
    """A person who answers customers in the console."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))  # argon2id
    role: Mapped[str] = mapped_column(String(16), default=Role.AGENT.value)
    # e.g. ["language:he", "topic:billing"]; a conversation needing a skill goes to agents with it
    skills: Mapped[list[str]] = mapped_column(default=list)
    max_chats: Mapped[int] = mapped_column(Integer, default=3)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "email": self.email, "name": self.name, "role": self.role,
                "skills": list(self.skills or []), "max_chats": self.max_chats,
                "active": self.active}


class AgentSession(Base):
    """A logged-in console; only the token's hash is stored."""

    __tablename__ = "agent_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]


class LoginAttempt(Base):
    """One login try, kept long enough to rate-limit guessing."""

    __tablename__ = "login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(400), index=True)  # email, lower-cased
    succeeded: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
