"""Typed keys for the objects the web service shares between handlers."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.config import Settings
from handoff.conversations.router import MessageRouter
from handoff.agents.service import AgentService
from handoff.channels.messaging import MessagingHub
from handoff.conversations.service import ConversationService
from handoff.fanout import Fanout
from handoff.jobs import SingleRunner
from handoff.queue import SupportQueue

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", AsyncEngine)
SERVICE = web.AppKey("conversation_service", ConversationService)
ROUTER = web.AppKey("message_router", MessageRouter)
QUEUE = web.AppKey("support_queue", SupportQueue)
FANOUT = web.AppKey("fanout", Fanout)
AGENTS = web.AppKey("agent_service", AgentService)
MESSAGING = web.AppKey("messaging_hub", MessagingHub)
JOBS = web.AppKey("single_runner", SingleRunner)
