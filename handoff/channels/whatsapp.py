"""WhatsApp Cloud API channel.

Inbound: `GET /webhooks/whatsapp` answers Meta's verification (hub.mode, hub.verify_token,
hub.challenge); `POST /webhooks/whatsapp` accepts only bodies signed with the app secret
(`X-Hub-Signature-256: sha256=<HMAC of the raw body>`), stores each text, button or list
reply once (its `wamid` is the message's source id, so Meta's retries are recognised) and
records delivery statuses. Outbound: the Graph API `/{phone-number-id}/messages`, buttons
mapped to reply buttons (up to 3) or a list (up to 10), Markdown bold turned into WhatsApp's,
and the 24-hour customer-service window respected: after it, a configured template is sent
instead, or the agent is told the message could not go out. Each send carries its
delivery's reference in `biz_opaque_callback_data`, which Meta echoes in that message's
statuses: a send whose instance died before recording it is confirmed by its status
instead of sent again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from handoff.appkeys import MESSAGING
from handoff.channels.messaging import (
    ChannelIdentity,
    InboundMessage,
    PermanentFailure,
    TemporaryFailure,
)
from handoff.channels.settings import WhatsAppSettings
from handoff.conversations.errors import ConversationError
from handoff.conversations.models import Message, utcnow
from handoff.http import Unauthorized

CHANNEL = "whatsapp"
WINDOW = timedelta(hours=24)
routes = web.RouteTableDef()


class ChannelSignatureInvalid(Unauthorized):
    """The body was not signed with the app secret: not from Meta, or altered."""


class Forbidden(ConversationError):
    status = 403


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


def parse_webhook(payload: dict[str, Any]) -> tuple[list[InboundMessage], list[dict[str, Any]]]:
    """The customer messages and the delivery statuses in one webhook body."""
    messages: list[InboundMessage] = []
    statuses: list[dict[str, Any]] = []
    for entry in payload.get("entry") or []:
        for change in entry.get("changes") or []:
            value = change.get("value") or {}
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name")
                     for c in value.get("contacts") or []}
            for item in value.get("messages") or []:
                text = _text_of(item)
                if text is None or not item.get("from") or not item.get("id"):
                    continue
                messages.append(InboundMessage(external_id=str(item["from"]),
                                               source_id=str(item["id"]), text=text,
                                               display_name=names.get(item["from"])))
            statuses.extend(value.get("statuses") or [])
    return messages, statuses


def _text_of(item: dict[str, Any]) -> str | None:
    kind = item.get("type")
    if kind == "text":
        return (item.get("text") or {}).get("body")
    if kind == "interactive":
        reply = item.get("interactive") or {}
        chosen = reply.get("button_reply") or reply.get("list_reply") or {}
        return chosen.get("id") or chosen.get("title")  # the id carries the assistant's payload
    if kind == "button":  # a template's quick-reply button
        return (item.get("button") or {}).get("payload") or (item.get("button") or {}).get("text")
    return None  # images, audio, locations: not understood yet


def whatsapp_text(text: str) -> str:
    """Markdown **bold** and __italic__ to WhatsApp's *bold* and _italic_."""
    return re.sub(r"__(.+?)__", r"_\1_", re.sub(r"\*\*(.+?)\*\*", r"*\1*", text))


def outbound_body(to: str, message: Message) -> dict[str, Any]:
    """The Graph API body for one stored message, buttons mapped to what WhatsApp allows."""
    text = whatsapp_text(message.text or "")[:4096] or " "
    buttons = [b for b in (message.payload or {}).get("buttons") or [] if b.get("title")]
    base = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": to}
    if not buttons:
        return {**base, "type": "text", "text": {"body": text, "preview_url": True}}
    if len(buttons) <= 3:
        return {**base, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": text[:1024]},
            "action": {"buttons": [{"type": "reply", "reply": {
                "id": str(b.get("payload") or b["title"])[:256], "title": str(b["title"])[:20]}}
                for b in buttons]}}}
    return {**base, "type": "interactive", "interactive": {
        "type": "list", "body": {"text": text[:4096]},
        "action": {"button": "Choose", "sections": [{"title": "Options", "rows": [
            {"id": str(b.get("payload") or b["title"])[:200], "title": str(b["title"])[:24]}
            for b in buttons[:10]]}]}}}


class WhatsAppAdapter:
    """Sends stored messages through the Graph API."""

    name = CHANNEL

    def __init__(self, settings: WhatsAppSettings, http: aiohttp.ClientSession) -> None:
        self._settings, self._http = settings, http

    async def send(self, identity: ChannelIdentity, message: Message, reference: str) -> str | None:
        body = outbound_body(identity.external_id, message)
        last = identity.last_inbound_at
        if last is None or utcnow() - last > WINDOW:
            if not self._settings.template:
                raise PermanentFailure("the customer's 24-hour WhatsApp window has closed and no "
                                       "template is configured (SUPPORT_WHATSAPP_TEMPLATE)")
            name, _, language = self._settings.template.partition(":")
            body = {"messaging_product": "whatsapp", "to": identity.external_id, "type": "template",
                    "template": {"name": name, "language": {"code": language or "en"}}}
        body["biz_opaque_callback_data"] = reference  # echoed in this message's statuses
        url = f"{self._settings.api_url.rstrip('/')}/{self._settings.phone_number_id}/messages"
        async with self._http.post(url, json=body, timeout=aiohttp.ClientTimeout(total=15),
                                   headers={"Authorization": f"Bearer {self._settings.access_token}"}) as r:
            answer = await r.json(content_type=None)
            if r.status == 429 or r.status >= 500:
                raise TemporaryFailure(f"WhatsApp answered HTTP {r.status}")
            if r.status >= 400:
                error = (answer or {}).get("error", {}).get("message", f"HTTP {r.status}")
                raise PermanentFailure(f"WhatsApp refused the message: {error}")
        return str(answer["messages"][0]["id"])


def _settings(request: web.Request) -> WhatsAppSettings:
    hub = request.app[MESSAGING]
    adapter = hub.adapters.get(CHANNEL)
    if not isinstance(adapter, WhatsAppAdapter):
        raise web.HTTPNotFound()
    return adapter._settings


@routes.get("/webhooks/whatsapp")
async def verify(request: web.Request) -> web.Response:
    settings = _settings(request)
    query = request.query
    if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
            query.get("hub.verify_token", ""), settings.verify_token):
        raise Forbidden("verification token does not match")
    return web.Response(text=query.get("hub.challenge", ""))


@routes.post("/webhooks/whatsapp")
async def receive(request: web.Request) -> web.Response:
    settings = _settings(request)
    raw = await request.read()
    if not signature_valid(settings.app_secret, raw, request.headers.get("X-Hub-Signature-256")):
        raise ChannelSignatureInvalid("X-Hub-Signature-256 does not match the body")
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ConversationError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ConversationError("the body must be a JSON object")
    hub = request.app[MESSAGING]
    messages, statuses = parse_webhook(payload)
    for inbound in messages:
        await hub.accept(CHANNEL, inbound)
    for status in statuses:
        errors = status.get("errors") or [{}]
        await hub.record_status(str(status.get("id")), str(status.get("status")),
                                errors[0].get("title"), status.get("biz_opaque_callback_data"))
    return web.json_response({"ok": True})
