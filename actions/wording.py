"""How store values read to a customer: money, days and order lines."""

from __future__ import annotations

from datetime import date, datetime

from babel.numbers import format_currency

from shop.records import OrderDetails


def money(cents: int, currency: str) -> str:
    return format_currency(cents / 100, currency, locale="en")


def day(value: date | datetime | None) -> str:
    if value is None:
        return "an unknown date"
    return f"{value:%A}, {value.day} {value:%B %Y}"



def items(order: OrderDetails, numbered: bool = False) -> str:
    """The order's items, one a line, with prices in the order's currency."""
    rows = [f"{item.name} × {item.quantity} — {money(item.quantity * item.unit_price_cents, order.currency)}"
            for item in order.lines]
    if numbered:
        return "\n".join(f"{i}. {row}" for i, row in enumerate(rows, 1))
    return "\n".join(f"- {row}" for row in rows)
