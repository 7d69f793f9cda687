"""The website widget's channel: one WebSocket per open chat window.

Protocol (JSON frames; documented for widget authors in web/widget/PROTOCOL.md):
client -> server
  {"type": "hello", "conversation_id"?, "token"?, "language"?, "after"?: last message id}
  {"type": "message", "text": "...", "client_message_id": "..."}
server -> client
  {"type": "welcome", "conversation_id", "token"?, "status"}   token only for a new chat
  {"type": "message", "message": {...}}     every customer-visible message, in stored order
  {"type": "ack", "client_message_id", "message_id", "duplicate"}
  {"type": "typing", "on": true|false}      while the assistant is working on an answer
  {"type": "queue", "position", "eta_minutes"} | {"type": "queue", "offline": true}
  {"type": "error", "error": "...", "client_message_id"?, "retry_after"?}
                                            a mistake, or a flood limit: resend after retry_after
The socket carries no state of its own: history comes from the database (`after`), and a
resent `client_message_id` is stored and answered once, so reconnects lose and repeat nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import timedelta
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from handoff.appkeys import FANOUT, QUEUE, ROUTER, SERVICE, SETTINGS
from handoff.config import Settings
from handoff.conversations.errors import ConversationError
from handoff.conversations.message_text import clean_message_text
from handoff.conversations.models import Conversation, ConversationStatus, utcnow
from handoff.conversations.views import message_json
from handoff.fanout import QUEUE_TOPIC, RESYNC, conversation_topic
from handoff.http import STORAGE_DOWN
from handoff.rate_limit import RateLimiter

CHANNEL = "widget"
# How far back a resume looks past the last message shown (transactions last seconds).
RESUME_LOOKBACK = timedelta(minutes=2)
# Marks the events a socket queues itself for the turn it just stored (`_handle`).
OWN_TURN = "own_turn"
logger = logging.getLogger(__name__)
routes = web.RouteTableDef()
LIMITS = web.AppKey("widget_limits", dict)


def make_limiters(settings: Settings) -> dict[str, RateLimiter]:
    """Messages per chat window (bursts of a third of a minute's worth), new chats per address."""
    return {
        "messages": RateLimiter(settings.widget_messages_per_minute, 60,
                                burst=max(5, settings.widget_messages_per_minute // 3)),
        "new_chats": RateLimiter(settings.widget_new_chats_per_minute, 60),
    }


class WidgetError(ConversationError):
    status = 400


async def _hello(request: web.Request, frame: dict[str, Any]) -> tuple[Conversation, str | None]:
    """Resumes the chat the token opens, or starts a new one (returning its token)."""
    service = request.app[SERVICE]
    cid, token = frame.get("conversation_id"), frame.get("token")
    if isinstance(cid, str) and isinstance(token, str):
        return await service.authenticate(cid, token), None
    language = frame.get("language")
    if language is not None and (not isinstance(language, str) or len(language) > 16):
        raise WidgetError("'language' must be a short language code")
    if request.app[LIMITS]["new_chats"].retry_after(request.remote or "unknown"):
        raise WidgetError("too many new chats from your network; please try again in a minute")
    conversation, new_token = await service.start(channel=CHANNEL, language=language)
    return conversation, new_token


@routes.get("/widget/ws")
async def widget_socket(request: web.Request) -> web.StreamResponse:
    origins = request.app[SETTINGS].widget_origins
    if origins and request.headers.get("Origin") not in origins:
        raise WidgetError("this website may not open the chat")
    socket = web.WebSocketResponse(heartbeat=25, max_msg_size=64 * 1024)
    await socket.prepare(request)
    try:
        first = await socket.receive_json(timeout=30)
        if not isinstance(first, dict) or first.get("type") != "hello":
            raise WidgetError("say hello first")
        conversation, token = await _hello(request, first)
    except (ConversationError, ValueError, TypeError, asyncio.TimeoutError) as exc:
        await socket.send_json({"type": "error", "error": str(exc) or "say hello first"})
        await socket.close()
        return socket
    except STORAGE_DOWN as exc:
        await close_for_resume(socket, "hello", exc)
        return socket
    try:
        await _serve(request, socket, conversation, token, first.get("after"))
    except STORAGE_DOWN as exc:  # a message could not be stored: the widget sends it again
        await close_for_resume(socket, conversation.id, exc)
    return socket


async def close_for_resume(socket: web.WebSocketResponse, where: str, exc: BaseException) -> None:
    """Closes a socket whose database is out of reach (restarting) with 1011, so the widget
    reconnects and resumes from the database, sending again what was not acknowledged.
    Letting the error reach the HTTP edge would write a 503 response into the open
    WebSocket, which the browser reads as a broken frame."""
    logger.warning("widget socket (%s): storage unavailable (%r); closing it for a resume",
                   where, exc)
    if not socket.closed:
        await socket.close(code=WSCloseCode.INTERNAL_ERROR, message=b"storage unavailable")


async def _serve(request: web.Request, socket: web.WebSocketResponse, conversation: Conversation,
                 token: str | None, after: Any) -> None:
    app = request.app
    fanout = app[FANOUT]
    async with fanout.subscribe(conversation_topic(conversation.id), QUEUE_TOPIC) as events:
        welcome: dict[str, Any] = {"type": "welcome", "conversation_id": conversation.id,
                                   "status": conversation.status}
        if token:
            welcome["token"] = token
        await socket.send_json(welcome)
        if token:  # opened just now by this socket: nothing said yet, not in the queue
            sent: set[int] = set()
        else:
            sent = await _send_history(request, socket, conversation.id, after_id(after))
            await _send_queue(request, socket, conversation.id)
        waiting = conversation.status == ConversationStatus.WAITING.value
        pusher = asyncio.create_task(_push(
            request, socket, conversation.id, events, max(sent, default=after_id(after)),
            waiting, sent))
        try:
            async for frame in socket:
                if frame.type != WSMsgType.TEXT:
                    continue
                await _handle(request, socket, conversation.id, frame.data, events)
        finally:
            pusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pusher


def after_id(after: Any) -> int:
    return after if isinstance(after, int) else 0


async def _send_history(request: web.Request, socket: web.WebSocketResponse,
                        conversation_id: str, after: int) -> set[int]:
    """Sends what came after `after`; returns the ids sent, so a notification of one of them
    arriving later is not sent again (the subscription began before the history was read).

    A resume also gets the messages of the last `RESUME_LOOKBACK`, whatever their id: on
    PostgreSQL a message can commit after a newer one was shown, and if its notification died
    with the instance the customer was on, `after` alone skips it for good (the fault run lost
    one that way). The widget drops ids it has shown."""
    sent = set()
    since = utcnow() - RESUME_LOOKBACK if after else None
    for message in await request.app[SERVICE].transcript(conversation_id, after_id=after,
                                                         or_since=since):
        await socket.send_json({"type": "message", "message": message_json(message)})
        sent.add(message.id)
    return sent


async def _send_queue(request: web.Request, socket: web.WebSocketResponse,
                      conversation_id: str) -> None:
    spot = await request.app[QUEUE].spot(conversation_id)
    if spot is not None:
        await socket.send_json({"type": "queue", "position": spot.position,
                                "eta_minutes": spot.eta_minutes})


def still_waiting(waiting: bool, payload: dict[str, Any] | None) -> bool:
    """Whether the chat is in the queue after a message with this payload (the same activity
    markers the widget shows: handoff and queue place in, an agent joining or a close out)."""
    payload = payload or {}
    transfer = payload.get("transfer") or {}
    if "handoff" in payload or "queue" in payload or "to_skill" in transfer:
        return True
    if {"agent_joined", "resolved", "returned_to_bot"} & payload.keys() or "to_agent" in transfer:
        return False
    return waiting


async def _push(request: web.Request, socket: web.WebSocketResponse, conversation_id: str,
                events: asyncio.Queue[dict[str, Any]], last_sent: int, waiting: bool,
                sent: set[int]) -> None:
    """Forwards what `_forward` finds; if the database cannot be read (restarting), closes
    the socket: the widget reconnects and resumes from the database, instead of staying on
    a socket that would never push again (the cluster fault run found such deaf sockets)."""
    try:
        await _forward(request, socket, conversation_id, events, last_sent, waiting, sent)
    except STORAGE_DOWN as exc:  # the same errors the HTTP edge answers with 503
        await close_for_resume(socket, conversation_id, exc)


async def _forward(request: web.Request, socket: web.WebSocketResponse, conversation_id: str,
                   events: asyncio.Queue[dict[str, Any]], last_sent: int, waiting: bool,
                   sent: set[int]) -> None:
    """Forwards new customer-visible messages (never private notes) and queue moves.

    The queue is asked for this chat's place only while the chat waits: with thousands of
    chats open, a queue change must not cost a query for each of them.
    """
    last_spot: tuple[int, int] | None = None
    reliable = request.app[FANOUT].reliable

    async def tell_place() -> None:
        nonlocal last_spot
        spot = await request.app[QUEUE].spot(conversation_id)
        current = (spot.position, spot.eta_minutes) if spot else None
        if spot is not None and current != last_spot:
            await socket.send_json({"type": "queue", "position": spot.position,
                                    "eta_minutes": spot.eta_minutes})
        last_spot = current

    while not socket.closed:
        batch = [await events.get()]
        while not events.empty():
            batch.append(events.get_nowait())
        queue_moved = any(event["topic"] == QUEUE_TOPIC for event in batch)
        notified = [event["message"] for event in batch if event.get("type") == "message"
                    and event.get("message") and not event["message"].get("private")]
        new = {m["id"] for m in notified if m["id"] > last_sent}
        own = {event["message"]["id"] for event in batch if event.get(OWN_TURN)}
        if any(event.get("type") == RESYNC for event in batch) or (
                new and not (reliable and new <= own)):
            # Events of one conversation can arrive out of id order (an agent's join notice
            # published while the assistant's turn is still being stored): the database, not
            # the event, says what comes next, so nothing is skipped or sent twice.
            # Not read for this socket's own turn when no event can be missed (one instance):
            # the turn's messages are all there, a message of another writer still arrives
            # by its own event, and the customer's answer waits for no read (bench/load).
            messages: list[dict[str, Any]] = [message_json(m) for m in await request.app[
                SERVICE].transcript(conversation_id, after_id=last_sent)]
        else:
            messages = sorted((m for m in notified if m["id"] in new), key=lambda m: m["id"])
        # A message committed after a higher id was already sent (PostgreSQL commit order):
        # late, but never lost.
        messages += [m for m in notified if m["id"] <= last_sent and m["id"] not in sent]
        for message in messages:
            if message["id"] in sent:
                continue
            sent.add(message["id"])
            last_sent = max(last_sent, message["id"])
            await socket.send_json({"type": "message", "message": message})
            was_waiting, waiting = waiting, still_waiting(waiting, message.get("payload"))
            if waiting and not was_waiting:  # just joined the queue: its place, right away
                await tell_place()
                queue_moved = False
        if queue_moved and waiting:
            await tell_place()


async def _handle(request: web.Request, socket: web.WebSocketResponse, conversation_id: str,
                  data: str, events: asyncio.Queue[dict[str, Any]]) -> None:
    try:
        frame = json.loads(data)
    except ValueError:
        await socket.send_json({"type": "error", "error": "frames must be JSON"})
        return
    if not isinstance(frame, dict) or frame.get("type") != "message":
        await socket.send_json({"type": "error", "error": "unknown frame type"})
        return
    client_id = frame.get("client_message_id")
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 128):
        await socket.send_json({"type": "error", "error": "'client_message_id' must be a short string"})
        return
    wait = request.app[LIMITS]["messages"].retry_after(conversation_id)
    if wait:
        # Not stored; the widget keeps it and sends it again after `retry_after` seconds.
        await socket.send_json({"type": "error", "error": "you are sending messages very fast",
                                "client_message_id": client_id, "retry_after": round(wait, 1)})
        return
    try:
        text = clean_message_text(frame.get("text"), request.app[SETTINGS].max_message_chars)
    except ConversationError as exc:
        await socket.send_json({"type": "error", "error": str(exc),
                                "client_message_id": client_id})
        return
    typing = False

    async def thinking() -> None:  # only while the assistant, not a person, has the chat
        nonlocal typing
        typing = True
        await socket.send_json({"type": "typing", "on": True})

    try:
        result = await request.app[ROUTER].handle_incoming(
            conversation_id, text, client_id, CHANNEL, on_thinking=thinking)
        # The message and its answers reach this socket through its own queue as well as the
        # fan-out: a notice lost while Redis restarts must not leave the customer without
        # the answer the ack promises (the push sends each id once).
        for message in (result.message, *result.replies):
            if not message.private:
                events.put_nowait({"topic": conversation_topic(conversation_id),
                                   "type": "message", "message": message_json(message),
                                   OWN_TURN: True})
    finally:
        if typing and not socket.closed:
            await socket.send_json({"type": "typing", "on": False})
    # The ids of this message's replies: a client knows when its answer is complete.
    await socket.send_json({"type": "ack", "client_message_id": client_id,
                            "message_id": result.message.id, "duplicate": result.duplicate,
                            "reply_ids": [m.id for m in result.replies if not m.private]})
