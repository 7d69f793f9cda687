"""The metrics, aggregated in SQL from the reports' projection (definitions: docs/metrics.md).

A conversation belongs to the local day it was opened; everything that later happens to it
(handoff, reply, resolution, rating) counts towards that day. The projection
(handoff/reports/models.py, kept with the events by projection.py) holds per conversation a
facts row and its tallies (also one per conversation, channel, language, skill and clock),
and the tallies' sums per UTC day. Volumes, rates, means and every table but the daily one
are sums of tallies: an unfiltered report sums the whole UTC days of its range from
`report_days` and the partial days at its edges from the tallies, a filtered one sums the
tallies. Medians take the middle value(s) of one kind's tallies in index order. Days come
from the facts joined to the range's local midnights, service levels from the facts joined
to the team's opening hours as UTC instants (both DST-aware).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    and_,
    bindparam,
    case,
    column,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from handoff.business_hours import BusinessHours
from handoff.conversations.models import UTCDateTime
from handoff.reports.catch_up import catch_up_projection
from handoff.reports.models import ConversationFacts, ConversationTally, ReportDay
from handoff.reports.projection import day_slices, normalise_question, skills_text
from handoff.reports.range import ReportRange
from handoff.reports.sla import ServiceLevels, breach_rows, open_intervals

F, T, D = ConversationFacts, ConversationTally, ReportDay
TOP_UNANSWERED = 20
# A topic is an intent the assistant recognised or a knowledge-base article it answered with.
TOPIC_KINDS = ("topic", "kb_answered")
MEDIAN_CLOCKS = ("queue_wait", "agent_first_response", "resolution")
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
    """A clock in seconds, NULL if it stopped before it started (as in projection.clocks)."""
    seconds = seconds_between(stop, start)
    return case((seconds >= 0, seconds))


def _slice(r: ReportRange, table: Any, since: datetime | None = None,
           until: datetime | None = None) -> list[ColumnElement[bool]]:
    """The rows of `table` (facts or tallies) a report covers: conversations opened in the
    range (or in since..until, a part of it), on the channel, language, skill, topic and
    agent asked."""
    where = [table.opened_at >= (since or r.start), table.opened_at < (until or r.end)]
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


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _mean(total: float | None, count: int) -> float | None:
    return round(float(total or 0) / count, 1) if count else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


def _spans(dialect: str, name: str, rows: list[tuple[int, datetime, datetime]]) -> Any:
    """Instants as a small table (i, since, until) the database joins against, written as
    VALUES: its columns are column1..3 on both databases; PostgreSQL is told they are times."""
    cast = ("CAST({} AS TIMESTAMP WITH TIME ZONE)"
            if dialect == "postgresql" else "{}")
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
        await catch_up_projection(self.sessions)  # a topic may be only in a pending one
        async with self.sessions() as session:
            return await session.scalar(query.limit(1)) is not None

    async def all(self, r: ReportRange) -> dict[str, Any]:
        # Conversations changed since the last catch-up are recomputed first: a report is
        # exact, never a few seconds behind (only derived rows change; the events do not).
        await catch_up_projection(self.sessions)
        async with self.sessions() as session:
            await _planner_settings(session, on=True)
            try:
                return await self._all(session, r)
            finally:
                await _planner_settings(session, on=False)

    async def _all(self, session: AsyncSession, r: ReportRange) -> dict[str, Any]:
        """Every table, tallies and medians first (the summary and workload use them)."""
        tallies = await _tallies(session, r)
        medians = await _medians(session, r, [
            *(("clock", name, _tally(tallies, "clock", name)[4]) for name in MEDIAN_CLOCKS),
            *(("resolved_by", who, _tally(tallies, "resolved_by", who)[4])
              for who in tallies.get("claimed", {}))])
        summary = _summary(tallies, medians)
        result: dict[str, Any] = {
            "filters": r.filters(),
            "no_data": summary["conversations"] == 0,
            "summary": summary,
            "daily": await self._daily(session, r),
            "channels": _slice_table(tallies, "channel", contained=True),
            "languages": _slice_table(tallies, "language", contained=True),
            "skills": _slice_table(tallies, "skill", contained=False),
            "handoff_reasons": _handoff_reasons(tallies),
            "topics": _topics(tallies),
            "csat": _scores(tallies, "csat", range(1, 6)),
            "nps": _scores(tallies, "nps", range(11)),
            "knowledge": _knowledge(tallies),
            "flows": _flows(tallies),
            "agents": _agents(r, tallies, medians),
            "service_levels": await self._service_levels(session, r),
        }
        result["summary"].update(_csat_summary(result["csat"], result["summary"]["resolved"]))
        result["summary"].update(_nps_summary(result["nps"]))
        result["summary"].update(result["knowledge"].pop("summary"))
        return result

    @staticmethod
    async def _daily(session: AsyncSession, r: ReportRange) -> list[dict[str, Any]]:
        """Conversations per local day of the store's time zone (see daily_query)."""
        rows = await session.execute(daily_query(session.get_bind().dialect.name, r))
        counts = {i: (n, handed, resolved) for i, n, handed, resolved in rows.tuples()}
        out = []
        for i, day in enumerate(r.days):
            n, handed, resolved = counts.get(i, (0, 0, 0))
            out.append({"day": day.isoformat(), "conversations": n, "contained": n - handed,
                        "handed_off": handed, "resolved": resolved})
        return out

    async def _service_levels(self, session: AsyncSession, r: ReportRange
                              ) -> list[dict[str, object]]:
        """Handoffs made while the team was open, and how many met each target: the facts
        are joined to the team's opening hours (UTC instants, DST-aware) over the days the
        first handoffs of the range's conversations fell on."""
        first, last = (await session.execute(
            select(func.min(F.handed_off_at), func.max(F.handed_off_at))
            .where(*_slice(r, F)))).one()
        applicable = reply_met = resolution_met = 0
        if first is not None and last is not None:
            zone = self.hours.zone
            spans = open_intervals(self.hours, _local_date(first, zone) - timedelta(days=1),
                                   _local_date(last, zone))
            if spans:
                _, since, until = _spans(session.get_bind().dialect.name, "open_hours",
                                         [(i, a, b) for i, (a, b) in enumerate(spans)])
                reply = _clock(F.first_agent_reply_at, F.handed_off_at)
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


