"""The verbs that change a conversation. Each runs in one transaction and writes the
messages and events that record it, so the transcript itself says what happened."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.conversations.errors import (
    AlreadyClaimed,
    AtCapacity,
    ConversationNotFound,
    NotYourAssignment,
    NotYourConversation,
)
from handoff.conversations.models import (
    ROW_LOCK,
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
from handoff.conversations.redaction import redact_card_numbers_in

ASSISTANT_REF = "rasa"
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# International or local numbers: 7-15 digits, spaces, dashes, dots or brackets between.
_PHONE = re.compile(r"(?<![\w•])\+?\d[\d\s().-]{5,18}\d(?!\w)")
SURVEY_TEXT = "How would you rate the help you got today? Reply 1 (poor) to 5 (excellent)."
SURVEY_BUTTONS = [{"title": str(score), "payload": str(score)} for score in range(1, 6)]


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


# Upset customers and complaints are served first; everyone else first come, first served.
URGENT_REASONS = ("frustration", "topic:complaint")


def handoff_priority(reason: str) -> int:
    return 1 if reason in URGENT_REASONS else 0


# Runs inside the turn's transaction: (session, conversation id, the record's data).
RecordHook = Callable[[AsyncSession, str, dict[str, Any]], Awaitable[None]]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class RecentTurns:
    """What the router reads before asking the assistant (recent_turns)."""

    texts: list[str]  # the customer's last messages, oldest first
    intents: list[str | None]  # of the last messages the assistant read, newest first
    # The assistant left no form active after its last turn (handoff/repeat_answers.py).
    assistant_idle: bool
    # The form the assistant's last turn here left waiting for an answer, if it said which.
    open_form: str | None = None
    # Turns answered again without the assistant since it last heard from this conversation:
    # their events, oldest first, for its tracker before it reads the next message.
    replays: list[dict[str, Any]] = field(default_factory=list)


# What the assistant's state follows: its turns, and people taking the chat (who restart it
# when they give it back).
ASSISTANT_STATE_EVENTS = ("message_understood", "handed_off", "claimed", "transferred",
                          "resolved", "returned_to_bot")
REPLAYS_READ = 20  # repeated answers in a row whose events still reach the assistant


def pending_replays(latest: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events of the repeated answers since the assistant last read a message of this
    conversation (newest first in `latest`), oldest first. A person taking the chat ends
    the run: the assistant is restarted when it gets the chat back."""
    runs: list[list[dict[str, Any]]] = []
    for kind, data in latest:
        if kind != "message_understood" or "replay" not in data:
            break
        runs.append(data["replay"])
    return [event for run in reversed(runs) for event in run]


