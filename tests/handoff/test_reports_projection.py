"""The reports' projection, kept write by write, equals a recomputation from the stored events
and messages: through the service's verbs, a reopen, a skill transfer, an erasure and the
retention purge (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import delete, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from handoff import migrate
from handoff.__main__ import rebuild_reports
from handoff.contacts.privacy import PrivacyService
from handoff.conversations.models import ROW_LOCK, Conversation
from handoff.conversations.service import ConversationService, HandoffRequest, Reply
from handoff.db import create_engine, session_factory
from handoff.reports import metrics
from handoff.reports.metrics import Reports
from handoff.reports.models import ConversationFacts, ConversationTally, ReportDay, ReportPending
from handoff.reports.catch_up import catch_up_projection
from handoff.reports.projection import REOPEN_REASON, catch_up, mark_pending, rebuild
from handoff.reports.range import parse_range
from handoff.reports.sla import ServiceLevels
from tests.handoff.report_history import (
    ANA,
    BOB,
    FIRST,
    HOURS,
    LAST,
    write_known_history,
)

Store = tuple[AsyncEngine, async_sessionmaker[AsyncSession]]


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    factory = session_factory(engine)
    await write_known_history(factory)
    yield engine, factory
    await engine.dispose()


async def projection(sessions: async_sessionmaker[AsyncSession]
                     ) -> tuple[list[Any], list[Any], list[Any]]:
    """Facts, tallies and per-day sums as a report sees them: marked conversations caught up
    first (days emptied by a change are left at zero when kept write by write, absent when
    rebuilt: both read as nothing; sums compared to 1e-6)."""
    await catch_up_projection(sessions)
    async with sessions() as session:
        assert not list(await session.scalars(select(ReportPending.conversation_id)))
        facts = sorted(tuple(row) for row in await session.execute(
            select(ConversationFacts.__table__)))
        tallies = sorted(tuple(row) for row in await session.execute(
            select(ConversationTally.__table__)))
        days = sorted((slice_, day, kind, key, n, c, h, round(total, 6), count)
                      for slice_, day, kind, key, n, c, h, total, count in await session.execute(
                          select(ReportDay.__table__)) if n or c or h or count)
    return facts, tallies, days


async def assert_equals_recomputation(store: Store) -> tuple[list[Any], list[Any], list[Any]]:
    """The projection as kept, compared with one rebuilt from the raw rows."""
    engine, sessions = store
    kept = await projection(sessions)
    async with engine.begin() as connection:
        await connection.run_sync(rebuild)
    assert await projection(sessions) == kept
    assert kept[0], "the projection is empty: nothing was compared"
    return kept


def tallies_of(kept: tuple[list[Any], list[Any], list[Any]], cid: str, kind: str) -> dict[str, int]:
    return {row[2]: row[3] for row in kept[1] if row[0] == cid and row[1] == kind}


async def summary(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Any]:
    r = parse_range({"from": FIRST, "to": LAST}, HOURS.zone, date(2026, 4, 1))
    return (await Reports(sessions, HOURS, ServiceLevels()).all(r))["summary"]


async def test_projection_equals_a_recomputation_through_a_whole_life(store: Store) -> None:
    _, sessions = store
    await assert_equals_recomputation(store)  # the hand-written history (ORM writes)
    service = ConversationService(sessions)
    chat, _ = await service.start("widget", "de")
    first, _ = await service.receive(chat.id, "where is my parcel?", None, "widget")
    await service.record_assistant_turn(
        first, [Reply("Let me check.")], HandoffRequest("customer_request"),
        understood={"intent": "order_status", "confidence": 0.9},
        records=[("kb_abstained", {"question": "Where is my parcel??"})])
    await service.claim(chat.id, ANA, 3, "Ana")
    await service.agent_message(chat.id, ANA, "a note for Bob", private=True)
    await service.agent_message(chat.id, ANA, "Hello, Ana here")
    await service.transfer(chat.id, ANA, None, "billing")
    kept = await assert_equals_recomputation(store)
    assert next(row for row in kept[0] if row[0] == chat.id)[4] == "|billing|"  # skills
    await service.claim(chat.id, BOB, 3, "Bob")
    await service.resolve(chat.id, BOB, "solved")
    rating, _ = await service.receive(chat.id, "5", None, "widget")
    await service.record_survey(rating, 5, None)
    await service.return_to_bot(chat.id, None, REOPEN_REASON)
    again, _ = await service.receive(chat.id, "it is still not here!", None, "widget")
    await service.record_assistant_turn(again, [], HandoffRequest("frustration"),
                                        understood={"intent": "order_status"})  # seen before
    later, _ = await service.receive(chat.id, "and my invoice?", None, "widget")
    await service.record_assistant_turn(later, [Reply("Here.")],
                                        understood={"intent": "invoice"})  # a new topic
    thanks, _ = await service.receive(chat.id, "thanks", None, "widget")
    await service.record_assistant_turn(thanks, [Reply("You're welcome.")],
                                        understood={"intent": "invoice"})  # nothing changes
    kept = await assert_equals_recomputation(store)
    facts = next(row for row in kept[0] if row[0] == chat.id)
    row = dict(zip(ConversationFacts.__table__.columns.keys(), facts))
    assert row["skills"] == "|language:de|" and row["reopened"] is True  # handed off again
    assert all(row[name] is not None for name in (
        "handed_off_at", "claimed_at", "resolved_at", "first_customer_at",
        "first_assistant_reply_at", "first_agent_reply_at"))
    assert tallies_of(kept, chat.id, "reason") == {"customer_request": 1, "frustration": 1}
    assert tallies_of(kept, chat.id, "claimed") == {ANA: 1, BOB: 1}
    assert tallies_of(kept, chat.id, "kb_abstained") == {"where is my parcel": 1}
    assert tallies_of(kept, chat.id, "csat") == {"5": 1}
    assert tallies_of(kept, chat.id, "topic") == {"order_status": 1, "invoice": 1}

    # Erasure: the question the customer typed goes; the conversation and its clocks stay.
    await PrivacyService(sessions).erase(chat.contact_id, ANA)
    kept = await assert_equals_recomputation(store)
    assert tallies_of(kept, chat.id, "kb_abstained") == {"": 1}
    assert any(row[0] == chat.id and row[5] is not None for row in kept[0])  # handed_off_at


async def test_retention_purge_keeps_every_count_but_the_questions(store: Store) -> None:
    _, sessions = store
    before = await summary(sessions)
    later = datetime(2026, 3, 31, tzinfo=timezone.utc) + timedelta(days=400)
    assert await PrivacyService(sessions, retention_days=30).purge_expired(later) > 0
    await assert_equals_recomputation(store)
    after = await summary(sessions)
    # the purge scrubbed "Do you ship to Mars?" from the events: still counted as abstained,
    # no longer listed among the top unanswered questions (docs/metrics.md, "Retention")
    assert after == before
    r = parse_range({"from": FIRST, "to": LAST}, HOURS.zone, date(2026, 4, 1))
    assert (await Reports(sessions, HOURS, ServiceLevels()).all(r))["knowledge"]["unanswered"] == []


async def test_a_rolled_back_write_leaves_no_projection(store: Store) -> None:
    _, sessions = store
    kept = await projection(sessions)
    service = ConversationService(sessions)
    chat, _ = await service.start("widget", "en")
    with pytest.raises(RuntimeError):
        async with sessions.begin() as session:
            from handoff.conversations.models import ConversationEvent

            session.add(ConversationEvent(conversation_id=chat.id, type="handed_off",
                                          data={"reason": "customer_request"}))
            await session.flush()
            raise RuntimeError("the transaction fails after the event was flushed")
    facts, _, _ = await assert_equals_recomputation(store)
    assert len(facts) == len(kept[0]) + 1
    assert next(row for row in facts if row[0] == chat.id)[5] is None  # never handed off


@pytest.mark.parametrize("query, conversations", [
    ({}, 8),  # F and H are inside this range
    ({"channel": "widget"}, 5),
    ({"language": "en"}, 6),
])
async def test_per_day_sums_and_tallies_give_the_same_report(
        store: Store, monkeypatch: pytest.MonkeyPatch, query: dict[str, str],
        conversations: int) -> None:
    """A report of all conversations, or of one channel or language, sums whole UTC days
    from report_days and the edges from the tallies; summing only the tallies (as a report
    filtered by agent, topic or skill does) must agree."""
    _, sessions = store
    r = parse_range({"from": "2026-03-27", "to": "2026-03-31", **query}, HOURS.zone,
                    date(2026, 4, 1))
    assert len(metrics.tally_queries(r)) == 3  # per-day sums, and two partial days
    from_days = await Reports(sessions, HOURS, ServiceLevels()).all(r)
    monkeypatch.setattr(metrics, "_day_slice", lambda _r: None)
    assert len(metrics.tally_queries(r)) == 1
    assert await Reports(sessions, HOURS, ServiceLevels()).all(r) == from_days
    assert from_days["summary"]["conversations"] == conversations


async def test_the_rebuild_command_repairs_a_projection_changed_by_hand(
        store: Store, database_url: str) -> None:
    engine, sessions = store
    kept = await projection(sessions)
    async with engine.begin() as connection:  # as a careless hand-made SQL fix would
        await connection.execute(delete(ConversationTally))
    assert (await projection(sessions))[1] == []
    assert await rebuild_reports(database_url) == len(kept[0])
    assert await projection(sessions) == kept


async def test_a_turn_marks_its_conversation_and_the_next_report_is_exact(store: Store) -> None:
    """The recompute is not part of the customer's turn: the turn leaves a mark in its own
    transaction, a report catches up before it reads, a mark made after a catch-up read its
    version survives that catch-up, and a rolled-back write leaves no mark."""
    _, sessions = store
    await summary(sessions)  # a report: catches up the history written by the fixture
    service = ConversationService(sessions)
    chat, _ = await service.start("widget", "en")
    await service.hand_off(chat.id, HandoffRequest(reason="customer_request"))

    async def marks() -> dict[str, int]:
        async with sessions() as session:
            return dict((await session.execute(
                select(ReportPending.conversation_id, ReportPending.version))).tuples().all())

    assert chat.id in await marks()
    async with sessions() as session:  # not projected yet
        assert await session.get(ConversationFacts, chat.id) is None
    async with sessions.begin() as session:  # a catch-up that read version v ...
        version = (await marks())[chat.id]
        connection = await session.connection()
        await connection.run_sync(lambda c: mark_pending(c, [chat.id]))  # ... and a later mark
        await connection.execute(delete(ReportPending).where(
            ReportPending.conversation_id == chat.id, ReportPending.version == version))
    assert (await marks())[chat.id] == version + 1  # the later mark was not deleted
    await summary(sessions)  # the report caught up first
    assert await marks() == {}
    async with sessions() as session:
        facts = await session.get(ConversationFacts, chat.id)
    assert facts is not None and facts.handed_off_at is not None
    await assert_equals_recomputation(store)


def test_first_times_are_taken_as_set_only_once_their_transaction_commits() -> None:
    """A rolled-back first reply must not stop the next turn from setting it."""
    from types import SimpleNamespace

    from handoff.reports.projection import (
        _FIRSTS_SET,
        _SETTLING,
        _forget_firsts,
        _remember_firsts,
    )

    session: Any = SimpleNamespace(info={})
    rolled_back, committed = ("c-rolled", "first_assistant_reply_at"), ("c-kept", "first_customer_at")
    session.info[_SETTLING] = {rolled_back}
    _forget_firsts(session)
    _remember_firsts(session)  # the session's next transaction commits
    session.info[_SETTLING] = {committed}
    _remember_firsts(session)
    assert rolled_back not in _FIRSTS_SET and committed in _FIRSTS_SET


async def _until_a_session_waits_on_a_lock(engine: AsyncEngine) -> None:
    """Returns once another connection of this database is waiting for a row lock."""
    deadline = asyncio.get_running_loop().time() + 20
    while asyncio.get_running_loop().time() < deadline:
        async with engine.connect() as connection:
            waiting = await connection.scalar(text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"))
        if waiting:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the writer never waited for the catch-up's lock")


async def test_a_conversation_locked_for_a_change_does_not_hold_up_the_catch_up(
    store: Store, database_url: str
) -> None:
    """Found by the cluster soak (PostgreSQL, ~4 deadlocks a minute): an agent's resolve held
    its conversation FOR UPDATE, which blocks the KEY SHARE lock every insert referring to it
    takes, the catch-up's facts among them. Rows are now locked FOR NO KEY UPDATE."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer at a time)")
    _, sessions = store
    await summary(sessions)
    chat, _ = await ConversationService(sessions).start("widget", "en")  # marked
    async with sessions.begin() as holder:
        assert await holder.get(Conversation, chat.id, with_for_update=ROW_LOCK) is not None
        assert await asyncio.wait_for(catch_up_projection(sessions), 15) >= 1
    await assert_equals_recomputation(store)


