"""Tells every open screen what changed: the agents' queue, a conversation's new messages.

The database is the source of truth; an event only says "look again" plus what is new, so a
missed one costs a refresh, not a message. In-process here; a Redis implementation can sit
behind the same two calls when several web-service instances run.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

QUEUE_TOPIC = "queue"
# Every stored message, for whoever delivers to messaging apps.
MESSAGES_TOPIC = "messages"


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


class Fanout:
    """Publish an event to a topic; every subscriber of that topic in this process gets it."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        for queue in self._subscribers.get(topic, ()):
            queue.put_nowait({"topic": topic, **event})

    @asynccontextmanager
    async def subscribe(self, *topics: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for topic in topics:
            self._subscribers[topic].add(queue)
        try:
            yield queue
        finally:
            for topic in topics:
                self._subscribers[topic].discard(queue)
                if not self._subscribers[topic]:
                    del self._subscribers[topic]

    def add(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Adds a topic to an existing subscription (an agent opening a conversation)."""
        self._subscribers[topic].add(queue)

    def remove(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.get(topic, set()).discard(queue)
