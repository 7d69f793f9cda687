"""Brings the reports' projection up to the stored events: before a report, and in the
background so a report rarely has much to do (handoff/reports/projection.py says why the
recompute is not part of the customer's turn)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.reports.projection import CHUNK, catch_up

logger = logging.getLogger(__name__)
EVERY_SECONDS = 2.0


async def catch_up_projection(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Recomputes every marked conversation, a chunk per transaction; returns how many."""
    total = 0
    while True:
        async with sessions.begin() as session:
            done = await session.run_sync(lambda s: catch_up(s.connection()))
        total += done
        if done < CHUNK:  # all done, or the rest is being caught up by another instance
            return total


async def keep_projection_current(sessions: async_sessionmaker[AsyncSession],
                                  every_seconds: float = EVERY_SECONDS) -> None:
    """Catches up every few seconds, forever; a failure is logged and retried."""
    while True:
        try:
            await catch_up_projection(sessions)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("reports catch-up failed; trying again shortly")
        await asyncio.sleep(every_seconds)
