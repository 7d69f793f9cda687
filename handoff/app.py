"""The web service's app factory: wires the database, the Rasa client and the channels."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from sqlalchemy import text

from handoff import migrate
from handoff.appkeys import ENGINE, ROUTER, SERVICE, SETTINGS
from handoff.assistant import AssistantClient
from handoff.channels import http_api
from handoff.config import Settings
from handoff.conversations.router import MessageRouter
from handoff.conversations.service import ConversationService
from handoff.db import create_engine, session_factory
from handoff.http import MAX_BODY_BYTES, error_middleware
from handoff.locks import ConversationLocks

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
        service = ConversationService(session_factory(engine))
        assistant = AssistantClient(
            http, settings.rasa_url, settings.rasa_token, settings.rasa_timeout_seconds
        )
        app[ENGINE] = engine
        app[SERVICE] = service
        app[ROUTER] = MessageRouter(service, assistant, ConversationLocks())
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
