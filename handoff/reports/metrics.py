"""The metrics, aggregated in SQL from conversation_events and messages (definitions: docs/metrics.md).

A conversation belongs to the local day it was opened; everything that later happens to it
(handoff, reply, resolution, rating) counts towards that day. One query, grouped in the
database, gives a row of facts per conversation (its first handoff, claim, agent reply...);
volumes, clocks, medians and service levels are counted over those rows. Ratings, reasons,
topics, knowledge-base and form events are grouped by the database, so only small result
sets leave it. No event can be older than its conversation, which lets every event query
start at the range's first instant and use the (type, created_at) index.
"""

from __future__ import annotations

import re
from bisect import bisect_right
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import Float, Select, String, and_, case, func, select, type_coerce
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
    """Seconds from `start` to `stop`, computed by the database (no time parsed in Python)."""

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


def _typed(r: ReportRange, *types: str) -> list[ColumnElement[bool]]:
    """Events of these kinds in the covered conversations; none can be older than the range."""
    return [*_in_range(r), E.type.in_(types), E.created_at >= r.start]


def _facts(r: ReportRange) -> Select[Any]:
    """One row per conversation in range: its channel, language and the times its clocks need."""
    events = (  # covered by ix_conversation_events_conversation_type: no row is read
        select(E.conversation_id.label("cid"),
               _first("handed_off").label("handed_off_at"),
               _first("claimed").label("claimed_at"),
               _first("resolved").label("resolved_at"))
        .join(Conversation, Conversation.id == E.conversation_id)
        .where(*_typed(r, "handed_off", "claimed", "resolved"))
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
        .where(*_in_range(r), Message.created_at >= r.start,
               Message.author_type.in_([AuthorType.CUSTOMER.value, AuthorType.ASSISTANT.value,
                                        AuthorType.AGENT.value]))
        .group_by(Message.conversation_id)
        .subquery("msg")
    )
    ev, msg = events.c, replies.c
    return (
        select(Conversation.id, _raw(Conversation.created_at), Conversation.channel,
               Conversation.language, Conversation.required_skills, _raw(ev.handed_off_at), ev.claimed_at.is_not(None),
               ev.resolved_at.is_not(None),
               seconds_between(ev.claimed_at, ev.handed_off_at),
               seconds_between(msg.first_assistant_at, msg.first_customer_at),
               seconds_between(msg.first_agent_at, ev.handed_off_at),
               seconds_between(ev.resolved_at, Conversation.created_at),
               seconds_between(ev.resolved_at, ev.handed_off_at))
        .outerjoin(events, events.c.cid == Conversation.id)
        .outerjoin(replies, replies.c.cid == Conversation.id)
        .where(*_in_range(r))
    )


def _raw(column: Any) -> Any:
    """A time as the driver returns it: SQLAlchemy's SQLite datetime parsing is the slowest
    part of reading a year of rows, so `_time` parses with the C `fromisoformat` instead."""
    return type_coerce(column, String)


def _at(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)


def _time(value: str | datetime | None) -> datetime | None:
    return None if value is None else _at(value)


def _duration(value: float | None) -> float | None:
    """A clock in seconds; a negative one (stopped before it started: an agent's message
    before the handoff, say) did not run."""
    return None if value is None or value < 0 else round(float(value), 3)


