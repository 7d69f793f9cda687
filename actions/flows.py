"""Requests that act on the customer's order or payment data.

Each request has its own named action so routing, tests and reports can tell them apart.
Until the store-data flows (collect, verify, act) are wired in, a flow tells the customer
what will happen and passes the conversation to a person with the flow as the reason,
so no request is silently dropped.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import handoff_payload


class FlowAction(Action):
    """A request that needs the store's data; subclasses set the flow's name and wording."""

    flow: str = ""
    purpose: str = ""

    def name(self) -> str:
        return f"action_{self.flow}"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(
            text=f"I can help you {self.purpose}. I'll pass you to a colleague who can look "
            "at your order details; please have your order number ready."
        )
        dispatcher.utter_message(json_message=handoff_payload(f"flow:{self.flow}", flow=self.flow))
        return []


class ActionTrackOrder(FlowAction):
    """Where is my order."""

    flow, purpose = "track_order", "track your order"


class ActionCancelOrder(FlowAction):
    """Cancel an order that has not shipped."""

    flow, purpose = "cancel_order", "cancel your order"


class ActionChangeOrder(FlowAction):
    """Change items of an order that has not shipped."""

    flow, purpose = "change_order", "change your order"


class ActionChangeShippingAddress(FlowAction):
    """Change the delivery address of an order that has not shipped."""

    flow, purpose = "change_shipping_address", "change the delivery address of your order"


class ActionReportPaymentIssue(FlowAction):
    """A failed, declined or double payment."""

    flow, purpose = "report_payment_issue", "sort out the payment problem"


class ActionGetInvoice(FlowAction):
    """Send the invoice of an order."""

    flow, purpose = "get_invoice", "get your invoice"


class ActionCheckInvoice(FlowAction):
    """A question about an invoice the customer received."""

    flow, purpose = "check_invoice", "check your invoice"


class ActionRequestRefund(FlowAction):
    """Return items and get the money back."""

    flow, purpose = "request_refund", "request a refund"


class ActionRefundStatus(FlowAction):
    """Where is my refund."""

    flow, purpose = "refund_status", "find out where your refund is"


FLOW_ACTIONS: dict[str, type[FlowAction]] = {
    cls().name(): cls for cls in FlowAction.__subclasses__()
}
