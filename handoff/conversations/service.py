"""The verbs that change a conversation. Each runs in one transaction and writes the
messages and events that record it, so the transcript itself says what happened."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.conversations.errors import ConversationNotFound, NotYourConversation
from handoff.conversations.models import (
    AuthorType,
    Contact,
    Conversation,
    ConversationEvent,
    ConversationStatus,
    Message,
    MessageType,
    Participant,
    utcnow,
)

ASSISTANT_REF = "rasa"


@dataclass(frozen=True)
class Reply:
    """One thing the assistant says: text and/or structured content (buttons, images)."""

    text: str | None = None
    payload: dict[str, Any] | None = None


@dataclass(frozen=True)
class HandoffRequest:
    """Why the conversation needs a person, with what the assistant knew."""

    reason: str
    details: dict[str, Any] = field(default_factory=dict)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConversationService:
    """Starts conversations, stores messages and moves conversations between bot and people."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def start(
        self,
        channel: str,
        language: str | None = None,
        contact_name: str | None = None,
        contact_email: str | None = None,
    ) -> tuple[Conversation, str]:
        """Opens a conversation with the assistant; returns it and the customer's bearer token."""
        token = secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            contact = Contact(name=contact_name, email=contact_email)
            session.add(contact)
            await session.flush()
            conversation = Conversation(
                contact_id=contact.id,
                channel=channel,
                language=language,
                token_hash=hash_token(token),
            )
            session.add(conversation)
            await session.flush()
            session.add_all(
                [
                    Participant(
                        conversation_id=conversation.id,
                        role=AuthorType.CUSTOMER.value,
                        participant_ref=contact.id,
                    ),
                    Participant(
                        conversation_id=conversation.id,
                        role=AuthorType.ASSISTANT.value,
                        participant_ref=ASSISTANT_REF,
                    ),
                    ConversationEvent(
                        conversation_id=conversation.id,
                        type="conversation_created",
                        data={"channel": channel, "language": language},
                    ),
                ]
            )
        return conversation, token

    async def get(self, conversation_id: str) -> Conversation:
        async with self._sessions() as session:
            conversation = await session.get(Conversation, conversation_id)
        if conversation is None:
            raise ConversationNotFound("conversation not found")
        return conversation

    async def authenticate(self, conversation_id: str, token: str) -> Conversation:
        """The conversation if `token` opens it; otherwise the same error as an unknown id."""
        async with self._sessions() as session:
            conversation = await session.get(Conversation, conversation_id)
        if conversation is None or not hmac.compare_digest(
            conversation.token_hash, hash_token(token)
        ):
            raise NotYourConversation("conversation not found")
        return conversation

    async def receive(
        self, conversation_id: str, text: str, source_id: str | None, channel: str
    ) -> tuple[Message, bool]:
        """Stores a customer's message before anything else happens to it.

        Returns the message and whether it is new; a message whose `source_id` was already
        stored (a retried send) is returned as it was, not stored twice.
        """
        if source_id is not None:
            existing = await self._by_source_id(conversation_id, source_id)
            if existing is not None:
                return existing, False
        message = Message(
            conversation_id=conversation_id,
            message_type=MessageType.INCOMING.value,
            author_type=AuthorType.CUSTOMER.value,
            channel=channel,
            text=text,
            source_id=source_id,
        )
        try:
            async with self._sessions.begin() as session:
                conversation = await session.get(Conversation, conversation_id)
                if conversation is None:
                    raise ConversationNotFound("conversation not found")
                session.add(message)
                conversation.last_message_at = utcnow()
        except IntegrityError:
            # Another instance stored the same source_id between our check and insert.
            if source_id is None:
                raise
            existing = await self._by_source_id(conversation_id, source_id)
            if existing is None:
                raise
            return existing, False
        return message, True

    async def record_assistant_turn(
        self,
        incoming: Message,
        replies: list[Reply],
        handoff: HandoffRequest | None = None,
    ) -> list[Message]:
        """Stores the assistant's replies to `incoming`, marks it routed, and hands off if asked."""
        async with self._sessions.begin() as session:
            stored = [
                Message(
                    conversation_id=incoming.conversation_id,
                    message_type=MessageType.OUTGOING.value,
                    author_type=AuthorType.ASSISTANT.value,
                    author_id=ASSISTANT_REF,
                    channel=incoming.channel,
                    text=reply.text,
                    payload=reply.payload,
                    reply_to_id=incoming.id,
                )
                for reply in replies
            ]
            session.add_all(stored)
            await self._mark_routed(session, incoming)
            if handoff is not None:
                stored += await self._hand_off(session, incoming.conversation_id, handoff, incoming)
        return stored

    async def mark_routed(self, incoming: Message) -> None:
        """Records that an incoming message reached the people's side of the conversation."""
        async with self._sessions.begin() as session:
            await self._mark_routed(session, incoming)

    async def hand_off(self, conversation_id: str, request: HandoffRequest) -> list[Message]:
        """Moves a conversation from the assistant to the queue for a person."""
        async with self._sessions.begin() as session:
            return await self._hand_off(session, conversation_id, request, None)

    async def replies_to(self, incoming: Message) -> list[Message]:
        """What was sent in answer to an incoming message (for a retried send)."""
        async with self._sessions() as session:
            result = await session.scalars(
                select(Message).where(Message.reply_to_id == incoming.id).order_by(Message.id)
            )
            return list(result)

    async def transcript(
        self, conversation_id: str, after_id: int = 0, include_private: bool = False
    ) -> list[Message]:
        """Messages in stored order, optionally only those after a message id."""
        query = select(Message).where(
            Message.conversation_id == conversation_id, Message.id > after_id
        )
        if not include_private:
            query = query.where(Message.private.is_(False))
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(Message.id)))

    async def events(self, conversation_id: str) -> list[ConversationEvent]:
        async with self._sessions() as session:
            result = await session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.conversation_id == conversation_id)
                .order_by(ConversationEvent.id)
            )
            return list(result)

    async def unrouted(self) -> list[Message]:
        """Incoming messages that were stored but never passed on (e.g. the process died)."""
        async with self._sessions() as session:
            result = await session.scalars(
                select(Message)
                .where(
                    Message.message_type == MessageType.INCOMING.value,
                    Message.routed_at.is_(None),
                )
                .order_by(Message.id)
            )
            return list(result)

    async def _by_source_id(self, conversation_id: str, source_id: str) -> Message | None:
        async with self._sessions() as session:
            return await session.scalar(
                select(Message).where(
                    Message.conversation_id == conversation_id, Message.source_id == source_id
                )
            )

    @staticmethod
    async def _mark_routed(session: AsyncSession, incoming: Message) -> None:
        incoming.routed_at = utcnow()
        await session.merge(incoming)

    @staticmethod
    async def _hand_off(
        session: AsyncSession,
        conversation_id: str,
        request: HandoffRequest,
        incoming: Message | None,
    ) -> list[Message]:
        conversation = await session.get(Conversation, conversation_id, with_for_update=True)
        if conversation is None:
            raise ConversationNotFound("conversation not found")
        if conversation.status != ConversationStatus.BOT.value:
            return []  # already with people: nothing changes, nothing is written twice
        now = utcnow()
        conversation.status = ConversationStatus.WAITING.value
        conversation.handoff_reason = request.reason
        conversation.waiting_since = now
        activity = Message(
            conversation_id=conversation_id,
            message_type=MessageType.ACTIVITY.value,
            author_type=AuthorType.SYSTEM.value,
            channel=conversation.channel,
            text=f"Conversation was handed to the support team (reason: {request.reason})",
            payload={"handoff": {"reason": request.reason, **request.details}},
            reply_to_id=incoming.id if incoming is not None else None,
            created_at=now,
        )
        session.add(activity)
        session.add(
            ConversationEvent(
                conversation_id=conversation_id,
                type="handed_off",
                data={"reason": request.reason, **request.details},
                created_at=now,
            )
        )
        return [activity]
