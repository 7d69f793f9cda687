"""What every order and billing form shares: the order number, proof of identity, retries.

A form asks for the order number, then the email or phone on the order, and checks the
pair with the store before anything about the order is said. Each wrong value gets its
own re-prompt; the third wrong try in a row (or the store refusing more tries) ends the
form, and its submit action hands the conversation to a person with what was collected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import parsing
from actions.handoff import handoff_payload, record_payload
from actions.store import store
from shop.errors import IdentityNotVerified, StoreUnavailable, TooManyAttempts

MAX_TRIES = 3
DIGRESSION_CONFIDENCE = 0.6
# Intents that, when the text holds no value, mean the customer is doing something else:
# the form steps aside and a rule answers (stop, a person, or a help-centre question).
STOP_INTENTS = frozenset({"stop", "human_handoff"})
DIGRESSION_INTENTS = STOP_INTENTS | frozenset({
    "set_up_shipping_address", "delivery_options", "delivery_period", "place_order",
    "check_cancellation_fee", "payment_methods", "refund_policy", "create_account",
    "edit_account", "delete_account", "switch_account", "recover_password",
    "registration_problems", "newsletter_subscription", "leave_review",
    "contact_customer_service", "greet", "goodbye", "thank", "bot_challenge", "complaint",
})
# How to tell that a message holds a value for a slot, so it is an answer, not a digression.
SLOT_PARSERS: dict[str, Callable[[str], object]] = {
    "order_number": parsing.parse_order_number,
    "contact": parsing.parse_contact,
    "payment_amount": parsing.parse_amount,
    "payment_date": parsing.parse_date,
    "payment_method": parsing.parse_payment_method,
}
SESSION_SLOTS = ("order_number", "contact", "verified_orders")  # kept between flows
FLOW_SLOTS = ("cancel_confirmed", "new_address", "refund_items", "refund_reason", "payment_amount",
              "payment_date", "payment_method", "problem_description")
CARD_WARNING = (
    "For your safety, please never share card numbers or security codes (CVV) in a chat; "
    "I've hidden it and never need it. Your order number and email are enough."
)


def verified_orders(tracker: Tracker) -> dict[str, str]:
    """Order number -> status at verification, for orders this conversation proved are its own."""
    value = tracker.get_slot("verified_orders")
    return dict(value) if isinstance(value, dict) else {}


def is_verified(tracker: Tracker, order_number: str | None) -> bool:
    return bool(order_number) and order_number in verified_orders(tracker)


def intent_of(tracker: Tracker) -> tuple[str, float]:
    intent = tracker.latest_message.get("intent") or {}
    return str(intent.get("name") or ""), float(intent.get("confidence") or 0.0)


def steps_aside(tracker: Tracker, intents: frozenset[str] = DIGRESSION_INTENTS) -> bool:
    """The message is a digression (stop, a person, a question), not an answer to the form."""
    name, confidence = intent_of(tracker)
    return name in intents and confidence >= DIGRESSION_CONFIDENCE


def collected(tracker: Tracker) -> dict[str, Any]:
    """What the customer told us so far, for the person who takes over (never the contact
    unless it was verified, never anything that failed validation)."""
    details = {slot: tracker.get_slot(slot) for slot in ("order_number", *FLOW_SLOTS)}
    details = {k: v for k, v in details.items() if v not in (None, "", [])}
    if is_verified(tracker, tracker.get_slot("order_number")):
        details["verified"] = True
    return details


def reset_flow() -> list[EventType]:
    """Clears the flow's own answers; the verified order stays for the next request."""
    return [SlotSet(slot, None) for slot in FLOW_SLOTS] + [
        SlotSet("failed_tries", 0.0), SlotSet("flow_error", None)]