def _rate(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


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


@dataclass(frozen=True)
class Facts:
    """One conversation's row: where it came from and how long each clock ran (seconds;
    None when a clock never stopped). `opened` is the time as the driver gave it."""

    id: str
    opened: str | datetime
    channel: str
    language: str | None
    skills: list[str] | None
    handed_off_at: datetime | None
    claimed: bool
    resolved: bool
    queue_wait: float | None
    assistant_first_response: float | None
    agent_first_response: float | None
    resolution: float | None
    resolved_after_handoff: float | None


@dataclass
class Reports:
    """Computes every table of the dashboard for one range and slice."""

    sessions: async_sessionmaker[AsyncSession]
    hours: BusinessHours
    levels: ServiceLevels

    async def all(self, r: ReportRange) -> dict[str, Any]:
        async with self.sessions() as session:
            facts = [Facts(row[0], row[1], row[2], row[3], row[4], _time(row[5]), bool(row[6]),
                           bool(row[7]), *(_duration(v) for v in row[8:]))
                     for row in await session.execute(_facts(r))]
            reopened = set((await session.scalars(
                select(E.conversation_id).join(Conversation, Conversation.id == E.conversation_id)
                .where(*_typed(r, "returned_to_bot"),
                       E.data["reason"].as_string() == REOPEN_REASON))).all())
            result: dict[str, Any] = {
                "filters": r.filters(),
                "no_data": not facts,
                "summary": _summary(facts, reopened),
                "daily": _daily(facts, r),
                "channels": _by(facts, "channel"),
                "languages": _by(facts, "language"),
                "skills": _by_skill(facts),
                "handoff_reasons": await self._handoff_reasons(session, r),
                "topics": await self._topics(session, r),
                "csat": await self._scores(session, r, "csat_submitted", range(1, 6)),
                "nps": await self._scores(session, r, "nps_submitted", range(0, 11)),
                "knowledge": await self._knowledge(session, r),
                "flows": await self._flows(session, r),
            }
            handoffs = await self._handoffs(session, facts, r)
        result["summary"].update(handoffs.pop("summary"))
        result.update(handoffs)
        result["summary"].update(_csat_summary(result["csat"], result["summary"]["resolved"]))
        result["summary"].update(_nps_summary(result["nps"]))
        result["summary"].update(result["knowledge"].pop("summary"))
        return result

    @staticmethod
    async def _handoff_reasons(session: AsyncSession, r: ReportRange) -> list[dict[str, Any]]:
        """Every handoff counts, also a second one after a reopen; the reason is as recorded."""
        reason = E.data["reason"].as_string()
        rows = list(await session.execute(
            select(reason.label("reason"), func.count().label("handoffs"))
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "handed_off"))
            .group_by(reason).order_by(func.count().desc(), reason)))
        total = sum(row.handoffs for row in rows)
        return [{"reason": row.reason or "unknown", "handoffs": row.handoffs,
                 "share": _rate(row.handoffs, total)} for row in rows]

    @staticmethod
    async def _topics(session: AsyncSession, r: ReportRange) -> list[dict[str, Any]]:
        """Per intent the assistant recognised: conversations that had it, and how many went to people."""
        intent = E.data["intent"].as_string()
        handed = (select(E.conversation_id.label("cid")).distinct()
                  .where(E.type == "handed_off", E.created_at >= r.start).subquery("handed"))
        understood = (select(intent.label("intent"), E.conversation_id.label("cid")).distinct()
                      .join(Conversation, Conversation.id == E.conversation_id)
                      .where(*_typed(r, "message_understood")).subquery("understood"))
        conversations = func.count()
        rows = await session.execute(
            select(understood.c.intent, conversations, func.count(handed.c.cid))
            .outerjoin(handed, handed.c.cid == understood.c.cid)
            .group_by(understood.c.intent)
            .order_by(conversations.desc(), understood.c.intent).limit(50))
        return [{"topic": name or "unknown", "conversations": n, "handed_off": escalated,
                 "handoff_rate": _rate(escalated, n)} for name, n, escalated in rows.tuples()]

    @staticmethod
    async def _scores(session: AsyncSession, r: ReportRange, event_type: str,
                      scale: range) -> list[dict[str, Any]]:
        score = E.data["score"].as_integer()
        rows = dict((await session.execute(
            select(score, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, event_type)).group_by(score))).tuples().all())
        return [{"score": s, "responses": int(rows.get(s, 0))} for s in scale]

    @staticmethod
    async def _knowledge(session: AsyncSession, r: ReportRange) -> dict[str, Any]:
        kinds = dict((await session.execute(
            select(E.type, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "kb_answered", "kb_abstained"))
            .group_by(E.type))).tuples().all())
        helped = E.data["helped"].as_boolean()
        feedback = dict((await session.execute(
            select(helped, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "kb_feedback")).group_by(helped))).tuples().all())
        question = func.lower(E.data["question"].as_string())
        grouped = await session.execute(
            select(question, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "kb_abstained")).group_by(question))
        unanswered: Counter[str] = Counter()
        for text, count in grouped.tuples():
            key = normalise_question(text or "")
            if key:
                unanswered[key] += count
        articles = E.data["article"].as_string()
        answered_by_article = await session.execute(
            select(articles, func.count())
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "kb_answered"))
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
        """Per form: started, completed, abandoned. Rasa may validate twice as a form starts,
        so each kind counts once per customer message (the record carries its message_id)."""
        flow = E.data["flow"].as_string()
        rows = await session.execute(
            select(flow, E.type, E.conversation_id, E.data["message_id"].as_string()).distinct()
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "flow_started", "flow_completed", "flow_abandoned")))
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for name, kind, _cid, _message in rows.tuples():
            counts[name or "unknown"][kind.removeprefix("flow_")] += 1
        return [{"flow": name, "started": c["started"], "completed": c["completed"],
                 "abandoned": c["abandoned"], "completion_rate": _rate(c["completed"], c["started"]),
                 "abandonment_rate": _rate(c["abandoned"], c["started"])}
                for name, c in sorted(counts.items())]

    async def _handoffs(self, session: AsyncSession, facts: list[Facts],
                        r: ReportRange) -> dict[str, Any]:
        """Agent-side clocks per handed-off conversation: means, medians and service levels."""
        rows = [f for f in facts if f.handed_off_at is not None]
        agent = E.data["agent_id"].as_string()
        people = await session.execute(
            select(E.type, E.conversation_id, agent, _raw(E.created_at))
            .join(Conversation, Conversation.id == E.conversation_id)
            .where(*_typed(r, "claimed", "resolved")).order_by(E.id))
        handled: dict[str, set[str]] = defaultdict(set)
        first_claim: dict[str, datetime] = {}
        handling: dict[str, list[float]] = defaultdict(list)
        resolved_by: dict[str, set[str]] = defaultdict(set)
        for kind, cid, who, raw_at in people.tuples():
            at = _at(raw_at)
            counted = bool(who) and (r.agent_id is None or who == r.agent_id)
            if kind == "claimed":
                first_claim.setdefault(cid, at)
                if counted:
                    handled[who].add(cid)
            elif counted and cid not in resolved_by[who]:
                resolved_by[who].add(cid)
                seconds = _between(at, first_claim.get(cid))
                if seconds is not None:
                    handling[who].append(seconds)
        waits = [f.queue_wait for f in rows if f.queue_wait is not None]
        replies = [f.agent_first_response for f in rows if f.agent_first_response is not None]
        resolutions = [f.resolution for f in rows if f.resolution is not None]
        agents = [{"agent": who, "handled": len(handled[who]), "resolved": len(resolved_by[who]),
                   "median_handling_seconds": _median(handling[who])}
                  for who in sorted(handled, key=lambda a: (-len(handled[a]), a))]
        times = [HandoffTimes(f.handed_off_at, f.agent_first_response, f.resolved_after_handoff)
                 for f in rows if f.handed_off_at is not None]
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


