"""The audit trail as admins and managers read it: every export, erasure, edit and retention
purge, with who did it, to which contact and when; filtered by action and date, newest first,
keyset-paginated on the entry's id (monotonic: a page continues exactly where the last ended
even while new entries are written), and as CSV.

Dates are whole days in UTC: `from` 2026-11-01 to `to` 2026-11-30 is every entry written from
2026-11-01 00:00 UTC up to, not including, 2026-12-01 00:00 UTC.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff.agents.models import Agent
from handoff.contacts.models import AuditAction, AuditEntry
from handoff.contacts.service import MAX_CONTACT_ID
from handoff.http import BadRequest
from handoff.pagination import encode_cursor
from handoff.spreadsheet import safe_cell

CSV_BATCH = 500
CSV_COLUMNS = ("id", "at", "action", "actor_id", "actor_name", "contact_id", "details")


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; None: any."""

    action: str | None = None
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    contact_id: str | None = None


def _day(query: Mapping[str, str], key: str) -> date | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        if len(raw) != 10:
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"'{key}' must be a date written YYYY-MM-DD") from None


def parse_filter(query: Mapping[str, str]) -> AuditFilter:
    """The filter from the query string (action, from, to, contact_id), or a 400 saying why."""
    action = query.get("action") or None
    if action is not None and action not in AuditAction.ALL:
        raise BadRequest(f"'action' must be one of {', '.join(AuditAction.ALL)}")
    first, last = _day(query, "from"), _day(query, "to")
    if first and last and first > last:
        raise BadRequest("'from' is after 'to'")
    contact_id = query.get("contact_id")
    if contact_id is not None and not 0 < len(contact_id) <= MAX_CONTACT_ID:
        raise BadRequest("'contact_id' is not a contact id")
    return AuditFilter(
        action=action,
        since=datetime.combine(first, time(), timezone.utc) if first else None,
        until=datetime.combine(last + timedelta(days=1), time(), timezone.utc) if last else None,
        contact_id=contact_id)


def _select(where: AuditFilter) -> Select[Any]:
    query = (select(AuditEntry, Agent.name).outerjoin(Agent, Agent.id == AuditEntry.actor_id)
             .order_by(AuditEntry.id.desc()))
    if where.action is not None:
        query = query.where(AuditEntry.action == where.action)
    if where.since is not None:
        query = query.where(AuditEntry.created_at >= where.since)
    if where.until is not None:
        query = query.where(AuditEntry.created_at < where.until)
    if where.contact_id is not None:
        query = query.where(AuditEntry.contact_id == where.contact_id)
    return query


def audit_json(entry: AuditEntry, actor_name: str | None) -> dict[str, Any]:
    """One entry as the API returns it; actor_id None means the service itself (the purge)."""
    return {"id": entry.id, "action": entry.action, "actor_id": entry.actor_id,
            "actor_name": actor_name, "contact_id": entry.contact_id,
            "details": entry.details, "at": entry.created_at.isoformat()}


class AuditTrail:
    """Reads the audit trail; never writes (the services that act write their own entries)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def page(self, where: AuditFilter, limit: int, after_id: int | None) -> dict[str, Any]:
        """The newest `limit` entries matching, after the entry `after_id` if given."""
        query = _select(where)
        if after_id is not None:
            query = query.where(AuditEntry.id < after_id)
        async with self._sessions() as session:
            rows = (await session.execute(query.limit(limit + 1))).all()
        page = rows[:limit]
        return {"entries": [audit_json(entry, name) for entry, name in page],
                "next_cursor": encode_cursor(page[-1][0].id) if len(rows) > limit else None}

    async def csv_chunks(self, where: AuditFilter) -> AsyncIterator[str]:
        """Every matching entry as CSV text (header first), read CSV_BATCH entries at a time so
        a long trail is never held in memory at once."""
        yield _csv_lines([CSV_COLUMNS])
        after_id: int | None = None
        while True:
            query = _select(where).limit(CSV_BATCH)
            if after_id is not None:
                query = query.where(AuditEntry.id < after_id)
            async with self._sessions() as session:
                rows = (await session.execute(query)).all()
            if not rows:
                return
            yield _csv_lines([_csv_row(audit_json(entry, name)) for entry, name in rows])
            after_id = rows[-1][0].id


def _csv_row(entry: dict[str, Any]) -> list[str]:
    cells = [entry[column] for column in CSV_COLUMNS[:-1]]
    cells.append(json.dumps(entry["details"], ensure_ascii=False, sort_keys=True)
                 if entry["details"] is not None else None)
    return [safe_cell(None if cell is None else str(cell)) for cell in cells]


def _csv_lines(rows: list[Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()
