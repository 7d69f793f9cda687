"""Order status, cancel and change-address forms against the seeded demo store."""

from __future__ import annotations

import pytest

from actions.forms import CARD_WARNING
from actions.orders import (
    ActionAskCancelConfirmed,
    ActionSubmitCancelOrderForm,
    ActionSubmitChangeAddressForm,
    ActionSubmitOrderStatusForm,
    ValidateCancelOrderForm,
    ValidateChangeAddressForm,
    ValidateOrderStatusForm,
)
from shop.sql import SqlStoreBackend
from tests.shop.harness import ANNA, handoff_of, run, store_backend, texts, tracker

__all__ = ["store_backend"]
FORM = "order_status_form"


async def test_order_number_as_typed_then_contact_verifies_and_status_shows_tracking(
    store_backend: SqlStoreBackend,
) -> None:
    slots, _ = await run(ValidateOrderStatusForm(), tracker("# a 10001", "track_order", form=FORM,
                                                            requested_slot="order_number"))
    assert slots["order_number"] == "A10001" and slots.get("contact") is None
    slots, messages = await run(ValidateOrderStatusForm(), tracker(
        ANNA.upper(), form=FORM, requested_slot="contact", order_number="A10001"))
    assert slots["verified_orders"] == {"A10001": "shipped"}
    assert slots["requested_slot"] is None  # nothing left to ask
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(
        form=None, order_number="A10001", contact=ANNA, verified_orders=slots["verified_orders"]))
    order = await store_backend.find_order("A10001")
    shipment = order.shipments[0]
    assert shipment.tracking_number in texts(messages) and shipment.carrier in texts(messages)
    assert "Expected delivery" in texts(messages) and handoff_of(messages) is None


async def test_a_wrong_pair_and_an_unknown_order_get_the_same_answer(
    store_backend: SqlStoreBackend,
) -> None:
    answers = []
    for number in ("A10001", "Z99999"):
        slots, messages = await run(ValidateOrderStatusForm(), tracker(
            "someone@example.com", form=FORM, requested_slot="contact", order_number=number,
            sender=f"conv-{number}"))
        assert slots["order_number"] is None and slots["contact"] is None
        assert "verified_orders" not in slots
        answers.append(texts(messages))
    assert answers[0] == answers[1] and "A10001" not in answers[0]


async def test_repeated_wrong_pairs_are_rate_limited_even_with_the_right_contact_after(
    store_backend: SqlStoreBackend,
) -> None:
    for tries in range(3):
        await run(ValidateOrderStatusForm(), tracker(
            "wrong@example.com", form=FORM, requested_slot="contact", order_number="A10001"))
    slots, messages = await run(ValidateOrderStatusForm(), tracker(
        ANNA, form=FORM, requested_slot="contact", order_number="A10001"))
    assert slots["flow_error"] == "too_many_attempts" and "verified_orders" not in slots
    assert "too many" in texts(messages)
    # Another conversation is not blocked by this one's failures.
    slots, _ = await run(ValidateOrderStatusForm(), tracker(
        ANNA, form=FORM, requested_slot="contact", order_number="A10001", sender="other"))
    assert "A10001" in slots["verified_orders"]
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(
        order_number="A10001", flow_error="too_many_attempts"))
    assert handoff_of(messages)["reason"] == "form_failed:order_status_form"


async def test_three_wrong_order_numbers_end_the_form_and_hand_off_with_what_was_collected(
    store_backend: SqlStoreBackend,
) -> None:
    tries = 0.0
    for text in ["'; DROP TABLE orders; --", "1" * 10000, "🙂"]:
        slots, messages = await run(ValidateOrderStatusForm(), tracker(
            text, form=FORM, requested_slot="order_number", failed_tries=tries))
        assert slots["order_number"] is None and texts(messages)
        tries = slots["failed_tries"]
    assert tries == 3.0 and slots["requested_slot"] is None
    _, messages = await run(ActionSubmitOrderStatusForm(), tracker(failed_tries=3.0))
    handoff = handoff_of(messages)
    assert handoff["reason"] == "form_failed:order_status_form"
    assert handoff["collected"] == {}


async def test_switching_to_another_order_of_the_same_customer_rechecks_the_pair(
    store_backend: SqlStoreBackend,
) -> None:
    slots, messages = await run(ValidateOrderStatusForm(), tracker(
        "and what about a10002?", "track_order", form=FORM, requested_slot=None,
        order_number="A10001", contact=ANNA, verified_orders={"A10001": "shipped"}))
    assert slots["order_number"] == "A10002"
    assert slots["verified_orders"] == {"A10001": "shipped", "A10002": "paid"}
    slots, _ = await run(ValidateOrderStatusForm(), tracker(
        "and A10005?", "track_order", form=FORM, order_number="A10001", contact=ANNA,
        verified_orders={"A10001": "shipped"}))
    assert slots["order_number"] is None  # Noa's order: Anna's email does not open it


