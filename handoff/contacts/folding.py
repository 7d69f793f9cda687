"""How contact search compares text: one normal form computed in Python, the same on every
database (SQLite's lower() only folds ASCII, PostgreSQL's depends on the database's locale)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

_PHONE_LIKE = re.compile(r"^\+?[\d\s().-]+$")
MIN_PHONE_DIGITS = 4


def fold(text: str) -> str:
    """NFKC then casefold: 'ПЁТР' finds 'Пётр', 'STRASSE' finds 'Straße', full-width digits
    find ASCII ones. Hebrew and Arabic have no case and pass through unchanged."""
    return unicodedata.normalize("NFKC", text).casefold()


def search_text(name: str | None, email: str | None, phone: str | None,
                tags: Iterable[str] | None) -> str:
    """The stored search column of a contact: its own fields folded, one per line (a query
    never holds a line break, so a match never spans two fields)."""
    parts = [name, email, phone, *(tags or ())]
    return "\n".join(fold(p) for p in parts if p)


def phone_digits(query: str) -> str | None:
    """The digits to look for when the query is written like a phone number ('054-123 4567',
    '+972 54 123 4567'), else None. A national trunk '0' is dropped so the number is also
    found stored with its country code (972541234567)."""
    if not _PHONE_LIKE.match(query):
        return None
    digits = re.sub(r"\D", "", query).lstrip("0")
    return digits if len(digits) >= MIN_PHONE_DIGITS else None
