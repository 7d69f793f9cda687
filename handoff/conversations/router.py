"""Where a customer's message goes: stored first, then to the assistant or to the people.

While the assistant has the conversation the message goes to Rasa and its replies are
stored and returned; once handed off, the message is only stored for the agents' side,
so the assistant is silent by construction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from actions.handoff import HANDOFF_KEY
from handoff.assistant import AssistantClient, AssistantUnavailable
from handoff.conversations.models import ConversationStatus, Message
from handoff.conversations.service import ConversationService, HandoffRequest, Reply
from handoff.locks import ConversationLocks

logger = logging.getLogger(__name__)

TROUBLE_TEXT = (
    "Sorry, I'm having trouble answering right now. "
    "I'm connecting you to a person from our support team."
)


@dataclass(frozen=True)
class RouteResult:
    """What became of one incoming message."""

    message: Message
    replies: list[Message]
    status: str
    duplicate: bool = False


def parse_replies(raw: list[dict[str, Any]]) -> tuple[list[Reply], HandoffRequest | None]:
    """Splits Rasa's replies into what the customer sees and a handoff instruction, if any."""
    replies: list[Reply] = []
    handoff: HandoffRequest | None = None
    for item in raw:
        custom = item.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(HANDOFF_KEY), dict):
            details = dict(custom[HANDOFF_KEY])
            reason = str(details.pop("reason", "") or "assistant_request")
            handoff = HandoffRequest(reason=reason, details=details)
            continue
        text = item.get("text") if isinstance(item.get("text"), str) else None
        extra = {k: v for k, v in item.items() if k not in ("recipient_id", "text")}
        if text or extra:
            replies.append(Reply(text=text, payload=extra or None))
    return replies, handoff


class MessageRouter:
    """Routes each incoming message exactly once, one at a time per conversation."""

    def __init__(
        self,
        service: ConversationService,
        assistant: AssistantClient,
        locks: ConversationLocks,
    ) -> None:
        self._service = service
        self._assistant = assistant
        self._locks = locks

    async def handle_incoming(
        self, conversation_id: str, text: str, source_id: str | None, channel: str
    ) -> RouteResult:
        """Stores the message, then routes it; a retried send gets the original outcome."""
        async with self._locks.hold(conversation_id):
            message, created = await self._service.receive(
                conversation_id, text, source_id, channel
            )
            if not created and message.routed_at is not None:
                conversation = await self._service.get(conversation_id)
                replies = await self._service.replies_to(message)
                return RouteResult(message, replies, conversation.status, duplicate=True)
            return await self._route(message)

    async def reroute_unrouted(self) -> int:
        """Routes messages stored before a crash but never passed on; returns how many."""
        count = 0
        for message in await self._service.unrouted():
            async with self._locks.hold(message.conversation_id):
                await self._route(message)
            count += 1
        return count

    async def _route(self, message: Message) -> RouteResult:
        conversation = await self._service.get(message.conversation_id)
        if conversation.status != ConversationStatus.BOT.value:
            await self._service.mark_routed(message)
            return RouteResult(message, [], conversation.status)
        metadata = {"channel": message.channel, "language": conversation.language}
        try:
            raw = await self._assistant.send(conversation.id, message.text or "", metadata)
            replies, handoff = parse_replies(raw)
            if not replies and handoff is None:
                raise AssistantUnavailable("the assistant sent no reply", "assistant_no_reply")
        except AssistantUnavailable as exc:
            logger.warning("conversation %s: %s; handing off", conversation.id, exc)
            replies, handoff = [Reply(text=TROUBLE_TEXT)], HandoffRequest(reason=exc.reason)
        stored = await self._service.record_assistant_turn(message, replies, handoff)
        status = ConversationStatus.WAITING.value if handoff else conversation.status
        return RouteResult(message, stored, status)
