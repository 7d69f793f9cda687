"""Service-level targets and their breaches, counted for handoffs made while the team is open.

A handoff outside business hours has no target: nobody was there to answer, and counting
it would punish the night rather than the team (docs/metrics.md, "Service levels").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from handoff.business_hours import BusinessHours


@dataclass(frozen=True)
class ServiceLevels:
    """Targets in seconds: the first agent reply after a handoff, and the resolution."""

    first_reply_seconds: int = 120
    resolution_seconds: int = 24 * 3600


def open_intervals(hours: BusinessHours, first: date, last: date) -> list[tuple[datetime, datetime]]:
    """The instants (UTC) the team was open on local days first..last,
    merged and sorted: a handoff counts as "in business hours" if it falls in one. Each
    local opening time is converted with the zone's rules of that day, so DST is exact."""
    spans: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        for start, end in hours.intervals.get(day.weekday(), []):
            opens = datetime.combine(day, start, tzinfo=hours.zone)
            closes = (datetime.combine(day, end, tzinfo=hours.zone) if end is not None
                      else datetime.combine(day + timedelta(days=1), time(0), tzinfo=hours.zone))
            spans.append((_utc(opens), _utc(closes)))
        day += timedelta(days=1)
    merged: list[tuple[datetime, datetime]] = []
    for opens, closes in sorted(spans):
        if merged and opens <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], closes))
        elif opens < closes:
            merged.append((opens, closes))
    return merged


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def breach_rows(levels: ServiceLevels, applicable: int, first_reply_met: int,
                resolution_met: int) -> list[dict[str, object]]:
    """Per target: how many handoffs it applied to, met and breached (no reply at all breaches)."""
    return [{"target": name, "target_seconds": target, "applicable": applicable,
             "met": met, "breached": applicable - met}
            for name, target, met in (
                ("first_agent_reply", levels.first_reply_seconds, first_reply_met),
                ("resolution", levels.resolution_seconds, resolution_met))]
