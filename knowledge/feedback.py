"""Stores customers' "did it help?" answers so weak articles can be found and improved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Boolean,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    create_engine,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    """The knowledge base's own tables (separate from the web service's database)."""


class Feedback(Base):
    """One answer to "did this help?" about one article."""

    __tablename__ = "kb_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    conversation_id: Mapped[str] = mapped_column(String(200), index=True)
    article_id: Mapped[str] = mapped_column(String(200), index=True)
    language: Mapped[str] = mapped_column(String(16))
    helpful: Mapped[bool] = mapped_column(Boolean)
    question: Mapped[str] = mapped_column(Text, default="")


class FeedbackStore:
    """A small SQLite table; blocking calls run in a worker thread from async code."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._engine: Engine | None = None

    def _db(self) -> Engine:
        if self._engine is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(f"sqlite:///{self.path}", connect_args={"timeout": 10})
            Base.metadata.create_all(engine)
            self._engine = engine
        return self._engine

    def record(self, conversation_id: str, article_id: str, language: str, helpful: bool,
               question: str = "") -> None:
        """Stores one answer (blocking)."""
        with Session(self._db()) as session, session.begin():
            session.add(Feedback(
                created_at=datetime.now(UTC), conversation_id=conversation_id,
                article_id=article_id, language=language, helpful=helpful, question=question[:2000],
            ))

    async def arecord(self, conversation_id: str, article_id: str, language: str, helpful: bool,
                      question: str = "") -> None:
        """Stores one answer without blocking the action server's event loop."""
        await asyncio.to_thread(self.record, conversation_id, article_id, language, helpful, question)

    def summary(self) -> dict[str, tuple[int, int]]:
        """article id -> (helpful, not helpful) counts."""
        with Session(self._db()) as session:
            rows = session.execute(
                select(Feedback.article_id, Feedback.helpful, func.count()).group_by(
                    Feedback.article_id, Feedback.helpful
                )
            ).all()
        result: dict[str, tuple[int, int]] = {}
        for article_id, helpful, count in rows:
            yes, no = result.get(article_id, (0, 0))
            result[article_id] = (yes + count, no) if helpful else (yes, no + count)
        return result

    def close(self) -> None:
        """Releases the connection pool."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
