"""Handoff events reach the store's helpdesk, signed, in order, even after a refusal."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiohttp import web
from aiohttp.test_utils import TestServer

from handoff.app import create_app
from handoff.config import Settings
from tests.conftest import FakeRasa
from tests.handoff.test_console import ADMIN, escalated, log_in, settings_for
from tests.handoff.test_http_api import send

SECRET = "helpdesk-shared-secret"


class Helpdesk:
    """Checks what a real receiver checks: the signature over timestamp and body."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.refuse_next = 1  # the first delivery fails, as a helpdesk restart would
        self.changed = asyncio.Event()

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers["X-Support-Timestamp"]
        expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers["X-Support-Signature"]):
            return web.Response(status=401)
        if self.refuse_next:
            self.refuse_next -= 1
            return web.Response(status=503)
        event = json.loads(body)
        assert request.headers["X-Support-Event"] == event["type"]
        self.events.append(event)
        self.changed.set()
        return web.Response(status=204)

    async def until(self, count: int) -> None:
        async with asyncio.timeout(30):  # a bound on a broken sender, not a timing claim
            while len(self.events) < count:
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def helpdesk() -> AsyncIterator[tuple[Helpdesk, TestServer]]:
    desk = Helpdesk()
    receiver = web.Application()
    receiver.router.add_post("/hooks", desk.receive)
    server = TestServer(receiver)
    await server.start_server()
    yield desk, server
    await server.close()


async def test_handoff_events_are_mirrored_signed_and_in_order(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa,
    helpdesk: tuple[Helpdesk, TestServer],
) -> None:
    helpdesk, server = helpdesk  # type: ignore[assignment]
    fake_rasa.reply = lambda text: [{"custom": {"handoff": {"reason": "customer_request"}}}]
    base = settings_for(database_url, fake_rasa.url)
    settings = Settings(**{**base.__dict__, "webhook_url": str(server.make_url("/hooks")),
                           "webhook_secret": SECRET})
    client = await aiohttp_client(create_app(settings))
    admin = await log_in(aiohttp_client, client, *ADMIN)
    cid, auth = await escalated(client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    await admin.call("POST", f"/console/api/conversations/{cid}/resolve",
                     {"resolution_code": "answered"})
    await send(client, cid, auth, text="5")
    await helpdesk.until(4)
    assert [e["type"] for e in helpdesk.events] == [
        "handed_off", "claimed", "resolved", "csat_submitted"]
    assert all(e["conversation_id"] == cid for e in helpdesk.events)
    assert [e["id"] for e in helpdesk.events] == sorted(e["id"] for e in helpdesk.events)
