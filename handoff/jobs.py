"""Background jobs that must run on exactly one web-service instance at a time.

The outbound senders (helpdesk webhooks, messaging deliveries) and the sweep for messages
stored but never routed each read the database as their outbox; two instances running one
of them at once would send the same event twice. Each job therefore runs only on the
instance that holds its PostgreSQL advisory lock, taken on a connection kept for as long as
the job runs:

- an instance killed with -9 drops its connection, PostgreSQL frees the lock, and another
  instance (retrying every `retry_seconds`) takes the job over;
- if the lock's connection fails (PostgreSQL restarted, backend terminated) the holder
  notices within `check_seconds` (it pings that connection) and stops the job; a new holder
  waits 2.5 × `check_seconds` (two pings, one timing out) after taking the lock before it
  starts, so the two never overlap.

Why advisory locks rather than a Redis lock or a lease table: the database is already the
one thing every instance must reach to do any work, a lock tied to a connection needs no
clock or renewal, and no schema change. Helpdesk webhooks stay at-least-once (a sender killed
between a POST and recording it sends that one again); receivers drop repeats by event id.
The messaging outbox marks each send first and lets WhatsApp's statuses confirm one cut off
(see `channels/messaging.py`).
SQLite serves a single instance, so there the job simply runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from handoff.db_locks import advisory_key

logger = logging.getLogger(__name__)

Job = Callable[[], Coroutine[Any, Any, None]]


def lock_key(name: str) -> int:
    """The advisory-lock key of a job."""
    return advisory_key(f"job:{name}")


class SingleRunner:
    """Runs each named job on the one instance holding its lock; the others stand by."""

    def __init__(self, engine: AsyncEngine, retry_seconds: float = 2.0,
                 check_seconds: float = 1.0) -> None:
        self._engine = engine
        self._retry, self._check = retry_seconds, check_seconds
        self.running: set[str] = set()  # the jobs this instance runs right now
        self.standing_by: Counter[str] = Counter()  # tries that found the lock taken

    async def run(self, name: str, job: Job) -> None:
        """Runs `job` (a loop that never returns) whenever this instance holds `name`'s lock."""
        if self._engine.dialect.name != "postgresql":
            self.running.add(name)
            await job()
            return
        while True:
            try:
                await self._run_holding(name, job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: queue for the lock again
                logger.warning("job %s stopped (%r); retrying for its lock", name, exc)
            await asyncio.sleep(self._retry)

    async def _run_holding(self, name: str, job: Job) -> None:
        key = lock_key(name)
        async with self._engine.connect() as connection:
            got = await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})
            await connection.commit()
            if not got:
                self.standing_by[name] += 1
                return
            watch = asyncio.create_task(self._watch(connection))
            work = asyncio.create_task(self._after_grace(name, job))
            try:
                done, _ = await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.running.discard(name)
                for task in (work, watch):
                    task.cancel()
                await asyncio.gather(work, watch, return_exceptions=True)
                # Closing the connection frees the lock whatever state it is in; handing it
                # back to the pool would keep the lock held by an idle connection.
                await connection.invalidate()
            for task in done:
                task.result()  # re-raise why it ended

    async def _after_grace(self, name: str, job: Job) -> None:
        """Starts the job once a previous holder whose connection was cut has noticed it."""
        await asyncio.sleep(self._check * 2.5)
        logger.info("this instance now runs job %s", name)
        self.running.add(name)
        await job()

    async def _watch(self, connection: AsyncConnection) -> None:
        """Returns (by raising) as soon as the lock's connection stops answering."""
        while True:
            await asyncio.sleep(self._check)
            async with asyncio.timeout(self._check):  # wait_for can swallow a cancel on 3.11
                await connection.execute(text("SELECT 1"))
            await connection.commit()


async def wait_at_most(awaitable: Awaitable[Any], seconds: float) -> None:
    """Awaits until done or `seconds` pass, whichever comes first: how the background loops
    sleep until woken. Not `asyncio.wait_for`: on Python 3.11 it swallows a cancellation that
    lands as the awaited event fires, and the outbox loop outlived its app's shutdown (a
    test teardown hung about one run in five)."""
    try:
        async with asyncio.timeout(seconds):
            await awaitable
    except TimeoutError:
        pass


async def sweep_unrouted(list_unrouted: Callable[[], Awaitable[int]],
                         every_seconds: float = 30.0) -> None:
    """Routes messages another instance stored and never routed (it died in between)."""
    while True:
        try:
            count = await list_unrouted()
            if count:
                logger.info("routed %d message(s) left unrouted", count)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("routing left-over messages failed; retrying")
        await asyncio.sleep(every_seconds)
