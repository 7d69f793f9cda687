from __future__ import annotations

from datetime import datetime, timezone

import pytest

from handoff.business_hours import BusinessHours, BusinessHoursError

HOURS = BusinessHours.parse("mon-fri 08:00-20:00; sat 09:00-14:00", "Europe/Berlin")


@pytest.mark.parametrize(
    ("utc", "open_"),
    [
        ("2026-11-23T07:30:00", True),   # Monday 08:30 Berlin
        ("2026-11-23T06:59:00", False),  # Monday 07:59 Berlin
        ("2026-11-23T19:00:00", False),  # Monday 20:00 Berlin: closing time is exclusive
        ("2026-11-28T12:00:00", True),   # Saturday 13:00
        ("2026-11-28T13:00:00", False),  # Saturday 14:00
        ("2026-11-29T10:00:00", False),  # Sunday
        ("2026-07-06T06:30:00", True),   # Monday 08:30 in summer time (UTC+2)
    ],
)
def test_open_in_the_stores_time_zone(utc: str, open_: bool) -> None:
    moment = datetime.fromisoformat(utc).replace(tzinfo=timezone.utc)
    assert HOURS.is_open(moment) is open_


def test_all_day_and_wrapping_ranges() -> None:
    hours = BusinessHours.parse("sat-mon 00:00-24:00", "UTC")
    sunday = datetime(2026, 11, 29, 23, 59, tzinfo=timezone.utc)
    assert hours.is_open(sunday)
    assert not hours.is_open(datetime(2026, 11, 25, 12, tzinfo=timezone.utc))  # Wednesday


@pytest.mark.parametrize(
    ("text", "zone", "words"),
    [
        ("mon-fri 8-20", "UTC", "cannot read"),
        ("xyz 08:00-10:00", "UTC", "cannot read"),
        ("mon 25:00-26:00", "UTC", "impossible"),
        ("mon 10:00-09:00", "UTC", "closes before"),
        ("mon 08:00-20:00", "Mars/Olympus", "time zone"),
    ],
)
def test_bad_hours_say_what_is_wrong(text: str, zone: str, words: str) -> None:
    with pytest.raises(BusinessHoursError, match=words):
        BusinessHours.parse(text, zone)
