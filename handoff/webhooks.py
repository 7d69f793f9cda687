"""Mirrors handoff events to the store's own helpdesk: signed POSTs, delivered in order.

The conversation events table is the outbox: a cursor row remembers the last event
delivered, so a restart resumes where it stopped and nothing is skipped. Delivery is
at-least-once; each POST carries the event id for the receiver to drop repeats.
Signature: `X-Support-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with
`X-Support-Timestamp`, so a receiver can also refuse old replays.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import aiohttp
from sqlalchemy import String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from handoff.conversations.models import Base, ConversationEvent
from handoff.jobs import wait_at_most

logger = logging.getLogger(__name__)

EVENT_TYPES = ("handed_off", "claimed", "transferred", "resolved", "returned_to_bot",
               "csat_submitted")
CURSOR_NAME = "helpdesk"


class WebhookCursor(Base):
    """The id of the last event a webhook consumer has received."""

    __tablename__ = "webhook_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(default=0)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def event_body(event: ConversationEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "conversation_id": event.conversation_id,
            "data": event.data, "created_at": event.created_at.isoformat()}


class WebhookSender:
    """Delivers new handoff events one by one, retrying with backoff until each is accepted."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], http: aiohttp.ClientSession,
                 url: str, secret: str, poll_seconds: float = 1.0) -> None:
        self._sessions, self._http = sessions, http
        self._url, self._secret, self._poll = url, secret, poll_seconds
        self.wake = asyncio.Event()

    async def run(self) -> None:
        backoff = 1.0
        while True:
            try:
                delivered = await self.deliver_pending()
                backoff = 1.0
                if not delivered:
                    self.wake.clear()
                    await wait_at_most(self.wake.wait(), self._poll)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the receiver is down or refusing: wait, then retry
                logger.warning("helpdesk webhook failed (%r); retrying in %.0fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    async def deliver_pending(self) -> int:
        """Sends every event after the cursor; returns how many were delivered."""
        async with self._sessions() as session:
            cursor = await session.get(WebhookCursor, CURSOR_NAME)
            after = cursor.last_event_id if cursor else 0
            events = list(await session.scalars(
                select(ConversationEvent)
                .where(ConversationEvent.id > after, ConversationEvent.type.in_(EVENT_TYPES))
                .order_by(ConversationEvent.id).limit(100)))
        for event in events:
            await self._post(event)
            async with self._sessions.begin() as session:
                cursor = await session.get(WebhookCursor, CURSOR_NAME)
                if cursor is None:
                    session.add(WebhookCursor(name=CURSOR_NAME, last_event_id=event.id))
                else:
                    cursor.last_event_id = event.id
        return len(events)

    async def _post(self, event: ConversationEvent) -> None:
        body = json.dumps(event_body(event), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        async with self._http.post(self._url, data=body, timeout=aiohttp.ClientTimeout(total=10),
                                   headers={"Content-Type": "application/json",
                                            "X-Support-Event": event.type,
                                            "X-Support-Timestamp": timestamp,
                                            "X-Support-Signature": sign(self._secret, timestamp, body)}) as response:
            if response.status >= 300:
                raise RuntimeError(f"receiver answered HTTP {response.status}")
