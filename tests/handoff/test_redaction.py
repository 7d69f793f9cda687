from __future__ import annotations

import pytest

from handoff.conversations.redaction import luhn_valid, redact_card_numbers, redact_card_numbers_in


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


def test_identifiers_the_service_made_are_never_masked() -> None:
    """Found by a flaky contact-page test: this conversation id holds 6444890872066, 13 digits
    that pass the Luhn check, and the page showed it as '9fd517c8c•••• 2066ef1a52f3ea'."""
    record = {"id": "9fd517c8c6444890872066ef1a52f3ea", "text": "card 4242 4242 4242 4242",
              "conversations": [{"id": "9fd517c8c6444890872066ef1a52f3ea",
                                 "contact_id": "9fd517c8c6444890872066ef1a52f3ea",
                                 "preview": "paid with 4242-4242-4242-4242"}],
              "conversations_next": "6444890872066", "data": {"note": "6444890872066"},
              "paid": "6444890872066"}
    assert redact_card_numbers_in(record) == {
        "id": "9fd517c8c6444890872066ef1a52f3ea", "text": "card •••• 4242",
        "conversations": [{"id": "9fd517c8c6444890872066ef1a52f3ea",
                           "contact_id": "9fd517c8c6444890872066ef1a52f3ea",
                           "preview": "paid with •••• 4242"}],
        "conversations_next": "6444890872066", "data": {"note": "•••• 2066"},
        "paid": "•••• 2066"}  # free text under a key that merely ends in "id"
