"""Redis behind the fanout and the per-conversation lock, for several web-service instances.

Same calls as the in-process defaults (`Fanout`, `ConversationLocks`): every event goes
through Redis pub/sub, so each instance — this one included — hands it to its own open
screens; a lock is a Redis key set only if absent, with an expiry and a token so only its
holder releases it. The database stays the source of truth: an event lost while Redis
restarts costs a screen refresh, never a message.

While Redis does not answer, the instance keeps working from the database: an event that
cannot be published goes to this instance's own screens (the others catch up from the
database), and a conversation's lock falls back to a PostgreSQL advisory lock
(handoff/db_locks.py). Both recover by themselves once Redis answers again.

An instance that dies takes with it the events it had stored but not yet published (the
publisher sends them after the commit, from a queue). Redis drops a dead instance's
subscription at once, so every instance watches the channel's subscriber count and, when it
falls, tells its screens to read the database again: a customer on another instance saw an
agent's greeting only a minute later, with the agent's next message, in the fault run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from handoff.db_locks import DatabaseLocks
from handoff.fanout import Fanout
from handoff.jobs import wait_at_most

logger = logging.getLogger(__name__)

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
"""


def _retrieve(task: asyncio.Task[None]) -> None:
    """Reads a finished renewer's outcome so asyncio never logs it as unretrieved."""
    if not task.cancelled():
        task.exception()


class LockTimeout(Exception):
    """Another instance held the conversation's lock for longer than any message takes."""


class RedisFanout(Fanout):
    """Publishes through Redis; delivers what Redis sends back to this instance's subscribers."""

    reliable = False  # an event published while a connection drops reaches no one
    PEER_CHECK_SECONDS = 1.0  # how often the subscriber count is read

    def __init__(self, redis: Redis, prefix: str = "support") -> None:
        super().__init__()
        self._redis, self._prefix = redis, prefix
        self._channel = f"{prefix}:events"
        self.subscribers_seen: int | None = None  # on the channel at the last look
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        # One publisher task keeps events in the order they happened.
        self._outbox.put_nowait((topic, event))

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._publish()),
                       asyncio.create_task(self._watch_peers())]
        await asyncio.wait_for(self._listening.wait(), 10)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _publish(self) -> None:
        while True:
            topic, event = await self._outbox.get()
            payload = json.dumps({"topic": topic, "event": event})
            for attempt in range(3):
                try:
                    await self._redis.publish(self._channel, payload)
                    break
                except RedisError as exc:
                    logger.warning("fanout publish failed (%r), retrying", exc)
                    await asyncio.sleep(0.05 * 2 ** attempt)
            else:  # Redis is down: at least this instance's screens hear of it
                Fanout.publish(self, topic, event)

    async def _listen(self) -> None:
        lost = False
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._listening.set()
                    if lost:  # other instances' events while it was down never came
                        self.resync()
                        lost = False
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        data = json.loads(item["data"])
                        Fanout.publish(self, data["topic"], data["event"])
            except RedisError as exc:
                logger.warning("fanout subscription lost (%r); resubscribing", exc)
                lost = True
                await asyncio.sleep(0.5)

    async def _watch_peers(self) -> None:
        """Resyncs this instance's screens when another instance's subscription ends (it died,
        or lost Redis): the events it had not published yet are only in the database."""
        while True:
            await asyncio.sleep(self.PEER_CHECK_SECONDS)
            last = self.subscribers_seen
            try:
                [(_, count)] = await self._redis.pubsub_numsub(self._channel)
            except RedisError:
                self.subscribers_seen = None  # Redis is away: `_listen` resyncs once it is back
                continue
            self.subscribers_seen = int(count)
            if last is not None and self.subscribers_seen < last:
                logger.info("a web instance left the event channel (%d -> %d subscribers); "
                            "screens read the database again", last, count)
                self.resync()


class RedisLocks:
    """One message at a time per conversation across every instance.

    The lock lives `ttl_ms` and its holder renews it every third of that while it works (a
    turn may wait 30 s for Rasa), so an instance killed mid-turn frees its conversations
    within `ttl_ms`. With a fixed 60 s lifetime, the cluster fault run's customers waited
    about a minute after `kill -9` of a web instance.
    """

    def __init__(self, redis: Redis, prefix: str = "support", ttl_ms: int = 10_000,
                 wait_seconds: float = 120.0, fallback: DatabaseLocks | None = None) -> None:
        self._redis, self._prefix = redis, prefix
        self._ttl_ms, self._wait = ttl_ms, wait_seconds
        self._release = redis.register_script(_RELEASE)
        self._renew = redis.register_script(_RENEW)
        self._fallback = fallback

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        key, token = f"{self._prefix}:lock:{conversation_id}", secrets.token_hex(16)
        try:
            await self._acquire(conversation_id, key, token)
        except RedisError as exc:
            if self._fallback is None:
                raise
            logger.warning("Redis lock unavailable (%r); using the database's lock", exc)
            async with self._fallback.hold(conversation_id):
                yield
            return
        done = asyncio.Event()
        renewer = asyncio.create_task(self._keep(key, token, done))
        renewer.add_done_callback(_retrieve)
        try:
            yield
        finally:
            # Told to stop, and cancelled, but never awaited: a cancel that lands inside a
            # Redis call can be swallowed, and the renewer then went on renewing while its
            # holder waited for it forever — the conversation stayed locked, its message
            # answered but never acknowledged (the cluster load run, a few chats a level).
            done.set()
            renewer.cancel()
            try:
                await self._release(keys=[key], args=[token])
            except RedisError as exc:  # the key expires by itself
                logger.warning("Redis lock release failed (%r)", exc)

    async def _keep(self, key: str, token: str, done: asyncio.Event) -> None:
        """Extends the lock while its holder works; stops when the holder is done or the lock
        is no longer ours."""
        while True:
            await wait_at_most(done.wait(), self._ttl_ms / 3000)
            if done.is_set():
                return
            try:
                if not await self._renew(keys=[key], args=[token, self._ttl_ms]):
                    logger.warning("lost the lock %s while holding it (expired)", key)
                    return
            except RedisError as exc:  # Redis is down: the lock expires by itself
                logger.warning("Redis lock renewal failed (%r)", exc)

    async def _acquire(self, conversation_id: str, key: str, token: str) -> None:
        delay, loop = 0.002, asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while not await self._redis.set(key, token, nx=True, px=self._ttl_ms):
            if loop.time() > deadline:
                raise LockTimeout(f"conversation {conversation_id} stayed locked")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
