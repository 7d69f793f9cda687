"""The forms' questions, one action per slot (Rasa runs `action_ask_<slot>` to ask for it).

Actions rather than domain responses because `rasa data validate --fail-on-warnings`
counts a response used only by a form as unused.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher


class AskAction(Action):
    """Asks for one slot; the question may name the order being handled."""

    slot = ""
    question = ""

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        dispatcher.utter_message(
            text=self.question.format(order_number=tracker.get_slot("order_number") or "your order"))
        return []


class AskOrderNumber(AskAction):
    slot = "order_number"
    question = "What's the order number? It's in your confirmation email and looks like A10234."


class AskContact(AskAction):
    slot = "contact"
    question = ("To make sure order {order_number} is yours: what's the email address or phone "
                "number you used when ordering?")


class AskNewAddress(AskAction):
    slot = "new_address"
    question = ("What's the new delivery address for order {order_number}? Please include street "
                "and house number, city and postcode.")


class AskPaymentAmount(AskAction):
    slot = "payment_amount"
    question = "How much were you charged? For example 49.90, €49,90 or ₪120."


class AskPaymentDate(AskAction):
    slot = "payment_date"
    question = "When did the payment happen? For example 'yesterday' or '3 May'."


class AskPaymentMethod(AskAction):
    slot = "payment_method"
    question = ("How did you pay: card, PayPal, Apple Pay, Google Pay, bank transfer or cash on "
                "delivery? Please don't type card numbers.")


class AskProblemDescription(AskAction):
    slot = "problem_description"
    question = "What went wrong? A sentence or two is enough, e.g. 'I was charged twice'."


class AskRefundReason(AskAction):
    slot = "refund_reason"
    question = "Why would you like a refund? For example 'too small' or 'arrived damaged'."
