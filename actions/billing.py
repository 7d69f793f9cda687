"""Billing flows: send the invoice as a signed download link, report a payment problem."""

from __future__ import annotations

import os
from datetime import date, datetime, timedelta, timezone
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from actions import parsing
from actions.forms import STOP_INTENTS, StoreFlowAction, StoreFormValidation
from actions.handoff import record_payload
from actions.store import store
from actions.wording import day, money
from shop.config import link_secret
from shop.errors import InvoiceNotFound
from shop.links import sign_invoice_link
from shop.records import PaymentReport

METHOD_NAMES = {"card": "card", "paypal": "PayPal", "apple_pay": "Apple Pay",
                "google_pay": "Google Pay", "bank_transfer": "bank transfer",
                "cash_on_delivery": "cash on delivery"}


def public_url() -> str:
    """Where customers reach the web service (which serves invoice links)."""
    if os.environ.get("SUPPORT_PUBLIC_URL"):
        return os.environ["SUPPORT_PUBLIC_URL"].rstrip("/")
    return f"http://{os.environ.get('SUPPORT_HOST', '127.0.0.1')}:{os.environ.get('SUPPORT_PORT', '8080')}"


class ValidateInvoiceForm(StoreFormValidation):
    """Order number and identity: the link goes only to the order's owner."""

    form = "invoice_form"


class ActionSubmitInvoiceForm(StoreFlowAction):
    """Sends a link to the invoice that works for 24 hours and only for this invoice."""

    form = "invoice_form"
    record = "invoice_requested"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        try:
            invoice = await (await store()).invoice_for(order_number)
        except InvoiceNotFound:
            dispatcher.utter_message(text=f"Order {order_number} has no invoice yet: we issue it "
                                          "once the payment is confirmed.")
            return []
        token = sign_invoice_link(link_secret(), order_number, invoice.number)
        dispatcher.utter_message(
            text=f"Here is invoice {invoice.number} for order {order_number} "
            f"({money(invoice.total_cents, invoice.currency)}): {public_url()}/invoices/{token}\n"
            "The link works for 24 hours.")
        dispatcher.utter_message(json_message=record_payload(
            "invoice_link_sent", order=order_number, invoice=invoice.number))
        return []


class ValidatePaymentIssueForm(StoreFormValidation):
    """Which order, how much, when, how it was paid and what happened."""

    form = "payment_issue_form"

    async def extract_payment_amount(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: dict[str, Any]) -> dict[str, Any]:
        return self.raw_answer(tracker, "payment_amount")

    async def validate_payment_amount(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        amount = parsing.parse_amount(value)
        if amount is None:
            text = parsing.clean(value)
            why = ("That amount is larger than any order." if any(c.isdigit() for c in text)
                   else "I didn't find an amount there.")
            return self.fail(dispatcher, tracker, "payment_amount",
                             f"{why} How much were you charged? For example 49.90, €49,90 or ₪120.")
        return {"payment_amount": str(amount)}

    async def extract_payment_date(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                   domain: dict[str, Any]) -> dict[str, Any]:
        return self.raw_answer(tracker, "payment_date")

    async def validate_payment_date(self, value: Any, dispatcher: CollectingDispatcher,
                                    tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        today = datetime.now(timezone.utc).date()
        when = parsing.parse_date(value, today)
        if when is None:
            return self.fail(dispatcher, tracker, "payment_date",
                             "I couldn't read a date there. When was the payment? For example "
                             "'yesterday', '3 May' or 03/05/2026.")
        if when > today:
            return self.fail(dispatcher, tracker, "payment_date",
                             "That date is in the future. When did the payment happen?")
        if when < today - timedelta(days=730):
            return self.fail(dispatcher, tracker, "payment_date",
                             "That's more than two years ago. Could you check the date of the payment?")
        return {"payment_date": when.isoformat()}

    async def extract_payment_method(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                                     domain: dict[str, Any]) -> dict[str, Any]:
        return self.raw_answer(tracker, "payment_method")

    async def validate_payment_method(self, value: Any, dispatcher: CollectingDispatcher,
                                      tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        method = parsing.parse_payment_method(value)
        if method is None:
            return self.fail(dispatcher, tracker, "payment_method",
                             "Which way did you pay: card, PayPal, Apple Pay, Google Pay, bank "
                             "transfer or cash on delivery? (No card numbers, please.)")
        return {"payment_method": method}

    async def extract_problem_description(self, dispatcher: CollectingDispatcher,
                                          tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        return self.raw_answer(tracker, "problem_description", STOP_INTENTS)

    async def validate_problem_description(self, value: Any, dispatcher: CollectingDispatcher,
                                           tracker: Tracker, domain: dict[str, Any]) -> dict[str, Any]:
        text = parsing.free_text(value, min_chars=5, max_chars=1000)
        if text is None:
            return self.fail(dispatcher, tracker, "problem_description",
                             "Please describe in a sentence or two what happened, e.g. 'I was "
                             "charged twice' or 'the payment failed but money left my account'.")
        return {"problem_description": text}


class ActionSubmitPaymentIssueForm(StoreFlowAction):
    """Opens a billing case with everything the customer told us."""

    form = "payment_issue_form"
    record = "billing_issue_reported"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  order_number: str) -> list[EventType]:
        amount = parsing.parse_amount(tracker.get_slot("payment_amount"))
        when = tracker.get_slot("payment_date")
        report = PaymentReport(
            description=tracker.get_slot("problem_description") or "",
            amount_cents=amount.cents if amount else None,
            currency=amount.currency if amount else None,
            payment_date=date.fromisoformat(when) if when else None,
            method=tracker.get_slot("payment_method"),
        )
        case = await (await store()).create_billing_case(order_number, report)
        paid = f"{money(amount.cents, amount.currency)} " if amount and amount.currency else (
            f"{amount} " if amount else "")
        dispatcher.utter_message(
            text=f"I've opened billing case {case.number} for order {order_number}: {paid}paid by "
            f"{METHOD_NAMES.get(report.method or '', 'an unknown method')} on {day(report.payment_date)}. "
            "Our billing team will email you within one business day; please quote the case number.")
        return []
