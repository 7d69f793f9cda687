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
RESYNC = "resync"  # an event type: "you may have missed events; read the database"


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"


class Fanout:
    """Publish an event to a topic; every subscriber of that topic in this process gets it."""

    # Every event published reaches every subscriber (in this process, at once): nothing is
    # ever missed, only perhaps seen in another order than the rows' ids.
    reliable = True

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
                self.remove(topic, queue)

    def add(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Adds a topic to an existing subscription (an agent opening a conversation)."""
        self._subscribers[topic].add(queue)

    def remove(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Ends a subscription to one topic; a topic nobody follows is forgotten (every
        conversation an agent ever opened would otherwise stay, as an empty set)."""
        subscribers = self._subscribers.get(topic)
        if subscribers is not None:
            subscribers.discard(queue)
            if not subscribers:
                del self._subscribers[topic]

    def resync(self) -> None:
        """Tells every subscription in this process, once, that events may have been missed
        (the Redis subscription was lost): screens read what is new from the database."""
        seen: set[int] = set()
        for topic, queues in list(self._subscribers.items()):
            for queue in queues:
                if id(queue) not in seen:
                    seen.add(id(queue))
                    queue.put_nowait({"topic": topic, "type": RESYNC})

    def topics(self) -> int:
        """How many topics someone in this process follows."""
        return len(self._subscribers)
