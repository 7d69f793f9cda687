"""The optional 0-10 "would you recommend us" question, asked after a 1-5 rating.

Off unless SUPPORT_NPS_EVERY_DAYS > 0; then asked at most once per contact in that many
days, so a customer who writes every week is not asked every week. The customer's next
message answers it when it is a number 0-10; anything else is an ordinary message and the
question is dropped. Stored as `nps_asked` / `nps_submitted` events for the reports.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.conversations.models import (
    ROW_LOCK,
    Conversation,
    ConversationEvent,
    Message,
    utcnow,
)
from handoff.conversations.service import ConversationService

NPS_TEXT = ("One more question: how likely are you to recommend us to a friend? "
            "Reply 0 (not at all) to 10 (extremely likely).")
NPS_BUTTONS = [{"title": str(score), "payload": str(score)} for score in range(11)]
THANKS_TEXT = "Thank you! That helps us improve."
_ANSWER = re.compile(r"^\s*(10|[0-9])\s*(?:/\s*10)?\s*[.!]?\s*$")


def nps_answer(text: str) -> int | None:
    """The score if the text answers the 0-10 question, e.g. "9" or "10/10"."""
    match = _ANSWER.match(text)
    return int(match.group(1)) if match else None


class NpsSurvey:
    """Asks the periodic question and records its answer; every_days=0 turns it off."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], every_days: int) -> None:
        self._sessions = sessions
        self.every_days = every_days

    async def ask_after_rating(self, conversation_id: str, incoming: Message) -> list[Message]:
        """Asks the question unless it is off or this contact was asked recently."""
        if self.every_days <= 0:
            return []
        now = utcnow()
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
            if conversation is None:
                return []
            recent = await session.scalar(
                select(ConversationEvent.id)
                .join(Conversation, Conversation.id == ConversationEvent.conversation_id)
                .where(Conversation.contact_id == conversation.contact_id,
                       ConversationEvent.type == "nps_asked",
                       ConversationEvent.created_at >= now - timedelta(days=self.every_days))
                .limit(1))
            if recent is not None:
                return []
            conversation.nps_pending = True
            question = ConversationService._system_message(
                conversation, NPS_TEXT, now, {"buttons": NPS_BUTTONS, "survey": "nps"}, incoming)
            session.add_all([question, ConversationEvent(conversation_id=conversation_id,
                                                         type="nps_asked", data={},
                                                         created_at=now)])
        return [question]

    async def answer(self, conversation_id: str, incoming: Message) -> list[Message] | None:
        """Thanks for a 0-10 answer and records it; None (question dropped) for anything else."""
        score = nps_answer(incoming.text or "")
        now = utcnow()
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
            if conversation is None or not conversation.nps_pending:
                return None
            conversation.nps_pending = False
            if score is None:
                return None
            thanks = ConversationService._system_message(conversation, THANKS_TEXT, now,
                                                         reply_to=incoming)
            incoming.routed_at = now
            await session.merge(incoming)
            session.add_all([thanks, ConversationEvent(
                conversation_id=conversation_id, type="nps_submitted",
                data={"message_id": incoming.id, "score": score}, created_at=now)])
        return [thanks]

