"""Telegram Bot API channel.

Inbound: `POST /webhooks/telegram` accepts only requests carrying the secret token set with
setWebhook (`X-Telegram-Bot-Api-Secret-Token`); text messages and inline-keyboard presses
(callback queries) are stored once each, keyed by Telegram's `update_id`, so a redelivered
update is recognised. Outbound: `sendMessage` with the assistant's buttons as an inline
keyboard (callback data ≤ 64 bytes); a press is acknowledged with `answerCallbackQuery`.
"""

from __future__ import annotations

import hmac
import json
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
from handoff.channels.settings import TelegramSettings
from handoff.conversations.errors import ConversationError
from handoff.conversations.models import Message
from handoff.http import Unauthorized

CHANNEL = "telegram"
routes = web.RouteTableDef()


class ChannelSignatureInvalid(Unauthorized):
    """The request did not carry the webhook's secret token."""


def parse_update(update: dict[str, Any]) -> tuple[InboundMessage | None, str | None]:
    """The customer's message in one update, and the callback query id to acknowledge."""
    update_id = update.get("update_id")
    if "message" in update:
        message = update["message"] or {}
        chat, text = message.get("chat") or {}, message.get("text")
        if update_id is None or chat.get("id") is None or not isinstance(text, str):
            return None, None
        sender = message.get("from") or {}
        name = " ".join(filter(None, [sender.get("first_name"), sender.get("last_name")])) or None
        return InboundMessage(str(chat["id"]), f"update:{update_id}", text, name), None
    if "callback_query" in update:
        query = update["callback_query"] or {}
        chat = ((query.get("message") or {}).get("chat") or {})
        if update_id is None or chat.get("id") is None or not isinstance(query.get("data"), str):
            return None, query.get("id")
        return InboundMessage(str(chat["id"]), f"update:{update_id}", query["data"]), query.get("id")
    return None, None


def outbound_body(chat_id: str, message: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"chat_id": chat_id, "text": (message.text or " ")[:4096]}
    buttons = [b for b in (message.payload or {}).get("buttons") or [] if b.get("title")]
    if buttons:
        body["reply_markup"] = {"inline_keyboard": [
            [{"text": str(b["title"])[:64],
              "callback_data": str(b.get("payload") or b["title"]).encode()[:64].decode(errors="ignore")}]
            for b in buttons[:10]]}
    return body


class TelegramAdapter:
    """Sends stored messages with the Bot API."""

    name = CHANNEL

    def __init__(self, settings: TelegramSettings, http: aiohttp.ClientSession) -> None:
        self.settings, self._http = settings, http

    def _url(self, method: str) -> str:
        return f"{self.settings.api_url.rstrip('/')}/bot{self.settings.bot_token}/{method}"

    async def send(self, identity: ChannelIdentity, message: Message, reference: str) -> str | None:
        """Telegram echoes nothing like `reference` back, so it is not sent."""
        async with self._http.post(self._url("sendMessage"), json=outbound_body(identity.external_id, message),
                                   timeout=aiohttp.ClientTimeout(total=15)) as response:
            answer = await response.json(content_type=None)
            if response.status == 429 or response.status >= 500:
                raise TemporaryFailure(f"Telegram answered HTTP {response.status}")
            if response.status >= 400 or not (answer or {}).get("ok"):
                raise PermanentFailure(f"Telegram refused the message: "
                                       f"{(answer or {}).get('description', response.status)}")
        return str(answer["result"]["message_id"])

    async def answer_callback(self, query_id: str) -> None:
        async with self._http.post(self._url("answerCallbackQuery"), json={"callback_query_id": query_id},
                                   timeout=aiohttp.ClientTimeout(total=10)):
            pass


@routes.post("/webhooks/telegram")
async def receive(request: web.Request) -> web.Response:
    hub = request.app[MESSAGING]
    adapter = hub.adapters.get(CHANNEL)
    if not isinstance(adapter, TelegramAdapter):
        raise web.HTTPNotFound()
    supplied = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    if not hmac.compare_digest(supplied, adapter.settings.secret_token):
        raise ChannelSignatureInvalid("missing or wrong X-Telegram-Bot-Api-Secret-Token")
    try:
        update = json.loads(await request.read())
    except ValueError:
        raise ConversationError("the body is not JSON") from None
    if not isinstance(update, dict):
        raise ConversationError("the body must be a JSON object")
    inbound, query_id = parse_update(update)
    if inbound is not None:
        await hub.accept(CHANNEL, inbound)
    if query_id:
        try:
            await adapter.answer_callback(str(query_id))  # stops the button's spinner
        except aiohttp.ClientError:
            pass
    return web.json_response({"ok": True})
