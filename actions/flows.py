"""Requests on order data that the assistant does not handle itself: it hands them to a person.

The order and billing flows the assistant completes are forms (actions/orders.py,
actions/billing.py, actions/refunds.py). Changing the items of an order and questions
about an invoice's content need a person: these actions say so and hand off with the
flow as the reason, so no request is silently dropped.
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


class ActionChangeOrder(FlowAction):
    """Change items of an order that has not shipped."""

    flow, purpose = "change_order", "change your order"


class ActionCheckInvoice(FlowAction):
    """A question about an invoice the customer received."""

    flow, purpose = "check_invoice", "check your invoice"


FLOW_ACTIONS: dict[str, type[FlowAction]] = {
    cls().name(): cls for cls in FlowAction.__subclasses__()
}
