"""Several Rasa servers behind one web service: conversations spread over them, and a server
that refuses connections is routed around without any message being sent twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from handoff.app import create_app
from handoff.assistant import AssistantClient, AssistantUnavailable
from handoff.config import Settings
from tests.conftest import RASA_TOKEN, FakeRasa, unused_port
from tests.handoff.test_console import settings_for
from tests.handoff.test_http_api import send, start


@pytest.fixture
async def second_rasa() -> AsyncIterator[FakeRasa]:
    rasa = FakeRasa()
    await rasa.start()
    yield rasa
    await rasa.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def senders(count: int) -> list[str]:
    return [f"conversation-{i}" for i in range(count)]


async def test_conversations_spread_over_servers_and_each_stays_on_its_home(
    http: aiohttp.ClientSession, fake_rasa: FakeRasa, second_rasa: FakeRasa
) -> None:
    client = AssistantClient(http, [fake_rasa.url, second_rasa.url], RASA_TOKEN, 5)
    for sender in senders(20):
        for turn in range(2):
            turn_reply = await client.send(sender, f"hello {turn}")
            assert turn_reply.replies == [{"recipient_id": sender, "text": f"echo: hello {turn}"}]
    first = {body["sender"] for body in fake_rasa.received}
    second = {body["sender"] for body in second_rasa.received}
    assert first and second and not first & second  # spread, and never split
    assert len(fake_rasa.received) + len(second_rasa.received) == 40


async def test_a_server_that_refuses_connections_is_routed_around(
    http: aiohttp.ClientSession, fake_rasa: FakeRasa
) -> None:
    down = f"http://127.0.0.1:{unused_port()}"
    client = AssistantClient(http, [down, fake_rasa.url], RASA_TOKEN, 5)
    for sender in senders(10):
        turn = await client.send(sender, "where is my parcel")
        assert turn.replies[0]["text"] == "echo: where is my parcel"
    # every message reached the live server exactly once
    assert sorted(b["sender"] for b in fake_rasa.received) == sorted(senders(10))
    # the down one is now tried last, so nobody waits on it
    assert client.servers_for("conversation-0")[-1] == down
    await client.api("POST", "/conversations/conversation-0/tracker/events",
                     json=[{"event": "restart"}])
    assert fake_rasa.tracker_events == [("conversation-0", [{"event": "restart"}])]


async def test_all_servers_down_is_assistant_unavailable(http: aiohttp.ClientSession) -> None:
    client = AssistantClient(http, [f"http://127.0.0.1:{unused_port()}",
                                    f"http://127.0.0.1:{unused_port()}"], RASA_TOKEN, 5)
    with pytest.raises(AssistantUnavailable, match="no Rasa server"):
        await client.send("conversation-0", "hi")


async def test_a_slow_or_failing_server_is_not_retried_elsewhere(
    http: aiohttp.ClientSession, fake_rasa: FakeRasa, second_rasa: FakeRasa
) -> None:
    """It may have processed the message already: a second server would answer it twice."""
    client = AssistantClient(http, [fake_rasa.url, second_rasa.url], RASA_TOKEN, 0.3)
    sender = senders(1)[0]
    home, other = (fake_rasa, second_rasa) if client.servers_for(sender)[0] == fake_rasa.url \
        else (second_rasa, fake_rasa)
    home.delay = 1.0
    with pytest.raises(AssistantUnavailable):
        await client.send(sender, "hi")
    home.delay, home.status = 0.0, 500
    with pytest.raises(AssistantUnavailable, match="HTTP 500"):
        await client.send(sender, "hi again")
    assert other.received == []


async def test_the_web_service_uses_every_configured_server(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa
) -> None:
    down = f"http://127.0.0.1:{unused_port()}"
    base = settings_for(database_url, down)
    settings = Settings(**{**base.__dict__, "rasa_urls": (down, fake_rasa.url)})
    app = await aiohttp_client(create_app(settings))
    conversations = [await start(app) for _ in range(4)]
    replies = await asyncio.gather(*(send(app, cid, auth, text="hello") for cid, auth in conversations))
    for response in replies:
        body = await response.json()
        assert [r["text"] for r in body["replies"]] == ["echo: hello"]
    assert sorted(b["sender"] for b in fake_rasa.received) == sorted(c for c, _ in conversations)
