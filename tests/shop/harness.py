"""Shared test helpers for the shop and the flows: a seeded demo store and a fake tracker."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.store import use_store
from shop import migrate
from shop.seed import seed
from shop.sql import SqlStoreBackend

DOMAIN = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "domain.yml").read_text(encoding="utf-8"))
ANNA = "anna.kowalski@example.com"  # owner of A10001-A10004 (seed.DEMO_ORDERS)
NOA = "noa.levi@example.co.il"  # owner of A10005, A10006


async def seeded_backend(database_url: str) -> SqlStoreBackend:
    backend = SqlStoreBackend.from_url(database_url)
    await migrate.upgrade(backend.engine)
    await seed(backend.engine, now=datetime.now(timezone.utc))
    return backend


_seeded: list[Path] = []  # one seeded template per test run; each test gets a copy


async def seeded_file() -> Path:
    """The seeded SQLite template, built on first use (seeding takes seconds)."""
    if not _seeded:
        path = Path(tempfile.mkdtemp(prefix="shop-seed-")) / "seeded.db"
        backend = await seeded_backend(f"sqlite+aiosqlite:///{path}")
        await backend.close()
        _seeded.append(path)
    return _seeded[0]


@pytest.fixture
async def store_backend(tmp_path: Path) -> AsyncIterator[SqlStoreBackend]:
    """A freshly seeded SQLite demo store that the actions use."""
    template = await seeded_file()
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(tmp_path / "shop.db")) as copy:
        source.backup(copy)  # includes what is still in the WAL
    backend = SqlStoreBackend.from_url(f"sqlite+aiosqlite:///{tmp_path}/shop.db")
    use_store(backend)
    yield backend
    use_store(None)
    await backend.close()


def tracker(text: str = "", intent: str = "nlu_fallback", confidence: float = 0.9,
            form: str | None = None, sender: str = "conv-1", **slots: Any) -> Tracker:
    """A tracker right after the customer said `text` (read as `intent`), inside `form`."""
    return Tracker(
        sender_id=sender, slots={"failed_tries": 0.0, **slots},
        latest_message={"text": text, "intent": {"name": intent, "confidence": confidence},
                        "entities": []},
        events=[], paused=False, followup_action=None,
        active_loop={"name": form} if form else {}, latest_action_name="action_listen",
    )


async def run(action: Any, track: Tracker) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Runs an action; returns the slots it set (last value wins) and its messages."""
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, track, DOMAIN)
    slots = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
    return slots, dispatcher.messages


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def handoff_of(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    custom = [m["custom"] for m in messages if m.get("custom") and "handoff" in m["custom"]]
    return custom[0]["handoff"] if custom else None


def records_of(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The facts an action asked the web service to record, as (type, data)."""
    return [(m["custom"]["record"]["type"], m["custom"]["record"]["data"])
            for m in messages if m.get("custom") and "record" in m["custom"]]
