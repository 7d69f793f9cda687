"""Card numbers a customer types never reach storage, Rasa or logs in full."""

from __future__ import annotations

import re
from typing import Any

# 13-19 digits, optionally grouped by single spaces or dashes (how people type cards).
_CANDIDATE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def redact_card_numbers(text: str) -> str:
    """Replaces each Luhn-valid card number with its last four digits, e.g. `•••• 4242`.

    Order numbers and phone numbers are left alone: they are shorter, or fail the Luhn
    check (a random 13+ digit number passes it one time in ten, an accepted cost).
    """

    def mask(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group())
        return f"•••• {digits[-4:]}" if luhn_valid(digits) else match.group()

    return _CANDIDATE.sub(mask, text)


# Keys whose values the service made itself (ids, cursors, tokens): never a card a person
# typed, and masking them breaks them — a conversation id is 32 hex characters, and one in
# ~250 holds a run of 13+ digits that passes the Luhn check (the contact page showed such an
# id masked, so its link led nowhere).
_MADE_HERE = ("_id", "_ids", "_next", "cursor", "token")


def _made_here(key: Any) -> bool:
    return isinstance(key, str) and (key == "id" or key.endswith(_MADE_HERE))


def redact_card_numbers_in(value: Any) -> Any:
    """Card numbers masked in every string of a JSON value (exports and pages built from stored
    data: a second pass, so even rows stored before masking existed never show a card), but
    for the identifiers and cursors the service made itself."""
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, list):
        return [redact_card_numbers_in(item) for item in value]
    if isinstance(value, dict):
        return {key: item if _made_here(key) else redact_card_numbers_in(item)
                for key, item in value.items()}
    return value
