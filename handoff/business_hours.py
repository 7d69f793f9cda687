"""When the support team works: per weekday opening times in the store's time zone.

Written as `SUPPORT_BUSINESS_HOURS="mon-fri 08:00-20:00; sat 09:00-14:00"` with
`SUPPORT_TIMEZONE=Europe/Berlin`; a day not named is closed. The default is always open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALWAYS_OPEN = "mon-sun 00:00-24:00"
_PART = re.compile(r"^(\w{3})(?:-(\w{3}))?\s+(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


class BusinessHoursError(ValueError):
    """The hours cannot be read; the message quotes the part that is wrong."""


@dataclass(frozen=True)
class BusinessHours:
    """Opening intervals per weekday (0 = Monday), in one time zone."""

    intervals: dict[int, list[tuple[time, time | None]]]
    zone: ZoneInfo
    text: str

    @classmethod
    def parse(cls, text: str, zone_name: str) -> BusinessHours:
        try:
            zone = ZoneInfo(zone_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise BusinessHoursError(f"unknown time zone {zone_name!r}") from None
        intervals: dict[int, list[tuple[time, time | None]]] = {}
        for part in filter(None, (p.strip().lower() for p in text.split(";"))):
            match = _PART.match(part)
            if not match or match.group(1) not in DAYS or (match.group(2) or "mon") not in DAYS:
                raise BusinessHoursError(f"cannot read {part!r}: write e.g. 'mon-fri 08:00-20:00'")
            first = DAYS.index(match.group(1))
            last = DAYS.index(match.group(2)) if match.group(2) else first
            h1, m1, h2, m2 = (int(match.group(i)) for i in range(3, 7))
            if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
                raise BusinessHoursError(f"impossible time in {part!r}")
            start, end = time(h1, m1), (None if h2 == 24 else time(h2, m2))
            if end is not None and end <= start:
                raise BusinessHoursError(f"{part!r} closes before it opens")
            for day in range(first, last + 1) if first <= last else [*range(first, 7), *range(0, last + 1)]:
                intervals.setdefault(day, []).append((start, end))
        return cls(intervals, zone, text)

    def is_open(self, moment: datetime) -> bool:
        local = moment.astimezone(self.zone)
        now = local.time()
        return any(
            start <= now and (end is None or now < end)
            for start, end in self.intervals.get(local.weekday(), [])
        )
