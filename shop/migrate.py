"""Brings the shop's schema up to date; its own version table, so it can share a database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff import migrate as handoff_migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "shop_alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """The web service's Alembic set-up pointed at the shop's migrations."""
    config = handoff_migrate.alembic_config(connection)
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def _run(engine: AsyncEngine, step: str, revision: str) -> None:
    action = getattr(command, step)
    async with engine.begin() as connection:
        await connection.run_sync(lambda sync: action(alembic_config(sync), revision))


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, "downgrade", revision)
