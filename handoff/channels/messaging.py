"""What messaging-app channels share: who the customer is on the platform, and delivering a
conversation's outgoing messages through the platform's API — retried with backoff until
accepted, never lost, and recorded as sent, delivered, read or failed.

A channel is an adapter (WhatsApp, Telegram) with one job each way: its webhook turns the
platform's payload into `InboundMessage`s for `MessagingHub.accept`, and its `send` puts
one stored message on the platform. Agents and the assistant never know which it was.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import aiohttp
from sqlalchemy import (
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    event,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import (
    InstrumentedAttribute,
    Mapped,
    Session,
    UOWTransaction,
    aliased,
    mapped_column,
)

from handoff.conversations.errors import InvalidMessage
from handoff.conversations.message_text import clean_message_text
from handoff.conversations.models import Base, Message, MessageType, utcnow
from handoff.conversations.router import MessageRouter
from handoff.conversations.service import ConversationService
from handoff.http import STORAGE_DOWN
from handoff.jobs import wait_at_most

logger = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
RECORD_RETRY_FIRST_SECONDS = 0.5  # then doubling, up to 5 s, until the database is back
# Conversations whose messages go out at the same time. A platform answers a send in about
# 100-300 ms, so one conversation at a time capped a store at a few WhatsApp messages a second.
SEND_CONCURRENCY = 16
# A message older than this has surely committed: the outbox need not look below it again.
SETTLED = timedelta(seconds=60)
# New messages reach the outbox with the transaction that stores them (`_queue_deliveries`);
# the scan of recent messages is a safety net for any that did not, run this often.
SCAN_EVERY_SECONDS = 30.0
MESSAGING_CHANNELS = ("whatsapp", "telegram")  # every ChannelAdapter.name
STOP_GRACE_SECONDS = 30.0
STATUS_RECONCILE_WINDOW = timedelta(minutes=10)
# A send is marked "sending" before its request. One still marked this long after was cut off
# (its instance killed, or cancelled after STOP_GRACE_SECONDS): longer than a send may take
# (15 s) and than WhatsApp takes to report a message it took. Only then is it sent again.
IN_FLIGHT_SECONDS = 60.0
REFERENCE_PREFIX = "delivery:"  # what the platform echoes in its statuses (WhatsApp)


class ChannelIdentity(Base):
    """A customer's id on one platform (WhatsApp number, Telegram chat) and their conversation."""

    __tablename__ = "channel_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(128))
    conversation_id: Mapped[str] = mapped_column(ForeignKey("conversations.id"))
    display_name: Mapped[str | None] = mapped_column(String(200))
    # WhatsApp lets a business write freely only within 24 h of the customer's last message.
    last_inbound_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_identity_channel_external"),)


