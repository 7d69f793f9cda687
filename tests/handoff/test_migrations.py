"""The migrations build exactly the schema the models describe, and undo cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from handoff import migrate
from handoff.conversations.models import Base
from handoff.db import create_engine

TABLES = {"contacts", "conversations", "participants", "messages", "conversation_events"}


async def test_upgrade_matches_models_and_downgrade_removes_all(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # running twice is a no-op, as at every start-up
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
            )
        assert TABLES <= names
        assert diff == []
        await migrate.downgrade(engine)
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert not (TABLES & names)
    finally:
        await engine.dispose()
