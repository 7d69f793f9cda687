"""Order flows: where is my order, cancel it, send it somewhere else (only before it ships)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import parsing
from actions.forms import (
    STOP_INTENTS,
    StoreFlowAction,
    StoreFormValidation,
    verified_orders,
)
from actions.store import store
from actions.wording import day, items, money
from shop.errors import OrderNotChangeable
from shop.models import CHANGEABLE, OrderStatus
from shop.records import OrderDetails

CHANGEABLE_STATUSES = frozenset(status.value for status in CHANGEABLE)


def status_text(order: OrderDetails) -> str:
    """Where the order is, with carrier, tracking and ETA once it has shipped."""
    placed = day(order.placed_at)
    if order.status == OrderStatus.PENDING.value:
        return f"Order {order.number} (placed {placed}) is waiting for the payment to be confirmed."
    if order.status == OrderStatus.PAID.value:
        return f"Order {order.number} is paid and being prepared for shipping."
    if order.status == OrderStatus.PACKED.value:
        return f"Order {order.number} is packed and will be handed to the carrier shortly."
    if order.status == OrderStatus.CANCELLED.value:
        return f"Order {order.number} was cancelled. " + refunds_text(order)
    shipment = order.shipments[-1] if order.shipments else None
    if shipment is None:
        return f"Order {order.number} is {order.status}."
    tracking = (f"{shipment.carrier}, tracking number {shipment.tracking_number} "
                f"({shipment.tracking_url})")
    if order.status == OrderStatus.RETURNED.value:
        return f"Order {order.number} was returned to us. " + refunds_text(order)
    if shipment.delivered_at:
        return f"Order {order.number} was delivered on {day(shipment.delivered_at)} by {tracking}."
    text = f"Order {order.number} is on its way with {tracking}."
    if shipment.events:
        last = shipment.events[-1]
        text += f"\nLatest update: {last.description} ({last.location}, {day(last.at)})."
    if shipment.eta:
        text += f"\nExpected delivery: {day(shipment.eta)}."
    return text


def refunds_text(order: OrderDetails) -> str:
    if not order.refunds:
        return "No payment was taken, so there's nothing to refund."
    refund = order.refunds[-1]
    return f"Refund {refund.number} of {money(refund.amount_cents, refund.currency)} is {refund.status}."


def not_changeable_text(order_number: str, status: str, what: str) -> str:
    """Why an order can't be cancelled or redirected any more, and what the customer can do."""
    if status in (OrderStatus.SHIPPED.value, OrderStatus.DELIVERED.value):
        return (f"Order {order_number} has already {'shipped' if status == 'shipped' else 'been delivered'}, "
                f"so I can't {what} any more. Once it's delivered you can return it within 30 days "
                "for a refund — just ask me for a refund.")
    return f"Order {order_number} is {status}, so there's nothing to {what}."


def with_status(tracker: Tracker, order: OrderDetails) -> SlotSet:
    return SlotSet("verified_orders", {**verified_orders(tracker), order.number: order.status})


class ValidateOrderStatusForm(StoreFormValidation):
    """Order number and proof of identity, nothing more."""

    form = "order_status_form"


class ActionSubmitOrderStatusForm(StoreFlowAction):
    """Tells a verified customer where the order is."""

    form = "order_status_form"
    record = "order_viewed"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        order = await (await store()).find_order(order_number)
        dispatcher.utter_message(text=status_text(order) + "\nItems:\n" + items(order))
        return [with_status(tracker, order)]


class ValidateCancelOrderForm(StoreFormValidation):
    """Order, identity, then an explicit yes before anything is cancelled."""

    form = "cancel_order_form"

    asked_while, status_dependent = CHANGEABLE_STATUSES, ("cancel_confirmed",)

    async def extract_cancel_confirmed(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        if self.requested(tracker) != "cancel_confirmed":
            return {}
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        answer = parsing.parse_yes_no(tracker.latest_message.get("text"))
        if answer is None and intent in ("affirm", "deny"):
            answer = intent == "affirm"
        if answer is not None:
            return {"cancel_confirmed": answer}
        return self.raw_answer(tracker, "cancel_confirmed", STOP_INTENTS)

    async def validate_cancel_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"cancel_confirmed": value}
        return self.fail(dispatcher, tracker, "cancel_confirmed",
                         f"Please answer yes to cancel order {tracker.get_slot('order_number')}, "
                         "or no to keep it.")