def _summary(facts: list[Facts], reopened_ids: set[str]) -> dict[str, Any]:
    conversations = len(facts)
    handed_off = sum(1 for f in facts if f.handed_off_at is not None)
    resolved = sum(1 for f in facts if f.resolved)
    reopened = sum(1 for f in facts if f.id in reopened_ids and f.resolved)
    first = [f.assistant_first_response for f in facts
             if f.assistant_first_response is not None]
    return {
        "conversations": conversations,
        "contained": conversations - handed_off,
        "containment_rate": _rate(conversations - handed_off, conversations),
        "handed_off": handed_off,
        "handoff_rate": _rate(handed_off, conversations),
        "resolved": resolved,
        "reopened": reopened,
        "reopen_rate": _rate(reopened, resolved),
        "assistant_first_response_avg_seconds": _mean(first),
    }


def _daily(facts: list[Facts], r: ReportRange) -> list[dict[str, Any]]:
    """Conversations per local day of the store's time zone.

    Each day starts at its local midnight in UTC (DST-aware, from `ReportRange`); a
    conversation's day is found by bisecting those instants, compared in the form the
    driver returned the time in (SQLite's sortable text, PostgreSQL's datetime)."""
    days: list[dict[str, Any]] = [{"day": day.isoformat(), "conversations": 0, "contained": 0, "handed_off": 0,
             "resolved": 0} for day in r.days]
    starts: list[Any] = [r.midnight(day) for day in r.days]
    sample = facts[0].opened if facts else None
    if isinstance(sample, str):
        starts = [start.strftime("%Y-%m-%d %H:%M:%S.%f") for start in starts]
    elif isinstance(sample, datetime) and sample.tzinfo is not None:
        starts = [start.replace(tzinfo=timezone.utc) for start in starts]
    for f in facts:
        day = days[bisect_right(starts, f.opened) - 1]
        day["conversations"] += 1
        day["handed_off" if f.handed_off_at else "contained"] += 1
        day["resolved"] += f.resolved
    return days


def _by(facts: list[Facts], name: str) -> list[dict[str, Any]]:
    total: Counter[str] = Counter()
    handed: Counter[str] = Counter()
    for f in facts:
        key = getattr(f, name) or "unknown"
        total[key] += 1
        handed[key] += f.handed_off_at is not None
    return [{name: key, "conversations": n, "contained": n - handed[key], "handed_off": handed[key],
             "handoff_rate": _rate(handed[key], n)}
            for key, n in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))]


def _by_skill(facts: list[Facts]) -> list[dict[str, Any]]:
    """Per skill a conversation needed (e.g. language:he); one needing none counts as 'any'."""
    total: Counter[str] = Counter()
    handed: Counter[str] = Counter()
    for f in facts:
        for skill in f.skills or ["any"]:
            total[skill] += 1
            handed[skill] += f.handed_off_at is not None
    return [{"skill": key, "conversations": n, "handed_off": handed[key],
             "handoff_rate": _rate(handed[key], n)}
            for key, n in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))]


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