class ConversationService:
    """Starts conversations, stores messages and moves conversations between bot and people."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession],
                 record_hooks: dict[str, RecordHook] | None = None) -> None:
        self._sessions = sessions
        # What else happens, in the same transaction, when an action records a fact
        # (identity_verified links the conversation to its contact: handoff/contacts).
        self._record_hooks = record_hooks or {}

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

    async def note_contact_details(self, conversation_id: str, text: str) -> bool:
        """Keeps an email or phone a waiting customer leaves (the team may answer later).

        Only fills empty fields: what a customer typed never overwrites details on record.
        """
        email = _EMAIL.search(text)
        # 9-15 digits: a phone number, not a date, an order or a postcode
        phone = next((m for m in _PHONE.finditer(text)
                      if 9 <= sum(c.isdigit() for c in m.group()) <= 15), None)
        if not email and not phone:
            return False
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFound("conversation not found")
            contact = await session.get(Contact, conversation.contact_id)
            assert contact is not None
            changed = False
            if email and not contact.email:
                contact.email, changed = email.group().lower(), True
            if phone and not contact.phone:
                contact.phone, changed = re.sub(r"[^\d+]", "", phone.group()), True
            if changed:
                session.add(ConversationEvent(conversation_id=conversation_id,
                                              type="contact_details_left",
                                              data={"email": contact.email, "phone": contact.phone}))
        return changed

    async def contact(self, contact_id: str) -> Contact:
        async with self._sessions() as session:
            contact = await session.get(Contact, contact_id)
        if contact is None:
            raise ConversationNotFound("contact not found")
        return contact

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
        message, created, _ = await self.accept(conversation_id, text, source_id, channel)
        return message, created

    async def accept(
        self, conversation_id: str, text: str, source_id: str | None, channel: str
    ) -> tuple[Message, bool, Conversation | None]:
        """`receive`, plus the conversation as it stood when a new message was stored (None
        for a retry), so routing the message needs no second read of it."""
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
                if source_id is not None:
                    # A retry is answered before anything is written or locked: three
                    # instances receiving the same webhook retry at once must not all queue
                    # on the insert (PostgreSQL deadlocked).
                    existing = await self._by_source_id(session, conversation_id, source_id)
                    if existing is not None:
                        return existing, False, None
                # Read and touched in one statement: this runs for every message.
                conversation = await session.scalar(
                    update(Conversation).where(Conversation.id == conversation_id)
                    .values(last_message_at=utcnow()).returning(Conversation))
                if conversation is None:
                    raise ConversationNotFound("conversation not found")
                session.add(message)
        except IntegrityError:
            # Another instance stored the same source_id between our check and insert.
            if source_id is None:
                raise
            async with self._sessions() as session:
                existing = await self._by_source_id(session, conversation_id, source_id)
            if existing is None:
                raise
            return existing, False, None
        return message, True, conversation

    async def record_assistant_turn(
        self,
        incoming: Message,
        replies: list[Reply],
        handoff: HandoffRequest | None = None,
        understood: dict[str, Any] | None = None,
        records: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> list[Message]:
        """Stores the assistant's replies to `incoming`, marks it routed, and hands off if asked.

        `understood` (intent, confidence) is kept as a `message_understood` event: the
        handoff policy and the reports read it. `records` are the facts the actions asked to
        keep (an order looked up, an article answered), stored in the same transaction.
        """
        async with self._sessions.begin() as session:
            if understood is not None:
                session.add(ConversationEvent(
                    conversation_id=incoming.conversation_id, type="message_understood",
                    data={"message_id": incoming.id, **understood}))
            session.add_all(
                ConversationEvent(conversation_id=incoming.conversation_id, type=event_type,
                                  data={"message_id": incoming.id, **redact_card_numbers_in(data)})
                for event_type, data in records or [])
            for event_type, data in records or []:
                if event_type in self._record_hooks:
                    await self._record_hooks[event_type](session, incoming.conversation_id, data)
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

    async def message(self, message_id: int) -> Message:
        async with self._sessions() as session:
            message = await session.get(Message, message_id)
        if message is None:
            raise ConversationNotFound("message not found")
        return message

    async def replies_to(self, incoming: Message) -> list[Message]:
        """What was sent in answer to an incoming message (for a retried send)."""
        async with self._sessions() as session:
            result = await session.scalars(
                select(Message).where(Message.reply_to_id == incoming.id).order_by(Message.id)
            )
            return list(result)

    async def transcript(
        self, conversation_id: str, after_id: int = 0, include_private: bool = False,
        or_since: datetime | None = None,
    ) -> list[Message]:
        """Messages in stored order, optionally only those after a message id (and, with
        `or_since`, any stored since then whatever their id)."""
        newer = Message.id > after_id
        if or_since is not None:
            newer = newer | (Message.created_at >= or_since)
        query = select(Message).where(Message.conversation_id == conversation_id, newer)
        if not include_private:
            query = query.where(Message.private.is_(False))
        async with self._sessions() as session:
            return list(await session.scalars(query.order_by(Message.id)))

    async def recent_turns(
        self, conversation_id: str, texts: int, intents: int
    ) -> RecentTurns:
        """The customer's last `texts` messages and the intents of the last `intents`
        messages the assistant read, in one read: both feed the handoff policy on every turn.

        A turn the knowledge base answered reads as "knowledge" whatever the classifier said.
        """
        async with self._sessions() as session:
            recent = list(await session.scalars(
                select(Message.text)
                .where(Message.conversation_id == conversation_id,
                       Message.message_type == MessageType.INCOMING.value)
                .order_by(Message.id.desc()).limit(texts)
            ))
            understood = [data or {} for data in await session.scalars(
                select(ConversationEvent.data)
                .where(ConversationEvent.conversation_id == conversation_id,
                       ConversationEvent.type == "message_understood")
                .order_by(ConversationEvent.id.desc()).limit(max(intents, 1))
            )]
            replays: list[dict[str, Any]] = []
            if understood and "replay" in understood[0]:  # rare: a repeat is still owed
                replays = pending_replays([(kind, data or {}) for kind, data in (
                    await session.execute(
                        select(ConversationEvent.type, ConversationEvent.data)
                        .where(ConversationEvent.conversation_id == conversation_id,
                               ConversationEvent.type.in_(ASSISTANT_STATE_EVENTS))
                        .order_by(ConversationEvent.id.desc()).limit(REPLAYS_READ)))])
        return RecentTurns(
            texts=[text or "" for text in reversed(recent)],
            intents=[data.get("answered_by") or data.get("intent")
                     for data in understood[:max(intents, 0)]],
            # no turn yet: Rasa has no tracker, so no form either
            assistant_idle=not understood or understood[0].get("idle") is True,
            open_form=(understood[0].get("form") or None) if understood else None,
            replays=replays,
        )

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

    async def claim(self, conversation_id: str, agent_id: str, max_chats: int,
                    agent_name: str = "An agent") -> tuple[Conversation, Message]:
        """Gives a waiting conversation to one agent; of two agents clicking at once, one wins.

        A single conditional UPDATE decides: it matches only while the conversation is still
        waiting and the agent is under capacity, so the database, not the caller, arbitrates.
        """
        now = utcnow()
        busy = (
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.assignee_id == agent_id,
                   Conversation.status == ConversationStatus.WITH_AGENT.value)
            .scalar_subquery()
        )
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Conversation)
                .where(Conversation.id == conversation_id,
                       Conversation.status == ConversationStatus.WAITING.value,
                       busy < max_chats)
                .values(status=ConversationStatus.WITH_AGENT.value, assignee_id=agent_id,
                        updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                conversation = await session.get(Conversation, conversation_id)
                if conversation is None:
                    raise ConversationNotFound("conversation not found")
                if conversation.status != ConversationStatus.WAITING.value:
                    raise AlreadyClaimed("this conversation is no longer waiting")
                raise AtCapacity(f"you already have {max_chats} open conversations")
            conversation = await session.get(Conversation, conversation_id, populate_existing=True)
            assert conversation is not None
            joined = self._activity(conversation, f"{agent_name} joined the conversation", now,
                                    {"agent_joined": agent_id, "agent_name": agent_name})
            session.add_all([
                Participant(conversation_id=conversation_id, role=AuthorType.AGENT.value,
                            participant_ref=agent_id, joined_at=now),
                joined,
                ConversationEvent(conversation_id=conversation_id, type="claimed",
                                  data={"agent_id": agent_id}, created_at=now),
            ])
        return conversation, joined

    async def agent_message(
        self, conversation_id: str, agent_id: str, text: str, private: bool = False
    ) -> Message:
        """An agent's reply to the customer, or a private note other agents see."""
        async with self._sessions.begin() as session:
            conversation = await self._assigned(session, conversation_id, agent_id)
            message = Message(
                conversation_id=conversation_id,
                message_type=MessageType.OUTGOING.value,
                author_type=AuthorType.AGENT.value,
                author_id=agent_id,
                channel=conversation.channel,
                text=text,
                private=private,
            )
            session.add(message)
            if not private:
                conversation.last_message_at = utcnow()
        return message

    async def resolve(self, conversation_id: str, agent_id: str, code: str) -> list[Message]:
        """Closes the agent's part: records the resolution and asks the customer for a rating."""
        now = utcnow()
        async with self._sessions.begin() as session:
            conversation = await self._assigned(session, conversation_id, agent_id)
            conversation.status = ConversationStatus.RESOLVED.value
            conversation.resolution_code = code
            conversation.resolved_at = now
            conversation.survey_pending = True
            await self._leave(session, conversation_id, agent_id, now)
            messages = [
                self._activity(conversation, f"Conversation was resolved ({code})", now,
                               {"resolved": code, "agent_id": agent_id}),
                self._system_message(conversation, SURVEY_TEXT, now,
                                     {"buttons": SURVEY_BUTTONS, "survey": "csat"}),
            ]
            session.add_all(messages)
            session.add(ConversationEvent(conversation_id=conversation_id, type="resolved",
                                          data={"code": code, "agent_id": agent_id},
                                          created_at=now))
        return messages

    async def return_to_bot(
        self, conversation_id: str, agent_id: str | None, reason: str
    ) -> list[Message]:
        """Gives the conversation back to the assistant (agent hand-back or after the survey)."""
        now = utcnow()
        async with self._sessions.begin() as session:
            if agent_id is not None:
                conversation = await self._assigned(session, conversation_id, agent_id)
                await self._leave(session, conversation_id, agent_id, now)
            else:
                found = await session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
                if found is None:
                    raise ConversationNotFound("conversation not found")
                conversation = found
            conversation.status = ConversationStatus.BOT.value
            conversation.assignee_id = None
            conversation.waiting_since = None
            conversation.survey_pending = False
            activity = self._activity(conversation, "The assistant is back in the conversation",
                                      now, {"returned_to_bot": reason})
            session.add(activity)
            session.add(ConversationEvent(conversation_id=conversation_id, type="returned_to_bot",
                                          data={"reason": reason, "agent_id": agent_id},
                                          created_at=now))
        return [activity]

    async def transfer(
        self, conversation_id: str, agent_id: str, to_agent_id: str | None, skill: str | None
    ) -> list[Message]:
        """Passes the conversation to a named agent, or back to the queue for a skill."""
        now = utcnow()
        async with self._sessions.begin() as session:
            conversation = await self._assigned(session, conversation_id, agent_id)
            await self._leave(session, conversation_id, agent_id, now)
            if to_agent_id is not None:
                conversation.assignee_id = to_agent_id
                session.add(Participant(conversation_id=conversation_id,
                                        role=AuthorType.AGENT.value,
                                        participant_ref=to_agent_id, joined_at=now))
                text = "Conversation was transferred to another agent"
                data: dict[str, str | None] = {"to_agent": to_agent_id}
            else:
                conversation.status = ConversationStatus.WAITING.value
                conversation.assignee_id = None
                conversation.waiting_since = now
                conversation.required_skills = [skill] if skill else []
                text = f"Conversation was transferred to the {skill or 'general'} queue"
                data = {"to_skill": skill}
            activity = self._activity(conversation, text, now, {"transfer": data})
            session.add(activity)
            session.add(ConversationEvent(conversation_id=conversation_id, type="transferred",
                                          data={"from_agent": agent_id, **data}, created_at=now))
        return [activity]

    async def record_survey(self, incoming: Message, score: int, comment: str | None) -> list[Message]:
        """Stores a customer's 1-5 rating and thanks them; the assistant then takes over again."""
        now = utcnow()
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, incoming.conversation_id,
                                             with_for_update=ROW_LOCK)
            assert conversation is not None
            conversation.survey_pending = False
            conversation.status = ConversationStatus.BOT.value
            conversation.assignee_id = None
            reply = self._system_message(
                conversation, "Thank you for your feedback! If you need anything else, just ask.",
                now, reply_to=incoming)
            session.add(reply)
            session.add(ConversationEvent(conversation_id=conversation.id, type="csat_submitted",
                                          data={"score": score, "comment": comment},
                                          created_at=now))
            await self._mark_routed(session, incoming)
        return [reply]

    async def add_system_message(self, conversation_id: str, text: str,
                                 payload: dict[str, Any] | None = None,
                                 reply_to: Message | None = None) -> Message:
        """A message the service itself tells the customer (queue position, office hours)."""
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFound("conversation not found")
            message = self._system_message(conversation, text, utcnow(), payload, reply_to)
            session.add(message)
        return message

    async def add_agent_note(self, conversation_id: str, text: str) -> Message:
        """A private note from the system for the agents (e.g. a message that could not be delivered)."""
        async with self._sessions.begin() as session:
            conversation = await session.get(Conversation, conversation_id)
            if conversation is None:
                raise ConversationNotFound("conversation not found")
            note = self._activity(conversation, text, utcnow(), None, private=True)
            session.add(note)
        return note

    @staticmethod
    async def _assigned(session: AsyncSession, conversation_id: str, agent_id: str) -> Conversation:
        conversation = await session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
        if conversation is None:
            raise ConversationNotFound("conversation not found")
        if (conversation.status != ConversationStatus.WITH_AGENT.value
                or conversation.assignee_id != agent_id):
            raise NotYourAssignment("this conversation is not assigned to you")
        return conversation

    @staticmethod
    async def _leave(session: AsyncSession, conversation_id: str, agent_id: str,
                     now: Any) -> None:
        participant = await session.scalar(
            select(Participant).where(Participant.conversation_id == conversation_id,
                                      Participant.participant_ref == agent_id,
                                      Participant.left_at.is_(None))
        )
        if participant is not None:
            participant.left_at = now

    @staticmethod
    def _activity(conversation: Conversation, text: str, now: Any,
                  payload: dict[str, Any] | None, private: bool = False) -> Message:
        """A line in the transcript saying what happened (private: agents only)."""
        return Message(conversation_id=conversation.id,
                       message_type=MessageType.ACTIVITY.value,
                       author_type=AuthorType.SYSTEM.value, channel=conversation.channel,
                       text=text, payload=payload, private=private, created_at=now)

    @staticmethod
    def _system_message(conversation: Conversation, text: str, now: Any,
                        payload: dict[str, Any] | None = None,
                        reply_to: Message | None = None) -> Message:
        """Something the service itself tells the customer (survey, thanks, queue place)."""
        return Message(conversation_id=conversation.id,
                       message_type=MessageType.OUTGOING.value,
                       author_type=AuthorType.SYSTEM.value, channel=conversation.channel,
                       text=text, payload=payload,
                       reply_to_id=reply_to.id if reply_to is not None else None,
                       created_at=now)

    @staticmethod
    async def _by_source_id(session: AsyncSession, conversation_id: str,
                            source_id: str) -> Message | None:
        return await session.scalar(
            select(Message).where(
                Message.conversation_id == conversation_id, Message.source_id == source_id
            )
        )

    @staticmethod
    async def _mark_routed(session: AsyncSession, incoming: Message) -> None:
        # An UPDATE by key, not session.merge(): merge would SELECT the row first.
        incoming.routed_at = utcnow()
        await session.execute(update(Message).where(Message.id == incoming.id)
                              .values(routed_at=incoming.routed_at))

    @staticmethod
    async def _hand_off(
        session: AsyncSession,
        conversation_id: str,
        request: HandoffRequest,
        incoming: Message | None,
    ) -> list[Message]:
        conversation = await session.get(Conversation, conversation_id, with_for_update=ROW_LOCK)
        if conversation is None:
            raise ConversationNotFound("conversation not found")
        if conversation.status != ConversationStatus.BOT.value:
            return []  # already with people: nothing changes, nothing is written twice
        now = utcnow()
        conversation.status = ConversationStatus.WAITING.value
        conversation.handoff_reason = request.reason
        conversation.waiting_since = now
        conversation.priority = handoff_priority(request.reason)
        if conversation.language and conversation.language != "en":
            conversation.required_skills = [f"language:{conversation.language}"]
        activity = ConversationService._activity(
            conversation, f"Conversation was handed to the support team (reason: {request.reason})",
            now, {"handoff": {"reason": request.reason, **request.details}})
        activity.reply_to_id = incoming.id if incoming is not None else None
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
