"""What a customer's message text may be, checked before anything is stored."""

from __future__ import annotations

import re

from handoff.conversations.errors import InvalidMessage
from handoff.conversations.redaction import redact_card_numbers

# C0 control characters other than tab, newline and carriage return: binary, not text.
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_message_text(value: object, max_chars: int) -> str:
    """The text to store (card numbers masked), or InvalidMessage saying what is wrong."""
    if not isinstance(value, str):
        raise InvalidMessage("'text' must be a string")
    if _BINARY.search(value):
        raise InvalidMessage("the message contains binary data, not text")
    text = value.strip()
    if not text:
        raise InvalidMessage("the message is empty")
    if len(text) > max_chars:
        raise InvalidMessage(
            f"the message is {len(text)} characters long; the limit is {max_chars}"
        )
    return redact_card_numbers(text)
