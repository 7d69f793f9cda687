"""Mid-form: stop leaves, a question or a person steps aside, card numbers get a warning."""

from __future__ import annotations

import pytest

from actions.forms import ActionStopFlow
from actions.handoff import ActionHandoffToHuman
from actions.orders import ValidateChangeAddressForm, ValidateOrderStatusForm
from shop.sql import SqlStoreBackend
from tests.shop.harness import handoff_of, run, store_backend, texts, tracker

__all__ = ["store_backend"]


@pytest.mark.parametrize(("text", "intent"), [
    ("never mind", "stop"), ("get me a human", "human_handoff"),
    ("how long does delivery take?", "delivery_period"),
])
async def test_a_digression_fills_nothing_so_the_form_steps_aside(
    store_backend: SqlStoreBackend, text: str, intent: str,
) -> None:
    slots, messages = await run(ValidateOrderStatusForm(), tracker(
        text, intent, form="order_status_form", requested_slot="order_number"))
    assert "order_number" not in slots and "failed_tries" not in slots and not messages


async def test_free_text_slots_take_questions_as_answers_but_not_stop(
    store_backend: SqlStoreBackend,
) -> None:
    kwargs = dict(form="change_address_form", requested_slot="new_address",
                  order_number="A10006", verified_orders={"A10006": "packed"})
    slots, _ = await run(ValidateChangeAddressForm(), tracker("stop", "stop", **kwargs))
    assert "new_address" not in slots
    slots, _ = await run(ValidateChangeAddressForm(), tracker(
        "Herzl St 7, Haifa 3303107", "delivery_options", **kwargs))
    assert slots["new_address"] == "Herzl St 7, Haifa 3303107"


async def test_stop_leaves_the_form_and_clears_its_answers() -> None:
    slots, messages = await run(ActionStopFlow(), tracker(
        "stop", "stop", form="change_address_form", new_address="Herzl St 7, Haifa"))
    assert slots["new_address"] is None and slots["requested_slot"] is None
    assert "changed nothing" in texts(messages)


async def test_a_person_mid_form_gets_the_collected_details() -> None:
    slots, messages = await run(ActionHandoffToHuman(), tracker(
        "talk to a person", "human_handoff", form="payment_issue_form", order_number="A10001",
        verified_orders={"A10001": "shipped"}, payment_amount="64.50 USD", contact="x@example.com"))
    handoff = handoff_of(messages)
    assert handoff["reason"] == "customer_request" and handoff["flow"] == "payment_issue_form"
    assert handoff["collected"] == {"order_number": "A10001", "payment_amount": "64.50 USD",
                                    "verified": True}
    assert slots["requested_slot"] is None


@pytest.mark.parametrize(("text", "intent", "slot", "expected"), [
    ("visa card", "payment_methods", "payment_method", "card"),
    ("I paid with PayPal", "payment_methods", "payment_method", "paypal"),
    ("A10001", "track_order", "order_number", "A10001"),
])
async def test_a_message_holding_the_value_is_an_answer_whatever_nlu_thought(
    store_backend: SqlStoreBackend, text: str, intent: str, slot: str, expected: str,
) -> None:
    from actions.billing import ValidatePaymentIssueForm

    form = ValidatePaymentIssueForm() if slot.startswith("payment") else ValidateOrderStatusForm()
    kwargs = {"form": "payment_issue_form" if slot.startswith("payment") else "order_status_form",
              "requested_slot": slot}
    if slot.startswith("payment"):
        kwargs |= {"order_number": "A10001", "verified_orders": {"A10001": "shipped"}}
    slots, _ = await run(form, tracker(text, intent, **kwargs))
    assert slots[slot] == expected
    slots, _ = await run(form, tracker("stop", "stop", **kwargs))
    assert slot not in slots  # stop still wins
