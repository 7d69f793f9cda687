"""SQLite's statements reach aiosqlite's thread once each, and behave as with the stock adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from handoff.db import create_engine

metadata = MetaData()
notes = Table("notes", metadata, Column("id", Integer, primary_key=True),
              Column("body", String(20), nullable=False, unique=True))


async def test_each_statement_is_one_trip_and_answers_like_the_stock_adapter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/notes.db")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    trips: list[Any] = []
    stock = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return await stock(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
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
    await engine.dispose()
