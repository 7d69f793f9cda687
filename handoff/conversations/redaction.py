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


def redact_card_numbers_in(value: Any) -> Any:
    """Card numbers masked in every string of a JSON value (exports and pages built from stored
    data: a second pass, so even rows stored before masking existed never show a card)."""
    if isinstance(value, str):
        return redact_card_numbers(value)
    if isinstance(value, list):
        return [redact_card_numbers_in(item) for item in value]
    if isinstance(value, dict):
        return {key: redact_card_numbers_in(item) for key, item in value.items()}
    return value
