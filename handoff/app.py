"""The web service's app factory: wires the database, the Rasa client and the channels."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware
from redis.asyncio import BlockingConnectionPool, Redis
from sqlalchemy import text

from handoff import invoices, preflight
from handoff.agents.service import AgentService
from handoff.appkeys import (
    AGENTS,
    ENGINE,
    FANOUT,
    JOBS,
    MESSAGING,
    QUEUE,
    ROUTER,
    SERVICE,
    SETTINGS,
)
from handoff.assistant import AssistantClient
from handoff.channels import http_api, telegram, whatsapp, widget, widget_assets
from handoff.channels.messaging import ChannelAdapter, MessagingHub
from handoff.config import Settings
from handoff.console import api as console_api
from handoff.console import live as console_live
from handoff.console import pages as console_pages
from handoff.contacts import api as contacts_api
from handoff.contacts.audit import AuditTrail
from handoff.contacts.privacy import PrivacyService
from handoff.contacts.search import ContactSearch
from handoff.contacts.service import ContactService, link_verified
from handoff.conversations.nps import NpsSurvey
from handoff.conversations.router import MessageRouter
from handoff.conversations.service import ConversationService
from handoff.db import create_engine, session_factory
from handoff.db_locks import DatabaseLocks
from handoff.fanout import MESSAGES_TOPIC, QUEUE_TOPIC, Fanout
from handoff.http import MAX_BODY_BYTES, error_middleware
from handoff.jobs import SingleRunner, sweep_unrouted
from handoff.locks import ConversationLocks
from handoff.presence import SharedPresence
from handoff.proxy import forwarded_middleware
from handoff.queue import AgentPresence, SupportQueue
from handoff.redis_backplane import RedisFanout, RedisLocks
from handoff.repeat_answers import RepeatAnswers, index_stamp
from handoff.reports import api as reports_api
from handoff.reports.catch_up import keep_projection_current
from handoff.team_settings import follow_business_hours, load_business_hours
from handoff.webhooks import WebhookSender

logger = logging.getLogger(__name__)
# redis-py's default pool opens a connection for every command in flight, keeps them all
# (the soak saw each burst leave the web services more connections to Redis) and past 100
# refuses the command ("Too many connections": a lock then fell back to the database). This
# pool is smaller and a burst waits for a free connection instead; commands take microseconds,
# the pub/sub listener holds one for good.
REDIS_MAX_CONNECTIONS = 32
REDIS_POOL_WAIT_SECONDS = 5.0


def create_app(settings: Settings) -> web.Application:
    """The web service, ready for `web.run_app` or a test client."""
    middlewares: list[Middleware] = [error_middleware]
    if settings.trusted_proxies:  # the customer's address, not nginx's (handoff/proxy.py)
        middlewares.insert(0, forwarded_middleware(settings.trusted_proxies))
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    app[SETTINGS] = settings
    app[widget.LIMITS] = widget.make_limiters(settings)
    app.cleanup_ctx.append(_conversations)
    app.on_startup.append(_first_admin)
    app.on_startup.append(_reroute_unrouted)
    app.router.add_get("/health", health)
    app.add_routes(http_api.routes)
    app.add_routes(widget.routes)
    app.add_routes(whatsapp.routes)
    app.add_routes(telegram.routes)
    app.add_routes(widget_assets.routes)
    app.add_routes(console_api.routes)
    app.add_routes(console_live.routes)
    app.add_routes(console_pages.routes)
    app.add_routes(contacts_api.routes)
    app.add_routes(reports_api.routes)
    app.add_routes(invoices.routes)
    return app


def redis_client(url: str) -> Redis:
    """One instance's client: a bounded pool that waits for a free connection in a burst."""
    return Redis.from_pool(BlockingConnectionPool.from_url(
        url, socket_connect_timeout=2, max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_WAIT_SECONDS, client_name="support-web"))


