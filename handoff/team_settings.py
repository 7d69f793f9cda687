"""Team settings an admin changes in the console (business hours), kept in the database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from handoff.business_hours import BusinessHours
from handoff.conversations.models import Base

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
