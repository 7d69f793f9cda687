"""Hands the conversation to a person: tells the customer and signals the web service."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

# The custom payloads the web service looks for in Rasa's replies (handoff/conversations/router.py).
HANDOFF_KEY = "handoff"
# A fact the reports and the customer record need (an order looked up, an article answered);
# stored as a conversation event, never shown to the customer.
RECORD_KEY = "record"

# Why a person is needed, by the intent that asked for one.
REASON_BY_INTENT = {
    "human_handoff": "customer_request",
    "complaint": "topic:complaint",
}


def handoff_payload(reason: str, **details: Any) -> dict[str, Any]:
    """The JSON message an action sends to make the web service hand the conversation off."""
    return {HANDOFF_KEY: {"reason": reason, **details}}


def record_payload(event_type: str, **data: Any) -> dict[str, Any]:
    """The JSON message an action sends to have the web service store `event_type` with `data`."""
    return {RECORD_KEY: {"type": event_type, "data": data}}


class ActionHandoffToHuman(Action):
    """Connects the customer to the support team, recording the reason."""

    def name(self) -> str:
        return "action_handoff_to_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        reason = REASON_BY_INTENT.get(intent or "", "customer_request")
        dispatcher.utter_message(
            text="I'm connecting you to a person from our support team. "
            "They will see our conversation so far, so you won't need to repeat yourself."
        )
        form = tracker.active_loop.get("name")
        if not form:
            dispatcher.utter_message(json_message=handoff_payload(reason, intent=intent))
            return []
        # Mid-form: the person sees what was collected, and the form ends here.
        from actions.forms import collected, reset_flow

        dispatcher.utter_message(json_message=handoff_payload(
            reason, intent=intent, flow=form, collected=collected(tracker)))
        return [ActiveLoop(None), SlotSet("requested_slot", None), *reset_flow()]
