"""The plain HTTP channel: start a conversation, send a message, read the transcript.

POST /api/conversations                       -> 201 {id, token, status}
POST /api/conversations/{id}/messages         -> 200 {message, replies, status, duplicate}
GET  /api/conversations/{id}                  -> 200 {id, status, channel, ...}
GET  /api/conversations/{id}/messages?after=N -> 200 {messages: [...]}
All but the first need `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handoff.appkeys import QUEUE, ROUTER, SERVICE, SETTINGS
from handoff.conversations.message_text import clean_message_text
from handoff.conversations.models import Conversation
from handoff.conversations.views import conversation_json, message_json
from handoff.http import BadRequest, bearer_token, read_json_object

CHANNEL = "api"
routes = web.RouteTableDef()


def _optional_str(body: dict[str, Any], key: str, max_len: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise BadRequest(f"'{key}' must be a string of at most {max_len} characters")
    return value.strip() or None


async def _authorised(request: web.Request) -> Conversation:
    return await request.app[SERVICE].authenticate(
        request.match_info["conversation_id"], bearer_token(request)
    )


@routes.post("/api/conversations")
async def start_conversation(request: web.Request) -> web.Response:
    body = await read_json_object(request) if request.body_exists else {}
    conversation, token = await request.app[SERVICE].start(
        channel=CHANNEL,
        language=_optional_str(body, "language", 16),
        contact_name=_optional_str(body, "name", 200),
        contact_email=_optional_str(body, "email", 320),
    )
    return web.json_response({**conversation_json(conversation), "token": token}, status=201)


@routes.get("/api/conversations/{conversation_id}")
async def show_conversation(request: web.Request) -> web.Response:
    """The conversation's status and, while waiting for a person, its place in the queue."""
    conversation = await _authorised(request)
    spot = await request.app[QUEUE].spot(conversation.id)
    queue = {"position": spot.position, "eta_minutes": spot.eta_minutes} if spot else None
    return web.json_response({**conversation_json(conversation), "queue": queue})


@routes.post("/api/conversations/{conversation_id}/messages")
async def send_message(request: web.Request) -> web.Response:
    conversation = await _authorised(request)
    body = await read_json_object(request)
    text = clean_message_text(body.get("text"), request.app[SETTINGS].max_message_chars)
    source_id = _optional_str(body, "client_message_id", 128)
    result = await request.app[ROUTER].handle_incoming(conversation.id, text, source_id, CHANNEL)
    return web.json_response(
        {
            "message": message_json(result.message),
            "replies": [message_json(m) for m in result.replies],
            "status": result.status,
            "duplicate": result.duplicate,
        }
    )


@routes.get("/api/conversations/{conversation_id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    conversation = await _authorised(request)
    try:
        after = int(request.query.get("after", "0"))
    except ValueError:
        raise BadRequest("'after' must be a message id (a whole number)") from None
    messages = await request.app[SERVICE].transcript(conversation.id, after_id=after)
    return web.json_response({"messages": [message_json(m) for m in messages]})
