"""The metrics, aggregated in SQL from the reports' projection (definitions: docs/metrics.md).

A conversation belongs to the local day it was opened; everything that later happens to it
(handoff, reply, resolution, rating) counts towards that day. The projection
(handoff/reports/models.py, kept with the events by projection.py) holds one facts row per
conversation and its tallies, each carrying the conversation's opening time, so every
table of a report is one grouped query over rows of the conversations opened in range:
volumes, means and medians (window functions), days (joined to the range's local
midnights), service levels (joined to the team's opening hours as UTC instants).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Float, Integer, and_, bindparam, case, column, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from handoff.business_hours import BusinessHours
from handoff.conversations.models import UTCDateTime
from handoff.reports.models import ConversationFacts, ConversationTally
from handoff.reports.projection import normalise_question, skills_text
from handoff.reports.range import ReportRange
from handoff.reports.sla import ServiceLevels, breach_rows, open_intervals

F, T = ConversationFacts, ConversationTally
TOP_UNANSWERED = 20
# A topic is an intent the assistant recognised or a knowledge-base article it answered with.
TOPIC_KINDS = ("topic", "kb_answered")
__all__ = ["Reports", "normalise_question"]


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


def _clock(stop: Any, start: Any) -> ColumnElement[Any]:
    """A clock in seconds; a negative one (stopped before it started: an agent's message
    before the handoff, say) did not run, and is NULL like one that never stopped."""
    seconds = seconds_between(stop, start)
    return case((seconds >= 0, seconds))


# The clocks of docs/metrics.md, per facts row.
CLOCKS: dict[str, ColumnElement[Any]] = {
    "assistant_first_response": _clock(F.first_assistant_reply_at, F.first_customer_at),
    "queue_wait": _clock(F.claimed_at, F.handed_off_at),
    "agent_first_response": _clock(F.first_agent_reply_at, F.handed_off_at),
    # time to resolution is counted over handed-off conversations (only those are resolved)
    "resolution": case((F.handed_off_at.is_not(None), _clock(F.resolved_at, F.opened_at))),
}


def _slice(r: ReportRange, table: Any) -> list[ColumnElement[bool]]:
    """The rows of `table` (facts or tallies) a report covers: conversations opened in the
    range, on the channel, language, skill, topic and agent asked."""
    where = [table.opened_at >= r.start, table.opened_at < r.end]
    if r.channel:
        where.append(table.channel == r.channel)
    if r.language:
        where.append(table.language == r.language)
    if r.skill:
        if table is F:
            where.append(_has_skill(r.skill))
        else:
            where.append(table.conversation_id.in_(
                select(F.conversation_id).where(F.opened_at >= r.start, F.opened_at < r.end,
                                                _has_skill(r.skill))))
    for kinds, key in ((("claimed",), r.agent_id), (TOPIC_KINDS, r.topic)):
        if key:
            where.append(table.conversation_id.in_(
                select(T.conversation_id).where(T.opened_at >= r.start, T.opened_at < r.end,
                                                T.kind.in_(kinds), T.key == key)))
    return where


def _has_skill(skill: str) -> ColumnElement[bool]:
    pattern = skills_text([skill]).replace("_", "\\_")
    return F.skills.like(f"%{pattern}%", escape="\\")


def _rate(part: int | float, whole: int | float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(total: float | None, count: int) -> float | None:
    return round(float(total or 0) / count, 1) if count else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _median_query(value: Any, where: list[ColumnElement[bool]], group: Any = None) -> Any:
    """Median per group in SQL: the middle value, or the mean of the two middle ones (row
    numbers rn with 2*rn between n and n+2), so no list of values leaves the database."""
    group_col = (group if group is not None else literal("")).label("g")
    ranked = (select(group_col, value.label("v"),
                     func.row_number().over(partition_by=group_col, order_by=value).label("rn"),
                     func.count().over(partition_by=group_col).label("n"))
              .where(*where, value.is_not(None)).subquery("ranked"))
    return (select(ranked.c.g, func.avg(ranked.c.v))
            .where((2 * ranked.c.rn).between(ranked.c.n, ranked.c.n + 2))
            .group_by(ranked.c.g))


def _spans(session: AsyncSession, name: str, rows: list[tuple[int, datetime, datetime]]) -> Any:
    """Instants as a small table (i, since, until) the database joins against, written as
    VALUES: its columns are column1..3 on both databases; PostgreSQL is told they are times."""
    cast = ("CAST({} AS TIMESTAMP WITH TIME ZONE)"
            if session.get_bind().dialect.name == "postgresql" else "{}")
    params, tuples = [], []
    for n, (i, since, until) in enumerate(rows):
        tuples.append(f"({i}, {cast.format(f':s{n}')}, {cast.format(f':u{n}')})")
        params += [bindparam(f"s{n}", since, type_=UTCDateTime()),
                   bindparam(f"u{n}", until, type_=UTCDateTime())]
    values_sql = text(f"SELECT * FROM (VALUES {', '.join(tuples)}) AS v").bindparams(*params)
    table = values_sql.columns(column("column1", Integer), column("column2", UTCDateTime()),
                               column("column3", UTCDateTime())).subquery(name)
    return table.c.column1, table.c.column2, table.c.column3


@dataclass
class Reports:
    """Computes every table of the dashboard for one range and slice."""

    sessions: async_sessionmaker[AsyncSession]
    hours: BusinessHours
    levels: ServiceLevels

    async def known(self, kind: str, name: str) -> bool:
        """Whether any conversation ever had this topic (an intent or an answered article) or
        needed this skill: a filter on a name never seen is a typo, refused with 400."""
        if kind == "topic":
            query = select(T.conversation_id).where(T.kind.in_(TOPIC_KINDS), T.key == name)
        else:
            query = select(F.conversation_id).where(_has_skill(name))
        async with self.sessions() as session:
            return await session.scalar(query.limit(1)) is not None

    async def all(self, r: ReportRange) -> dict[str, Any]:
        async with self.sessions() as session:
            summary, handed_span = await self._summary(session, r)
            tallies = await self._tallies(session, r)
            result: dict[str, Any] = {
                "filters": r.filters(),
                "no_data": summary["conversations"] == 0,
                "summary": summary,
                "daily": await self._daily(session, r),
                **await self._slices(session, r),
                "handoff_reasons": _handoff_reasons(tallies),
                "topics": _topics(tallies),
                "csat": _scores(tallies, "csat", range(1, 6)),
                "nps": _scores(tallies, "nps", range(0, 11)),
                "knowledge": _knowledge(tallies),
                "flows": _flows(tallies),
                "agents": await self._agents(session, r, tallies),
                "service_levels": await self._service_levels(session, r, handed_span),
            }
        result["summary"].update(_csat_summary(result["csat"], result["summary"]["resolved"]))
        result["summary"].update(_nps_summary(result["nps"]))
        result["summary"].update(result["knowledge"].pop("summary"))
        return result

    @staticmethod
    async def _summary(session: AsyncSession, r: ReportRange
                       ) -> tuple[dict[str, Any], tuple[datetime | None, datetime | None]]:
        """The headline numbers: one pass over the facts, medians from a second query each."""
        where = _slice(r, F)
        row = (await session.execute(select(
            func.count(), func.count(F.handed_off_at), func.count(F.resolved_at),
            func.sum(case((and_(F.reopened, F.resolved_at.is_not(None)), 1), else_=0)),
            func.min(F.handed_off_at), func.max(F.handed_off_at),
            *(part for clock in CLOCKS.values() for part in (func.sum(clock), func.count(clock))),
        ).where(*where))).one()
        conversations, handed_off, resolved, reopened = (int(v or 0) for v in row[:4])
        sums = {name: (row[6 + 2 * i], int(row[7 + 2 * i])) for i, name in enumerate(CLOCKS)}
        medians: dict[str, float | None] = {}
        for name in ("queue_wait", "agent_first_response", "resolution"):
            found = (await session.execute(_median_query(CLOCKS[name], where))).first()
            medians[name] = _round(found[1]) if found else None
        summary = {
            "conversations": conversations,
            "contained": conversations - handed_off,
            "containment_rate": _rate(conversations - handed_off, conversations),
            "handed_off": handed_off,
            "handoff_rate": _rate(handed_off, conversations),
            "resolved": resolved,
            "reopened": reopened,
            "reopen_rate": _rate(reopened, resolved),
            "assistant_first_response_avg_seconds": _mean(*sums["assistant_first_response"]),
            "queue_wait_avg_seconds": _mean(*sums["queue_wait"]),
            "queue_wait_median_seconds": medians["queue_wait"],
            "agent_first_response_avg_seconds": _mean(*sums["agent_first_response"]),
            "agent_first_response_median_seconds": medians["agent_first_response"],
            "handoffs_without_agent_reply": handed_off - sums["agent_first_response"][1],
            "resolution_avg_seconds": _mean(*sums["resolution"]),
            "resolution_median_seconds": medians["resolution"],
        }
        return summary, (row[4], row[5])

    @staticmethod
    async def _daily(session: AsyncSession, r: ReportRange) -> list[dict[str, Any]]:
        """Conversations per local day of the store's time zone: the facts are joined to
        each day's [local midnight, next local midnight) in UTC (DST-aware, from ReportRange),
        so each day is an index range of the facts' opening times."""
        days = r.days
        i, since, until = _spans(session, "days", [
            (i, _local_midnight(r, day), _local_midnight(r, day + timedelta(days=1)))
            for i, day in enumerate(days)])
        rows = await session.execute(
            select(i, func.count(), func.count(F.handed_off_at), func.count(F.resolved_at))
            .join_from(i.table, F, and_(F.opened_at >= since, F.opened_at < until))
            # the days bound the range: with the range's own bounds repeated here, SQLite
            # walked the range once and compared each row with every day (365 x 100,000)
            .where(*_slice(r, F)[2:]).group_by(i))
        counts = {i: (n, handed, resolved) for i, n, handed, resolved in rows.tuples()}
        out = []
        for i, day in enumerate(days):
            n, handed, resolved = counts.get(i, (0, 0, 0))
            out.append({"day": day.isoformat(), "conversations": n, "contained": n - handed,
                        "handed_off": handed, "resolved": resolved})
        return out

    @staticmethod
    async def _slices(session: AsyncSession, r: ReportRange) -> dict[str, list[dict[str, Any]]]:
        """Per channel, language and skill, from one grouped query."""
        rows = list((await session.execute(
            select(F.channel, F.language, F.skills, func.count(), func.count(F.handed_off_at))
            .where(*_slice(r, F)).group_by(F.channel, F.language, F.skills))).tuples())
        tables: dict[str, list[dict[str, Any]]] = {}
        for name in ("channel", "language", "skill"):
            total: Counter[str] = Counter()
            handed: Counter[str] = Counter()
            for channel, language, skills, n, escalated in rows:
                keys = {"channel": [channel], "language": [language],
                        "skill": [s for s in (skills or "").split("|") if s] or ["any"]}[name]
                for key in keys:
                    total[key or "unknown"] += n
                    handed[key or "unknown"] += escalated
            ordered = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))
            tables[name + "s"] = [
                {name: key, "conversations": n,
                 **({} if name == "skill" else {"contained": n - handed[key]}),
                 "handed_off": handed[key], "handoff_rate": _rate(handed[key], n)}
                for key, n in ordered]
        return {"channels": tables["channels"], "languages": tables["languages"],
                "skills": tables["skills"]}

    @staticmethod
    async def _tallies(session: AsyncSession, r: ReportRange) -> dict[str, list[tuple[str, int, int, int]]]:
        """Per kind: (key, occurrences, conversations, of which handed off), one grouped query."""
        handed = func.sum(case((T.handed_off, 1), else_=0))
        rows = await session.execute(
            select(T.kind, T.key, func.sum(T.n), func.count(), handed)
            .where(*_slice(r, T)).group_by(T.kind, T.key))
        kinds: dict[str, list[tuple[str, int, int, int]]] = defaultdict(list)
        for kind, key, n, conversations, escalated in rows.tuples():
            kinds[kind].append((key, int(n), int(conversations), int(escalated)))
        return kinds

    @staticmethod
    async def _agents(session: AsyncSession, r: ReportRange,
                      tallies: dict[str, list[tuple[str, int, int, int]]]) -> list[dict[str, Any]]:
        """Per agent: conversations claimed, resolved, and the median handling time."""
        handled = {key: c for key, _, c, _ in tallies.get("claimed", [])
                   if r.agent_id is None or key == r.agent_id}
        resolved = {key: c for key, _, c, _ in tallies.get("resolved_by", [])}
        medians = dict((await session.execute(_median_query(
            T.value, [*_slice(r, T), T.kind == "resolved_by"], T.key))).tuples().all())
        return [{"agent": who, "handled": handled[who], "resolved": resolved.get(who, 0),
                 "median_handling_seconds": _round(medians.get(who))}
                for who in sorted(handled, key=lambda a: (-handled[a], a))]

    async def _service_levels(self, session: AsyncSession, r: ReportRange,
                              handed_span: tuple[datetime | None, datetime | None]
                              ) -> list[dict[str, object]]:
        """Handoffs made while the team was open, and how many met each target: the facts
        are joined to the team's opening hours (UTC instants, DST-aware) over the days the
        first handoffs of the range's conversations fell on."""
        first, last = handed_span
        applicable = reply_met = resolution_met = 0
        if first is not None and last is not None:
            zone = self.hours.zone
            spans = open_intervals(self.hours, _local_date(first, zone) - timedelta(days=1),
                                   _local_date(last, zone))
            if spans:
                _, since, until = _spans(session, "open_hours",
                                         [(i, a, b) for i, (a, b) in enumerate(spans)])
                reply = CLOCKS["agent_first_response"]
                resolution = _clock(F.resolved_at, F.handed_off_at)
                row = (await session.execute(
                    select(func.count(),
                           func.sum(case((reply <= self.levels.first_reply_seconds, 1), else_=0)),
                           func.sum(case((resolution <= self.levels.resolution_seconds, 1),
                                         else_=0)))
                    .join_from(since.table, F, and_(F.handed_off_at >= since,
                                                    F.handed_off_at < until))
                    .where(*_slice(r, F)))).one()
                applicable, reply_met, resolution_met = (int(v or 0) for v in row)
        return breach_rows(self.levels, applicable, reply_met, resolution_met)


