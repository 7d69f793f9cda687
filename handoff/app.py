"""The web service's app factory: wires the database, the Rasa client and the channels."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from sqlalchemy import text

from handoff import migrate
from handoff.agents.service import AgentService
from handoff.appkeys import AGENTS, ENGINE, FANOUT, QUEUE, ROUTER, SERVICE, SETTINGS
from handoff.assistant import AssistantClient
from handoff.channels import http_api
from handoff.config import Settings
from handoff.conversations.router import MessageRouter
from handoff.conversations.service import ConversationService
from handoff.db import create_engine, session_factory
from handoff.http import MAX_BODY_BYTES, error_middleware
from handoff.fanout import Fanout
from handoff.locks import ConversationLocks
from handoff.queue import AgentPresence, SupportQueue

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> web.Application:
    """The web service, ready for `web.run_app` or a test client."""
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_conversations)
    app.on_startup.append(_reroute_unrouted)
    app.router.add_get("/health", health)
    app.add_routes(http_api.routes)
    return app


async def _conversations(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    await migrate.upgrade(engine)
    async with aiohttp.ClientSession() as http:
        sessions = session_factory(engine)
        service = ConversationService(sessions)
        assistant = AssistantClient(
            http, settings.rasa_url, settings.rasa_token, settings.rasa_timeout_seconds
        )
        queue = SupportQueue(sessions, AgentPresence(), settings.business_hours)
        fanout = Fanout()
        app[ENGINE] = engine
        app[SERVICE] = service
        app[QUEUE] = queue
        app[FANOUT] = fanout
        app[AGENTS] = AgentService(sessions)
        app[ROUTER] = MessageRouter(service, assistant, ConversationLocks(), queue, fanout)
        yield
    await engine.dispose()


async def _reroute_unrouted(app: web.Application) -> None:
    """Messages accepted before a crash but never answered are answered now."""
    count = await app[ROUTER].reroute_unrouted()
    if count:
        logger.info("routed %d message(s) left unrouted by an earlier run", count)


async def health(request: web.Request) -> web.Response:
    async with request.app[ENGINE].connect() as connection:
        await connection.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})
