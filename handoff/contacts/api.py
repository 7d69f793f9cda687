"""The console's contact API and pages. Same rules as handoff/console/api.py: session cookie,
CSRF header on every change. Search and the contact page are for every agent; export, erasure
and the audit trail are for managers and admins. Documented in docs/console-api.md."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from aiohttp import web

from handoff.appkeys import AGENTS
from handoff.console.auth import current_agent, current_manager
from handoff.console.pages import CONSOLE_DIR, serve_file
from handoff.contacts.audit import AuditTrail, parse_filter
from handoff.contacts.privacy import PrivacyService
from handoff.contacts.search import ContactSearch, parse_query
from handoff.contacts.service import (
    CONVERSATIONS_PAGE,
    MAX_CONTACT_ID,
    ContactNotFound,
    ContactService,
    parse_edit,
)
from handoff.conversations.models import utcnow
from handoff.http import BadRequest, Unauthorized, read_json_object
from handoff.pagination import decode_cursor, page_size

logger = logging.getLogger(__name__)
CONTACTS = web.AppKey("contact_service", ContactService)
PRIVACY = web.AppKey("privacy_service", PrivacyService)
SEARCH = web.AppKey("contact_search", ContactSearch)
AUDIT = web.AppKey("audit_trail", AuditTrail)
PURGE_EVERY_SECONDS = 3600
# Page sizes: the default a page asks for, and the most one request may ask for.
SEARCH_PAGE, MAX_SEARCH_PAGE = 20, 100
MAX_CONVERSATIONS_PAGE = 100
AUDIT_PAGE, MAX_AUDIT_PAGE = 100, 500

routes = web.RouteTableDef()


def _contact_id(request: web.Request) -> str:
    contact_id = request.match_info["contact_id"]
    if len(contact_id) > MAX_CONTACT_ID:  # no id is this long: the same 404 as any unknown id
        raise ContactNotFound("contact not found")
    return contact_id


@routes.get("/console/contacts")
async def contacts_page(request: web.Request) -> web.FileResponse:
    """The contact search page (its script loads the data; no login: the API asks for one)."""
    return serve_file(CONSOLE_DIR / "contacts.html", "text/html; charset=utf-8")


@routes.get("/console/contacts/{contact_id}")
async def contact_page(request: web.Request) -> web.FileResponse:
    """The contact page (its script loads the data; no login: the API asks for one)."""
    return serve_file(CONSOLE_DIR / "contact.html", "text/html; charset=utf-8")


@routes.get("/console/audit")
async def audit_page(request: web.Request) -> web.StreamResponse:
    """The audit trail page, like the reports': log in on the console first; agents are refused."""
    try:
        await current_manager(request, "see the audit trail")
    except Unauthorized:
        raise web.HTTPFound("/console") from None
    return serve_file(CONSOLE_DIR / "audit.html", "text/html; charset=utf-8")


@routes.get("/console/api/contacts")
async def search(request: web.Request) -> web.Response:
    """Contacts matching ?q= (name, email, phone, channel id or tag), newest first, by pages:
    ?limit= (1-100, default 20) and ?cursor= (the previous page's next_cursor)."""
    await current_agent(request)
    query = parse_query(request.query.get("q"))
    limit = page_size(request.query, SEARCH_PAGE, MAX_SEARCH_PAGE)
    after = decode_cursor(request.query, (datetime, str))
    return web.json_response(await request.app[SEARCH].search(query, limit, after))


@routes.get("/console/api/contacts/{contact_id}")
async def view(request: web.Request) -> web.Response:
    """The contact page's data, with the first page of conversations (then .../conversations)."""
    await current_agent(request)
    return web.json_response(await request.app[CONTACTS].view(_contact_id(request)))


@routes.get("/console/api/contacts/{contact_id}/conversations")
async def conversations(request: web.Request) -> web.Response:
    """The contact's conversations newest first, by pages (?limit= 1-100, ?cursor=)."""
    await current_agent(request)
    contact_id = _contact_id(request)
    limit = page_size(request.query, CONVERSATIONS_PAGE, MAX_CONVERSATIONS_PAGE)
    after = decode_cursor(request.query, (datetime, str))
    return web.json_response(await request.app[CONTACTS].conversations(contact_id, limit, after))


@routes.patch("/console/api/contacts/{contact_id}")
async def edit(request: web.Request) -> web.Response:
    """Name, notes and tags, e.g. {"name": "Dana", "tags": ["vip"]}; anything else is a 400."""
    agent, _ = await current_agent(request)
    contact_id = _contact_id(request)
    edited = parse_edit(await read_json_object(request))
    return web.json_response(
        {"contact": await request.app[CONTACTS].edit(contact_id, edited, agent.id)})


@routes.post("/console/api/contacts/{contact_id}/export")
async def export(request: web.Request) -> web.Response:
    """Everything stored about the contact, as a JSON download (card numbers masked)."""
    agent = await current_manager(request, "export or erase a contact")
    contact_id = _contact_id(request)
    names = {a.id: a.name for a in await request.app[AGENTS].all()}
    record = await request.app[PRIVACY].export(contact_id, agent.id, names)
    return web.json_response(record, headers={
        "Content-Disposition": f'attachment; filename="contact-{contact_id}.json"',
        "Cache-Control": "no-store"})


@routes.post("/console/api/contacts/{contact_id}/erase")
async def erase(request: web.Request) -> web.Response:
    """Erases the contact; the body must be {"confirm": "<contact id>"} so no click erases by accident."""
    agent = await current_manager(request, "export or erase a contact")
    contact_id = _contact_id(request)
    body = await read_json_object(request)
    if body.get("confirm") != contact_id:
        raise BadRequest("to erase, send {\"confirm\": \"<the contact's id>\"}")
    counts = await request.app[PRIVACY].erase(contact_id, agent.id)
    return web.json_response({"erased": contact_id, **counts})


@routes.get("/console/api/audit")
async def audit(request: web.Request) -> web.Response:
    """The audit trail newest first, for managers and admins: ?action=, ?from=/?to= (days in
    UTC), ?contact_id=, ?limit= (1-500, default 100), ?cursor= (the last page's next_cursor)."""
    await current_manager(request, "see the audit trail")
    where = parse_filter(request.query)
    limit = page_size(request.query, AUDIT_PAGE, MAX_AUDIT_PAGE)
    after = decode_cursor(request.query, (int,))
    return web.json_response(await request.app[AUDIT].page(where, limit, after[0] if after else None))


@routes.get("/console/api/audit.csv")
async def audit_csv(request: web.Request) -> web.StreamResponse:
    """Every entry the same filters select, as CSV, streamed (no page size: all of them)."""
    await current_manager(request, "see the audit trail")
    where = parse_filter(request.query)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": 'attachment; filename="audit.csv"'})
    await response.prepare(request)
    async for chunk in request.app[AUDIT].csv_chunks(where):
        await response.write(chunk.encode("utf-8"))
    await response.write_eof()
    return response


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
