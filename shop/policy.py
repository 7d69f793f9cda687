"""The store's rules for changing, cancelling and refunding orders, in one place."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

REFUND_WINDOW = timedelta(days=30)  # after delivery
FAILURES_PER_ORDER = 3  # wrong pairs for one order number ...
FAILURE_WINDOW = timedelta(minutes=15)  # ... within this time lock that order for the requester
FAILURES_PER_REQUESTER = 8  # wrong pairs for any orders within an hour lock the requester
REQUESTER_WINDOW = timedelta(hours=1)

_NOT_DIGITS = re.compile(r"\D")


def phone_digits(phone: str) -> str:
    return _NOT_DIGITS.sub("", phone)


def contact_matches(contact: str, email: str, phone: str | None) -> bool:
    """Whether a typed email or phone is the one on the order (case, spacing, country code aside)."""
    contact = contact.strip()
    if "@" in contact:
        return contact.casefold() == email.casefold()
    typed, known = phone_digits(contact), phone_digits(phone or "")
    # Compare the subscriber part: "+972 54 123 4567" and "054-123-4567" are one phone.
    return len(typed) >= 7 and len(known) >= 7 and typed[-9:] == known[-9:]


def refund_window_closed(delivered_at: datetime | None, now: datetime) -> bool:
    return delivered_at is not None and now - delivered_at > REFUND_WINDOW
