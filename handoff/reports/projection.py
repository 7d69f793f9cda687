"""Keeps the reports' projection (handoff/reports/models.py) equal to the stored events.

Why a session listener and not calls in each verb: events and messages are written by the
conversation service, the NPS question, the contact record and the privacy purge; one
`after_flush` hook sees every ORM write of every one of them, in the transaction that writes
it, so no path can forget the projection and a rollback takes both away together.

A conversation whose events (or skills) changed is marked in `report_pending`, in that
same transaction, and recomputed from its stored rows by `project` (the function `rebuild`
runs over the whole store) when `catch_up` runs: before every report, and every few seconds
in the background. A customer's turn therefore pays for a mark, not for the recompute
(which cost a conversation's first turns 10 statements more, and repeated for every turn of
a busy conversation is done once per catch-up). Reports stay exact: they catch up first.
A new message matters only if it is the first of its kind (first customer message,
assistant reply, agent reply): until this process has seen that time set, the conversation
is marked and one conditional UPDATE moves the time. The per-UTC-day sums (`report_days`) move by the difference between a
conversation's old and new tallies.
"""

from __future__ import annotations

import re
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timezone
from typing import Any, cast

from sqlalchemy import (
    Table,
    ColumnElement,
    TextClause,
    and_,
    any_,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, UOWTransaction

from handoff.conversations.models import (
    AuthorType,
    Conversation,
    ConversationEvent,
    Message,
)
from handoff.reports.models import ConversationFacts, ConversationTally, ReportDay, ReportPending

REOPEN_REASON = "customer_wrote_after_close"
CHUNK = 500
# Attributes of a conversation the projection copies; a change to one recomputes it.
_COPIED = ("created_at", "channel", "language", "required_skills")

E, M, T = ConversationEvent, Message, ConversationTally
_CUSTOMER = M.author_type == AuthorType.CUSTOMER.value
_ASSISTANT_REPLY = and_(M.author_type == AuthorType.ASSISTANT.value, M.reply_to_id.is_not(None))
_AGENT_REPLY = and_(M.author_type == AuthorType.AGENT.value, M.private.is_(False))
_FIRSTS = (("first_customer_at", _CUSTOMER), ("first_assistant_reply_at", _ASSISTANT_REPLY),
           ("first_agent_reply_at", _AGENT_REPLY))


def normalise_question(text: str) -> str:
    """Groups questions that differ only in case, punctuation and spacing."""
    return " ".join(re.findall(r"\w+", text.lower()))


def skills_text(skills: Iterable[str] | None) -> str:
    """Skills as stored in the facts row: sorted between bars, so LIKE '%|skill|%' finds one."""
    names = sorted(set(skills or []))
    return f"|{'|'.join(names)}|" if names else ""


def _seconds(stop: datetime | None, start: datetime | None) -> float | None:
    """Seconds from start to stop to the millisecond; None if either is missing or the
    clock would run backwards."""
    if stop is None or start is None or stop < start:
        return None
    return round((stop - start).total_seconds(), 3)


def project(conversation: Any, events: Sequence[Any], firsts: dict[str, datetime | None]
            ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One conversation's facts row and tallies from its row, its events in stored (id) order
    and the times of its first customer, assistant-reply and agent-reply messages.

    Each tally mirrors one definition of docs/metrics.md: every handoff's reason; each intent
    and each flow message once; every rating, answer, abstention and feedback."""
    facts: dict[str, Any] = {
        "conversation_id": conversation.id, "opened_at": conversation.created_at,
        "channel": conversation.channel, "language": conversation.language,
        "skills": skills_text(conversation.required_skills), "reopened": False,
        "handed_off_at": None, "claimed_at": None, "resolved_at": None, **firsts}
    counts: dict[tuple[str, str], int] = defaultdict(int)
    values: dict[tuple[str, str], float | None] = {}
    topics: set[str] = set()
    flow_messages: dict[tuple[str, str], set[str]] = defaultdict(set)
    first_claim: datetime | None = None
    for e in events:
        data = e.data if isinstance(e.data, dict) else {}
        at = e.created_at
        if e.type in ("handed_off", "claimed", "resolved"):
            column = f"{e.type}_at"
            if facts[column] is None or at < facts[column]:
                facts[column] = at
        if e.type == "handed_off":
            counts["reason", str(data.get("reason") or "")] += 1
        elif e.type == "claimed":
            first_claim = first_claim or at
            if data.get("agent_id"):
                counts["claimed", str(data["agent_id"])] += 1
        elif e.type == "resolved":
            who = str(data.get("agent_id") or "")
            if who and ("resolved_by", who) not in values:
                values["resolved_by", who] = _seconds(at, first_claim)
                counts["resolved_by", who] = 1
        elif e.type == "returned_to_bot" and data.get("reason") == REOPEN_REASON:
            facts["reopened"] = True
        elif e.type == "message_understood":
            topics.add(_intent(data))
        elif e.type in ("csat_submitted", "nps_submitted"):
            if isinstance(data.get("score"), int) and not isinstance(data["score"], bool):
                counts[e.type.removesuffix("_submitted"), str(data["score"])] += 1
        elif e.type == "kb_answered":
            counts["kb_answered", str(data.get("article") or "")] += 1
        elif e.type == "kb_abstained":
            counts["kb_abstained", normalise_question(str(data.get("question") or ""))[:320]] += 1
        elif e.type == "kb_feedback" and isinstance(data.get("helped"), bool):
            counts["kb_feedback", "yes" if data["helped"] else "no"] += 1
        elif e.type in ("flow_started", "flow_completed", "flow_abandoned"):
            flow_messages[e.type, str(data.get("flow") or "unknown")].add(
                repr(data.get("message_id")))
    for topic in topics:
        counts["topic", topic] = 1
    for (kind, flow), messages in flow_messages.items():
        counts[kind, flow] = len(messages)
    _facts_tallies(facts, conversation.required_skills, counts, values)
    shared = {"conversation_id": conversation.id, "opened_at": conversation.created_at,
              "channel": conversation.channel, "language": conversation.language,
              "handed_off": facts["handed_off_at"] is not None}
    tallies = [{**shared, "kind": kind, "key": key, "n": n, "value": values.get((kind, key))}
               for (kind, key), n in sorted(counts.items())]
    return facts, tallies


def clocks(facts: dict[str, Any]) -> dict[str, float | None]:
    """The clocks of docs/metrics.md for one conversation, in seconds (None: never stopped,
    or stopped before it started, e.g. an agent's message before the handoff)."""
    handed = facts["handed_off_at"]
    return {
        "assistant_first_response": _seconds(facts["first_assistant_reply_at"],
                                             facts["first_customer_at"]),
        "queue_wait": _seconds(facts["claimed_at"], handed),
        "agent_first_response": _seconds(facts["first_agent_reply_at"], handed),
        # time to resolution is counted over handed-off conversations (only those are resolved)
        "resolution": _seconds(facts["resolved_at"], facts["opened_at"]) if handed else None,
    }


def _facts_tallies(facts: dict[str, Any], skills: list[str] | None,
                   counts: dict[tuple[str, str], int],
                   values: dict[tuple[str, str], float | None]) -> None:
    """The facts row as tallies too, so one sum over tallies (or days) gives the volumes,
    slices and clock means: one per conversation, channel, language and skill needed
    ('any' for none); resolved; reopened (only counted when resolved); each clock that ran."""
    counts["conversation", ""] = 1
    counts["channel", facts["channel"] or ""] = 1
    counts["language", facts["language"] or ""] = 1
    for skill in sorted(set(skills or [])) or ["any"]:
        counts["skill", skill] = 1
    if facts["resolved_at"] is not None:
        counts["resolved", ""] = 1
        if facts["reopened"]:
            counts["reopened", ""] = 1
    for name, seconds in clocks(facts).items():
        if seconds is not None:
            counts["clock", name] = 1
            values["clock", name] = seconds


def among(connection: Connection, column: Any, ids: Sequence[str]) -> ColumnElement[bool]:
    """`column IN ids`, written on PostgreSQL as `column = ANY(:ids)`: one SQL text whatever
    the count. An IN list is a new statement for every length, and the driver kept each one
    prepared on every pooled connection (up to 100 on each): in the soaks the catch-up's
    lists of 1 to 500 conversations kept the web services' memory growing after every
    per-conversation table was full (tracemalloc: asyncpg's statement cache), and cost a
    prepare round trip for each new length."""
    if connection.dialect.name == "postgresql":
        return cast("ColumnElement[bool]",
                    column == any_(bindparam(None, list(ids), type_=ARRAY(column.type))))
    return cast("ColumnElement[bool]", column.in_(ids))


def recompute(connection: Connection, ids: Sequence[str]) -> None:
    """Replaces the projection of these conversations with one computed from their rows."""
    for i in range(0, len(ids), CHUNK):
        chunk = list(ids[i:i + CHUNK])
        conversations = list(connection.execute(
            select(Conversation.id, Conversation.created_at, Conversation.channel,
                   Conversation.language, Conversation.required_skills)
            .where(among(connection, Conversation.id, chunk))))
        events: dict[str, list[Any]] = defaultdict(list)
        for row in connection.execute(
                select(E.conversation_id, E.type, E.data, E.created_at)
                .where(among(connection, E.conversation_id, chunk))
                .order_by(E.conversation_id, E.id)):
            events[row.conversation_id].append(row)
        firsts: dict[str, dict[str, datetime | None]] = {
            row[0]: dict(zip([name for name, _ in _FIRSTS], row[1:]))
            for row in connection.execute(
                select(M.conversation_id,
                       *(func.min(case((when, M.created_at))) for _, when in _FIRSTS))
                .where(among(connection, M.conversation_id, chunk)).group_by(M.conversation_id))}
        empty: dict[str, datetime | None] = {name: None for name, _ in _FIRSTS}
        facts: list[dict[str, Any]] = []
        tallies: list[dict[str, Any]] = []
        for conversation in conversations:
            facts_row, tally_rows = project(conversation, events.get(conversation.id, []),
                                            firsts.get(conversation.id, empty))
            facts.append(facts_row)
            tallies += tally_rows
        _add_to_days(connection, tallies, old=[dict(row._mapping) for row in connection.execute(
            select(T.opened_at, T.channel, T.language, T.kind, T.key, T.n, T.handed_off,
                   T.value).where(among(connection, T.conversation_id, chunk)))])
        connection.execute(delete(T).where(among(connection, T.conversation_id, chunk)))
        connection.execute(delete(ConversationFacts).where(
            among(connection, ConversationFacts.conversation_id, chunk)))
        if facts:
            connection.execute(insert(ConversationFacts), facts)
        if tallies:
            connection.execute(insert(T), tallies)


def utc_day(moment: datetime) -> date:
    """The UTC day a stored time falls on (SQLite hands times back without a zone)."""
    return (moment if moment.tzinfo is None else moment.astimezone(timezone.utc)).date()


def day_slices(channel: str | None, language: str | None) -> tuple[str, str, str]:
    """The slices of report_days a conversation's tallies are summed into."""
    return "", f"channel:{channel or ''}", f"language:{language or ''}"


def _add_to_days(connection: Connection, new: list[dict[str, Any]],
                 old: list[dict[str, Any]]) -> None:
    """Moves the per-day sums from the `old` tallies of some conversations to their `new`
    ones, in each of a tally's three slices (all, its channel, its language): one upsert
    per (slice, day, kind, key) that changed, in key order (no deadlock between two
    transactions touching the same days)."""
    deltas: dict[tuple[str, date, str, str], list[float]] = defaultdict(
        lambda: [0, 0, 0, 0.0, 0])
    for rows, factor in ((old, -1), (new, 1)):
        for row in rows:
            day, value = utc_day(row["opened_at"]), row["value"]
            for slice_ in day_slices(row["channel"], row["language"]):
                delta = deltas[slice_, day, row["kind"], row["key"]]
                delta[0] += factor * row["n"]
                delta[1] += factor
                delta[2] += factor * bool(row["handed_off"])
                if value is not None:
                    delta[3] += factor * value
                    delta[4] += factor
    changes = [{"slice": slice_, "day": day, "kind": kind, "key": key, "n": d[0],
                "conversations": d[1], "handed_off": d[2], "value_sum": d[3],
                "value_count": d[4]}
               for (slice_, day, kind, key), d in sorted(deltas.items()) if any(d)]
    if not changes:
        return
    connection.execute(_ADD_TO_DAYS, changes)


def rebuild(connection: Connection) -> int:
    """Recomputes the whole projection from the stored conversations; returns how many.
    In opening order, so SQLite stores the facts of a day together as live writes do."""
    ids = list(connection.scalars(select(Conversation.id).order_by(Conversation.created_at)))
    # Marks in report_pending may stay: a catch-up recomputes them again, to the same rows
    # (and migration 0008 runs this before that table exists).
    connection.execute(delete(ReportDay))
    connection.execute(delete(T))
    connection.execute(delete(ConversationFacts))
    recompute(connection, ids)
    return len(ids)


def _first_column(message: Message) -> str | None:
    """Which "first ... at" time a new message may move, if any."""
    if message.author_type == AuthorType.CUSTOMER.value:
        return "first_customer_at"
    if message.author_type == AuthorType.ASSISTANT.value and message.reply_to_id is not None:
        return "first_assistant_reply_at"
    if message.author_type == AuthorType.AGENT.value and message.private is False:
        return "first_agent_reply_at"
    return None


def _intent(data: Any) -> str:
    """The topic key of a message_understood event, as `project` writes it."""
    return str((data if isinstance(data, dict) else {}).get("intent") or "")


def _new_topics(connection: Connection, intents: dict[str, set[str]]) -> set[str]:
    """The conversations for which an intent just understood is new. Every assistant turn
    records one; an intent the conversation already had changes no tally (a topic counts
    once per conversation), so one read replaces the recompute (12 statements a turn)."""
    if not intents:
        return set()
    known: dict[str, set[str]] = defaultdict(set)
    for cid, key in connection.execute(
            select(T.conversation_id, T.key)
            .where(among(connection, T.conversation_id, sorted(intents)), T.kind == "topic")):
        known[cid].add(key)
    return {cid for cid, seen in intents.items() if not seen <= known[cid]}


def _changed(conversation: Conversation) -> bool:
    state = inspect(conversation)
    return any(state.attrs[name].history.has_changes() for name in _COPIED)


class _Firsts:
    """The "first ... at" times known to be set, per conversation and column, in this process:
    such a time only ever moves earlier and a new message is later, so the conditional UPDATE
    for it would match nothing — two statements of every turn after a conversation's first
    reply (tests/handoff/test_turn_statements.py). Filled only when the transaction that saw
    the time set commits."""

    SIZE = 20_000  # keys; the oldest go first

    def __init__(self, size: int = SIZE) -> None:
        self._known: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._size = size

    def __contains__(self, key: object) -> bool:
        return key in self._known

    def add_all(self, keys: set[tuple[str, str]]) -> None:
        for key in keys:
            self._known[key] = None
            self._known.move_to_end(key)
        while len(self._known) > self._size:
            self._known.popitem(last=False)


_FIRSTS_SET = _Firsts()
_SETTLING = "projection_firsts_settling"  # session.info: keys seen set in the open transaction
# session.info: conversations already marked in the open transaction. One mark is enough:
# the catch-up reads the rows after the commit, and until then no one sees the mark.
# (Opening a chat flushes three times and marked it twice.)
_MARKED = "projection_marked"


@event.listens_for(Session, "after_commit")
def _remember_firsts(session: Session) -> None:
    _FIRSTS_SET.add_all(session.info.pop(_SETTLING, set()))
    session.info.pop(_MARKED, None)


@event.listens_for(Session, "after_rollback")
def _forget_firsts(session: Session) -> None:
    session.info.pop(_SETTLING, None)
    session.info.pop(_MARKED, None)


@event.listens_for(Session, "after_flush")
def _keep_projection(session: Session, _flush: UOWTransaction) -> None:
    """Brings the projection of whatever this flush wrote up to date, in its transaction."""
    touched: set[str] = set()
    earliest: dict[tuple[str, str], datetime] = {}
    intents: dict[str, set[str]] = defaultdict(set)  # new message_understood per conversation
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, ConversationEvent):
            if obj.type == "message_understood" and obj in session.new:
                intents[obj.conversation_id].add(_intent(obj.data))
            else:
                touched.add(obj.conversation_id)
        elif isinstance(obj, Conversation) and (obj in session.new or _changed(obj)):
            touched.add(obj.id)
        elif isinstance(obj, Message) and obj in session.new:
            column = _first_column(obj)
            if column is not None and obj.created_at is None:
                touched.add(obj.conversation_id)  # no time known here: recompute instead
            elif column is not None:
                key = (obj.conversation_id, column)
                earliest[key] = min(obj.created_at, earliest.get(key, obj.created_at))
    if not touched and not earliest and not intents:
        return
    connection = session.connection()
    touched |= _new_topics(connection, {cid: seen for cid, seen in intents.items()
                                        if cid not in touched})
    firsts = [(cid, column, at) for (cid, column), at in sorted(earliest.items())
              if cid not in touched and (cid, column) not in _FIRSTS_SET]
    # Marked before a "first" time is moved, in the order the catch-up locks them (mark, then
    # facts): on PostgreSQL a writer holding a facts row while it waited for a mark the
    # catch-up held deadlocked with it. A first time found already set costs a needless
    # recompute, which is rare: this process remembers the times it saw set.
    marked = session.info.setdefault(_MARKED, set())
    fresh = (touched | {cid for cid, _, _ in firsts}) - marked
    if fresh:
        mark_pending(connection, sorted(fresh))
        marked |= fresh
    settled = session.info.setdefault(_SETTLING, set())
    for cid, column, at in firsts:
        current = getattr(ConversationFacts, column)
        connection.execute(
            update(ConversationFacts)
            .where(ConversationFacts.conversation_id == cid, current.is_(None) | (current > at))
            .values({column: at}))
        settled.add((cid, column))


def adding_upsert(table: Table, keys: Sequence[str], sums: Sequence[str]) -> TextClause:
    """INSERT of a row, or on a clash of `keys` the row's `sums` added to the stored ones.

    Written out rather than with SQLAlchemy's dialect `insert().on_conflict_do_update()`:
    SQLAlchemy never caches those constructs, so every turn compiled its mark again (~4 %
    of the web process's CPU at 50 customers in the load benchmark's profile). This text
    is the same on SQLite (3.24+) and PostgreSQL, and a text statement is compiled once."""
    def listed(names: Sequence[str]) -> str:
        return ", ".join(f'"{n}"' for n in names)

    columns = [*keys, *sums]
    return text(
        f"INSERT INTO {table.name} ({listed(columns)}) "
        f"VALUES ({', '.join(f':{c}' for c in columns)}) "
        f"ON CONFLICT ({listed(keys)}) DO UPDATE SET "
        + ", ".join(f'"{c}" = {table.name}."{c}" + excluded."{c}"' for c in sums)
    ).bindparams(*(bindparam(c, type_=table.c[c].type) for c in columns))


_MARK = adding_upsert(cast(Table, ReportPending.__table__), ["conversation_id"], ["version"])
_ADD_TO_DAYS = adding_upsert(cast(Table, ReportDay.__table__), ["slice", "day", "kind", "key"],
                             ["n", "conversations", "handed_off", "value_sum", "value_count"])


def mark_pending(connection: Connection, ids: Sequence[str]) -> None:
    """Marks conversations for the next catch-up (a new mark or a higher version)."""
    connection.execute(_MARK, [{"conversation_id": cid, "version": 1} for cid in ids])


def catch_up(connection: Connection, limit: int = CHUNK) -> int:
    """Recomputes up to `limit` marked conversations; returns how many. Marks made after
    this read (a higher version) stay for the next catch-up. On PostgreSQL two instances
    skip each other's rows, so a conversation is never recomputed twice at once (both
    would move the day sums by the same difference)."""
    query = select(ReportPending.conversation_id, ReportPending.version).order_by(
        ReportPending.conversation_id).limit(limit)
    if connection.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    pending = list(connection.execute(query))
    if not pending:
        return 0
    recompute(connection, [cid for cid, _ in pending])
    for cid, version in pending:
        connection.execute(delete(ReportPending).where(
            ReportPending.conversation_id == cid, ReportPending.version == version))
    return len(pending)
