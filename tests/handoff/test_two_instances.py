"""Two web-service instances on one PostgreSQL and one Redis: screens on either see everything,
and one conversation's messages are processed one at a time across both."""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import Any

import pytest

from handoff.app import create_app
from handoff.config import Settings
from tests.conftest import FakeRasa
from tests.handoff.test_console import ADMIN, log_in, settings_for
from tests.handoff.test_http_api import send, start


def redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not redis_reachable(), reason="Redis is not reachable at 127.0.0.1:6379")


@pytest.fixture
def shared(database_url: str, fake_rasa: FakeRasa) -> Settings:
    if database_url.startswith("sqlite"):
        pytest.skip("several instances share PostgreSQL, not a SQLite file")
    base = settings_for(database_url, fake_rasa.url)
    # a fresh prefix: tests never see each other's events or locks
    return Settings(**{**base.__dict__, "redis_url": "redis://127.0.0.1:6379/0",
                       "redis_prefix": f"test-{uuid.uuid4().hex}"})


async def test_an_agent_on_one_instance_sees_a_customer_on_the_other(
    aiohttp_client: Any, shared: Settings, fake_rasa: FakeRasa
) -> None:
    fake_rasa.reply = lambda text: (
        [{"custom": {"handoff": {"reason": "customer_request"}}}] if "person" in text
        else [{"text": f"echo: {text}"}])
    customer_side = await aiohttp_client(create_app(shared))
    agent_side = await aiohttp_client(create_app(shared))
    admin = await log_in(aiohttp_client, agent_side, *ADMIN)
    async with admin.client.ws_connect("/console/ws") as console:
        cid, auth = await start(customer_side)
        await send(customer_side, cid, auth, text="a person please")
        async with asyncio.timeout(10):
            while (event := await console.receive_json()).get("conversation_id") != cid:
                pass
        assert event["type"] == "queue"
        await admin.call("POST", f"/console/api/conversations/{cid}/claim")
        await console.send_json({"type": "watch", "conversation_id": cid})
        async with asyncio.timeout(10):
            while (await console.receive_json())["type"] != "watched":
                pass
        await send(customer_side, cid, auth, text="my parcel is lost")
        # the agent's own join notice travels through Redis too and may arrive first
        async with asyncio.timeout(10):
            while (event := await console.receive_json())["type"] != "message" or \
                    event["message"]["author"] != "customer":
                pass
        assert event["message"]["text"] == "my parcel is lost"


async def test_one_conversation_is_processed_one_message_at_a_time_across_instances(
    aiohttp_client: Any, shared: Settings, fake_rasa: FakeRasa
) -> None:
    first = await aiohttp_client(create_app(shared))
    second = await aiohttp_client(create_app(shared))
    fake_rasa.delay = 0.05
    cid, auth = await start(first)
    texts = [f"message {i}" for i in range(6)]
    await asyncio.gather(*(send(first if i % 2 else second, cid, auth, text=t)
                           for i, t in enumerate(texts)))
    assert fake_rasa.most_in_flight == 1  # never two messages of one conversation at once
    assert sorted(m["message"] for m in fake_rasa.received) == sorted(texts)
