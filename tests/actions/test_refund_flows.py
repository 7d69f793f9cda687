"""Refund requests (policy window, items) and refund status against the demo store."""

from __future__ import annotations

import pytest

from actions.refunds import (
    ActionAskRefundItems,
    ActionSubmitRefundForm,
    ActionSubmitRefundStatusForm,
    ValidateRefundForm,
)
from shop.sql import SqlStoreBackend
from tests.shop.harness import ANNA, run, store_backend, texts, tracker

__all__ = ["store_backend"]
FORM = "refund_form"


async def test_refund_of_chosen_items_within_the_window(store_backend: SqlStoreBackend) -> None:
    verified = {"A10003": "delivered"}
    _, messages = await run(ActionAskRefundItems(), tracker(order_number="A10003"))
    assert "1." in texts(messages)
    order = await store_backend.find_order("A10003")
    slots, _ = await run(ValidateRefundForm(), tracker(
        "number 1 please", form=FORM, requested_slot="refund_items", order_number="A10003",
        verified_orders=verified))
    assert slots["refund_items"] == [order.lines[0].id]
    slots, messages = await run(ActionSubmitRefundForm(), tracker(
        order_number="A10003", verified_orders=verified, refund_items=slots["refund_items"],
        refund_reason="too small"))
    assert "refund request R" in texts(messages)
    refunds = await store_backend.refund_status("A10003")
    assert refunds[-1].amount_cents == order.lines[0].total_cents
    # The same items cannot be refunded twice.
    slots, messages = await run(ValidateRefundForm(), tracker(
        "1", form=FORM, requested_slot="refund_items", order_number="A10003", verified_orders=verified))
    assert slots["refund_items"] is None and "already" in texts(messages)


@pytest.mark.parametrize(("order", "status", "says"), [
    ("A10004", "delivered", "outside our refund window"),
    ("A10002", "paid", "cancel it"), ("A10001", "shipped", "still on its way"),
])
async def test_refund_policy_refusals_say_why(store_backend: SqlStoreBackend, order: str,
                                               status: str, says: str) -> None:
    details = await store_backend.find_order(order)
    _, messages = await run(ActionSubmitRefundForm(), tracker(
        order_number=order, verified_orders={order: status},
        refund_items=[line.id for line in details.lines], refund_reason="changed my mind"))
    assert says in texts(messages)


async def test_undelivered_orders_skip_the_item_questions(store_backend: SqlStoreBackend) -> None:
    slots, _ = await run(ValidateRefundForm(), tracker(
        ANNA, form=FORM, requested_slot="contact", order_number="A10001"))
    assert slots["requested_slot"] is None


@pytest.mark.parametrize("text", ["'; DROP TABLE orders; --", "9" * 10000, "🙂", "77"])
async def test_bad_item_choices_reprompt(store_backend: SqlStoreBackend, text: str) -> None:
    slots, messages = await run(ValidateRefundForm(), tracker(
        text, form=FORM, requested_slot="refund_items", order_number="A10003",
        verified_orders={"A10003": "delivered"}))
    assert slots["refund_items"] is None and "items" in texts(messages)


async def test_refund_status_lists_refunds_or_says_there_are_none(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ActionSubmitRefundStatusForm(), tracker(
        order_number="A10008", verified_orders={"A10008": "returned"}))
    assert "paid back" in texts(messages)
    _, messages = await run(ActionSubmitRefundStatusForm(), tracker(
        order_number="A10001", verified_orders={"A10001": "shipped"}))
    assert "no refund" in texts(messages)
