"""Where a customer's message goes: stored first, then to the assistant or to the people.

While the assistant has the conversation the message goes to Rasa and its replies are
stored and returned; once handed off, the message is only stored for the agents' side,
so the assistant is silent by construction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from actions.handoff import HANDOFF_KEY, RECORD_KEY
from handoff.assistant import (
    UNKNOWN_LOOP,
    AssistantClient,
    AssistantTurn,
    AssistantUnavailable,
)
from handoff.conversations.models import (
    Conversation,
    ConversationStatus,
    Message,
    utcnow,
)
from handoff.conversations.nps import NpsSurvey
from handoff.conversations.service import (
    ConversationService,
    HandoffRequest,
    RecentTurns,
    Reply,
)
from handoff.conversations.views import message_json
from handoff.fanout import MESSAGES_TOPIC, QUEUE_TOPIC, Fanout, conversation_topic
from handoff.handoff_policy import HandoffPolicy
from handoff.locks import ConversationLocks
from handoff.queue import SupportQueue
from handoff.redis_backplane import RedisLocks
from handoff.repeat_answers import RepeatAnswers

logger = logging.getLogger(__name__)

_SURVEY_ANSWER = re.compile(r"^\s*([1-5])(?:\s*(?:/\s*5|stars?|⭐+))?(?:[\s,.:;!-]+(.*))?$", re.DOTALL)

TROUBLE_TEXT = (
    "Sorry, I'm having trouble answering right now. "
    "I'm connecting you to a person from our support team."
)


def survey_answer(text: str) -> tuple[int, str | None] | None:
    """(score, comment) if the text answers the 1-5 survey, e.g. "4" or "5 great help"."""
    match = _SURVEY_ANSWER.match(text)
    if not match:
        return None
    return int(match.group(1)), (match.group(2) or "").strip() or None


def queue_text(position: int, eta_minutes: int) -> str:
    ahead = "You are next" if position == 1 else f"You are number {position} in the queue"
    return f"{ahead}; the estimated wait is about {eta_minutes} minute{'s' if eta_minutes != 1 else ''}."


OFFLINE_TEXT = (
    "Our support team is not available right now. Please leave your question and your email "
    "address or phone number here, and a person will get back to you as soon as we are open."
)


Thinking = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class RouteResult:
    """What became of one incoming message."""

    message: Message
    replies: list[Message]
    status: str
    duplicate: bool = False


# What an action may record: lower-case words, so a reply cannot forge the service's own events.
RECORD_TYPE = re.compile(r"^(kb|order|invoice|refund|billing|identity|flow)_[a-z_]{1,40}$")


@dataclass(frozen=True)
class ParsedReplies:
    """Rasa's replies split into what the customer sees, a handoff, and facts to record."""

    replies: list[Reply]
    handoff: HandoffRequest | None
    records: list[tuple[str, dict[str, Any]]]


def parse_replies(raw: list[dict[str, Any]]) -> ParsedReplies:
    """Splits Rasa's replies into what the customer sees, a handoff instruction and records."""
    replies: list[Reply] = []
    handoff: HandoffRequest | None = None
    records: list[tuple[str, dict[str, Any]]] = []
    for item in raw:
        custom = item.get("custom")
        if isinstance(custom, dict) and isinstance(custom.get(HANDOFF_KEY), dict):
            details = dict(custom[HANDOFF_KEY])
            reason = str(details.pop("reason", "") or "assistant_request")
            handoff = HandoffRequest(reason=reason, details=details)
            continue
        if isinstance(custom, dict) and isinstance(custom.get(RECORD_KEY), dict):
            record = custom[RECORD_KEY]
            event_type, data = record.get("type"), record.get("data")
            if isinstance(event_type, str) and RECORD_TYPE.match(event_type):
                records.append((event_type, data if isinstance(data, dict) else {}))
            else:
                logger.warning("ignored a record of unknown type %r from the assistant", event_type)
            continue
        text = item.get("text") if isinstance(item.get("text"), str) else None
        extra = {k: v for k, v in item.items() if k not in ("recipient_id", "text")}
        if text or extra:
            replies.append(Reply(text=text, payload=extra or None))
    return ParsedReplies(replies, handoff, records)