async def _conversations(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = create_engine(settings.database_url)
    redis = redis_client(settings.redis_url) if settings.redis_url else None
    try:
        await preflight.check(settings, engine, redis)
    except BaseException:
        await engine.dispose()
        if redis is not None:
            await redis.aclose()
        raise
    async with aiohttp.ClientSession() as http:
        sessions = session_factory(engine)
        service = ConversationService(sessions, record_hooks={"identity_verified": link_verified})
        assistant = AssistantClient(http, settings.rasa_urls or (settings.rasa_url,),
                                    settings.rasa_token, settings.rasa_timeout_seconds)
        hours = await load_business_hours(sessions) or settings.business_hours
        presence = SharedPresence(redis, settings.redis_prefix) if redis else AgentPresence()
        queue = SupportQueue(sessions, presence, hours)
        fanout: Fanout = RedisFanout(redis, settings.redis_prefix) if redis else Fanout()
        # while Redis is down, a conversation's lock is an advisory lock on an engine of its own
        lock_engine = create_engine(settings.database_url, pool_size=5) if redis else None
        locks: ConversationLocks | RedisLocks = (
            RedisLocks(redis, settings.redis_prefix, fallback=DatabaseLocks(lock_engine))
            if redis and lock_engine else ConversationLocks())
        if isinstance(fanout, RedisFanout):
            await fanout.start()
        app[ENGINE] = engine
        app[SERVICE] = service
        app[QUEUE] = queue
        app[FANOUT] = fanout
        app[AGENTS] = AgentService(sessions)
        app[contacts_api.CONTACTS] = ContactService(sessions)
        app[contacts_api.PRIVACY] = privacy = PrivacyService(sessions, settings.retention_days)
        app[contacts_api.SEARCH] = ContactSearch(sessions)
        app[contacts_api.AUDIT] = AuditTrail(sessions)
        repeats = RepeatAnswers(settings.repeat_answers_seconds,
                                stamp=index_stamp(settings.knowledge_index_dir))
        app[ROUTER] = MessageRouter(service, assistant, locks, queue, fanout,
                                    settings.handoff_policy,
                                    NpsSurvey(sessions, settings.nps_every_days), repeats)
        adapters: dict[str, ChannelAdapter] = {}
        if settings.whatsapp:
            adapters[whatsapp.CHANNEL] = whatsapp.WhatsAppAdapter(settings.whatsapp, http)
        if settings.telegram:
            adapters[telegram.CHANNEL] = telegram.TelegramAdapter(settings.telegram, http)
        hub = MessagingHub(sessions, service, app[ROUTER], adapters, settings.max_message_chars)
        app[MESSAGING] = hub
        # Jobs that read an outbox run on one instance at a time (handoff/jobs.py).
        app[JOBS] = jobs = SingleRunner(engine)
        tasks = [asyncio.create_task(jobs.run("reroute", lambda: sweep_unrouted(
            app[ROUTER].reroute_unrouted, settings.reroute_every_seconds))),
                 asyncio.create_task(jobs.run("reports", lambda: keep_projection_current(sessions)))]
        if isinstance(presence, SharedPresence):
            tasks.append(asyncio.create_task(presence.run()))
            tasks.append(asyncio.create_task(
                follow_business_hours(fanout, queue, settings.business_hours)))
        if adapters:
            tasks += [asyncio.create_task(jobs.run("messaging", hub.run)),
                      asyncio.create_task(_wake_on(fanout, MESSAGES_TOPIC, hub.wake,
                                                   lambda event: _concerns(event, adapters)))]
        if settings.webhook_url:
            sender = WebhookSender(sessions, http, settings.webhook_url, settings.webhook_secret)
            tasks += [asyncio.create_task(jobs.run("webhooks", sender.run)),
                      asyncio.create_task(_wake_on(fanout, QUEUE_TOPIC, sender.wake))]
        if settings.retention_days:
            tasks.append(asyncio.create_task(jobs.run(
                "retention", lambda: contacts_api.purge_periodically(privacy))))
        yield
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if isinstance(presence, SharedPresence):
            await presence.leave()
        if isinstance(fanout, RedisFanout):
            await fanout.close()
        if redis is not None:
            await redis.aclose()
        if lock_engine is not None:
            await lock_engine.dispose()
    await engine.dispose()


async def _wake_on(fanout: Fanout, topic: str, wake: asyncio.Event,
                   wanted: Callable[[dict[str, Any]], bool] = lambda event: True) -> None:
    """Wakes a background sender when its topic announces work, instead of at its next poll."""
    async with fanout.subscribe(topic) as events:
        while True:
            if wanted(await events.get()):
                wake.set()


def _concerns(event: dict[str, Any], channels: Iterable[str]) -> bool:
    """Whether stored messages may need the outbox: widget traffic does not (each wake costs
    the outbox three queries). An event that names no channels wakes it, to be safe."""
    named = event.get("channels")
    return not isinstance(named, list) or any(channel in named for channel in channels)


async def _first_admin(app: web.Application) -> None:
    """A fresh install gets one admin, so someone can log in to the console and add agents."""
    agents = app[AGENTS]
    if await agents.count():
        return
    settings = app[SETTINGS]
    password = settings.admin_password or secrets.token_urlsafe(12)
    await agents.create(settings.admin_email, "Admin", password, role="admin", max_chats=5)
    if not settings.admin_password:
        settings.admin_password_file.parent.mkdir(parents=True, exist_ok=True)
        settings.admin_password_file.write_text(
            f"{settings.admin_email}\n{password}\n", encoding="utf-8")
        settings.admin_password_file.chmod(0o600)
        logger.info("created console admin %s; password in %s", settings.admin_email,
                    settings.admin_password_file)


async def _reroute_unrouted(app: web.Application) -> None:
    """Messages accepted before a crash but never answered are answered now."""
    count = await app[ROUTER].reroute_unrouted()
    if count:
        logger.info("routed %d message(s) left unrouted by an earlier run", count)


async def health(request: web.Request) -> web.Response:
    async with request.app[ENGINE].connect() as connection:
        await connection.execute(text("SELECT 1"))
    return web.json_response({"status": "ok"})
