"""The metrics, aggregated in SQL from conversation_events and messages (definitions: docs/metrics.md).

A conversation belongs to the local day it was opened; everything that later happens to it
(handoff, reply, resolution, rating) counts towards that day. One grouped query builds a
row of facts per conversation; the summaries are aggregates over it, so only small result
sets (per day, per reason, per agent) leave the database. Medians and service levels need
the individual clocks, and read them only for handed-off conversations.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Float, String, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from handoff.business_hours import BusinessHours
from handoff.conversations.models import AuthorType, Conversation, ConversationEvent, Message
from handoff.reports.range import ReportRange
from handoff.reports.sla import HandoffTimes, ServiceLevels, breaches

E = ConversationEvent
REOPEN_REASON = "customer_wrote_after_close"
TOP_UNANSWERED = 20


class seconds_between(FunctionElement[float]):
    """Seconds from `start` to `stop`, computed by the database (julianday or epoch)."""

    type = Float()
    inherit_cache = True
    name = "seconds_between"


@compiles(seconds_between, "sqlite")
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    stop, start = (compiler.process(c, **kw) for c in element.clauses)
    return f"((julianday({stop}) - julianday({start})) * 86400.0)"


@compiles(seconds_between, "postgresql")
def _seconds_postgres(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    stop, start = (compiler.process(c, **kw) for c in element.clauses)
    return f"EXTRACT(EPOCH FROM ({stop} - {start}))"


class utc_hour(FunctionElement[str]):
    """The UTC hour a time falls in, as text; hours are mapped to local days in Python."""

    type = String()
    inherit_cache = True
    name = "utc_hour"


@compiles(utc_hour, "sqlite")
def _hour_sqlite(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H', {compiler.process(element.clauses, **kw)})"


@compiles(utc_hour, "postgresql")
def _hour_postgres(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({compiler.process(element.clauses, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')"


def _first(event_type: str) -> ColumnElement[Any]:
    return func.min(case((E.type == event_type, E.created_at)))


def _in_range(r: ReportRange) -> list[ColumnElement[bool]]:
    """The conversations a report covers: opened in the range, on the channel and language asked."""
    where = [Conversation.created_at >= r.start, Conversation.created_at < r.end]
    if r.channel:
        where.append(Conversation.channel == r.channel)
    if r.language:
        where.append(Conversation.language == r.language)
    if r.agent_id:
        where.append(Conversation.id.in_(
            select(E.conversation_id).where(E.type == "claimed",
                                            E.data["agent_id"].as_string() == r.agent_id)))
    return where


def _facts(r: ReportRange) -> Any:
    """One row per conversation in range: its channel, language and the times its clocks need."""
    events = (
        select(E.conversation_id.label("cid"),
               _first("handed_off").label("handed_off_at"),
               _first("claimed").label("claimed_at"),
               _first("resolved").label("resolved_at"),
               func.max(case((and_(E.type == "returned_to_bot",
                                   E.data["reason"].as_string() == REOPEN_REASON), 1),
                             else_=0)).label("reopened"),
               func.max(case((E.type == "csat_submitted", E.data["score"].as_integer()))).label("csat"))
        .join(Conversation, Conversation.id == E.conversation_id)
        .where(*_in_range(r))
        .group_by(E.conversation_id)
        .subquery("ev")
    )
    customer = Message.author_type == AuthorType.CUSTOMER.value
    replies = (
        select(Message.conversation_id.label("cid"),
               func.min(case((customer, Message.created_at))).label("first_customer_at"),
               func.min(case((and_(Message.author_type == AuthorType.ASSISTANT.value,
                                   Message.reply_to_id.is_not(None)), Message.created_at))
                        ).label("first_assistant_at"),
               func.min(case((and_(Message.author_type == AuthorType.AGENT.value,
                                   Message.private.is_(False)), Message.created_at))
                        ).label("first_agent_at"))
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*_in_range(r), Message.author_type != AuthorType.SYSTEM.value)
        .group_by(Message.conversation_id)
        .subquery("msg")
    )
    return (
        select(Conversation.id, Conversation.created_at, Conversation.channel,
               Conversation.language, events.c.handed_off_at, events.c.claimed_at,
               events.c.resolved_at, events.c.reopened, events.c.csat,
               replies.c.first_customer_at, replies.c.first_assistant_at,
               replies.c.first_agent_at)
        .outerjoin(events, events.c.cid == Conversation.id)
        .outerjoin(replies, replies.c.cid == Conversation.id)
        .where(*_in_range(r))
        .subquery("facts")
    )


def _rate(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def _secs(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None


def _between(stop: datetime | None, start: datetime | None) -> float | None:
    """Seconds between two stored times; None if either is missing or stop is before start."""
    if stop is None or start is None or stop < start:
        return None
    return (stop - start).total_seconds()


def normalise_question(text: str) -> str:
    """Groups questions that differ only in case, punctuation and spacing."""
    return " ".join(re.findall(r"\w+", text.lower()))


@dataclass
class Reports:
    """Computes every table of the dashboard for one range and slice."""

    sessions: async_sessionmaker[AsyncSession]
    hours: BusinessHours
    levels: ServiceLevels

    async def all(self, r: ReportRange) -> dict[str, Any]:
        async with self.sessions() as session:
            facts = _facts(r)
            summary = await self._summary(session, facts)
            result: dict[str, Any] = {
                "filters": r.filters(),
                "no_data": summary["conversations"] == 0,
                "summary": summary,
                "daily": await self._daily(session, facts, r),
                "channels": await self._by(session, facts, facts.c.channel, "channel"),
                "languages": await self._by(session, facts, facts.c.language, "language"),
                "handoff_reasons": await self._handoff_reasons(session, r),
                "topics": await self._topics(session, facts, r),
                "csat": await self._scores(session, r, "csat_submitted", range(1, 6)),
                "nps": await self._scores(session, r, "nps_submitted", range(0, 11)),
                "knowledge": await self._knowledge(session, r),
                "flows": await self._flows(session, r),
            }
            handoffs = await self._handoffs(session, facts, r)
            result["summary"].update(handoffs.pop("summary"))
            result.update(handoffs)
        result["summary"].update(_csat_summary(result["csat"], summary["resolved"]))
        result["summary"].update(_nps_summary(result["nps"]))
        result["summary"].update(result["knowledge"].pop("summary"))
        return result

    @staticmethod
    async def _summary(session: AsyncSession, f: Any) -> dict[str, Any]:
        row = (await session.execute(select(
            func.count().label("conversations"),
            func.count(f.c.handed_off_at).label("handed_off"),
            func.count(f.c.resolved_at).label("resolved"),
            func.coalesce(func.sum(f.c.reopened), 0).label("reopened"),
            func.avg(seconds_between(f.c.first_assistant_at, f.c.first_customer_at))
            .label("assistant_first_response_avg"),
        ).select_from(f))).one()
        conversations, handed_off = row.conversations, row.handed_off
        return {
            "conversations": conversations,
            "contained": conversations - handed_off,
            "containment_rate": _rate(conversations - handed_off, conversations),
            "handed_off": handed_off,
            "handoff_rate": _rate(handed_off, conversations),
            "resolved": row.resolved,
            "reopened": int(row.reopened),
            "reopen_rate": _rate(int(row.reopened), row.resolved),
            "assistant_first_response_avg_seconds": _secs(row.assistant_first_response_avg),
        }

    @staticmethod
    async def _daily(session: AsyncSession, f: Any, r: ReportRange) -> list[dict[str, Any]]:
        hour = utc_hour(f.c.created_at)
        rows = await session.execute(
            select(hour.label("hour"), func.count().label("conversations"),
                   func.count(f.c.handed_off_at).label("handed_off"),
                   func.count(f.c.resolved_at).label("resolved"))
            .select_from(f).group_by(hour))
        days = {day: {"day": day.isoformat(), "conversations": 0, "contained": 0,
                      "handed_off": 0, "resolved": 0} for day in r.days}
        for row in rows:
            moment = datetime.strptime(row.hour, "%Y-%m-%d %H").replace(tzinfo=timezone.utc)
            day = days.get(moment.astimezone(r.zone).date())
            if day is None:
                continue  # only possible for zones whose offset is not whole hours
            day["conversations"] += row.conversations
            day["handed_off"] += row.handed_off
            day["contained"] += row.conversations - row.handed_off
            day["resolved"] += row.resolved
        return list(days.values())

    @staticmethod
    async def _by(session: AsyncSession, f: Any, column: Any, name: str) -> list[dict[str, Any]]:
        rows = await session.execute(
            select(column.label("key"), func.count().label("conversations"),
                   func.count(f.c.handed_off_at).label("handed_off"))
            .select_from(f).group_by(column).order_by(func.count().desc(), column))
        return [{name: row.key or "unknown", "conversations": row.conversations,
                 "contained": row.conversations - row.handed_off,
                 "handed_off": row.handed_off,
                 "handoff_rate": _rate(row.handed_off, row.conversations)} for row in rows]

    @staticmethod
    async def _handoff_reasons(session: AsyncSession, r: ReportRange) -> list[dict[str, Any]]:
        """Every handoff counts, also a second one after a reopen; the reason is as recorded."""
        reason = E.data["reason"].as_string()
        rows = await session.execute(
            select(reason.label("reason"), func.count().label("handoffs"))
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type == "handed_off")
            .group_by(reason).order_by(func.count().desc(), reason))
        rows_list = list(rows)
        total = sum(row.handoffs for row in rows_list)
        return [{"reason": row.reason or "unknown", "handoffs": row.handoffs,
                 "share": _rate(row.handoffs, total)} for row in rows_list]

    @staticmethod
    async def _topics(session: AsyncSession, f: Any, r: ReportRange) -> list[dict[str, Any]]:
        """Per intent the assistant recognised: conversations that had it, and how many went to people."""
        intent = E.data["intent"].as_string()
        rows = await session.execute(
            select(intent.label("intent"),
                   func.count(func.distinct(E.conversation_id)).label("conversations"),
                   func.count(func.distinct(case((f.c.handed_off_at.is_not(None),
                                                  E.conversation_id)))).label("handed_off"))
            .join(f, f.c.id == E.conversation_id)
            .where(E.type == "message_understood")
            .group_by(intent).order_by(func.count(func.distinct(E.conversation_id)).desc(), intent)
            .limit(50))
        return [{"topic": row.intent or "unknown", "conversations": row.conversations,
                 "handed_off": row.handed_off,
                 "handoff_rate": _rate(row.handed_off, row.conversations)} for row in rows]

    @staticmethod
    async def _scores(session: AsyncSession, r: ReportRange, event_type: str,
                      scale: range) -> list[dict[str, Any]]:
        score = E.data["score"].as_integer()
        rows = dict((await session.execute(
            select(score, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type == event_type).group_by(score))).tuples().all())
        return [{"score": s, "responses": int(rows.get(s, 0))} for s in scale]

    @staticmethod
    async def _knowledge(session: AsyncSession, r: ReportRange) -> dict[str, Any]:
        kinds = dict((await session.execute(
            select(E.type, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type.in_(["kb_answered", "kb_abstained"]))
            .group_by(E.type))).tuples().all())
        helped = E.data["helped"].as_boolean()
        feedback = dict((await session.execute(
            select(helped, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type == "kb_feedback").group_by(helped))).tuples().all())
        question = func.lower(E.data["question"].as_string())
        grouped = await session.execute(
            select(question, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type == "kb_abstained").group_by(question))
        unanswered: Counter[str] = Counter()
        example: dict[str, str] = {}
        for text, count in grouped.tuples():
            key = normalise_question(text or "")
            if key:
                unanswered[key] += count
                example.setdefault(key, text)
        articles = E.data["article"].as_string()
        answered_by_article = await session.execute(
            select(articles, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type == "kb_answered")
            .group_by(articles).order_by(func.count().desc(), articles).limit(50))
        answered, abstained = int(kinds.get("kb_answered", 0)), int(kinds.get("kb_abstained", 0))
        yes, no = int(feedback.get(True, 0)), int(feedback.get(False, 0))
        return {
            "summary": {"kb_answered": answered, "kb_abstained": abstained,
                        "kb_answer_rate": _rate(answered, answered + abstained),
                        "kb_feedback": yes + no, "kb_helped_rate": _rate(yes, yes + no)},
            "articles": [{"article": a or "unknown", "answers": n}
                         for a, n in answered_by_article.tuples()],
            "unanswered": [{"question": key, "asked": n}
                           for key, n in sorted(unanswered.items(),
                                                key=lambda kv: (-kv[1], kv[0]))[:TOP_UNANSWERED]],
        }

    @staticmethod
    async def _flows(session: AsyncSession, r: ReportRange) -> list[dict[str, Any]]:
        flow = E.data["flow"].as_string()
        rows = await session.execute(
            select(flow, E.type, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_in_range(r), E.type.in_(["flow_started", "flow_completed", "flow_abandoned"]))
            .group_by(flow, E.type))
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for name, kind, count in rows.tuples():
            counts[name or "unknown"][kind.removeprefix("flow_")] += count
        return [{"flow": name, "started": c["started"], "completed": c["completed"],
                 "abandoned": c["abandoned"], "completion_rate": _rate(c["completed"], c["started"]),
                 "abandonment_rate": _rate(c["abandoned"], c["started"])}
                for name, c in sorted(counts.items())]

    async def _handoffs(self, session: AsyncSession, f: Any, r: ReportRange) -> dict[str, Any]:
        """Agent-side clocks, read per handed-off conversation: medians and service levels."""
        rows = (await session.execute(
            select(f.c.id, f.c.created_at, f.c.handed_off_at, f.c.claimed_at, f.c.first_agent_at,
                   f.c.resolved_at).select_from(f).where(f.c.handed_off_at.is_not(None)))).all()
        claims = await session.execute(
            select(E.conversation_id, E.data["agent_id"].as_string(), E.created_at)
            .join(f, f.c.id == E.conversation_id).where(E.type == "claimed").order_by(E.id))
        resolvers = await session.execute(
            select(E.conversation_id, E.data["agent_id"].as_string(), E.created_at)
            .join(f, f.c.id == E.conversation_id).where(E.type == "resolved").order_by(E.id))
        handled: dict[str, set[str]] = defaultdict(set)
        first_claim: dict[str, datetime] = {}
        for cid, agent, at in claims.tuples():
            if agent and (r.agent_id is None or agent == r.agent_id):
                handled[agent].add(cid)
            first_claim.setdefault(cid, at)
        handling: dict[str, list[float]] = defaultdict(list)
        resolved_by: dict[str, set[str]] = defaultdict(set)
        for cid, agent, at in resolvers.tuples():
            if not agent or (r.agent_id is not None and agent != r.agent_id) or cid in resolved_by[agent]:
                continue
            resolved_by[agent].add(cid)
            seconds = _between(at, first_claim.get(cid))
            if seconds is not None:
                handling[agent].append(seconds)
        waits = [s for row in rows if (s := _between(row.claimed_at, row.handed_off_at)) is not None]
        replies = [s for row in rows if (s := _between(row.first_agent_at, row.handed_off_at)) is not None]
        resolutions = [s for row in rows if (s := _between(row.resolved_at, row.created_at)) is not None]
        agents = [{"agent": agent, "handled": len(handled[agent]),
                   "resolved": len(resolved_by[agent]),
                   "median_handling_seconds": _median(handling[agent])}
                  for agent in sorted(handled, key=lambda a: (-len(handled[a]), a))]
        times = [HandoffTimes(row.handed_off_at, row.first_agent_at if row.first_agent_at and
                              row.first_agent_at >= row.handed_off_at else None, row.resolved_at)
                 for row in rows]
        return {
            "summary": {
                "queue_wait_avg_seconds": _mean(waits), "queue_wait_median_seconds": _median(waits),
                "agent_first_response_avg_seconds": _mean(replies),
                "agent_first_response_median_seconds": _median(replies),
                "handoffs_without_agent_reply": len(rows) - len(replies),
                "resolution_avg_seconds": _mean(resolutions),
                "resolution_median_seconds": _median(resolutions),
            },
            "agents": agents,
            "service_levels": breaches(self.levels, self.hours, times),
        }


def _csat_summary(distribution: list[dict[str, Any]], resolved: int) -> dict[str, Any]:
    responses = sum(d["responses"] for d in distribution)
    total = sum(d["score"] * d["responses"] for d in distribution)
    return {"csat_responses": responses,
            "csat_mean": round(total / responses, 2) if responses else None,
            "csat_response_rate": _rate(responses, resolved)}


def _nps_summary(distribution: list[dict[str, Any]]) -> dict[str, Any]:
    responses = sum(d["responses"] for d in distribution)
    promoters = sum(d["responses"] for d in distribution if d["score"] >= 9)
    detractors = sum(d["responses"] for d in distribution if d["score"] <= 6)
    return {"nps_responses": responses,
            "nps": round(100 * (promoters - detractors) / responses, 1) if responses else None}
