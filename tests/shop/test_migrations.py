"""The shop migrations build exactly the models' schema, beside the web service's, and undo cleanly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from handoff.db import create_engine
from shop import migrate
from shop.models import Base


async def test_upgrade_matches_models_and_downgrade_removes_all(database_url: str) -> None:
    engine = create_engine(database_url)
    tables = set(Base.metadata.tables)
    try:
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # idempotent, as at every action-server start
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            diff = await connection.run_sync(
                lambda c: compare_metadata(MigrationContext.configure(
                    c, opts={"version_table": migrate.VERSION_TABLE}), Base.metadata))
        assert tables <= names and migrate.VERSION_TABLE in names
        assert [d for d in diff if not (d[0] == "remove_table")] == []
        await migrate.downgrade(engine)
        async with engine.connect() as connection:
            names = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        assert not (tables & names)
    finally:
        await engine.dispose()
