"""The console's live feed: queue changes and new messages of the conversations an agent opens.

Client -> server: {"type": "watch", "conversation_id": "..."} / {"type": "unwatch", ...}.
Server -> client: {"type": "queue", ...}, {"type": "message", "message": {...}},
{"type": "resync"} (events may have been missed, e.g. while Redis was down: read the queue
and the open conversation again) and {"type": "watched"/"unwatched", "conversation_id": ...}
acknowledging a command.
The socket only carries notifications; every change goes through the JSON API.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from aiohttp import WSMsgType, web

from handoff.appkeys import FANOUT, QUEUE, SETTINGS
from handoff.console.auth import Forbidden, current_agent
from handoff.fanout import QUEUE_TOPIC, conversation_topic

routes = web.RouteTableDef()


def _origin_allowed(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}"
    return origin is None or origin == own or origin in request.app[SETTINGS].console_origins


@routes.get("/console/ws")
async def console_socket(request: web.Request) -> web.StreamResponse:
    if not _origin_allowed(request):
        raise Forbidden("this origin may not open the console")
    agent, _ = await current_agent(request)
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    presence, fanout = request.app[QUEUE].presence, request.app[FANOUT]
    presence.connected(agent.id)
    watched: set[str] = set()
    async with fanout.subscribe(QUEUE_TOPIC) as events:
        fanout.publish(QUEUE_TOPIC, {"type": "queue", "agents_online": True})
        sender = asyncio.create_task(_forward(events, socket))
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                command = _parse(frame.data)
                if command is None:
                    await socket.send_json({"type": "error", "error": "send JSON commands"})
                    continue
                topic = conversation_topic(str(command.get("conversation_id", "")))
                if command.get("type") == "watch":
                    fanout.add(topic, events)
                    watched.add(topic)
                elif command.get("type") == "unwatch":
                    fanout.remove(topic, events)
                    watched.discard(topic)
                else:
                    await socket.send_json({"type": "error", "error": "unknown command"})
                    continue
                # Acknowledged through the same queue, so it arrives in order with events.
                events.put_nowait({"type": f"{command['type']}ed",
                                   "conversation_id": command.get("conversation_id")})
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            for topic in watched:
                fanout.remove(topic, events)
            presence.disconnected(agent.id)
            fanout.publish(QUEUE_TOPIC, {"type": "queue", "agents_online": True})
    return socket


def _parse(data: str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def _forward(events: asyncio.Queue[dict[str, Any]], socket: web.WebSocketResponse) -> None:
    while True:
        event = await events.get()
        if socket.closed:
            return
        await socket.send_json(event)
