"""The console's contact API and page. Same rules as handoff/console/api.py: session cookie,
CSRF header on every change. Export, erasure and the audit trail are for managers and admins."""

from __future__ import annotations

import asyncio
import logging
from aiohttp import web

from handoff.agents.models import Agent, Role
from handoff.appkeys import AGENTS
from handoff.console.auth import Forbidden, current_agent
from handoff.console.pages import CONSOLE_DIR, serve_file
from handoff.contacts.privacy import PrivacyService, audit_json
from handoff.contacts.service import ContactNotFound, ContactService, parse_edit
from handoff.conversations.models import utcnow
from handoff.http import BadRequest, read_json_object

logger = logging.getLogger(__name__)
CONTACTS = web.AppKey("contact_service", ContactService)
PRIVACY = web.AppKey("privacy_service", PrivacyService)
PRIVACY_ROLES = (Role.ADMIN.value, Role.MANAGER.value)
PURGE_EVERY_SECONDS = 3600
MAX_ID = 64

routes = web.RouteTableDef()


async def privacy_officer(request: web.Request) -> Agent:
    """Exports and erasures are for managers and admins only."""
    agent, _ = await current_agent(request)
    if agent.role not in PRIVACY_ROLES:
        raise Forbidden("only managers and admins may export or erase a contact")
    return agent


def _contact_id(request: web.Request) -> str:
    contact_id = request.match_info["contact_id"]
    if len(contact_id) > MAX_ID:  # no id is this long: the same 404 as any unknown id
        raise ContactNotFound("contact not found")
    return contact_id


@routes.get("/console/contacts/{contact_id}")
async def contact_page(request: web.Request) -> web.FileResponse:
    """The contact page (its script loads the data; no login: the API asks for one)."""
    return serve_file(CONSOLE_DIR / "contact.html", "text/html; charset=utf-8")


@routes.get("/console/api/contacts/{contact_id}")
async def view(request: web.Request) -> web.Response:
    await current_agent(request)
    return web.json_response(await request.app[CONTACTS].view(_contact_id(request)))


@routes.patch("/console/api/contacts/{contact_id}")
async def edit(request: web.Request) -> web.Response:
    """Name, notes and tags, e.g. {"name": "Dana", "tags": ["vip"]}; anything else is a 400."""
    await current_agent(request)
    contact_id = _contact_id(request)
    edited = parse_edit(await read_json_object(request))
    return web.json_response({"contact": await request.app[CONTACTS].edit(contact_id, edited)})


@routes.post("/console/api/contacts/{contact_id}/export")
async def export(request: web.Request) -> web.Response:
    """Everything stored about the contact, as a JSON download (card numbers masked)."""
    agent = await privacy_officer(request)
    contact_id = _contact_id(request)
    names = {a.id: a.name for a in await request.app[AGENTS].all()}
    record = await request.app[PRIVACY].export(contact_id, agent.id, names)
    return web.json_response(record, headers={
        "Content-Disposition": f'attachment; filename="contact-{contact_id}.json"',
        "Cache-Control": "no-store"})


@routes.post("/console/api/contacts/{contact_id}/erase")
async def erase(request: web.Request) -> web.Response:
    """Erases the contact; the body must be {"confirm": "<contact id>"} so no click erases by accident."""
    agent = await privacy_officer(request)
    contact_id = _contact_id(request)
    body = await read_json_object(request)
    if body.get("confirm") != contact_id:
        raise BadRequest("to erase, send {\"confirm\": \"<the contact's id>\"}")
    counts = await request.app[PRIVACY].erase(contact_id, agent.id)
    return web.json_response({"erased": contact_id, **counts})


@routes.get("/console/api/audit")
async def audit(request: web.Request) -> web.Response:
    """The privacy audit trail, newest first (?contact_id= for one contact, ?limit= up to 500)."""
    await privacy_officer(request)
    raw_limit = request.query.get("limit", "100")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 500:
        raise BadRequest("'limit' must be a whole number from 1 to 500")
    contact_id = request.query.get("contact_id")
    if contact_id is not None and not 0 < len(contact_id) <= MAX_ID:
        raise BadRequest("'contact_id' is not a contact id")
    entries = await request.app[PRIVACY].audit(contact_id, int(raw_limit))
    return web.json_response({"entries": [audit_json(e) for e in entries]})


async def purge_periodically(privacy: PrivacyService,
                             every_seconds: float = PURGE_EVERY_SECONDS) -> None:
    """Runs the retention purge now and then every hour; a failure is logged and retried."""
    while True:
        try:
            purged = await privacy.purge_expired(utcnow())
            if purged:
                logger.info("retention: anonymised %d message(s) older than %d days",
                            purged, privacy.retention_days)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("retention purge failed; trying again later")
        await asyncio.sleep(every_seconds)
