"""The customer's language comes from their script; the channel's hint settles ru/uk."""

from __future__ import annotations

import pytest

from knowledge.language import customer_language, detect_language


@pytest.mark.parametrize(
    ("text", "language"),
    [("where is my order", "en"), ("איפה ההזמנה שלי", "he"), ("أين طلبي", "ar"),
     ("где мой заказ", "ru"), ("де моє замовлення", "uk"), ("12345 !!", None)],
)
def test_detects_script(text: str, language: str | None) -> None:
    assert detect_language(text) == language


def test_hint_settles_cyrillic_and_fills_in_for_no_letters() -> None:
    assert customer_language("как дела", "uk") == "uk"
    assert customer_language("12345", "he-IL") == "he"
    assert customer_language("where is my order", "he") == "en"  # they wrote English
    assert customer_language("12345", "xx") == "en"