async def test_a_first_reply_marks_before_it_moves_the_facts_the_catch_up_rewrites(
    store: Store, database_url: str
) -> None:
    """Found by the cluster soak: a turn moved a conversation's "first reply" time (locking its
    facts row), then waited to mark it while the catch-up, holding the mark, waited to
    rewrite those facts: a deadlock. The turn now marks first, in the catch-up's order."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's (SQLite has one writer at a time)")
    engine, sessions = store
    service = ConversationService(sessions)
    chat, _ = await service.start("widget", "en")
    incoming, _, _ = await service.accept(chat.id, "hi", None, "widget")
    await catch_up_projection(sessions)  # its facts exist, no first reply yet
    async with sessions.begin() as session:
        connection = await session.connection()
        await connection.run_sync(lambda c: mark_pending(c, [chat.id]))
    async with sessions.begin() as catching_up:  # the catch-up took the mark ...
        await catching_up.execute(select(ReportPending).where(
            ReportPending.conversation_id == chat.id).with_for_update(skip_locked=True))
        reply = asyncio.create_task(service.record_assistant_turn(incoming, [Reply(text="hello")]))
        await _until_a_session_waits_on_a_lock(engine)  # ... the turn waits for it ...
        done = await catching_up.run_sync(lambda s: catch_up(s.connection()))  # ... and it goes on
        assert done == 1
    await asyncio.wait_for(reply, 15)
    facts, _, _ = await projection(sessions)
    assert any(row[0] == chat.id and row[9] is not None for row in facts)  # first reply set
    await assert_equals_recomputation(store)


async def test_the_catch_up_sends_the_same_statements_whatever_the_number_of_conversations(
        store: Store) -> None:
    """On PostgreSQL the driver keeps every distinct statement prepared on every pooled
    connection: a catch-up of 3 conversations and one of 1 must send the same SQL texts, or
    each new count adds statements to every connection's cache (the soaks' memory growth)."""
    engine, sessions = store
    await catch_up_projection(sessions)  # the fixture's history
    service = ConversationService(sessions)

    async def statements_of_a_catch_up(count: int) -> set[str]:
        for _ in range(count):
            chat, _ = await service.start("widget", "en")
            await service.hand_off(chat.id, HandoffRequest(reason="customer_request"))
        sent: list[str] = []

        def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            sent.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", record)
        try:
            assert await catch_up_projection(sessions) == count
        finally:
            event.remove(engine.sync_engine, "before_cursor_execute", record)
        return set(sent)

    three, one = await statements_of_a_catch_up(3), await statements_of_a_catch_up(1)
    if engine.dialect.name == "postgresql":
        assert three == one
    else:  # SQLite's IN lists grow with the count; its statement cache is per connection
        assert three != one  # and in-process, so nothing is kept on a server
    await assert_equals_recomputation(store)
