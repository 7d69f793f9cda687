"""The console's JSON API. Every state change needs the session cookie and the CSRF header."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from handoff.agents.models import Agent
from handoff.appkeys import AGENTS, FANOUT, QUEUE, ROUTER, SERVICE, SETTINGS
from handoff.console.auth import COOKIE, current_admin, current_agent, set_session_cookie
from handoff.conversations.message_text import clean_message_text
from handoff.conversations.export import transcript_record, transcript_text
from handoff.conversations.views import contact_json, conversation_json, message_json
from handoff.http import BadRequest, read_json_object
from handoff.business_hours import BusinessHours, BusinessHoursError
from handoff.conversations.models import utcnow
from handoff.team_settings import TEAM_SETTINGS_TOPIC, save_business_hours
from knowledge.articles import load_articles

routes = web.RouteTableDef()
RESOLUTION_CODE = re.compile(r"^[a-z0-9_-]{1,64}$")


def _string(body: dict[str, Any], key: str, max_len: int = 400) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise BadRequest(f"'{key}' must be a non-empty string of at most {max_len} characters")
    return value.strip()


def _row(conversation: Any, contact: Any) -> dict[str, Any]:
    return {**conversation_json(conversation), "contact": contact_json(contact)}


@routes.post("/console/api/login")
async def login(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    agent, token, csrf = await request.app[AGENTS].log_in(
        _string(body, "email"), _string(body, "password", 1000))
    response = web.json_response({"agent": agent.public(), "csrf_token": csrf})
    set_session_cookie(response, token, secure=request.secure)
    return response


@routes.post("/console/api/logout")
async def logout(request: web.Request) -> web.Response:
    await current_agent(request)
    await request.app[AGENTS].log_out(request.cookies[COOKIE])
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path="/console")
    return response


@routes.get("/console/api/me")
async def me(request: web.Request) -> web.Response:
    agent, csrf = await current_agent(request)
    return web.json_response({"agent": agent.public(), "csrf_token": csrf})


@routes.get("/console/api/queue")
async def queue(request: web.Request) -> web.Response:
    agent, _ = await current_agent(request)
    waiting = await request.app[QUEUE].waiting()
    mine = await request.app[QUEUE].assigned_to(agent.id)
    skills = set(agent.skills or [])
    return web.json_response({
        "waiting": [{**_row(c, k), "eligible": set(c.required_skills or []) <= skills}
                    for c, k in waiting],
        "mine": [_row(c, k) for c, k in mine],
        "online_agents": len(request.app[QUEUE].presence.online()),
    })


@routes.get("/console/api/conversations/{conversation_id}")
async def conversation(request: web.Request) -> web.Response:
    """Everything the assistant knew: transcript with notes, handoff details, events."""
    await current_agent(request)
    service = request.app[SERVICE]
    conversation_id = request.match_info["conversation_id"]
    found = await service.get(conversation_id)
    contact = await service.contact(found.contact_id)
    messages = await service.transcript(conversation_id, include_private=True)
    handoffs = [m.payload["handoff"] for m in messages
                if m.message_type == "activity" and m.payload and "handoff" in m.payload]
    events = await service.events(conversation_id)
    return web.json_response({
        **_row(found, contact),
        "messages": [message_json(m) for m in messages],
        "handoff_details": handoffs,
        "events": [{"type": e.type, "data": e.data, "at": e.created_at.isoformat()}
                   for e in events],
    })


@routes.get("/console/api/conversations/{conversation_id}/export")
async def export(request: web.Request) -> web.Response:
    """The transcript as JSON (?format=json, default) or readable text (?format=text)."""
    await current_agent(request)
    fmt = request.query.get("format", "json")
    if fmt not in ("json", "text"):
        raise BadRequest("'format' must be json or text")
    service = request.app[SERVICE]
    conversation_id = request.match_info["conversation_id"]
    found = await service.get(conversation_id)
    record = transcript_record(
        found, await service.contact(found.contact_id),
        await service.transcript(conversation_id, include_private=True),
        await service.events(conversation_id),
        {a.id: a.name for a in await request.app[AGENTS].all()})
    disposition = f'attachment; filename="conversation-{conversation_id}.{"txt" if fmt == "text" else "json"}"'
    if fmt == "text":
        return web.Response(text=transcript_text(record), content_type="text/plain",
                            headers={"Content-Disposition": disposition})
    return web.json_response(record, headers={"Content-Disposition": disposition})


async def _agent_and_id(request: web.Request) -> tuple[Agent, str]:
    agent, _ = await current_agent(request)
    return agent, request.match_info["conversation_id"]


async def _changed(request: web.Request, conversation_id: str, messages: list[Any],
                   reset_assistant: bool = False) -> web.Response:
    """Tells every open screen about a status change; restarts the assistant if it takes over.

    The screens hear first: restarting Rasa's tracker takes as long as Rasa is slow (up to
    its timeout under load), and the customer should not wait that long for the close and
    the survey. A message the customer sends meanwhile waits for the restart (the router
    holds the conversation's lock for it), so the assistant still resumes from a known state.
    """
    router = request.app[ROUTER]
    router.publish_messages(conversation_id, messages)
    router.publish_queue_changed(conversation_id)
    if reset_assistant:
        await router.reset_assistant(conversation_id)
    return web.json_response({"messages": [message_json(m) for m in messages]})


@routes.post("/console/api/conversations/{conversation_id}/claim")
async def claim(request: web.Request) -> web.Response:
    agent, conversation_id = await _agent_and_id(request)
    claimed, joined = await request.app[SERVICE].claim(conversation_id, agent.id,
                                                       agent.max_chats, agent.name)
    router = request.app[ROUTER]
    router.publish_queue_changed(conversation_id)
    router.publish_messages(conversation_id, [joined])
    return web.json_response(conversation_json(claimed))


@routes.post("/console/api/conversations/{conversation_id}/messages")
async def send(request: web.Request) -> web.Response:
    agent, conversation_id = await _agent_and_id(request)
    body = await read_json_object(request)
    text = clean_message_text(body.get("text"), request.app[SETTINGS].max_message_chars)
    private = body.get("private", False)
    if not isinstance(private, bool):
        raise BadRequest("'private' must be true or false")
    message = await request.app[SERVICE].agent_message(conversation_id, agent.id, text, private)
    request.app[ROUTER].publish_messages(conversation_id, [message])
    return web.json_response(message_json(message))


@routes.post("/console/api/conversations/{conversation_id}/resolve")
async def resolve(request: web.Request) -> web.Response:
    agent, conversation_id = await _agent_and_id(request)
    code = _string(await read_json_object(request), "resolution_code", 64)
    if not RESOLUTION_CODE.match(code):
        raise BadRequest("'resolution_code' may hold a-z, 0-9, '_' and '-' only")
    messages = await request.app[SERVICE].resolve(conversation_id, agent.id, code)
    return await _changed(request, conversation_id, messages, reset_assistant=True)


@routes.post("/console/api/conversations/{conversation_id}/handback")
async def handback(request: web.Request) -> web.Response:
    agent, conversation_id = await _agent_and_id(request)
    messages = await request.app[SERVICE].return_to_bot(conversation_id, agent.id, "agent_handback")
    return await _changed(request, conversation_id, messages, reset_assistant=True)


@routes.post("/console/api/conversations/{conversation_id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    agent, conversation_id = await _agent_and_id(request)
    body = await read_json_object(request)
    to_agent = body.get("agent_id")
    skill = body.get("skill")
    if (to_agent is None) == (skill is None):
        raise BadRequest("give exactly one of 'agent_id' or 'skill'")
    if to_agent is not None:
        await request.app[AGENTS].get(_string(body, "agent_id", 32))
    messages = await request.app[SERVICE].transfer(
        conversation_id, agent.id, to_agent, _string(body, "skill", 64) if skill is not None else None)
    return await _changed(request, conversation_id, messages)


@routes.get("/console/api/canned")
async def canned(request: web.Request) -> web.Response:
    """Replies drawn from the knowledge base: article summaries matching the query words."""
    await current_agent(request)
    words = {w for w in re.findall(r"\w+", request.query.get("q", "").lower()) if len(w) > 2}
    scored = []
    for article in load_articles():
        haystack = f"{article.title} {' '.join(article.tags)} {article.summary}".lower()
        score = sum(word in haystack for word in words) if words else 1
        if score:
            scored.append((score, article))
    scored.sort(key=lambda pair: -pair[0])
    return web.json_response({"replies": [
        {"article_id": a.id, "title": a.title, "language": a.language, "text": a.summary,
         "source_url": a.source_url} for _, a in scored[:10]]})


@routes.get("/console/api/agents")
async def list_agents(request: web.Request) -> web.Response:
    await current_agent(request)
    agents = await request.app[AGENTS].all()
    online = request.app[QUEUE].presence.online()
    return web.json_response({"agents": [{**a.public(), "online": a.id in online} for a in agents]})


@routes.post("/console/api/agents")
async def create_agent(request: web.Request) -> web.Response:
    await current_admin(request)
    body = await read_json_object(request)
    skills = body.get("skills", [])
    max_chats = body.get("max_chats", 3)
    if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
        raise BadRequest("'skills' must be a list of strings")
    if not isinstance(max_chats, int):
        raise BadRequest("'max_chats' must be a whole number")
    agent = await request.app[AGENTS].create(
        _string(body, "email", 320), _string(body, "name", 200),
        _string(body, "password", 1000), str(body.get("role", "agent")), skills, max_chats)
    return web.json_response(agent.public(), status=201)


@routes.patch("/console/api/agents/{agent_id}")
async def update_agent(request: web.Request) -> web.Response:
    await current_admin(request)
    body = await read_json_object(request)
    skills = body.get("skills")
    if skills is not None and (not isinstance(skills, list)
                               or not all(isinstance(s, str) for s in skills)):
        raise BadRequest("'skills' must be a list of strings")
    for key, kind in (("max_chats", int), ("active", bool)):
        if key in body and not isinstance(body[key], kind):
            raise BadRequest(f"'{key}' has the wrong type")
    agent = await request.app[AGENTS].update(
        request.match_info["agent_id"], skills=skills, max_chats=body.get("max_chats"),
        active=body.get("active"), role=body.get("role"))
    return web.json_response(agent.public())


@routes.get("/console/api/business-hours")
async def business_hours(request: web.Request) -> web.Response:
    await current_agent(request)
    queue = request.app[QUEUE]
    return web.json_response({"hours": queue.hours.text, "timezone": queue.hours.zone.key,
                              "open_now": queue.hours.is_open(utcnow())})


@routes.put("/console/api/business-hours")
async def set_business_hours(request: web.Request) -> web.Response:
    """Admins set the team's hours, e.g. {"hours": "mon-fri 08:00-20:00", "timezone": "Europe/Berlin"}."""
    await current_admin(request)
    body = await read_json_object(request)
    try:
        hours = BusinessHours.parse(_string(body, "hours", 400), _string(body, "timezone", 64))
    except BusinessHoursError as exc:
        raise BadRequest(str(exc)) from None
    queue = request.app[QUEUE]
    await save_business_hours(queue.sessions, hours)
    queue.hours = hours
    request.app[FANOUT].publish(TEAM_SETTINGS_TOPIC, {"type": "business_hours"})
    return web.json_response({"hours": hours.text, "timezone": hours.zone.key,
                              "open_now": hours.is_open(utcnow())})
