"""A waiting customer's email or phone is kept on their contact record, and nothing else is."""

from __future__ import annotations

import pytest

from handoff import migrate
from handoff.conversations.service import ConversationService
from handoff.db import create_engine, session_factory


@pytest.mark.parametrize(
    ("text", "email", "phone"),
    [
        ("reach me at Noa.Levi@Example.co.il", "noa.levi@example.co.il", None),
        ("my number is +972 (54) 123-4567", None, "+972541234567"),
        ("ordered on 2026-11-23, order A10001, zip 10115", None, None),
        ("card •••• 4242, call 030 1234 5678", None, "03012345678"),
    ],
)
async def test_contact_details_from_text(database_url: str, text: str, email: str | None,
                                         phone: str | None) -> None:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    service = ConversationService(session_factory(engine))
    conversation, _ = await service.start(channel="api")
    changed = await service.note_contact_details(conversation.id, text)
    contact = await service.contact(conversation.contact_id)
    assert (contact.email, contact.phone) == (email, phone)
    assert changed is bool(email or phone)
    await engine.dispose()
