"""Service-level targets and their breaches, counted for handoffs made while the team is open.

A handoff outside business hours has no target: nobody was there to answer, and counting
it would punish the night rather than the team (docs/metrics.md, "Service levels").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from handoff.business_hours import BusinessHours


@dataclass(frozen=True)
class ServiceLevels:
    """Targets in seconds: the first agent reply after a handoff, and the resolution."""

    first_reply_seconds: int = 120
    resolution_seconds: int = 24 * 3600


@dataclass(frozen=True)
class HandoffTimes:
    """One handoff: when, and seconds from it to the first agent reply and to the
    resolution (None: that never happened)."""

    handed_off_at: datetime
    first_reply: float | None
    resolution: float | None


def breaches(levels: ServiceLevels, hours: BusinessHours,
             handoffs: list[HandoffTimes]) -> list[dict[str, object]]:
    """Per target: how many handoffs it applied to, met and breached (no reply at all breaches)."""
    in_hours = [h for h in handoffs if hours.is_open(h.handed_off_at)]
    rows: list[dict[str, object]] = []
    for name, target, clock in (
        ("first_agent_reply", levels.first_reply_seconds, lambda h: h.first_reply),
        ("resolution", levels.resolution_seconds, lambda h: h.resolution),
    ):
        met = sum(1 for h in in_hours if (seconds := clock(h)) is not None and seconds <= target)
        rows.append({"target": name, "target_seconds": target, "applicable": len(in_hours),
                     "met": met, "breached": len(in_hours) - met})
    return rows
