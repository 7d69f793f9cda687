"""A message accepted before a crash but never routed is answered at the next start."""

from __future__ import annotations

from typing import Any

from handoff import migrate
from handoff.app import create_app
from handoff.config import Settings
from handoff.conversations.service import ConversationService
from handoff.db import create_engine, session_factory
from tests.conftest import RASA_TOKEN, FakeRasa


async def test_unrouted_message_is_routed_at_start_up(
    database_url: str, fake_rasa: FakeRasa, aiohttp_client: Any
) -> None:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    service = ConversationService(session_factory(engine))
    conversation, _ = await service.start(channel="api")
    # stored, then the process "died" before passing it on
    await service.receive(conversation.id, "are you there?", "m-1", "api")
    assert len(await service.unrouted()) == 1

    settings = Settings(database_url=database_url, rasa_url=fake_rasa.url,
                        rasa_token=RASA_TOKEN, action_server_url="http://127.0.0.1:1",
                        admin_password="admin-password-for-tests")
    await aiohttp_client(create_app(settings))

    assert [m["message"] for m in fake_rasa.received] == ["are you there?"]
    # it may have reached Rasa before the crash: Rasa answers it from its tracker if so
    stored = (await service.transcript(conversation.id))[0]
    assert fake_rasa.received[0]["message_id"] == str(stored.id)
    assert fake_rasa.received[0]["resumed"] is True
    assert await service.unrouted() == []
    texts = [m.text for m in await service.transcript(conversation.id)]
    assert texts == ["are you there?", "echo: are you there?"]
    await engine.dispose()
