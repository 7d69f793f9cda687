"""Start-up checks: an instance that cannot work properly refuses to start, naming the setting.

A web service that starts with a database it cannot reach, a Redis that does not answer or a
schema other than its code expects would accept customers' messages and then lose or
mangle them. Each check raises `ConfigError` with the variable to fix, before anything is
served; `python -m handoff` prints it and exits with status 2.
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff import migrate
from handoff.config import ConfigError, Settings

CHECK_SECONDS = 10.0


def shown(url: str) -> str:
    """The URL without its password, fit for an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable URL>"


async def check(settings: Settings, engine: AsyncEngine, redis: Redis | None) -> None:
    """Database reachable, schema at this code's revision, Redis answering (when configured)."""
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        raise ConfigError(f"DATABASE_URL ({shown(settings.database_url)}) does not answer: "
                          f"{type(exc).__name__}: {exc}".strip()) from None
    await check_schema(engine, settings.migrate_on_start)
    if redis is not None:
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await redis.ping()
        except Exception as exc:
            raise ConfigError(f"SUPPORT_REDIS_URL ({shown(settings.redis_url)}) does not answer: "
                              f"{type(exc).__name__}: {exc}".strip()) from None


async def check_schema(engine: AsyncEngine, migrate_on_start: bool) -> None:
    """Refuses a schema newer than the code, and one behind it unless allowed to upgrade it."""
    current, head = await migrate.current_revision(engine), migrate.head_revision()
    if current is not None and current not in migrate.known_revisions():
        raise ConfigError(
            f"DATABASE_URL: the database schema is at revision {current}, which this code does "
            f"not know (its newest is {head}): another instance runs newer code; upgrade this "
            "one before starting it")
    if current == head:
        return
    if not migrate_on_start:
        raise ConfigError(
            f"DATABASE_URL: the database schema is at revision {current or 'none'}, behind this "
            f"code ({head}), and SUPPORT_MIGRATE_ON_START is off: run `python -m handoff "
            "migrate` once, then start the instances")
    await migrate.upgrade(engine)
