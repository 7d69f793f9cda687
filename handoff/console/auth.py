"""Who is calling the console: the session cookie, its CSRF token, and the agent's role."""

from __future__ import annotations

from aiohttp import web

from handoff.agents.models import Agent, Role
from handoff.appkeys import AGENTS
from handoff.conversations.errors import ConversationError
from handoff.http import Unauthorized

COOKIE = "support_console"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class Forbidden(ConversationError):
    status = 403


async def current_agent(request: web.Request) -> tuple[Agent, str]:
    """The logged-in agent and their CSRF token; state changes must echo that token."""
    token = request.cookies.get(COOKIE)
    found = await request.app[AGENTS].by_session(token) if token else None
    if found is None:
        raise Unauthorized("log in to the console first")
    agent, csrf = found
    if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != csrf:
        raise Forbidden(f"missing or wrong {CSRF_HEADER} header")
    return agent, csrf


async def current_admin(request: web.Request) -> Agent:
    agent, _ = await current_agent(request)
    if agent.role != Role.ADMIN.value:
        raise Forbidden("only admins may do this")
    return agent


async def current_manager(request: web.Request, doing: str = "see the reports") -> Agent:
    """Managers and admins read the reports and the audit trail, export and erase; agents cannot."""
    agent, _ = await current_agent(request)
    if agent.role not in (Role.MANAGER.value, Role.ADMIN.value):
        raise Forbidden(f"only managers and admins may {doing}")
    return agent


def set_session_cookie(response: web.StreamResponse, token: str, secure: bool) -> None:
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure,
                        path="/console", max_age=12 * 3600)
