"""Team settings an admin changes in the console (business hours), kept in the database."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from handoff.business_hours import BusinessHours
from handoff.conversations.models import Base
from handoff.fanout import Fanout
from handoff.jobs import wait_at_most

if TYPE_CHECKING:
    from handoff.queue import SupportQueue

logger = logging.getLogger(__name__)

BUSINESS_HOURS_KEY = "business_hours"


class TeamSetting(Base):
    """One named setting; its value is JSON."""

    __tablename__ = "team_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]]


async def load_business_hours(sessions: async_sessionmaker[AsyncSession]) -> BusinessHours | None:
    """The hours an admin saved, which override SUPPORT_BUSINESS_HOURS; None if never saved."""
    async with sessions() as session:
        row = await session.get(TeamSetting, BUSINESS_HOURS_KEY)
    if row is None:
        return None
    return BusinessHours.parse(row.value["hours"], row.value["timezone"])


async def save_business_hours(sessions: async_sessionmaker[AsyncSession],
                              hours: BusinessHours) -> None:
    value = {"hours": hours.text, "timezone": hours.zone.key}
    async with sessions.begin() as session:
        row = await session.get(TeamSetting, BUSINESS_HOURS_KEY)
        if row is None:
            session.add(TeamSetting(key=BUSINESS_HOURS_KEY, value=value))
        else:
            row.value = value


# Announces saved settings, so every instance (not only the one that saved) applies them.
TEAM_SETTINGS_TOPIC = "team_settings"


async def follow_business_hours(fanout: Fanout, queue: SupportQueue, default: BusinessHours,
                                every_seconds: float = 60.0) -> None:
    """Keeps this instance's hours equal to the saved ones: reloaded when any instance
    announces a save, and every `every_seconds` in case the announcement was missed."""
    async with fanout.subscribe(TEAM_SETTINGS_TOPIC) as events:
        while True:
            await wait_at_most(events.get(), every_seconds)
            try:
                queue.hours = await load_business_hours(queue.sessions) or default
            except Exception as exc:  # the database is away: keep the hours we have
                logger.warning("could not reload business hours (%r)", exc)
