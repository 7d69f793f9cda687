"""Each metric against a known event history whose answers were worked out by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import migrate
from handoff.conversations.models import ConversationEvent, Message
from handoff.db import create_engine, session_factory
from handoff.reports.metrics import Reports, normalise_question
from handoff.reports.range import parse_range
from handoff.reports.sla import ServiceLevels
from tests.handoff.report_history import (ANA, BOB, FIRST, HOURS, LAST, History,
                                          write_known_history)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    factory = session_factory(engine)
    await write_known_history(factory)
    yield factory
    await engine.dispose()


async def report(sessions: async_sessionmaker[AsyncSession], **query: str) -> dict[str, Any]:
    r = parse_range({"from": FIRST, "to": LAST, **query}, HOURS.zone, date(2026, 4, 1))
    return await Reports(sessions, HOURS, ServiceLevels(first_reply_seconds=120)).all(r)


async def test_volume_containment_handoffs_and_reopens(sessions: Any) -> None:
    s = (await report(sessions))["summary"]
    # A B C D E G are in; F and H fall just outside the local days
    assert s["conversations"] == 6
    assert (s["contained"], s["handed_off"]) == (2, 4)  # A, G never reached a person
    assert s["containment_rate"] == round(2 / 6, 4)
    assert s["handoff_rate"] == round(4 / 6, 4)
    assert (s["resolved"], s["reopened"], s["reopen_rate"]) == (2, 1, 0.5)  # E reopened


async def test_handoff_reasons_count_every_handoff(sessions: Any) -> None:
    reasons = (await report(sessions))["handoff_reasons"]
    assert [(r["reason"], r["handoffs"]) for r in reasons] == [
        ("customer_request", 3), ("frustration", 1), ("low_confidence", 1)]
    assert reasons[0]["share"] == 0.6


async def test_clocks_first_responses_queue_wait_and_resolution(sessions: Any) -> None:
    s = (await report(sessions))["summary"]
    assert s["assistant_first_response_avg_seconds"] == 3.0  # A 2 s, B 4 s, D 3 s
    assert s["queue_wait_avg_seconds"] == 180.0  # B 60 s, E 300 s
    assert s["queue_wait_median_seconds"] == 180.0
    # the private note at 07:01:20 is not a reply; B 90 s, E 360 s
    assert s["agent_first_response_avg_seconds"] == 225.0
    assert s["handoffs_without_agent_reply"] == 2  # C and D: nobody answered
    assert s["resolution_avg_seconds"] == 937.5  # B 665 s, E 1210 s


async def test_service_level_counts_only_handoffs_in_business_hours(sessions: Any) -> None:
    levels = {row["target"]: row for row in (await report(sessions))["service_levels"]}
    # C (Saturday night) and D (Monday 01:30 CEST) had no target; B met it, E breached it
    assert levels["first_agent_reply"] == {"target": "first_agent_reply", "target_seconds": 120,
                                           "applicable": 2, "met": 1, "breached": 1}
    assert levels["resolution"]["breached"] == 0


async def test_days_follow_the_store_time_zone_across_midnight_and_dst(sessions: Any) -> None:
    daily = (await report(sessions))["daily"]
    assert [(d["day"], d["conversations"], d["handed_off"]) for d in daily] == [
        ("2026-03-28", 3, 1),  # A, C (23:30 local), G (00:30 local, 23:30 UTC the day before)
        ("2026-03-29", 0, 0),  # D was opened at 01:30 CEST on the 30th
        ("2026-03-30", 3, 3),  # B, D, E
    ]


async def test_csat_and_nps(sessions: Any) -> None:
    result = await report(sessions)
    s = result["summary"]
    assert (s["csat_responses"], s["csat_mean"], s["csat_response_rate"]) == (1, 5.0, 0.5)
    assert [d["responses"] for d in result["csat"]] == [0, 0, 0, 0, 1]
    assert (s["nps_responses"], s["nps"]) == (1, 100.0)
    assert len(result["nps"]) == 11


async def test_knowledge_base_rates_and_grouped_unanswered_questions(sessions: Any) -> None:
    result = await report(sessions)
    s = result["summary"]
    assert (s["kb_answered"], s["kb_abstained"], s["kb_answer_rate"]) == (1, 2, round(1 / 3, 4))
    assert s["kb_helped_rate"] == 1.0
    assert result["knowledge"]["unanswered"] == [{"question": "do you ship to mars", "asked": 2}]
    assert result["knowledge"]["articles"] == [{"article": "shipping-times", "answers": 1}]
    assert normalise_question("  Where's  my ORDER?! ") == "where s my order"


async def test_form_completion_and_abandonment(sessions: Any) -> None:
    flows = {f["flow"]: f for f in (await report(sessions))["flows"]}
    assert flows["change_address"]["started"] == 1  # validated twice in one turn: one start
    assert (flows["change_address"]["completed"], flows["change_address"]["completion_rate"]) == (1, 1.0)
    assert (flows["refund"]["abandoned"], flows["refund"]["abandonment_rate"]) == (1, 1.0)


async def test_agent_workload_and_the_agent_slice(sessions: Any) -> None:
    result = await report(sessions)
    assert [(a["agent"], a["handled"], a["resolved"], a["median_handling_seconds"])
            for a in result["agents"]] == [(ANA, 1, 1, 600.0), (BOB, 1, 1, 900.0)]
    ana = await report(sessions, agent=ANA)
    assert ana["summary"]["conversations"] == 1  # only B
    assert [a["agent"] for a in ana["agents"]] == [ANA]


async def test_slices_by_channel_language_and_topic(sessions: Any) -> None:
    result = await report(sessions)
    assert {c["channel"]: c["conversations"] for c in result["channels"]} == {
        "widget": 3, "whatsapp": 1, "api": 1, "telegram": 1}
    assert {c["language"]: c["conversations"] for c in result["languages"]} == {
        "en": 4, "de": 1, "he": 1}
    assert {k["skill"]: (k["conversations"], k["handed_off"]) for k in result["skills"]} == {
        "any": (4, 2), "language:de": (2, 2), "topic:billing": (1, 1)}
    assert {t["topic"]: (t["conversations"], t["handed_off"]) for t in result["topics"]} == {
        "complaint": (1, 1), "order_status": (1, 0)}
    whatsapp = await report(sessions, channel="whatsapp")
    assert whatsapp["summary"]["conversations"] == 1 and whatsapp["channels"][0]["channel"] == "whatsapp"
    assert (await report(sessions, language="fr"))["no_data"] is True


async def test_a_report_changes_nothing(sessions: Any) -> None:
    async def counts() -> tuple[int, int]:
        async with sessions() as session:
            return ((await session.scalar(select(func.count()).select_from(ConversationEvent))) or 0,
                    (await session.scalar(select(func.count()).select_from(Message))) or 0)

    before = await counts()
    await report(sessions)
    assert await counts() == before


async def test_a_conversation_across_midnight_counts_on_its_opening_day(database_url: str) -> None:
    """Opened 23:50 Saturday (Berlin), claimed and answered after midnight, resolved at 00:20."""
    engine = create_engine(database_url)
    await migrate.upgrade(engine)
    sessions = session_factory(engine)
    try:
        async with sessions.begin() as session:
            h = History(session)
            night = await (await h.conversation("N", "widget", "en", "2026-03-28T22:50:00")).customer(
                "2026-03-28T22:50:00")
            night.assistant("2026-03-28T22:50:01")
            night.event("handed_off", "2026-03-28T22:50:30", reason="customer_request")
            night.event("claimed", "2026-03-28T23:05:30", agent_id=ANA)  # 00:05 Sunday
            night.message("agent", "2026-03-28T23:06:30", "Still here?")
            night.event("resolved", "2026-03-28T23:20:00", code="answered", agent_id=ANA)
        result = await report(sessions)
    finally:
        await engine.dispose()
    assert [(d["day"], d["conversations"], d["resolved"]) for d in result["daily"]] == [
        ("2026-03-28", 1, 1), ("2026-03-29", 0, 0), ("2026-03-30", 0, 0)]
    s = result["summary"]
    assert (s["queue_wait_avg_seconds"], s["agent_first_response_avg_seconds"]) == (900.0, 960.0)
    assert s["resolution_avg_seconds"] == 1800.0  # 23:50 to 00:20, across midnight
    assert s["assistant_first_response_avg_seconds"] == 1.0
    # a Saturday-night handoff has no service-level target
    assert result["service_levels"][0]["applicable"] == 0