class StoreFormValidation(FormValidationAction):
    """Validates the order number and contact of a form; subclasses add the flow's slots."""

    form = ""
    asks_contact_for = "this order"

    def name(self) -> str:
        return f"validate_{self.form}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.latest_message.get("text") and parsing.mentions_card_data(
            tracker.latest_message.get("text")
        ):
            dispatcher.utter_message(text=CARD_WARNING)
        events = await super().run(dispatcher, tracker, domain)
        if tracker.active_loop.get("name") != self.form:
            # Rasa validates as the form activates, before the loop is active: the flow starts.
            # (It may validate twice in that turn; the reports count one start per message.)
            dispatcher.utter_message(json_message=record_payload("flow_started", flow=self.form))
        return events

    async def required_slots(
        self, domain_slots: list[str], dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: dict[str, Any],
    ) -> list[str]:
        """All of the form's slots, minus the contact once the order is verified; none after
        three failed tries (the form ends and its submit action hands off)."""
        if (tracker.get_slot("failed_tries") or 0) >= MAX_TRIES or tracker.get_slot("flow_error"):
            return []
        slots = list(domain_slots)
        if is_verified(tracker, tracker.get_slot("order_number")):
            slots = [s for s in slots if s != "contact"]
            slots = self.once_verified(slots, tracker)
        return slots

    # Slots asked only while the verified order has one of these statuses (None: always).
    asked_while: frozenset[str] | None = None
    status_dependent: tuple[str, ...] = ()

    def once_verified(self, slots: list[str], tracker: Tracker) -> list[str]:
        """Drops the flow's questions when the order's status makes them pointless (shipped)."""
        status = verified_orders(tracker).get(tracker.get_slot("order_number"))
        if self.asked_while is None or status in self.asked_while:
            return slots
        return [slot for slot in slots if slot not in self.status_dependent]

    def fail(self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str,
             reprompt: str, **also: Any) -> dict[str, Any]:
        """Re-prompts for a wrong value, counting tries; the third ends the form."""
        tries = int(tracker.get_slot("failed_tries") or 0) + 1
        if tries >= MAX_TRIES:
            dispatcher.utter_message(text=reprompt.split("\n")[0])
        else:
            dispatcher.utter_message(text=reprompt)
        return {slot: None, "failed_tries": float(tries), **also}

    def requested(self, tracker: Tracker) -> str | None:
        return tracker.get_slot("requested_slot")

    def raw_answer(self, tracker: Tracker, slot: str,
                   digressions: frozenset[str] = DIGRESSION_INTENTS) -> dict[str, Any]:
        """The whole message as the requested slot's candidate, unless it is a digression.

        A message that holds a value for the slot is an answer whatever NLU made of it
        ("visa card" reads like a payment-methods question); only stop and a person win.
        """
        if self.requested(tracker) != slot:
            return {}
        text = tracker.latest_message.get("text") or ""
        if steps_aside(tracker, STOP_INTENTS):
            return {}
        holds_value = SLOT_PARSERS.get(slot)
        if steps_aside(tracker, digressions) and not (holds_value and holds_value(text) is not None):
            return {}
        return {slot: text}

    async def extract_order_number(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        number = parsing.parse_order_number(tracker.latest_message.get("text"))
        if number and number != tracker.get_slot("order_number"):
            return {"order_number": number}  # given up front, or switching to another order
        return self.raw_answer(tracker, "order_number")

    async def extract_contact(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> dict[str, Any]:
        text = tracker.latest_message.get("text")
        email = parsing.parse_email(text)
        if email and self.requested(tracker) != "contact" and email != tracker.get_slot("contact"):
            return {"contact": email}
        return self.raw_answer(tracker, "contact")

    async def validate_order_number(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        number = parsing.parse_order_number(value)
        if number is None:
            return self.fail(dispatcher, tracker, "order_number", order_number_reprompt(value))
        if is_verified(tracker, number):
            return {"order_number": number, "failed_tries": 0.0}
        if "contact" in tracker.slots_to_validate():
            return {"order_number": number, "failed_tries": 0.0}  # checked with the contact next
        contact = tracker.get_slot("contact")
        if contact and parsing.parse_contact(contact):
            # The customer gave a contact earlier (for this or another order): check the pair.
            return await self.verify(dispatcher, tracker, number, contact)
        return {"order_number": number, "contact": None, "failed_tries": 0.0}

    async def validate_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker,
        domain: dict[str, Any],
    ) -> dict[str, Any]:
        contact = parsing.parse_contact(value)
        if contact is None:
            return self.fail(dispatcher, tracker, "contact", contact_reprompt(value))
        number = tracker.get_slot("order_number")
        if not parsing.parse_order_number(number) or is_verified(tracker, number):
            return {"contact": contact}  # checked once the number comes (or already was)
        return await self.verify(dispatcher, tracker, number, contact)

    async def verify(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                     number: str, contact: str) -> dict[str, Any]:
        """Checks the pair with the store; a wrong pair says nothing about the order."""
        try:
            order = await (await store()).verify_identity(number, contact, requester=tracker.sender_id)
        except IdentityNotVerified:
            return self.fail(
                dispatcher, tracker, "order_number",
                "I couldn't match that order number with that email or phone. Please check both "
                "(they're in your order confirmation email) — first, what's the order number?",
                contact=None,
            )
        except TooManyAttempts:
            dispatcher.utter_message(
                text="There have been too many unsuccessful attempts for this order, so I can't "
                "check it here for a while. A person from our team can help you verify it.")
            return {"order_number": number, "contact": None, "flow_error": "too_many_attempts"}
        except StoreUnavailable:
            return {"flow_error": "store_unavailable"}
        dispatcher.utter_message(text=f"Thank you, that matches order {number}.")
        # The proof the web service links this chat to the customer's record by (handoff/contacts).
        proof = {"email": contact} if "@" in contact else {"phone": contact}
        dispatcher.utter_message(json_message=record_payload("identity_verified", order=number, **proof))
        return {"order_number": number, "contact": contact, "failed_tries": 0.0,
                "verified_orders": {**verified_orders(tracker), number: order.status}}


def order_number_reprompt(value: Any) -> str:
    """Says what was wrong with what the customer typed as an order number."""
    text = parsing.clean(value)
    shape = "Order numbers look like A10234: one letter and five digits, e.g. #A10234."
    if not text or not any(c.isalnum() for c in text):
        return f"I didn't catch an order number there. {shape} What's yours?"
    if parsing.too_long(text) or any(len(run) > 6 for run in "".join(
            c if c.isdigit() else " " for c in text).split()):
        return f"That's longer than an order number. {shape} Could you check it?"
    if parsing.looks_like_code(text):
        return f"That doesn't look like an order number. {shape}"
    return (f"I couldn't find an order number in that. {shape} You'll find it in your "
            "order confirmation email.")


def contact_reprompt(value: Any) -> str:
    text = parsing.clean(value)
    if "@" in text:
        return ("That email address doesn't look complete (like name@example.com). "
                "Could you type it again?")
    if any(c.isdigit() for c in text):
        return ("That doesn't look like a phone number. Please give the email address or the "
                "phone number (with country code, e.g. +1 415 555 0101) you used for the order.")
    return ("To make sure the order is yours, I need the email address or phone number "
            "you used when ordering.")


class StoreFlowAction(Action):
    """The submit action of a form: hands off after a failed form, else does the flow's work."""

    form = ""
    # What the customer asked about, recorded for their contact record (e.g. order_viewed).
    record = ""

    def name(self) -> str:
        return f"action_submit_{self.form}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        error = tracker.get_slot("flow_error")
        number = tracker.get_slot("order_number")
        if error or (tracker.get_slot("failed_tries") or 0) >= MAX_TRIES or not is_verified(tracker, number):
            return self.hand_off(dispatcher, tracker, error or "too_many_wrong_answers")
        try:
            events = await self.act(dispatcher, tracker, number)
        except StoreUnavailable:
            return self.hand_off(dispatcher, tracker, "store_unavailable")
        if self.record:
            dispatcher.utter_message(json_message=record_payload(self.record, order=number))
        dispatcher.utter_message(json_message=record_payload("flow_completed", flow=self.form))
        return events + reset_flow()

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        """Does the flow's work for a verified order; returns extra events."""
        raise NotImplementedError

    def hand_off(self, dispatcher: CollectingDispatcher, tracker: Tracker, why: str) -> list[EventType]:
        dispatcher.utter_message(
            text="I'm sorry I couldn't sort this out here. I'm connecting you to a person from "
            "our team; they'll see what you've told me, so you won't need to repeat it.")
        dispatcher.utter_message(json_message=handoff_payload(
            f"form_failed:{self.form}", flow=self.form, error=why, collected=collected(tracker)))
        dispatcher.utter_message(json_message=record_payload("flow_abandoned", flow=self.form,
                                                             reason=why))
        return reset_flow()


class ActionStopFlow(Action):
    """'Stop', 'never mind': leaves the current form without doing anything."""

    def name(self) -> str:
        return "action_stop_flow"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if tracker.active_loop.get("name"):
            dispatcher.utter_message(text="No problem, I've stopped there and changed nothing. "
                                          "Is there anything else I can help with?")
            dispatcher.utter_message(json_message=record_payload(
                "flow_abandoned", flow=tracker.active_loop["name"], reason="customer_stopped"))
        else:
            dispatcher.utter_message(text="Okay. Is there anything else I can help with?")
        return [ActiveLoop(None), SlotSet("requested_slot", None), *reset_flow()]
