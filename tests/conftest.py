"""Shared fixtures: databases (SQLite always, PostgreSQL when reachable) and a fake Rasa."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text

from handoff.db import create_engine

POSTGRES_URL = os.environ.get(
    "SUPPORT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
RASA_TOKEN = "test-rasa-token"


def postgres_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


async def reset_postgres() -> None:
    """An empty `public` schema, so each test starts from nothing (tests run one at a time)."""
    engine = create_engine(POSTGRES_URL)
    async with engine.begin() as connection:
        await connection.execute(text("DROP SCHEMA public CASCADE"))
        await connection.execute(text("CREATE SCHEMA public"))
    await engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """Every database test runs on SQLite and on PostgreSQL (skipped with a reason if down)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/support.db"
        return
    if not postgres_reachable():
        pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432")
    await reset_postgres()
    yield POSTGRES_URL


Reply = list[dict[str, Any]]


class FakeRasa:
    """Stands in for the Rasa server's support channel in unit tests; checks what Rasa checks.

    The real Rasa server is used in tests/e2e; here each test scripts the replies.
    """

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.reply: Callable[[str], Reply] = lambda text: [{"text": f"echo: {text}"}]
        # How Rasa read each message (bot/channel.py returns it beside the replies).
        self.intent: Callable[[str], str] = lambda text: "greet"
        # The turn's events and the form left active (bot/channel.py); None: not reported.
        self.turn: Callable[[str], dict[str, Any]] | None = None
        self.tracker_status = 200
        self.status = 200
        self.server: TestServer | None = None
        self.tracker_events: list[tuple[str, Any]] = []
        self.tracker_gate: asyncio.Event | None = None
        self.tracker_requests = 0  # arrived, including any still held at the gate
        # A slow assistant widens any overlap between messages of one conversation.
        self.delay = 0.0
        self.in_flight = 0
        self.most_in_flight = 0

    async def _tracker_events(self, request: web.Request) -> web.Response:
        if request.query.get("token") != RASA_TOKEN:
            return web.json_response({"error": "unauthorised"}, status=401)
        self.tracker_requests += 1
        if self.tracker_gate is not None:  # a slow Rasa: answers when the test opens it
            await self.tracker_gate.wait()
        if self.tracker_status != 200:
            return web.json_response({"error": "failed"}, status=self.tracker_status)
        self.tracker_events.append((request.match_info["cid"], await request.json()))
        return web.json_response({})

    async def _webhook(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {RASA_TOKEN}":
            return web.json_response({"error": "missing or wrong token"}, status=401)
        body = await request.json()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.received.append(body)
        if self.status != 200:
            return web.json_response({"error": "assistant failed"}, status=self.status)
        intent = self.intent(body["message"])
        return web.json_response({
            "messages": [{"recipient_id": body["sender"], **r} for r in self.reply(body["message"])],
            "intent": {"name": intent, "confidence": 0.9 if intent != "nlu_fallback" else 0.45,
                       "top": {"name": "greet", "confidence": 0.3}},
            **({"turn": self.turn(body["message"])} if self.turn else {}),
        })

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/support/webhook", self._webhook)
        app.router.add_post("/conversations/{cid}/tracker/events", self._tracker_events)
        self.server = TestServer(app)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


@pytest.fixture
async def fake_rasa() -> AsyncIterator[FakeRasa]:
    rasa = FakeRasa()
    await rasa.start()
    yield rasa
    await rasa.close()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