class MessageRouter:
    """Routes each incoming message exactly once, one at a time per conversation."""

    def __init__(
        self,
        service: ConversationService,
        assistant: AssistantClient,
        locks: ConversationLocks | RedisLocks,
        queue: SupportQueue,
        fanout: Fanout,
        policy: HandoffPolicy,
        nps: NpsSurvey | None = None,
        repeats: RepeatAnswers | None = None,
    ) -> None:
        self._service = service
        self._assistant = assistant
        self._locks = locks
        self._queue = queue
        self._fanout = fanout
        self._policy = policy
        self._nps = nps
        self._repeats = repeats or RepeatAnswers(ttl=0)

    def publish_messages(self, conversation_id: str, messages: list[Message]) -> None:
        """Tells open screens (agents, live customer channels) about stored messages."""
        for message in messages:
            self._fanout.publish(conversation_topic(conversation_id),
                                 {"type": "message", "message": message_json(message)})
        if messages:
            # The channels let the messaging outbox ignore widget traffic (handoff/app.py).
            self._fanout.publish(MESSAGES_TOPIC, {
                "type": "messages", "conversation_id": conversation_id,
                "channels": sorted({m.channel for m in messages if m.channel})})

    def publish_queue_changed(self, conversation_id: str) -> None:
        self._fanout.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": conversation_id})

    async def reset_assistant(self, conversation_id: str) -> None:
        """Starts the assistant's side afresh so it resumes from a known state after a person;
        under the conversation's lock, so the customer's next message reaches it afterwards."""
        async with self._locks.hold(conversation_id):
            try:
                await self._assistant.api(
                    "POST", f"/conversations/{conversation_id}/tracker/events",
                    json=[{"event": "restart"}])
            except Exception as exc:  # the next message reaches Rasa anyway; never block a close
                logger.warning("could not reset the assistant for %s: %r", conversation_id, exc)

    async def handle_incoming(
        self, conversation_id: str, text: str, source_id: str | None, channel: str,
        on_thinking: Thinking | None = None,
    ) -> RouteResult:
        """Stores the message, then routes it; a retried send gets the original outcome.

        `on_thinking` is awaited just before the assistant is asked (a live channel shows
        "typing"); it is not called when a person has the conversation.
        """
        async with self._locks.hold(conversation_id):
            message, created, conversation = await self._service.accept(
                conversation_id, text, source_id, channel
            )
            if not created and message.routed_at is not None:
                conversation = await self._service.get(conversation_id)
                replies = await self._service.replies_to(message)
                return RouteResult(message, replies, conversation.status, duplicate=True)
            # stored by an earlier request but not routed: its instance may have died mid-turn
            return await self._route(message, on_thinking, conversation, resumed=not created)

    async def route_stored(self, message: Message, resumed: bool = False) -> None:
        """Routes a message a channel stored already (webhooks answer the platform first).
        `resumed`: stored by an earlier request, which may have reached the assistant."""
        async with self._locks.hold(message.conversation_id):
            current = await self._service.message(message.id)
            if current.routed_at is None:
                await self._route(current, resumed=resumed)

    async def reroute_unrouted(self) -> int:
        """Routes messages stored before a crash but never passed on; returns how many."""
        unrouted = await self._service.unrouted()
        for message in unrouted:
            # re-checked under the lock: another instance may be routing it right now
            await self.route_stored(message, resumed=True)
        return len(unrouted)

    async def _route(self, message: Message, on_thinking: Thinking | None = None,
                     conversation: Conversation | None = None, resumed: bool = False,
                     ) -> RouteResult:
        """`conversation` as read under this conversation's lock, if the caller has it."""
        if conversation is None:
            conversation = await self._service.get(message.conversation_id)
        if conversation.status == ConversationStatus.RESOLVED.value:
            answer = survey_answer(message.text or "") if conversation.survey_pending else None
            if answer is not None:
                replies = await self._service.record_survey(message, *answer)
                if self._nps is not None:
                    replies += await self._nps.ask_after_rating(conversation.id, message)
                self.publish_messages(conversation.id, [message, *replies])
                return RouteResult(message, replies, ConversationStatus.BOT.value)
            await self._service.return_to_bot(conversation.id, None, "customer_wrote_after_close")
            conversation = await self._service.get(conversation.id)
        if conversation.nps_pending and self._nps is not None:
            thanks = await self._nps.answer(conversation.id, message)
            if thanks is not None:
                self.publish_messages(conversation.id, [message, *thanks])
                return RouteResult(message, thanks, conversation.status)
        if conversation.status != ConversationStatus.BOT.value:
            if conversation.status == ConversationStatus.WAITING.value:
                await self._service.note_contact_details(conversation.id, message.text or "")
            await self._service.mark_routed(message)
            self.publish_messages(conversation.id, [message])
            return RouteResult(message, [], conversation.status)
        if on_thinking is not None:
            await on_thinking()
        return await self._ask_assistant(conversation, message, resumed)

    async def _ask_assistant(self, conversation: Conversation, message: Message,
                             resumed: bool = False) -> RouteResult:
        # Read before Rasa is asked: the conversation's lock keeps both as they are until
        # this turn is stored.
        recent = await self._service.recent_turns(
            conversation.id, 3, self._policy.low_confidence_turns - 1)
        escalation = self._policy.before_assistant(recent.texts)
        turn: AssistantTurn | None = None
        handoff: HandoffRequest | None
        records: list[tuple[str, dict[str, Any]]] = []
        if escalation is not None:
            replies, handoff = [escalation[0]], escalation[1]
        else:
            parsed, turn = await self._assistant_turn(conversation, message, recent, resumed)
            replies, handoff, records = parsed.replies, parsed.handoff, parsed.records
        # A message the classifier could not place but the knowledge base answered was
        # understood after all: it neither counts towards nor triggers a low-confidence handoff.
        answered = any(event_type == "kb_answered" for event_type, _ in records)
        # Nor does an answer to a form's question ("1", "it arrived damaged"): the form reads
        # and checks it, and hands off itself after three wrong answers (actions/forms.py).
        # Counting them handed every refund to a person right after it was registered.
        in_form = recent.open_form is not None
        if turn is not None and handoff is None and not answered and not in_form:
            escalation = self._policy.after_assistant(turn, recent.intents)
            if escalation is not None:
                replies, handoff = [*replies, escalation[0]], escalation[1]
        understood = None if turn is None else {
            "intent": turn.intent, "confidence": turn.confidence, "top_intent": turn.top_intent,
            "idle": turn.active_loop is None,
            **({"form": turn.active_loop} if turn.active_loop not in (None, UNKNOWN_LOOP) else {}),
            **({"answered_by": "knowledge"} if answered else {}),
            **({"answered_by": "form"} if in_form and not answered else {}),
            # kept until the assistant next reads a message of this conversation (_catch_up)
            **({"repeated": True, "replay": list(turn.events)} if turn.repeated else {})}
        stored = await self._service.record_assistant_turn(
            message, replies, handoff, understood, records)
        status = conversation.status
        if handoff is not None:
            status = ConversationStatus.WAITING.value
            stored.append(await self._announce_wait(conversation.id, message))
            self.publish_queue_changed(conversation.id)
        self.publish_messages(conversation.id, [message, *stored])
        return RouteResult(message, stored, status)

    async def _assistant_turn(
        self, conversation: Conversation, message: Message, recent: RecentTurns,
        resumed: bool = False,
    ) -> tuple[ParsedReplies, AssistantTurn | None]:
        """Rasa's replies (or, to a question it answered just now, the same answer again),
        or an apology and a handoff when Rasa cannot answer. A `resumed` message may have
        reached Rasa before its first router died: Rasa then gives the replies it made to it
        instead of reading it twice (a form would take it for the answer to its question)."""
        metadata = {"channel": message.channel, "language": conversation.language}
        text = message.text or ""
        idle = recent.assistant_idle  # Rasa left no form active after its last turn here
        repeated = self._repeats.answer(text, metadata) if idle and not resumed else None
        if repeated is not None:
            return parse_replies(repeated.replies), repeated
        stamp = self._repeats.stamp() if idle and self._repeats.enabled else None
        if recent.replays:
            await self._catch_up(conversation.id, recent.replays)
        try:
            turn = await self._assistant.send(conversation.id, text, metadata,
                                              message_id=str(message.id), resumed=resumed)
            parsed = parse_replies(turn.replies)
            if not parsed.replies and parsed.handoff is None:
                raise AssistantUnavailable("the assistant sent no reply", "assistant_no_reply")
        except AssistantUnavailable as exc:
            logger.warning("conversation %s: %s; handing off", conversation.id, exc)
            return ParsedReplies([Reply(text=TROUBLE_TEXT)], HandoffRequest(reason=exc.reason),
                                 []), None
        if idle and parsed.handoff is None and not resumed:
            self._repeats.remember(text, metadata, turn, stamp)
        return parsed, turn

    async def _catch_up(self, conversation_id: str, events: list[dict[str, Any]]) -> None:
        """Adds the turns answered again without Rasa to its tracker before it reads this
        conversation's next message (the caller holds the conversation's lock), so its rules
        see them — e.g. "did this answer your question?" buttons after a repeated answer.
        Deferred to here, not sent after each repeat: a customer's next question would wait
        on the round trip, and most repeats are never followed by a message Rasa reads."""
        try:
            await self._assistant.api(
                "POST", f"/conversations/{conversation_id}/tracker/events",
                params={"include_events": "NONE"}, json=events)
        except Exception as exc:  # Rasa still answers; its record of those turns is missing
            logger.warning("conversation %s: could not add repeated answers to the "
                           "assistant's tracker: %r", conversation_id, exc)

    async def _announce_wait(self, conversation_id: str, incoming: Message) -> Message:
        """Says what happens next: the place in the queue, or that the team is away."""
        spot = await self._queue.spot(conversation_id)
        if spot is not None and self._queue.team_available(utcnow()):
            return await self._service.add_system_message(
                conversation_id, queue_text(spot.position, spot.eta_minutes),
                {"queue": {"position": spot.position, "eta_minutes": spot.eta_minutes}},
                reply_to=incoming)
        return await self._service.add_system_message(
            conversation_id, OFFLINE_TEXT, {"queue": {"offline": True}}, reply_to=incoming)
