"""The database engine: SQLite by default, PostgreSQL when DATABASE_URL says so."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession

from handoff.db_sqlite import one_trip_dbapi

# Registers the listener that keeps the reports' projection with every write of events.
import handoff.reports.projection  # noqa: F401,E402


def create_engine(database_url: str, pool_size: int = 10) -> AsyncEngine:
    """An async engine; SQLite gets WAL, foreign keys and a busy timeout on every connection."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(database_url, connect_args={"timeout": 30},
                                     module=one_trip_dbapi())

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            # Reports read many pages: map the file and keep 64 MiB of pages per connection
            # instead of a read() per page (SQLite's default cache is 2 MiB).
            cursor.execute("PRAGMA mmap_size=1073741824")
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.close()

        return engine
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit (no lazy reloads in async code)."""
    return async_sessionmaker(engine, expire_on_commit=False)