def _local_midnight(r: ReportRange, day: date) -> datetime:
    return r.midnight(day).replace(tzinfo=timezone.utc)


def _local_date(moment: datetime | str, zone: Any) -> date:
    """The local day of a stored time (SQLite may hand back text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).date()


def _handoff_reasons(tallies: dict[str, list[tuple[str, int, int, int]]]) -> list[dict[str, Any]]:
    """Every handoff counts, also a second one after a reopen; the reason is as recorded."""
    rows = sorted(((key, n) for key, n, _, _ in tallies.get("reason", [])),
                  key=lambda kv: (-kv[1], kv[0]))
    total = sum(n for _, n in rows)
    return [{"reason": key or "unknown", "handoffs": n, "share": _rate(n, total)}
            for key, n in rows]


def _topics(tallies: dict[str, list[tuple[str, int, int, int]]]) -> list[dict[str, Any]]:
    """Per intent the assistant recognised: conversations that had it, and how many went to people."""
    rows = sorted(((key, c, h) for key, _, c, h in tallies.get("topic", [])),
                  key=lambda row: (-row[1], row[0]))[:50]
    return [{"topic": key or "unknown", "conversations": c, "handed_off": h,
             "handoff_rate": _rate(h, c)} for key, c, h in rows]


def _scores(tallies: dict[str, list[tuple[str, int, int, int]]], kind: str,
            scale: range) -> list[dict[str, Any]]:
    counts = {int(key): n for key, n, _, _ in tallies.get(kind, [])}
    return [{"score": s, "responses": counts.get(s, 0)} for s in scale]


def _knowledge(tallies: dict[str, list[tuple[str, int, int, int]]]) -> dict[str, Any]:
    answered_by = sorted(((key, n) for key, n, _, _ in tallies.get("kb_answered", [])),
                         key=lambda kv: (-kv[1], kv[0]))
    abstained = tallies.get("kb_abstained", [])
    feedback = {key: n for key, n, _, _ in tallies.get("kb_feedback", [])}
    answered, asked = sum(n for _, n in answered_by), sum(n for _, n, _, _ in abstained)
    yes, no = feedback.get("yes", 0), feedback.get("no", 0)
    unanswered = sorted(((key, n) for key, n, _, _ in abstained if key),
                        key=lambda kv: (-kv[1], kv[0]))[:TOP_UNANSWERED]
    return {
        "summary": {"kb_answered": answered, "kb_abstained": asked,
                    "kb_answer_rate": _rate(answered, answered + asked),
                    "kb_feedback": yes + no, "kb_helped_rate": _rate(yes, yes + no)},
        "articles": [{"article": key or "unknown", "answers": n} for key, n in answered_by[:50]],
        "unanswered": [{"question": key, "asked": n} for key, n in unanswered],
    }


def _flows(tallies: dict[str, list[tuple[str, int, int, int]]]) -> list[dict[str, Any]]:
    """Per form: started, completed, abandoned (each once per customer message)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for kind in ("flow_started", "flow_completed", "flow_abandoned"):
        for key, n, _, _ in tallies.get(kind, []):
            counts[key][kind.removeprefix("flow_")] += n
    return [{"flow": name, "started": c["started"], "completed": c["completed"],
             "abandoned": c["abandoned"], "completion_rate": _rate(c["completed"], c["started"]),
             "abandonment_rate": _rate(c["abandoned"], c["started"])}
            for name, c in sorted(counts.items())]


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
