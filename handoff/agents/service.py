"""Agent accounts and console sessions: create, log in (rate-limited), look up, log out."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.agents.models import Agent, AgentSession, LoginAttempt, Role
from handoff.conversations.errors import ConversationError
from handoff.conversations.models import utcnow

SESSION_LIFETIME = timedelta(hours=12)
LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILED_LOGINS = 5
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("not-a-real-password")


class LoginFailed(ConversationError):
    status = 401


class TooManyLogins(ConversationError):
    status = 429


class InvalidAgent(ConversationError):
    status = 422


class AgentNotFound(ConversationError):
    status = 404


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AgentService:
    """Everything about agents that touches the database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def create(self, email: str, name: str, password: str, role: str = Role.AGENT.value,
                     skills: list[str] | None = None, max_chats: int = 3) -> Agent:
        email = email.strip().lower()
        if "@" not in email or len(email) > 320:
            raise InvalidAgent("email must be an email address")
        if not name.strip() or len(name) > 200:
            raise InvalidAgent("name must be 1-200 characters")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidAgent(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
        _check_role(role)
        _check_max_chats(max_chats)
        # argon2 is deliberately slow: hash off the event loop so other customers don't wait.
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        agent = Agent(email=email, name=name.strip(), password_hash=password_hash,
                      role=role, skills=sorted(set(skills or [])), max_chats=max_chats)
        try:
            async with self._sessions.begin() as session:
                session.add(agent)
        except IntegrityError:
            raise InvalidAgent(f"an agent with email {email} already exists") from None
        return agent

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(Agent)) or 0)

    async def all(self) -> list[Agent]:
        async with self._sessions() as session:
            return list(await session.scalars(select(Agent).order_by(Agent.name)))

    async def get(self, agent_id: str) -> Agent:
        async with self._sessions() as session:
            agent = await session.get(Agent, agent_id)
        if agent is None:
            raise AgentNotFound("agent not found")
        return agent

    async def update(self, agent_id: str, *, skills: list[str] | None = None,
                     max_chats: int | None = None, active: bool | None = None,
                     role: str | None = None) -> Agent:
        async with self._sessions.begin() as session:
            agent = await session.get(Agent, agent_id)
            if agent is None:
                raise AgentNotFound("agent not found")
            if skills is not None:
                agent.skills = sorted(set(skills))
            if max_chats is not None:
                agent.max_chats = _check_max_chats(max_chats)
            if active is not None:
                agent.active = active
            if role is not None:
                agent.role = _check_role(role)
        return agent

    async def log_in(self, email: str, password: str) -> tuple[Agent, str, str]:
        """(agent, session token, CSRF token); refuses after repeated failures for that email."""
        key = email.strip().lower()[:400]
        now = utcnow()
        async with self._sessions() as session:
            failures = await session.scalar(
                select(func.count()).select_from(LoginAttempt).where(
                    LoginAttempt.key == key, LoginAttempt.succeeded.is_(False),
                    LoginAttempt.at > now - LOGIN_WINDOW)
            )
            agent = await session.scalar(select(Agent).where(Agent.email == key))
        if (failures or 0) >= MAX_FAILED_LOGINS:
            raise TooManyLogins("too many failed logins; try again in 15 minutes")
        # Verify even for unknown emails, so timing does not reveal which accounts exist.
        stored = agent.password_hash if agent is not None else _DUMMY_HASH
        ok = await asyncio.to_thread(_verify, stored, password)
        ok = ok and agent is not None and agent.active
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        async with self._sessions.begin() as session:
            session.add(LoginAttempt(key=key, succeeded=ok, at=now))
            if ok and agent is not None:
                session.add(AgentSession(token_hash=_digest(token), agent_id=agent.id,
                                         csrf_token=csrf, expires_at=now + SESSION_LIFETIME))
        if not ok or agent is None:
            raise LoginFailed("wrong email or password")
        return agent, token, csrf

    async def by_session(self, token: str) -> tuple[Agent, str] | None:
        """The logged-in agent and the session's CSRF token, or None if expired or unknown."""
        # One statement: every console request passes through here.
        async with self._sessions() as session:
            found = (await session.execute(
                select(AgentSession, Agent).join(Agent, Agent.id == AgentSession.agent_id)
                .where(AgentSession.token_hash == _digest(token))
            )).first()
        if found is None:
            return None
        row, agent = found
        if row.expires_at < utcnow() or not agent.active:
            return None
        return agent, row.csrf_token

    async def log_out(self, token: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(delete(AgentSession).where(AgentSession.token_hash == _digest(token)))


def _check_role(role: str) -> str:
    if role not in {r.value for r in Role}:
        raise InvalidAgent("role must be 'agent', 'manager' or 'admin'")
    return role


def _check_max_chats(max_chats: int) -> int:
    if not 1 <= max_chats <= 50:
        raise InvalidAgent("max_chats must be between 1 and 50")
    return max_chats


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