async def test_cancel_asks_for_a_yes_then_cancels_and_refunds(store_backend: SqlStoreBackend) -> None:
    verified = {"A10002": "paid"}
    slots, _ = await run(ValidateCancelOrderForm(), tracker(
        "cancel A10002", "cancel_order", form="cancel_order_form", order_number="A10002",
        contact=ANNA, verified_orders=verified))
    assert slots["requested_slot"] == "cancel_confirmed"  # contact skipped: already verified
    _, messages = await run(ActionAskCancelConfirmed(), tracker(order_number="A10002"))
    assert "yes or no" in texts(messages)
    slots, messages = await run(ValidateCancelOrderForm(), tracker(
        "maybe", form="cancel_order_form", requested_slot="cancel_confirmed",
        order_number="A10002", verified_orders=verified))
    assert slots["cancel_confirmed"] is None and "yes to cancel" in texts(messages)
    slots, _ = await run(ValidateCancelOrderForm(), tracker(
        "כן", "affirm", form="cancel_order_form", requested_slot="cancel_confirmed",
        order_number="A10002", verified_orders=verified))
    assert slots["cancel_confirmed"] is True
    slots, messages = await run(ActionSubmitCancelOrderForm(), tracker(
        order_number="A10002", verified_orders=verified, cancel_confirmed=True))
    assert "is cancelled" in texts(messages) and "goes back" in texts(messages)
    assert (await store_backend.find_order("A10002")).status == "cancelled"
    assert slots["verified_orders"]["A10002"] == "cancelled"


async def test_cancel_is_not_offered_after_shipping_and_no_means_no(store_backend: SqlStoreBackend) -> None:
    slots, _ = await run(ValidateCancelOrderForm(), tracker(
        ANNA, form="cancel_order_form", requested_slot="contact", order_number="A10001"))
    assert slots["requested_slot"] is None  # no confirmation asked for a shipped order
    _, messages = await run(ActionSubmitCancelOrderForm(), tracker(
        order_number="A10001", verified_orders=slots["verified_orders"]))
    assert "already shipped" in texts(messages)
    _, messages = await run(ActionSubmitCancelOrderForm(), tracker(
        order_number="A10006", verified_orders={"A10006": "packed"}, cancel_confirmed=False))
    assert "haven't changed anything" in texts(messages)
    assert (await store_backend.find_order("A10006")).status == "packed"


@pytest.mark.parametrize("address", ["'; DROP TABLE orders; --", "🏠🏠🏠🏠🏠🏠🏠🏠🏠🏠🏠", "x" * 300,
                                     "nowhere at all", "1" * 10000])
async def test_bad_addresses_get_a_specific_reprompt(store_backend: SqlStoreBackend, address: str) -> None:
    slots, messages = await run(ValidateChangeAddressForm(), tracker(
        address, form="change_address_form", requested_slot="new_address", order_number="A10006",
        verified_orders={"A10006": "packed"}))
    reprompt = texts(messages).lower()
    assert slots["new_address"] is None and ("address" in reprompt or "house number" in reprompt)


async def test_change_address_before_shipping(store_backend: SqlStoreBackend) -> None:
    verified = {"A10006": "packed"}
    slots, _ = await run(ValidateChangeAddressForm(), tracker(
        "רחוב הרצל 7, חיפה 3303107", form="change_address_form", requested_slot="new_address",
        order_number="A10006", verified_orders=verified))
    assert slots["new_address"] == "רחוב הרצל 7, חיפה 3303107"
    _, messages = await run(ActionSubmitChangeAddressForm(), tracker(
        order_number="A10006", verified_orders=verified, new_address=slots["new_address"]))
    assert "will be delivered to" in texts(messages)
    assert (await store_backend.find_order("A10006")).shipping_address == slots["new_address"]
    _, messages = await run(ActionSubmitChangeAddressForm(), tracker(
        order_number="A10001", verified_orders={"A10001": "shipped"}))
    assert "already shipped" in texts(messages)


async def test_card_numbers_in_any_answer_get_a_warning(store_backend: SqlStoreBackend) -> None:
    _, messages = await run(ValidateOrderStatusForm(), tracker(
        "my card is •••• 4242, cvv 123", form=FORM, requested_slot="order_number"))
    assert CARD_WARNING in texts(messages)
