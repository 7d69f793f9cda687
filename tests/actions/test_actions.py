"""Each handler the rules name does what its name says, without a server."""

from __future__ import annotations

from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.flows import FLOW_ACTIONS
from actions.handoff import ActionHandoffToHuman


def tracker_after(intent: str, text: str = "...") -> Tracker:
    return Tracker(
        sender_id="c1",
        slots={},
        latest_message={"intent": {"name": intent, "confidence": 0.9}, "text": text},
        events=[],
        paused=False,
        followup_action=None,
        active_loop={},
        latest_action_name="action_listen",
    )


async def run(action: Any, intent: str) -> list[dict[str, Any]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker_after(intent), {})
    assert events == []
    return dispatcher.messages


def handoff_of(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    custom = [m["custom"] for m in messages if m.get("custom")]
    return custom[0]["handoff"] if custom else None


@pytest.mark.parametrize(
    ("intent", "reason"), [("human_handoff", "customer_request"), ("complaint", "topic:complaint")]
)
async def test_handoff_tells_customer_and_names_reason(intent: str, reason: str) -> None:
    messages = await run(ActionHandoffToHuman(), intent)
    assert "connecting you to a person" in messages[0]["text"]
    assert handoff_of(messages) == {"reason": reason, "intent": intent}


# The knowledge-base actions are tested in tests/knowledge/test_knowledge_actions.py.


@pytest.mark.parametrize("name", sorted(FLOW_ACTIONS))
async def test_every_flow_says_what_happens_and_hands_off_with_its_name(name: str) -> None:
    action = FLOW_ACTIONS[name]()
    messages = await run(action, "any")
    assert messages[0]["text"].startswith("I can help you")
    assert handoff_of(messages) == {"reason": f"flow:{action.flow}", "flow": action.flow}
