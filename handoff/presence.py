"""Which agents are online across every web-service instance, through Redis keys with a TTL.

`AgentPresence` (handoff/queue.py) counts the console sockets of one process. With several
instances a customer on instance A must hear "a person will be with you" when the agents'
consoles are open on instance B, so each instance writes its own agents to a Redis key that
expires unless renewed (`<prefix>:presence:<instance>`), and reads the others' keys. An
instance that dies stops renewing; its agents drop out after `ttl_seconds`.

`online()` stays synchronous (the queue asks it on every message) and answers from this
process's sockets plus the last snapshot read from Redis. While Redis is down the snapshot
is kept (the agents are most likely still there) and refreshed once Redis answers again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from handoff.jobs import wait_at_most
from handoff.queue import AgentPresence

logger = logging.getLogger(__name__)


class SharedPresence(AgentPresence):
    """This instance's console sockets, published to Redis, plus every other instance's."""

    def __init__(self, redis: Redis, prefix: str = "support", ttl_seconds: float = 15.0) -> None:
        super().__init__()
        self._redis, self._prefix, self._ttl = redis, prefix, ttl_seconds
        self.instance = secrets.token_hex(8)
        self._others: set[str] = set()
        self._changed = asyncio.Event()

    @property
    def _key(self) -> str:
        return f"{self._prefix}:presence:{self.instance}"

    def connected(self, agent_id: str) -> None:
        super().connected(agent_id)
        self._changed.set()

    def disconnected(self, agent_id: str) -> None:
        super().disconnected(agent_id)
        self._changed.set()

    def online(self) -> set[str]:
        return super().online() | self._others

    async def refresh(self) -> None:
        """Writes this instance's agents (renewing the TTL) and reads every instance's."""
        mine = sorted(super().online())
        await self._redis.set(self._key, json.dumps(mine), px=int(self._ttl * 1000))
        others: set[str] = set()
        async for key in self._redis.scan_iter(match=f"{self._prefix}:presence:*", count=100):
            name = key.decode() if isinstance(key, bytes) else str(key)
            if name == self._key:
                continue
            raw = await self._redis.get(name)
            if raw:
                others.update(str(agent) for agent in json.loads(raw))
        self._others = others

    async def run(self) -> None:
        """Refreshes every third of the TTL, and at once when an agent connects or leaves."""
        while True:
            self._changed.clear()
            try:
                await self.refresh()
            except RedisError as exc:
                logger.warning("agent presence not shared (Redis: %r); using the last known", exc)
            await wait_at_most(self._changed.wait(), self._ttl / 3)

    async def leave(self) -> None:
        """Removes this instance's agents at a clean shutdown instead of waiting for the TTL."""
        try:
            await self._redis.delete(self._key)
        except RedisError:
            pass