async def _planner_settings(session: AsyncSession, on: bool) -> None:
    """PostgreSQL: no JIT for a report (its day and opening-hour joins are estimated at
    millions of rows, read ~100,000, and compiling cost 16 ms a query); it ends with the
    read's transaction. SQLite: no automatic indexes while the report runs (with a channel
    filter it built one on the channel for the day join and scanned it once per day:
    2.5 s for a year), set back for the pooled connection's next user."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and on:
        await session.execute(text("SET LOCAL jit = off"))
    elif dialect == "sqlite":
        await session.execute(text(f"PRAGMA automatic_index = {'OFF' if on else 'ON'}"))


def _local_midnight(r: ReportRange, day: date) -> datetime:
    return r.midnight(day).replace(tzinfo=timezone.utc)


def _local_date(moment: datetime | str, zone: Any) -> date:
    """The local day of a stored time (SQLite may hand back text)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).date()


def daily_query(dialect: str, r: ReportRange) -> Any:
    """The facts joined to each day's [local midnight, next local midnight) in UTC
    (DST-aware, from ReportRange): each day is a range of ix_conversation_facts_opened."""
    i, since, until = _spans(dialect, "days", [
        (i, _local_midnight(r, day), _local_midnight(r, day + timedelta(days=1)))
        for i, day in enumerate(r.days)])
    return (select(i, func.count(), func.count(F.handed_off_at), func.count(F.resolved_at))
            .join_from(i.table, F, and_(F.opened_at >= since, F.opened_at < until))
            # the days bound the range: with the range's own bounds repeated here, SQLite
            # walked the range once and compared each row with every day (365 x 100,000)
            .where(*_slice(r, F)[2:]).group_by(i))


# kind -> key -> [occurrences, conversations, handed off, sum of values, values]
Tallies = dict[str, dict[str, list[Any]]]
_SUMS = (func.sum(T.n), func.count(), func.sum(case((T.handed_off, 1), else_=0)),
         func.coalesce(func.sum(T.value), 0.0), func.count(T.value))


def _whole_utc_days(r: ReportRange) -> tuple[datetime, datetime]:
    """The whole UTC days inside the range, as [since, until) (empty if since >= until)."""
    since = r.start.astimezone(timezone.utc)
    if since.time() != datetime.min.time():
        since = datetime.combine(since.date() + timedelta(days=1), datetime.min.time(),
                                 tzinfo=timezone.utc)
    end = r.end.astimezone(timezone.utc)
    return since, datetime.combine(end.date(), datetime.min.time(), tzinfo=timezone.utc)