class ActionAskCancelConfirmed(Action):
    """Shows what would be cancelled and asks for an explicit yes."""

    def name(self) -> str:
        return "action_ask_cancel_confirmed"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        order = await (await store()).find_order(tracker.get_slot("order_number"))
        dispatcher.utter_message(
            text=f"Order {order.number}, placed {day(order.placed_at)}, "
            f"{money(order.total_cents, order.currency)}:\n{items(order)}\n"
            "Do you want me to cancel this whole order? Please answer yes or no.")
        return []


class ActionSubmitCancelOrderForm(StoreFlowAction):
    """Cancels after a yes, only if the order has not shipped."""

    form = "cancel_order_form"
    record = "order_cancel_requested"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        backend = await store()
        order = await backend.find_order(order_number)
        if order.status not in CHANGEABLE_STATUSES:
            dispatcher.utter_message(text=not_changeable_text(order_number, order.status, "cancel it"))
            return [with_status(tracker, order)]
        if tracker.get_slot("cancel_confirmed") is not True:
            dispatcher.utter_message(text=f"Okay, I haven't changed anything: order {order_number} stays as it is.")
            return []
        try:
            order = await backend.cancel_order(order_number)
        except OrderNotChangeable as exc:
            dispatcher.utter_message(text=not_changeable_text(order_number, exc.status, "cancel it"))
            return []
        refund = (f"The {money(order.refunds[-1].amount_cents, order.currency)} you paid goes back to "
                  "your original payment method within 5–10 business days."
                  if order.refunds else "No payment was taken, so nothing will be charged.")
        dispatcher.utter_message(text=f"Done: order {order_number} is cancelled. {refund}")
        return [with_status(tracker, order)]


class ValidateChangeAddressForm(StoreFormValidation):
    """Order, identity, then the new delivery address (only while it can still change)."""

    form = "change_address_form"

    asked_while, status_dependent = CHANGEABLE_STATUSES, ("new_address",)

    async def extract_new_address(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        return self.raw_answer(tracker, "new_address", STOP_INTENTS)

    async def validate_new_address(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        address = parsing.free_text(value, min_chars=10, max_chars=200)
        if address is None or parsing.mentions_card_data(address):
            text = parsing.clean(value)
            why = ("That's too long for an address." if len(text) > 200 else
                   "That doesn't look like an address.")
            return self.fail(dispatcher, tracker, "new_address",
                             f"{why} Please type the full delivery address: street and house "
                             "number, city and postcode, e.g. 'Herzl St 7, Haifa 3303107'.")
        if not any(c.isdigit() for c in address):
            return self.fail(dispatcher, tracker, "new_address",
                             "Please include the house number and postcode, so the courier can find "
                             "you — e.g. 'Herzl St 7, Haifa 3303107'.")
        return {"new_address": address}


class ActionSubmitChangeAddressForm(StoreFlowAction):
    """Redirects an order that has not shipped."""

    form = "change_address_form"
    record = "order_address_change_requested"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        backend = await store()
        order = await backend.find_order(order_number)
        address = tracker.get_slot("new_address")
        if order.status not in CHANGEABLE_STATUSES or not address:
            dispatcher.utter_message(text=not_changeable_text(order_number, order.status,
                                                              "change its address"))
            return [with_status(tracker, order)]
        try:
            order = await backend.change_address(order_number, address)
        except OrderNotChangeable as exc:
            dispatcher.utter_message(text=not_changeable_text(order_number, exc.status,
                                                              "change its address"))
            return []
        dispatcher.utter_message(text=f"Done: order {order_number} will be delivered to "
                                      f"{order.shipping_address}.")
        return [with_status(tracker, order)]
