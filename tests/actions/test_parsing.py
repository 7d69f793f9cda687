"""Values as customers type them are read right, and nothing a customer types raises."""

from __future__ import annotations

from datetime import date

import pytest

from actions import parsing
from actions.parsing import Money

TODAY = date(2026, 11, 23)
NASTY = ["'; DROP TABLE orders; --", "1" * 10000, "🙂🙂🙂", "‮A10001", "שלום עולם", "مرحبا",
         "", "   ", "\x00", "a" * 5000, "${7*7}", "<script>alert(1)</script>", "ＡＢＣ１２３"]


@pytest.mark.parametrize(("text", "number"), [
    ("#A10234", "A10234"), ("# a 10234", "A10234"), ("a-10234", "A10234"),
    ("order number b10001 please", "B10001"), ("הזמנה A10001", "A10001"),
    ("A102345", None), ("10234", None), ("ORD-20931", None), ("A" + "1" * 10000, None),
])
def test_order_numbers_as_customers_type_them(text: str, number: str | None) -> None:
    assert parsing.parse_order_number(text) == number


@pytest.mark.parametrize(("text", "money"), [
    ("1.234,56", Money(123456, None)), ("1,234.56", Money(123456, None)),
    ("₪120", Money(12000, "ILS")), ("$ 12", Money(1200, "USD")), ("12,5 €", Money(1250, "EUR")),
    ("49.90 EUR", Money(4990, "EUR")), ("120 שקל", Money(12000, "ILS")),
    ("1 234,56 грн", Money(123456, "UAH")), ("I paid 30 dollars on 3 May", Money(3000, "USD")),
    ("0", None), ("-5", None), ("- $5", None), ("$-5", None), ("−5 €", None),
    ("1" * 10000, None), ("twelve", None),
])
def test_amounts_in_several_locales(text: str, money: Money | None) -> None:
    assert parsing.parse_amount(text) == money


@pytest.mark.parametrize(("text", "day"), [
    ("yesterday", date(2026, 11, 22)), ("вчера", date(2026, 11, 22)),
    ("вчора", date(2026, 11, 22)), ("אתמול", date(2026, 11, 22)), ("أمس", date(2026, 11, 22)),
    ("the day before yesterday", date(2026, 11, 21)), ("today", TODAY),
    ("3 May", date(2026, 5, 3)), ("03/05/2026", date(2026, 5, 3)), ("2026-05-03", date(2026, 5, 3)),
    ("not a date", None), ("🙂", None),
])
def test_dates_including_relative_ones_in_several_languages(text: str, day: date | None) -> None:
    assert parsing.parse_date(text, TODAY) == day


def test_contacts() -> None:
    assert parsing.parse_contact("it's Anna.K@Example.com") == "anna.k@example.com"
    assert parsing.parse_contact("+972 54-123-4567") == "+972541234567"
    assert parsing.parse_contact("(415) 555 0101") == "4155550101"
    assert parsing.parse_contact("4242 4242 4242 4242") is None  # a card, not a phone
    assert parsing.parse_contact("anna@") is None


def test_yes_no_and_payment_methods() -> None:
    assert parsing.parse_yes_no("Yes please") is True and parsing.parse_yes_no("כן") is True
    assert parsing.parse_yes_no("no") is False and parsing.parse_yes_no("нет") is False
    assert parsing.parse_yes_no("maybe") is None
    assert parsing.parse_payment_method("with my visa") == "card"
    assert parsing.parse_payment_method("PayPal") == "paypal"
    assert parsing.parse_payment_method("•••• 4242") == "card"
    assert parsing.parse_payment_method("העברה בנקאית") == "bank_transfer"
    assert parsing.parse_payment_method("magic beans") is None


def test_card_data_is_recognised_masked_raw_or_as_a_cvv() -> None:
    assert parsing.mentions_card_data("my card •••• 4242")
    assert parsing.mentions_card_data("4242 4242 4242 4242")
    assert parsing.mentions_card_data("the CVV is 123")
    assert not parsing.mentions_card_data("order A10001, 2 items")


def test_free_text_refuses_code_and_extremes() -> None:
    assert parsing.free_text("Herzl St 7, Haifa", min_chars=10, max_chars=200) == "Herzl St 7, Haifa"
    assert parsing.free_text("רחוב הרצל 7, חיפה", min_chars=10, max_chars=200)
    for bad in ["'; DROP TABLE orders; --", "🏠🏠🏠🏠🏠🏠🏠🏠🏠🏠", "1 OR 1=1 --", "x" * 201]:
        assert parsing.free_text(bad, min_chars=10, max_chars=200) is None


@pytest.mark.parametrize("text", NASTY)
def test_no_parser_raises_on_hostile_input(text: str) -> None:
    for parse in (parsing.parse_order_number, parsing.parse_email, parsing.parse_phone,
                  parsing.parse_amount, parsing.parse_yes_no, parsing.parse_payment_method,
                  parsing.mentions_card_data):
        parse(text)
    parsing.parse_date(text, TODAY)
    parsing.free_text(text, min_chars=3, max_chars=200)
