"""What a report covers: a date range in the store's time zone and optional filters.

Every query parameter is checked here, before any SQL runs, so a bad request is a clear
400 and never reaches the database (a read changes nothing either way).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from handoff.http import BadRequest

# A year and a month: enough for "this year versus last December", small enough to stay fast.
MAX_DAYS = 400
DEFAULT_DAYS = 30
CHANNELS = ("widget", "api", "whatsapp", "telegram")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z]{2,4})?$")
_AGENT_ID = re.compile(r"^[0-9a-f]{32}$")
# An intent or article name ("order_status", "shipping-times"); a skill ("language:he").
_NAME = re.compile(r"^[\w.:-]{1,120}$")
KNOWN_PARAMS = {"from", "to", "channel", "language", "agent", "topic", "skill"}


@dataclass(frozen=True)
class ReportRange:
    """Local days first..last (inclusive) in `zone`, plus the slice to look at."""

    first: date
    last: date
    zone: ZoneInfo
    channel: str | None = None
    language: str | None = None
    agent_id: str | None = None
    topic: str | None = None
    skill: str | None = None

    @property
    def start(self) -> datetime:
        """The first instant, in UTC: local midnight of the first day (DST-aware)."""
        return _local_midnight(self.first, self.zone)

    def midnight(self, day: date) -> datetime:
        """When `day` begins in the store's zone, as a naive UTC time (the stored form)."""
        return _local_midnight(day, self.zone).replace(tzinfo=None)

    @property
    def end(self) -> datetime:
        """The instant after the last day, in UTC (exclusive)."""
        return _local_midnight(self.last + timedelta(days=1), self.zone)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def filters(self) -> dict[str, str | None]:
        return {"from": self.first.isoformat(), "to": self.last.isoformat(),
                "timezone": self.zone.key, "channel": self.channel,
                "language": self.language, "agent": self.agent_id, "topic": self.topic,
                "skill": self.skill}


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(timezone.utc)


def _day(query: Mapping[str, str], key: str) -> date | None:
    raw = query.get(key)
    if raw is None or raw == "":
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"'{key}' must be a date written YYYY-MM-DD, not {raw[:40]!r}") from None


def parse_range(query: Mapping[str, str], zone: ZoneInfo, today: date) -> ReportRange:
    """The range and filters a request asks for; BadRequest names the parameter that is wrong."""
    unknown = sorted(set(query) - KNOWN_PARAMS)
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0][:40]!r}; use {', '.join(sorted(KNOWN_PARAMS))}")
    last = _day(query, "to") or today
    first = _day(query, "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise BadRequest(f"'from' ({first}) is after 'to' ({last})")
    if (last - first).days + 1 > MAX_DAYS:
        raise BadRequest(f"a report covers at most {MAX_DAYS} days; this asks for "
                         f"{(last - first).days + 1}")
    channel = query.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise BadRequest(f"unknown channel {channel[:40]!r}; use one of {', '.join(CHANNELS)}")
    language = query.get("language") or None
    if language is not None and not _LANGUAGE.match(language):
        raise BadRequest("'language' must be a language code such as 'en' or 'pt-BR'")
    agent_id = query.get("agent") or None
    if agent_id is not None and not _AGENT_ID.match(agent_id):
        raise BadRequest("'agent' must be an agent id (32 hexadecimal characters)")
    topic, skill = _name(query, "topic", "an intent or article name such as 'order_status'"), \
        _name(query, "skill", "a skill such as 'language:he'")
    return ReportRange(first, last, zone, channel, language, agent_id, topic, skill)


def _name(query: Mapping[str, str], key: str, example: str) -> str | None:
    """A topic or skill as written; whether any conversation or agent has it is the API's check."""
    raw = query.get(key) or None
    if raw is not None and not _NAME.match(raw):
        raise BadRequest(f"'{key}' must be {example} (letters, digits, _ . : -), "
                         f"not {raw[:40]!r}")
    return raw