def _day_slice(r: ReportRange) -> str | None:
    """The slice of report_days that holds this report's conversations, if one does: all,
    one channel or one language (report_days are not kept per agent, topic or skill, nor
    per channel and language together)."""
    if r.agent_id or r.topic or r.skill or (r.channel and r.language):
        return None
    if r.channel:
        return day_slices(r.channel, None)[1]
    return day_slices(None, r.language)[2] if r.language else ""


def tally_queries(r: ReportRange) -> list[Any]:
    """Every tally of the range summed per kind and key: the whole UTC days from
    report_days and the partial days at either edge from the tallies when a slice of
    report_days holds the report's conversations; otherwise all from the tallies."""
    parts: list[Any] = []
    since, until = _whole_utc_days(r)
    day_slice = _day_slice(r)
    if day_slice is not None and since < until:
        parts.append(select(D.kind, D.key, func.sum(D.n), func.sum(D.conversations),
                            func.sum(D.handed_off), func.sum(D.value_sum),
                            func.sum(D.value_count))
                     .where(D.slice == day_slice, D.day >= since.date(), D.day < until.date())
                     .group_by(D.kind, D.key))
        spans = [(r.start, since), (until, r.end)]
    else:
        spans = [(r.start, r.end)]
    return parts + [select(T.kind, T.key, *_SUMS).where(*_slice(r, T, a, b))
                    .group_by(T.kind, T.key) for a, b in spans if a < b]


async def _tallies(session: AsyncSession, r: ReportRange) -> Tallies:
    tallies: Tallies = defaultdict(dict)
    for query in tally_queries(r):
        for kind, key, *sums in (await session.execute(query)).tuples():
            total = tallies[kind].setdefault(key, [0, 0, 0, 0.0, 0])
            for i, value in enumerate(sums):
                total[i] += value or 0
    return tallies


def _tally(tallies: Tallies, kind: str, key: str = "") -> list[Any]:
    return tallies.get(kind, {}).get(key, [0, 0, 0, 0.0, 0])