class Delivery(Base):
    """One outgoing message's journey to a platform."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    channel: Mapped[str] = mapped_column(String(32))
    # pending/sending/sent/delivered/read/failed/skipped
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # pending: when to try; sending: when a send not recorded by then counts as cut off
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # The outbox looks for pending rows every round: without this it read every delivery ever made.
    __table_args__ = (Index("ix_deliveries_status_next_attempt", "status", "next_attempt_at"),)


class DeliveryStatus(Base):
    """Every status a platform reported, kept even when it arrives before our own record of
    the send (platforms are fast): the send then applies it."""

    __tablename__ = "delivery_statuses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider_message_id: Mapped[str] = mapped_column(String(128), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


STATUS_ORDER = ["pending", "sending", "sent", "delivered", "read"]


def delivery_status(message: Message) -> str | None:
    """How a stored message enters the outbox: "pending" (to send), "skipped" (a line the
    platform need not show) or None (not the outbox's: another channel, or private)."""
    if message.channel not in MESSAGING_CHANNELS or message.private or \
            message.message_type not in (MessageType.OUTGOING.value, MessageType.ACTIVITY.value):
        return None
    wanted = message.message_type == MessageType.OUTGOING.value or bool(
        (message.payload or {}).get("agent_joined"))
    return "pending" if wanted else "skipped"


@event.listens_for(Session, "after_flush")
def _queue_deliveries(session: Session, _flush: UOWTransaction) -> None:
    """Puts a new outgoing message in the outbox in the transaction that stores it, so the
    outbox finds its work by an index instead of reading every recent message each round."""
    now = utcnow()
    rows = [{"message_id": obj.id, "channel": obj.channel, "status": status, "attempts": 0,
             "next_attempt_at": now, "updated_at": now}
            for obj in session.new
            if isinstance(obj, Message) and (status := delivery_status(obj)) is not None]
    if rows:
        session.connection().execute(insert(Delivery), rows)


def _advance(delivery: Delivery, status: str, error: str | None) -> None:
    """Statuses only move forward (a late "delivered" never hides a "read"); failure always wins."""
    current = delivery.status if delivery.status in STATUS_ORDER else None
    if status == "failed":
        delivery.status, delivery.last_error = "failed", error
    elif status in STATUS_ORDER and current is not None and \
            STATUS_ORDER.index(status) > STATUS_ORDER.index(current):
        delivery.status = status


def _moves(current: InstrumentedAttribute[str], status: InstrumentedAttribute[str],
           ) -> ColumnElement[bool]:
    """SQL for "`_advance` would change a delivery in `current` on this `status`"."""
    return or_(status == "failed", *(and_(current == before, status.in_(STATUS_ORDER[k + 1:]))
                                     for k, before in enumerate(STATUS_ORDER[:-1])))


@dataclass(frozen=True)
class InboundMessage:
    """One customer message as a platform delivered it."""

    external_id: str  # who wrote (WhatsApp number, Telegram chat id)
    source_id: str  # the platform's id for this message: how a retry is recognised
    text: str
    display_name: str | None = None


class TemporaryFailure(Exception):
    """The platform could not take the message now (down, rate limit): try again later."""


class PermanentFailure(Exception):
    """The platform refused the message for good; the agent is told why."""


class ChannelAdapter(Protocol):
    name: str

    async def send(self, identity: ChannelIdentity, message: Message, reference: str) -> str | None:
        """Puts one message on the platform; returns the platform's id for it (None: nothing
        to send). A platform that echoes `reference` in its statuses (WhatsApp) lets a send
        cut off by a crash be confirmed instead of sent again."""


def delivery_reference(delivery_id: int) -> str:
    return f"{REFERENCE_PREFIX}{delivery_id}"


def referenced_delivery(reference: str | None) -> int | None:
    """The delivery a platform's status names, if it carries our reference."""
    number = (reference or "").removeprefix(REFERENCE_PREFIX)
    return int(number) if reference and reference.startswith(REFERENCE_PREFIX) and \
        number.isdigit() else None


class MessagingHub:
    """Receives from and delivers to every configured messaging channel."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], service: ConversationService,
                 router: MessageRouter, adapters: dict[str, ChannelAdapter],
                 max_chars: int) -> None:
        self._sessions, self._service, self._router = sessions, service, router
        self.adapters = adapters
        self._max_chars = max_chars
        self.retry_base_seconds = 1.0  # first retry after 1 s, doubling up to 5 minutes
        self.wake = asyncio.Event()
        self._routing: set[asyncio.Task[None]] = set()
        # Every message below this id has its delivery row or needs none (see `enqueue`).
        self._enqueued_below = 0
        self._lanes: dict[str, asyncio.Task[None]] = {}  # conversation -> its sends in flight
        self._sending: set[int] = set()  # deliveries this instance has marked and not recorded
        self._next_scan = 0.0  # loop time of the next `enqueue`
        self._stopping = False

    async def accept(self, channel: str, inbound: InboundMessage) -> Message | None:
        """Stores the message first (once, however often the platform retries), then routes it
        in the background so the webhook can answer the platform at once. A message that is
        no text we can take (empty, binary) is logged and dropped: the platform must not retry it."""
        try:
            text = clean_message_text(inbound.text, self._max_chars)
        except InvalidMessage as exc:
            logger.info("%s message %s not accepted: %s", channel, inbound.source_id, exc)
            return None
        identity = await self._identity(channel, inbound)
        message, created = await self._service.receive(identity.conversation_id, text,
                                                       inbound.source_id, channel)
        if message.routed_at is None:  # not created: a retry of one whose first try died
            task = asyncio.create_task(self._router.route_stored(message, resumed=not created))
            self._routing.add(task)
            task.add_done_callback(self._routing.discard)
        return message

    async def record_status(self, provider_message_id: str, status: str,
                            error: str | None = None, reference: str | None = None) -> None:
        """The platform's word on a message: sent, delivered, read or failed. A status that
        carries our reference also names a send not yet recorded — one whose instance died
        between the request and the record — which proves the platform took it."""
        if status not in ("sent", "delivered", "read", "failed"):
            return
        async with self._sessions.begin() as session:
            session.add(DeliveryStatus(provider_message_id=provider_message_id, status=status,
                                       error=error))
            delivery_id = referenced_delivery(reference)
            delivery = await session.get(Delivery, delivery_id) if delivery_id else None
            if delivery is not None and delivery.provider_message_id is None:
                delivery.provider_message_id = provider_message_id
            elif delivery is None or delivery.provider_message_id != provider_message_id:
                delivery = await session.scalar(
                    select(Delivery).where(Delivery.provider_message_id == provider_message_id))
            if delivery is not None:
                _advance(delivery, status, error)
        # If the send is being recorded at this very moment, neither side saw the other;
        # the delivery loop reconciles the two, so wake it.
        self.wake.set()

    async def _identity(self, channel: str, inbound: InboundMessage) -> ChannelIdentity:
        async with self._sessions() as session:
            identity = await session.scalar(select(ChannelIdentity).where(
                ChannelIdentity.channel == channel, ChannelIdentity.external_id == inbound.external_id))
        if identity is None:
            conversation, _ = await self._service.start(channel=channel,
                                                        contact_name=inbound.display_name)
            try:
                async with self._sessions.begin() as session:
                    identity = ChannelIdentity(channel=channel, external_id=inbound.external_id,
                                               conversation_id=conversation.id,
                                               display_name=inbound.display_name)
                    session.add(identity)
            except Exception:  # the same customer's first two messages raced: use the winner
                async with self._sessions() as session:
                    identity = await session.scalar(select(ChannelIdentity).where(
                        ChannelIdentity.channel == channel,
                        ChannelIdentity.external_id == inbound.external_id))
                if identity is None:
                    raise
        async with self._sessions.begin() as session:
            stored = await session.get(ChannelIdentity, identity.id)
            assert stored is not None
            stored.last_inbound_at = utcnow()
            identity = stored
        return identity

    # --- outbound -------------------------------------------------------------------

    async def run(self) -> None:
        """Finds undelivered messages and delivers them, forever; woken by new messages."""
        try:
            await self._run_rounds()
        finally:
            await self.stop_sending()

    async def _run_rounds(self) -> None:
        while True:
            self.wake.clear()  # before the work: a wake during it means "look again"
            try:
                if asyncio.get_running_loop().time() >= self._next_scan:
                    self._next_scan = asyncio.get_running_loop().time() + SCAN_EVERY_SECONDS
                    await self.enqueue()
                await self.resume_cut_off()
                await self.deliver_due()
                await self.reconcile_statuses()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("delivery loop failed; retrying")
            await wait_at_most(self.wake.wait(), 1.0)

    async def enqueue(self, limit: int = 200) -> int:
        """A delivery row for every outgoing message of a messaging channel that has none:
        the safety net behind `_queue_deliveries` (a message stored without the ORM, or
        before this version), and what fills the outbox after an upgrade.

        Reads only messages above a mark that moves up past messages old enough to have
        committed: the whole messages table each time would grow with the store's history."""
        async with self._sessions.begin() as session:
            candidates = list(await session.scalars(
                select(Message).where(
                    Message.id >= self._enqueued_below,
                    Message.channel.in_(list(self.adapters)),
                    Message.message_type.in_([MessageType.OUTGOING.value, MessageType.ACTIVITY.value]),
                    Message.private.is_(False),
                    ~exists().where(Delivery.message_id == Message.id),
                ).order_by(Message.id).limit(limit)))
            for message in candidates:
                session.add(Delivery(message_id=message.id, channel=message.channel,
                                     status=delivery_status(message) or "skipped"))
            if len(candidates) == limit:  # more to find: the next round scans again
                self._next_scan = 0.0
            else:  # everything above the mark was seen
                settled = await session.scalar(select(func.max(Message.id)).where(
                    Message.id >= self._enqueued_below, Message.created_at < utcnow() - SETTLED))
                if settled is not None:
                    self._enqueued_below = settled + 1
        if candidates:
            logger.warning("%d outgoing message(s) reached the outbox by its scan", len(candidates))
        return len(candidates)

    async def reconcile_statuses(self) -> None:
        """Applies statuses reported just before their send was recorded (neither saw the
        other). The race spans seconds; the window keeps this read small as history grows,
        and only a status that would move its delivery is read: every round read every
        status of the window, applied long ago, and the soak's outbox instance spent twice
        the CPU per turn of the other once the window had filled."""
        async with self._sessions.begin() as session:
            rows = await session.execute(
                select(Delivery, DeliveryStatus)
                .join(DeliveryStatus, DeliveryStatus.provider_message_id == Delivery.provider_message_id)
                .where(Delivery.status.in_(["sent", "delivered"]),
                       DeliveryStatus.received_at >= utcnow() - STATUS_RECONCILE_WINDOW,
                       _moves(Delivery.status, DeliveryStatus.status))
                .order_by(DeliveryStatus.id))
            for delivery, status in rows.tuples():
                _advance(delivery, status.status, status.error)

    async def resume_cut_off(self) -> int:
        """Puts back in the outbox the sends that were cut off: marked "sending" longer than
        `IN_FLIGHT_SECONDS` ago and never recorded, because their instance died or their lane
        was cancelled. One the platform took has been confirmed by its status meanwhile
        (WhatsApp echoes our reference) and is not here; the rest are sent again. Telegram
        echoes nothing, so a Telegram send cut off after the platform took it still goes
        out twice: losing the reply would be worse."""
        async with self._sessions.begin() as session:
            cut_off = [row for row in await session.scalars(
                select(Delivery).where(Delivery.status == "sending",
                                       Delivery.next_attempt_at <= utcnow())
                .order_by(Delivery.message_id).with_for_update(skip_locked=True))
                if row.id not in self._sending]
            for row in cut_off:
                row.status, row.next_attempt_at = "pending", utcnow()
                row.attempts += 1
                row.last_error = "its sender stopped before the platform answered; no status came"
        if cut_off:
            logger.warning("%d send(s) cut off by a stopped instance go out again: deliveries %s",
                           len(cut_off), [row.id for row in cut_off])
        return len(cut_off)

    async def deliver_due(self, limit: int = 200) -> int:
        """Starts sending what is due: conversations side by side, each one's messages in order.

        Each conversation gets one lane (a task) that sends its due messages one after another;
        a round skips conversations whose lane was sending at any time during its read, so a
        slow platform answer holds up that customer only, and the messages a lane has yet to
        send (still "pending" in the database) are never picked up twice. A message waiting
        for its retry holds back the later ones of its conversation, as does one in flight
        (after a crash, until it is confirmed or sent again): a customer never reads an
        answer before what it follows."""
        # A lane that ends while the query below runs has recorded its sends after the query
        # began, so the rows read may still say "pending": its conversation waits a round.
        busy = set(self._lanes)
        now = utcnow()
        earlier = aliased(Delivery)
        earlier_message = aliased(Message)
        waiting_before = exists().where(
            ((earlier.status == "pending") & (earlier.next_attempt_at > now))
            | (earlier.status == "sending"),
            earlier.message_id < Delivery.message_id,
            earlier_message.id == earlier.message_id,
            earlier_message.conversation_id == Message.conversation_id)
        async with self._sessions() as session:
            due = list(await session.execute(
                select(Delivery, Message, ChannelIdentity)
                .join(Message, Message.id == Delivery.message_id)
                .join(ChannelIdentity, (ChannelIdentity.conversation_id == Message.conversation_id)
                      & (ChannelIdentity.channel == Delivery.channel))
                .where(Delivery.status == "pending", Delivery.next_attempt_at <= now,
                       ~waiting_before)
                .order_by(Delivery.message_id).limit(limit)))
        lanes: dict[str, list[tuple[Delivery, Message, ChannelIdentity]]] = {}
        for delivery, message, identity in due:
            if message.conversation_id not in busy and message.conversation_id not in self._lanes:
                lanes.setdefault(message.conversation_id, []).append((delivery, message, identity))
        for conversation_id, lane in lanes.items():
            if len(self._lanes) >= SEND_CONCURRENCY:
                break  # the next lane to finish wakes the loop for the rest
            task = asyncio.create_task(self._deliver_in_order(lane))
            self._lanes[conversation_id] = task
            task.add_done_callback(functools.partial(self._lane_ended, conversation_id))
        return sum(len(lane) for lane in lanes.values())

    async def _deliver_in_order(self, lane: list[tuple[Delivery, Message, ChannelIdentity]]) -> None:
        for delivery, message, identity in lane:
            if self._stopping:
                return
            if await self._deliver(delivery, message, identity) == "pending":
                return  # the rest waits behind the retry

    def _lane_ended(self, conversation_id: str, task: asyncio.Task[None]) -> None:
        self._lanes.pop(conversation_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("delivering conversation %s failed", conversation_id,
                         exc_info=task.exception())
        self.wake.set()  # its conversation may have more, and a lane is free

    async def stop_sending(self) -> None:
        """Ends the lanes with the loop. Each finishes the message it is on and starts no other:
        a send the platform took must be recorded, or the next leader sends it again — the
        fault run saw two WhatsApp replies go out twice across a PostgreSQL restart when the
        lanes were cancelled while they waited for the database to record their sends. Lanes
        still busy after `STOP_GRACE_SECONDS` (a platform that does not answer) are cancelled."""
        self._stopping = True
        try:
            lanes = list(self._lanes.values())
            if lanes:
                _, late = await asyncio.wait(lanes, timeout=STOP_GRACE_SECONDS)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        finally:
            self._stopping = False  # the job may run here again (the lock taken back)

    async def _record_attempt(self, delivery_id: int, status: str, provider_id: str | None,
                              error: str | None, retry_at: datetime | None) -> None:
        """Records a send's outcome, waiting out a database that is down: the platform has
        the message now, and a delivery left "pending" would go out again — the cluster
        fault run saw a WhatsApp customer get one twice across a PostgreSQL restart."""
        pause = RECORD_RETRY_FIRST_SECONDS
        while True:
            try:
                async with self._sessions.begin() as session:
                    row = await session.get(Delivery, delivery_id)
                    assert row is not None
                    row.attempts += 1
                    row.last_error = error
                    if status == "sent":  # a status webhook may have moved it on already
                        _advance(row, status, error)
                    else:
                        row.status = status
                    row.provider_message_id = provider_id or row.provider_message_id
                    if retry_at is not None:
                        row.next_attempt_at = retry_at
                return
            except STORAGE_DOWN as exc:
                logger.warning("delivery %s went out but could not be recorded (%r); "
                               "retrying in %.1f s", delivery_id, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)

    async def _mark_sending(self, delivery_id: int) -> bool:
        """Records that the request is about to go, so a crash before its outcome is recorded
        is known (`resume_cut_off`) rather than sent again at once. False: the delivery is no
        longer pending (a status confirmed it meanwhile, or another sender has it)."""
        async with self._sessions.begin() as session:
            marked = await session.execute(
                update(Delivery).where(Delivery.id == delivery_id, Delivery.status == "pending")
                .values(status="sending", updated_at=utcnow(),
                        next_attempt_at=utcnow() + timedelta(seconds=IN_FLIGHT_SECONDS))
                .execution_options(synchronize_session=False))
        return bool(marked.rowcount)  # type: ignore[attr-defined]

    async def _deliver(self, delivery: Delivery, message: Message, identity: ChannelIdentity) -> str:
        """Sends one message and records how it went; returns the delivery's new status."""
        if not await self._mark_sending(delivery.id):
            return "pending"  # no longer ours to send: the next round reads where it stands
        self._sending.add(delivery.id)
        try:
            return await self._send_and_record(delivery, message, identity)
        finally:
            self._sending.discard(delivery.id)

    async def _send_and_record(self, delivery: Delivery, message: Message,
                               identity: ChannelIdentity) -> str:
        status, provider_id, error = "sent", None, None
        retry_at = None
        try:
            provider_id = await self.adapters[delivery.channel].send(
                identity, message, delivery_reference(delivery.id))
        except PermanentFailure as exc:
            status, error = "failed", str(exc)
        except (TemporaryFailure, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            error = repr(exc)
            if delivery.attempts + 1 >= MAX_ATTEMPTS:
                status = "failed"
            else:
                status = "pending"
                retry_at = utcnow() + timedelta(
                    seconds=min(300.0, self.retry_base_seconds * 2 ** delivery.attempts))
        await self._record_attempt(delivery.id, status, provider_id, error, retry_at)
        if status == "failed":
            note = await self._service.add_agent_note(
                message.conversation_id,
                f"Not delivered on {delivery.channel}: {error}. The customer did not get: "
                f"{(message.text or '')[:200]}")
            self._router.publish_messages(message.conversation_id, [note])
        return status

