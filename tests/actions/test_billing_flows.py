"""Invoice links and payment-problem cases, from the form to the web service's download."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web

from actions.billing import ActionSubmitInvoiceForm, ActionSubmitPaymentIssueForm, ValidatePaymentIssueForm
from handoff import invoices
from handoff.appkeys import SETTINGS
from handoff.config import Settings
from shop.models import BillingCase
from shop.sql import SqlStoreBackend
from tests.shop.harness import handoff_of, run, store_backend, texts, tracker

__all__ = ["store_backend"]
FORM = "payment_issue_form"
SECRET = "test-link-secret-0123456789"


@pytest.fixture
def invoice_env(monkeypatch: pytest.MonkeyPatch, store_backend: SqlStoreBackend) -> None:
    monkeypatch.setenv("SUPPORT_LINK_SECRET", SECRET)
    monkeypatch.setenv("SUPPORT_PUBLIC_URL", "https://help.example.com")
    monkeypatch.setenv("SUPPORT_SHOP_DATABASE_URL", str(store_backend.engine.url))


async def test_invoice_link_opens_that_invoice_only(invoice_env: None, aiohttp_client: Any) -> None:
    _, messages = await run(ActionSubmitInvoiceForm(), tracker(
        order_number="A10003", verified_orders={"A10003": "delivered"}))
    link = re.search(r"https://help\.example\.com(/invoices/\S+)", texts(messages))
    assert link and "24 hours" in texts(messages)
    app = web.Application()
    app[SETTINGS] = Settings("sqlite+aiosqlite://", "http://r", "t", "http://a", link_secret=SECRET)
    app.add_routes(invoices.routes)
    client = await aiohttp_client(app)
    page = await client.get(link.group(1))
    body = await page.text()
    assert page.status == 200 and "A10003" in body and "Anna Kowalski" in body
    assert page.headers["Cache-Control"] == "private, no-store"
    for bad in [link.group(1)[:-3] + "xyz", "/invoices/" + "a" * 5000, "/invoices/%F0%9F%99%82"]:
        refused = await client.get(bad)
        assert refused.status == 404 and "not valid" in await refused.text()


async def test_no_invoice_before_payment(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitInvoiceForm(), tracker(
        order_number="A10005", verified_orders={"A10005": "pending"}))
    assert "no invoice yet" in texts(messages)


async def test_unverified_order_never_gets_a_link(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitInvoiceForm(), tracker(order_number="A10003"))
    assert "/invoices/" not in texts(messages) and handoff_of(messages)


@pytest.mark.parametrize(("slot", "text", "value"), [
    ("payment_amount", "1.234,56 €", "1234.56 EUR"), ("payment_amount", "₪120", "120.00 ILS"),
    ("payment_method", "paid with paypal", "paypal"),
    ("problem_description", "charged twice for one order", "charged twice for one order"),
])
async def test_payment_answers_are_read(store_backend: SqlStoreBackend, slot: str, text: str, value: str) -> None:
    slots, _ = await run(ValidatePaymentIssueForm(), tracker(
        text, form=FORM, requested_slot=slot, order_number="A10001",
        verified_orders={"A10001": "shipped"}))
    assert slots[slot] == value


async def test_relative_payment_date_and_future_dates(store_backend: SqlStoreBackend) -> None:
    slots, _ = await run(ValidatePaymentIssueForm(), tracker(
        "вчера", form=FORM, requested_slot="payment_date", order_number="A10001",
        verified_orders={"A10001": "shipped"}))
    assert slots["payment_date"]
    slots, messages = await run(ValidatePaymentIssueForm(), tracker(
        "2099-01-01", form=FORM, requested_slot="payment_date", order_number="A10001",
        verified_orders={"A10001": "shipped"}))
    assert slots["payment_date"] is None and "future" in texts(messages)


@pytest.mark.parametrize(("slot", "text"), [
    (slot, text)
    for slot in ("payment_amount", "payment_date", "payment_method", "problem_description")
    for text in ("'; DROP TABLE orders; --", "9" * 10000, "🙂🙂", "‏שלום‏")
    if (slot, text) != ("problem_description", "‏שלום‏")  # a valid (short) description
])
async def test_every_payment_slot_reprompts_on_bad_input(
    store_backend: SqlStoreBackend, slot: str, text: str,
) -> None:
    slots, messages = await run(ValidatePaymentIssueForm(), tracker(
        text, form=FORM, requested_slot=slot, order_number="A10001",
        verified_orders={"A10001": "shipped"}))
    assert slots[slot] is None and texts(messages)


async def test_payment_problem_opens_a_billing_case(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitPaymentIssueForm(), tracker(
        order_number="A10001", verified_orders={"A10001": "shipped"}, payment_amount="64.50 USD",
        payment_date="2026-11-20", payment_method="card", problem_description="charged twice"))
    number = re.search(r"billing case (BC\d+)", texts(messages))
    assert number and "$64.50" in texts(messages)
    async with store_backend._sessions() as session:  # noqa: SLF001 - checking what was stored
        from sqlalchemy import select

        case = (await session.scalars(select(BillingCase))).one()
    assert (case.number, case.amount_cents, case.currency, case.method) == (
        number.group(1), 6450, "USD", "card")
