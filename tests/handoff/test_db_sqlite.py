"""SQLite's statements reach aiosqlite's thread once each, and behave as with the stock adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from handoff.db import create_engine

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True),
              Column("body", String(20), nullable=False, unique=True))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/notes.db")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What reached aiosqlite's thread, one entry per trip."""
    trips: list[Any] = []
    stock = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return await stock(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return trips


async def test_each_statement_is_one_trip_and_answers_like_the_stock_adapter(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with engine.begin() as connection:
        trips.clear()
        inserted = await connection.execute(insert(notes).values(body="a"))
        assert len(trips) == 1 and inserted.inserted_primary_key == (1,)
        returned = await connection.execute(insert(notes).returning(notes.c.id), [{"body": "b"}])
        assert returned.scalar_one() == 2
        many = await connection.execute(insert(notes), [{"body": "c"}, {"body": "d"}])
        assert many.rowcount == 2
        trips.clear()
        rows = (await connection.execute(select(notes.c.body).order_by(notes.c.id))).all()
        assert len(trips) == 1 and [r.body for r in rows] == ["a", "b", "c", "d"]
        updated = await connection.execute(text("UPDATE notes SET body = body || '!'"))
        assert updated.rowcount == 4
    async with engine.connect() as connection:  # errors arrive as SQLAlchemy's, as before
        with pytest.raises(IntegrityError):
            await connection.execute(insert(notes).values(body="a!"))
        await connection.rollback()
        with pytest.raises(OperationalError):
            await connection.execute(text("SELECT nothing FROM nowhere"))
        await connection.rollback()
        assert await connection.scalar(select(notes.c.body).where(notes.c.id == 1)) == "a!"


async def test_commit_and_rollback_make_a_trip_only_when_something_was_written(
    engine: AsyncEngine, trips: list[Any]
) -> None:
    async with engine.connect() as connection:  # a read, then the pool's rollback: no trip
        trips.clear()
        assert await connection.scalar(select(notes.c.id)) is None
    assert len(trips) == 1
    async with engine.begin() as connection:  # a write is committed: one more trip
        trips.clear()
        await connection.execute(insert(notes).values(body="kept"))
    assert len(trips) == 2
    async with engine.connect() as connection:  # a write rolled back is gone
        await connection.execute(insert(notes).values(body="dropped"))
        trips.clear()
        await connection.rollback()
        assert len(trips) == 1
    async with engine.connect() as connection:
        assert (await connection.scalars(select(notes.c.body))).all() == ["kept"]
