"""PostgreSQL advisory locks: the per-conversation lock while Redis is unreachable, and the
keys the single-runner jobs use (handoff/jobs.py).

A conversation's lock normally lives in Redis (handoff/redis_backplane.py), which holds no
database connection while Rasa thinks. When Redis does not answer, the instances fall back
to a session-level advisory lock on a connection of a small engine of its own, so message
handling keeps its order (slower, one connection per conversation in flight) and never
starves the main pool.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

logger = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name."""
    return int.from_bytes(hashlib.sha256(f"support:{name}".encode()).digest()[:8], "big",
                          signed=True)


class DatabaseLocks:
    """One message at a time per conversation, through PostgreSQL advisory locks."""

    def __init__(self, engine: AsyncEngine, wait_seconds: float = 120.0) -> None:
        self._engine, self._wait = engine, wait_seconds

    @asynccontextmanager
    async def hold(self, conversation_id: str) -> AsyncIterator[None]:
        key = advisory_key(f"conversation:{conversation_id}")
        async with self._engine.connect() as connection:
            # as bounded as the Redis lock: a holder stuck for minutes fails this message
            await connection.execute(text("SELECT set_config('lock_timeout', :t, false)"),
                                     {"t": f"{int(self._wait * 1000)}ms"})
            await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            await connection.commit()
            try:
                yield
            finally:
                try:
                    await connection.execute(text("SELECT pg_advisory_unlock(:key)"),
                                             {"key": key})
                    await connection.commit()
                except Exception as exc:  # closing the connection frees the lock too
                    logger.warning("advisory unlock failed (%r); closing its connection", exc)
                    await connection.invalidate()
