from __future__ import annotations

import pytest

from handoff.conversations.redaction import luhn_valid, redact_card_numbers


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card 4242 4242 4242 4242 was declined", "my card •••• 4242 was declined"),
        ("card:4111-1111-1111-1111.", "card:•••• 1111."),
        ("amex 378282246310005 ok", "amex •••• 0005 ok"),
        ("two: 5555555555554444 and 4012888888881881", "two: •••• 4444 and •••• 1881"),
    ],
)
def test_card_numbers_are_masked(text: str, expected: str) -> None:
    assert redact_card_numbers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 100234 has not arrived",
        "call me on +49 30 1234 5678",
        "tracking 1Z999AA10123456784",
        "4242 4242 4242 4241 fails the check",  # not Luhn-valid
        "1234567890123",  # 13 digits, not Luhn-valid
    ],
)
def test_other_numbers_are_left_alone(text: str) -> None:
    assert redact_card_numbers(text) == text


def test_luhn() -> None:
    assert luhn_valid("4242424242424242")
    assert not luhn_valid("4242424242424241")
