"""The only way into the Rasa server: a REST channel that requires the shared API token.

Rasa's `--auth-token` protects its HTTP API but not its channel webhooks, so the stock REST
channel would let anyone on the host talk to the assistant as any customer. This channel
answers only callers holding SUPPORT_RASA_TOKEN (the web service), reports a failure
inside the assistant as a 500 instead of an empty, successful-looking reply, and returns
how the message was understood (intent and confidence) beside the replies, so the web
service can apply its handoff policy and keep the record reports are built from, and the
turn's own events with the form left active, so the web service can answer the same
question again without asking (handoff/repeat_answers.py). The web service's message id
is kept on the tracker's `UserUttered`; a message sent again after the web service died
mid-turn (`resumed`) that the tracker already holds is answered from the tracker, never
read twice (a form would otherwise take the question for the answer to its own).
Loaded by Rasa from credentials.yml; runs inside the Rasa server's environment. Loading it
also makes Rasa do once what it repeated per message (bot/speedups.py).
"""

from __future__ import annotations

import hmac
import logging
import os
from typing import Any, Awaitable, Callable

from rasa.core.channels.channel import (
    CollectingOutputChannel,
    InputChannel,
    UserMessage,
)
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import speedups

logger = logging.getLogger(__name__)
speedups.install()


class TokenRestInput(InputChannel):
    """POST /webhooks/support/webhook {sender, message, metadata, message_id?, resumed?} with
    `Authorization: Bearer`.

    Answers {"messages": [...Rasa REST channel replies...], "intent": {name, confidence,
    top: {name, confidence}}, "turn": {"events": [...], "active_loop": name or null}} where
    `top` is the best real intent even after a fallback and `events` are the tracker's events
    from this message on.
    """

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the support channel needs a token (SUPPORT_RASA_TOKEN)")
        self._token = token

    @classmethod
    def name(cls) -> str:
        return "support"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        token = (credentials or {}).get("token") or os.environ.get("SUPPORT_RASA_TOKEN", "")
        return cls(str(token))

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        supplied = header[7:] if header.startswith("Bearer ") else ""
        return hmac.compare_digest(supplied.encode(), self._token.encode())

    def blueprint(
        self, on_new_message: Callable[[UserMessage], Awaitable[Any]]
    ) -> Blueprint:
        webhook = Blueprint("support_webhook", __name__)

        @webhook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @webhook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "missing or wrong token"}, status=401)
            body = request.json if isinstance(request.json, dict) else {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "sender and message are required"}, status=400)
            message_id = body.get("message_id")
            if message_id is not None and not isinstance(message_id, str):
                return response.json({"error": "message_id must be a string"}, status=400)
            if message_id and body.get("resumed") is True:
                answered = await _answered_already(request, sender, message_id)
                if answered is not None:
                    return response.json(answered)
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(
                        text,
                        collector,
                        sender,
                        input_channel=self.name(),
                        message_id=message_id,
                        metadata=body.get("metadata"),
                    )
                )
            except Exception:  # the web service hands off on 5xx; details stay in this log
                logger.exception("assistant failed on a message from %s", sender)
                return response.json({"error": "assistant failed"}, status=500)
            intent, turn = await _understood(request, sender)
            return response.json(
                {"messages": collector.messages, "intent": intent, "turn": turn})

        return webhook


async def _tracker(request: Request, sender: str) -> DialogueStateTracker | None:
    agent = getattr(request.app.ctx, "agent", None)
    return None if agent is None else await agent.tracker_store.retrieve(sender)


async def _answered_already(request: Request, sender: str,
                            message_id: str) -> dict[str, Any] | None:
    """The channel's answer to a message the tracker already holds: its replies as they were
    sent then, and its reading. None if the tracker has no message with that id."""
    tracker = await _tracker(request, sender)
    events = _turn_of(list(tracker.events), message_id) if tracker is not None else []
    if tracker is None or not events:
        return None
    replies = [_as_sent(sender, event) for event in events if isinstance(event, BotUttered)]
    intent, turn = _reading(events, tracker.active_loop_name)
    logger.info("message %s of %s was answered before its sender died: replayed", message_id,
                sender)
    return {"messages": replies, "intent": intent, "turn": turn, "replayed": True}


def _as_sent(sender: str, event: BotUttered) -> dict[str, Any]:
    """A bot utterance as the collecting channel sent it (Rasa's REST reply format)."""
    data = event.data or {}
    reply: dict[str, Any] = {"recipient_id": sender}
    if event.text:
        reply["text"] = event.text
    for key in ("image", "buttons", "attachment", "custom", "elements", "quick_replies"):
        if data.get(key):
            reply[key] = data[key]
    return reply


async def _understood(
    request: Request, sender: str
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """How the latest message of `sender` was understood, and that turn's events and the
    form left active, from the tracker just updated.

    The message is the tracker's last `UserUttered` event, not `tracker.latest_message`: a
    tracker read back from the in-memory store is replayed from its *applied* events, which
    leave out the answers given inside a form, so there `latest_message` was the message
    that opened the form (every answer to a refund form read as "request_refund", 0.99),
    while the SQL store of a multi-instance setup gave the real reading. The handoff policy
    and the reports then saw different things for the same conversation."""
    tracker = await _tracker(request, sender)
    if tracker is None:
        return None, None
    return _reading(_turn_of(list(tracker.events)), tracker.active_loop_name)


def _turn_of(events: list[Any], message_id: str | None = None) -> list[Any]:
    """The latest message's turn (with `message_id`: that message's): the `UserUttered` and
    the events after it up to the next message. Empty if there is no such message, so
    nothing could be repeated from it."""
    start = next((i for i in range(len(events) - 1, -1, -1)
                  if isinstance(events[i], UserUttered)
                  and (message_id is None or events[i].message_id == message_id)), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(events)) if isinstance(events[i], UserUttered)),
               len(events))
    return events[start:end]


def _reading(events: list[Any], active_loop: str | None,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """How a turn's message (the first of `events`, if any) was understood, and the turn."""
    message = events[0] if events and isinstance(events[0], UserUttered) else None
    intent = (message.intent if message else None) or {}
    ranking = [i for i in (message.parse_data.get("intent_ranking") or [])
               if i.get("name") != "nlu_fallback"] if message else []
    understood = {
        "name": intent.get("name"),
        "confidence": intent.get("confidence"),
        "top": {"name": ranking[0].get("name"), "confidence": ranking[0].get("confidence")}
        if ranking else None,
    }
    turn = {"events": [event.as_dict() for event in events], "active_loop": active_loop}
    return understood, turn