def median_query(r: ReportRange, kind: str, key: str, count: int) -> Any:
    """The middle value(s) of `count` tallies, read in value order from
    ix_conversation_tallies_kind_value: at most half an index walk, no sort."""
    return (select(T.value)
            .where(*_slice(r, T), T.kind == kind, T.key == key, T.value.is_not(None))
            .order_by(T.value).offset((count - 1) // 2).limit(2 - count % 2))


async def _medians(session: AsyncSession, r: ReportRange, wanted: list[tuple[str, str, int]]
                   ) -> dict[tuple[str, str], float | None]:
    """The median of each (kind, key, count of values): the mean of the middle value(s), as
    docs/metrics.md defines it; all in one round trip (a UNION ALL of median_query)."""
    parts = [select(literal(i).label("i"), sub.c.value) for i, sub in
             ((i, median_query(r, kind, key, count).subquery(f"m{i}"))
              for i, (kind, key, count) in enumerate(wanted) if count)]
    middles: dict[int, list[float]] = defaultdict(list)
    for start in range(0, len(parts), 400):  # SQLite joins at most 500 selects in one
        for i, value in (await session.execute(union_all(*parts[start:start + 400]))).tuples():
            middles[i].append(value)
    return {(kind, key): (round(sum(middles[i]) / len(middles[i]), 1) if middles[i] else None)
            for i, (kind, key, _) in enumerate(wanted)}


def _summary(tallies: Tallies, medians: dict[tuple[str, str], float | None]) -> dict[str, Any]:
    """The headline numbers, from the tallies' sums and the medians."""
    _, conversations, handed_off, _, _ = _tally(tallies, "conversation")
    resolved, reopened = _tally(tallies, "resolved")[1], _tally(tallies, "reopened")[1]
    clock = {name: _tally(tallies, "clock", name) for name in (
        "assistant_first_response", "queue_wait", "agent_first_response", "resolution")}

    def mean(name: str) -> float | None:
        return _mean(clock[name][3], clock[name][4])

    def median(name: str) -> float | None:
        return medians.get(("clock", name))

    return {
        "conversations": conversations,
        "contained": conversations - handed_off,
        "containment_rate": _rate(conversations - handed_off, conversations),
        "handed_off": handed_off,
        "handoff_rate": _rate(handed_off, conversations),
        "resolved": resolved,
        "reopened": reopened,
        "reopen_rate": _rate(reopened, resolved),
        "assistant_first_response_avg_seconds": mean("assistant_first_response"),
        "queue_wait_avg_seconds": mean("queue_wait"),
        "queue_wait_median_seconds": median("queue_wait"),
        "agent_first_response_avg_seconds": mean("agent_first_response"),
        "agent_first_response_median_seconds": median("agent_first_response"),
        "handoffs_without_agent_reply": handed_off - clock["agent_first_response"][4],
        "resolution_avg_seconds": mean("resolution"),
        "resolution_median_seconds": median("resolution"),
    }


def _slice_table(tallies: Tallies, name: str, contained: bool) -> list[dict[str, Any]]:
    """Per channel, language or skill needed (a conversation needing none counts as 'any')."""
    rows = sorted(((key or "unknown", c, h) for key, (_, c, h, _, _) in
                   tallies.get(name, {}).items()), key=lambda row: (-row[1], row[0]))
    return [{name: key, "conversations": c, **({"contained": c - h} if contained else {}),
             "handed_off": h, "handoff_rate": _rate(h, c)} for key, c, h in rows]


def _agents(r: ReportRange, tallies: Tallies,
            medians: dict[tuple[str, str], float | None]) -> list[dict[str, Any]]:
    """Per agent: conversations claimed, resolved, and the median handling time."""
    handled = {key: t[1] for key, t in tallies.get("claimed", {}).items()
               if r.agent_id is None or key == r.agent_id}
    rows = []
    for who in sorted(handled, key=lambda a: (-handled[a], a)):
        resolved = _tally(tallies, "resolved_by", who)
        rows.append({"agent": who, "handled": handled[who], "resolved": resolved[1],
                     "median_handling_seconds": medians.get(("resolved_by", who))})
    return rows


def _handoff_reasons(tallies: Tallies) -> list[dict[str, Any]]:
    """Every handoff counts, also a second one after a reopen; the reason is as recorded."""
    rows = sorted(((key, t[0]) for key, t in tallies.get("reason", {}).items()),
                  key=lambda kv: (-kv[1], kv[0]))
    total = sum(n for _, n in rows)
    return [{"reason": key or "unknown", "handoffs": n, "share": _rate(n, total)}
            for key, n in rows]


def _topics(tallies: Tallies) -> list[dict[str, Any]]:
    """Per intent the assistant recognised: conversations that had it, and how many went to people."""
    rows = sorted(((key, t[1], t[2]) for key, t in tallies.get("topic", {}).items()),
                  key=lambda row: (-row[1], row[0]))[:50]
    return [{"topic": key or "unknown", "conversations": c, "handed_off": h,
             "handoff_rate": _rate(h, c)} for key, c, h in rows]


def _scores(tallies: Tallies, kind: str, scale: range) -> list[dict[str, Any]]:
    counts = {int(key): t[0] for key, t in tallies.get(kind, {}).items()}
    return [{"score": s, "responses": counts.get(s, 0)} for s in scale]


def _knowledge(tallies: Tallies) -> dict[str, Any]:
    answered_by = sorted(((key, t[0]) for key, t in tallies.get("kb_answered", {}).items()),
                         key=lambda kv: (-kv[1], kv[0]))
    abstained = [(key, t[0]) for key, t in tallies.get("kb_abstained", {}).items()]
    feedback = {key: t[0] for key, t in tallies.get("kb_feedback", {}).items()}
    answered, asked = sum(n for _, n in answered_by), sum(n for _, n in abstained)
    yes, no = feedback.get("yes", 0), feedback.get("no", 0)
    unanswered = sorted(((key, n) for key, n in abstained if key),
                        key=lambda kv: (-kv[1], kv[0]))[:TOP_UNANSWERED]
    return {
        "summary": {"kb_answered": answered, "kb_abstained": asked,
                    "kb_answer_rate": _rate(answered, answered + asked),
                    "kb_feedback": yes + no, "kb_helped_rate": _rate(yes, yes + no)},
        "articles": [{"article": key or "unknown", "answers": n} for key, n in answered_by[:50]],
        "unanswered": [{"question": key, "asked": n} for key, n in unanswered],
    }


def _flows(tallies: Tallies) -> list[dict[str, Any]]:
    """Per form: started, completed, abandoned (each once per customer message)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for kind in ("flow_started", "flow_completed", "flow_abandoned"):
        for key, t in tallies.get(kind, {}).items():
            counts[key][kind.removeprefix("flow_")] += t[0]
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
