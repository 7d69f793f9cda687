"""Refund flows: request a refund of some items (policy checked), and ask where a refund is."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import parsing
from actions.forms import STOP_INTENTS, StoreFlowAction, StoreFormValidation
from actions.store import store
from actions.wording import day, items, money
from shop.errors import RefundNotAllowed
from shop.models import OrderStatus
from shop.policy import REFUND_WINDOW
from shop.records import OrderDetails

ALL_WORDS = re.compile(r"\b(all|everything|whole order|entire order)\b|הכל|הכול|все|всё|усе|الكل|كل", re.I)


def chosen_lines(text: object, order: OrderDetails) -> list[int] | None:
    """'all', '1 and 3', 'the jacket' -> line ids of the order; None if nothing matches."""
    value = parsing.clean(text)
    if not value or parsing.too_long(value):
        return None
    if ALL_WORDS.search(value):
        return [line.id for line in order.lines]
    positions = {int(n) for n in re.findall(r"(?<!\d)\d{1,2}(?!\d)", value)}
    chosen = [line.id for i, line in enumerate(order.lines, 1) if i in positions]
    if positions and len(chosen) == len(positions):
        return chosen
    words = {w.casefold() for w in re.findall(r"\w{4,}", value)}
    named = [line.id for line in order.lines
             if words & {w.casefold() for w in re.findall(r"\w{4,}", line.name)}]
    return named or None


def refused_text(order: OrderDetails, reason: str) -> str:
    """Why the refund policy refuses, and what the customer can do instead."""
    if reason == "not_delivered" and order.status in ("pending", "paid", "packed"):
        return (f"Order {order.number} hasn't shipped yet, so you can simply cancel it and get "
                "all your money back — just say 'cancel my order'.")
    if reason == "not_delivered" and order.status == OrderStatus.SHIPPED.value:
        return (f"Order {order.number} is still on its way. Once it's delivered you can request a "
                f"refund within {REFUND_WINDOW.days} days.")
    if reason == "not_delivered":
        return f"Order {order.number} is {order.status}; any refund for it is already underway."
    if reason == "window_closed":
        return (f"Order {order.number} was delivered more than {REFUND_WINDOW.days} days ago, "
                "which is outside our refund window. If there's a special reason, ask me for a "
                "person and a colleague will look at it.")
    if reason == "already_refunded":
        return "Those items already have a refund request; ask me where your refund is to see it."
    return "I couldn't find those items on the order."


class ValidateRefundForm(StoreFormValidation):
    """Order, identity, which items and why; only delivered orders get to the items."""

    form = "refund_form"

    asked_while = frozenset({OrderStatus.DELIVERED.value})
    status_dependent = ("refund_items", "refund_reason")

    async def extract_refund_items(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict[str, Any]) -> dict[str, Any]:
        return self.raw_answer(tracker, "refund_items")

    async def validate_refund_items(self, value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        if isinstance(value, list) and all(isinstance(v, int) for v in value):
            return {"refund_items": value}
        order = await (await store()).find_order(tracker.get_slot("order_number"))
        chosen = chosen_lines(value, order)
        if not chosen:
            return self.fail(dispatcher, tracker, "refund_items",
                             f"Please tell me which items by their number in the list (1 to "
                             f"{len(order.lines)}), e.g. '1' or '1 and 3', or say 'all'.")
        refunded = {i for r in order.refunds if r.status != "rejected" for i in r.line_ids}
        if set(chosen) & refunded:
            return self.fail(dispatcher, tracker, "refund_items",
                             "Some of those items already have a refund request. Which other items "
                             "would you like refunded?")
        return {"refund_items": chosen}

    async def extract_refund_reason(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                    domain: dict[str, Any]) -> dict[str, Any]:
        return self.raw_answer(tracker, "refund_reason", STOP_INTENTS)

    async def validate_refund_reason(self, value: Any, dispatcher: CollectingDispatcher,
                                     tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        reason = parsing.free_text(value, min_chars=3, max_chars=500)
        if reason is None:
            return self.fail(dispatcher, tracker, "refund_reason",
                             "Please tell me briefly why, e.g. 'too small', 'arrived damaged' or "
                             "'not what I ordered'.")
        return {"refund_reason": reason}


class ActionAskRefundItems(Action):
    """Lists the order's items, numbered, so the customer can pick."""

    def name(self) -> str:
        return "action_ask_refund_items"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[EventType]:
        order = await (await store()).find_order(tracker.get_slot("order_number"))
        dispatcher.utter_message(text=f"Order {order.number} has:\n{items(order, numbered=True)}\n"
                                      "Which items would you like refunded? Say the numbers or 'all'.")
        return []


class ActionSubmitRefundForm(StoreFlowAction):
    """Creates the refund request if the policy allows, or says why not."""

    form = "refund_form"
    record = "refund_requested"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        backend = await store()
        order = await backend.find_order(order_number)
        try:
            refund = await backend.create_refund_request(
                order_number, list(tracker.get_slot("refund_items") or []),
                tracker.get_slot("refund_reason") or "")
        except RefundNotAllowed as exc:
            dispatcher.utter_message(text=refused_text(order, exc.reason))
            return []
        dispatcher.utter_message(
            text=f"Your refund request {refund.number} for "
            f"{money(refund.amount_cents, refund.currency)} is registered. Please send the items "
            "back with the return label from your order email; once they arrive we refund your "
            "original payment method within 5–10 business days.")
        return []


class ValidateRefundStatusForm(StoreFormValidation):
    """Order number and identity."""

    form = "refund_status_form"


class ActionSubmitRefundStatusForm(StoreFlowAction):
    """Says where each refund of the order stands."""

    form = "refund_status_form"
    record = "refund_status_viewed"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        refunds = await (await store()).refund_status(order_number)
        if not refunds:
            dispatcher.utter_message(text=f"There's no refund on order {order_number}. If you'd "
                                          "like one, just say 'I want a refund'.")
            return []
        meaning = {"requested": "received, waiting for the returned items to be checked",
                   "approved": "approved; the money is on its way (5–10 business days)",
                   "paid": "paid back to your original payment method",
                   "rejected": "declined; the email we sent explains why"}
        lines = [f"- {r.number}: {money(r.amount_cents, r.currency)}, {meaning.get(r.status, r.status)} "
                 f"(last update {day(r.updated_at)})" for r in refunds]
        dispatcher.utter_message(text=f"Refunds on order {order_number}:\n" + "\n".join(lines))
        return []
