"""Finding a contact: by name, email, phone, a channel identity (a WhatsApp number, a Telegram
chat) or a tag, from the console's search box.

Matching is a substring match on one normal form (handoff/contacts/folding.py) stored in
`contacts.search_text`, so it is case-insensitive for every script on SQLite and PostgreSQL
alike; identities are matched on their ids (lower-cased ASCII: numbers, chat ids, emails).
A query written like a phone number is also matched by its digits. Erased contacts never
match: their fields are gone and they are filtered out besides.

Results come newest contact first, keyset-paginated on (created_at, id): both never change,
so a page continues exactly after the previous one even while contacts are added.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.channels.messaging import ChannelIdentity
from handoff.contacts.folding import fold, phone_digits
from handoff.contacts.models import ContactIdentity
from handoff.contacts.service import contact_record_json
from handoff.conversations.models import Contact, Conversation
from handoff.http import BadRequest
from handoff.pagination import encode_cursor, keyset_before

MIN_QUERY, MAX_QUERY = 2, 200


def parse_query(raw: str | None) -> str:
    """The search words from the `q` parameter, or a 400 saying what is wrong."""
    query = (raw or "").strip()
    if not query:
        raise BadRequest("give 'q': a name, email, phone, channel id or tag to search for")
    if len(query) < MIN_QUERY:
        raise BadRequest(f"'q' must hold at least {MIN_QUERY} characters")
    if len(query) > MAX_QUERY:
        raise BadRequest(f"'q' may be at most {MAX_QUERY} characters")
    if any(ord(c) < 32 for c in query):
        raise BadRequest("'q' holds control characters")
    return query


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _matches(query: str) -> Any:
    """Contacts whose own fields or identities hold the query."""
    patterns = [_like(fold(query))]
    digits = phone_digits(query)
    if digits:
        patterns.append(_like(digits))
    conditions: list[Any] = [Contact.id == query]
    for pattern in patterns:
        conditions += [
            Contact.search_text.like(pattern, escape="\\"),
            Contact.id.in_(select(ContactIdentity.contact_id).where(
                func.lower(ContactIdentity.external_id).like(pattern, escape="\\"))),
            Contact.id.in_(select(Conversation.contact_id).join(
                ChannelIdentity, ChannelIdentity.conversation_id == Conversation.id).where(
                func.lower(ChannelIdentity.external_id).like(pattern, escape="\\"))),
        ]
    return or_(*conditions)


class ContactSearch:
    """The console's contact search. Reads never write."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def search(self, query: str, limit: int, after: list[Any] | None) -> dict[str, Any]:
        """One page of contacts matching `query` (see parse_query), newest first, each with
        how many conversations they had and when they last wrote."""
        statement = select(Contact).where(Contact.erased_at.is_(None), _matches(query))
        if after is not None:
            statement = statement.where(keyset_before(Contact.created_at, Contact.id, after))
        statement = statement.order_by(Contact.created_at.desc(), Contact.id.desc()).limit(limit + 1)
        async with self._sessions() as session:
            rows = list(await session.scalars(statement))
            page = rows[:limit]
            activity = await _activity(session, [c.id for c in page])
        return {
            "contacts": [_row(c, *activity.get(c.id, (0, None))) for c in page],
            "next_cursor": encode_cursor(page[-1].created_at.isoformat(), page[-1].id)
            if len(rows) > limit else None,
        }


async def _activity(session: AsyncSession, ids: list[str]) -> dict[str, tuple[int, Any]]:
    if not ids:
        return {}
    result = await session.execute(
        select(Conversation.contact_id, func.count(), func.max(Conversation.last_message_at))
        .where(Conversation.contact_id.in_(ids)).group_by(Conversation.contact_id))
    return {contact_id: (count, last) for contact_id, count, last in result}


def _row(contact: Contact, conversations: int, last_message_at: Any) -> dict[str, Any]:
    return {**contact_record_json(contact), "conversations": conversations,
            "last_message_at": last_message_at.isoformat() if last_message_at else None}
