"""What the flows record for the customer's contact record: the proof of identity (only after
the store confirmed it) and the orders and invoices asked about."""

from __future__ import annotations

from typing import Any

from actions.billing import ActionSubmitInvoiceForm
from actions.orders import ActionSubmitOrderStatusForm, ValidateOrderStatusForm
from shop.sql import SqlStoreBackend
from tests.actions.test_billing_flows import invoice_env
from tests.shop.harness import ANNA, run, store_backend, tracker
from tests.shop.harness import records_of as all_records_of

__all__ = ["store_backend", "invoice_env"]


def records_of(messages: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The contact-record facts; a flow's start and end are the reports' (tests/actions/test_flow_records.py)."""
    return [(kind, data) for kind, data in all_records_of(messages) if not kind.startswith("flow_")]


FORM = "order_status_form"


async def test_a_matching_pair_records_the_proven_email(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ValidateOrderStatusForm(), tracker(
        ANNA.upper(), form=FORM, requested_slot="contact", order_number="A10001"))
    assert records_of(messages) == [("identity_verified", {"order": "A10001", "email": ANNA})]


async def test_a_matching_phone_records_the_phone(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ValidateOrderStatusForm(), tracker(
        "+1 (415) 555-0101", form=FORM, requested_slot="contact", order_number="A10001"))
    assert records_of(messages) == [("identity_verified", {"order": "A10001", "phone": "+14155550101"})]


async def test_a_wrong_pair_records_nothing(store_backend: SqlStoreBackend) -> None:
    for contact in ("someone@example.com", "noa.levi@example.co.il"):  # a stranger; another customer
        slots, messages = await run(ValidateOrderStatusForm(), tracker(
            contact, form=FORM, requested_slot="contact", order_number="A10001"))
        assert "verified_orders" not in slots
        assert records_of(messages) == []


async def test_the_order_looked_at_is_recorded_after_the_answer(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(
        order_number="A10001", contact=ANNA, verified_orders={"A10001": "shipped"}))
    assert records_of(messages) == [("order_viewed", {"order": "A10001"})]
    assert messages[-1].get("custom")  # after what the customer sees


async def test_an_unverified_order_records_nothing(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(order_number="A10001"))
    assert records_of(messages) == []  # handed off instead


async def test_the_invoice_link_sent_is_recorded(invoice_env: None) -> None:
    _, messages = await run(ActionSubmitInvoiceForm(), tracker(
        order_number="A10003", verified_orders={"A10003": "delivered"}))
    records = records_of(messages)
    assert [t for t, _ in records] == ["invoice_link_sent", "invoice_requested"]
    assert records[0][1]["order"] == "A10003" and records[0][1]["invoice"].strip()
