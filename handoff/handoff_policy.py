"""When the web service hands a conversation to a person although Rasa did not ask to.

Rasa's own handoffs (the customer asks, a form gives up, the knowledge base has nothing)
arrive as a payload; these are the rest, configured per store:
- frustration in the customer's recent messages (handoff/frustration.py);
- topics that always go to a person (SUPPORT_HANDOFF_TOPICS, intent names);
- the assistant not understanding several turns in a row (SUPPORT_HANDOFF_LOW_CONFIDENCE_TURNS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from handoff.assistant import AssistantTurn
from handoff.conversations.service import HandoffRequest, Reply
from handoff.frustration import is_frustrated

FALLBACK_INTENT = "nlu_fallback"
FRUSTRATION_TEXT = ("I'm sorry this has been frustrating. "
                    "I'm connecting you to a person from our support team right away.")
TOPIC_TEXT = "A person from our support team will take care of this for you."
LOW_CONFIDENCE_TEXT = ("I'm still not sure I understand, so I'm connecting you to a person "
                       "from our support team.")


@dataclass(frozen=True)
class HandoffPolicy:
    """The store's rules for escalating on its own initiative."""

    topics: tuple[str, ...] = ("complaint", "delete_account")
    low_confidence_turns: int = 2
    frustration_threshold: float = 2.0

    def before_assistant(self, recent_texts: Sequence[str]) -> tuple[Reply, HandoffRequest] | None:
        """Checked before Rasa is asked: an upset customer goes straight to a person."""
        if is_frustrated(recent_texts, self.frustration_threshold):
            return Reply(text=FRUSTRATION_TEXT), HandoffRequest("frustration")
        return None

    def after_assistant(
        self, turn: AssistantTurn, previous_intents: Sequence[str | None]
    ) -> tuple[Reply, HandoffRequest] | None:
        """Checked on Rasa's reading of the message, with the intents of earlier bot turns."""
        if turn.intent in self.topics:
            return Reply(text=TOPIC_TEXT), HandoffRequest(f"topic:{turn.intent}",
                                                          {"intent": turn.intent})
        if turn.intent == FALLBACK_INTENT and self.low_confidence_turns > 0:
            earlier = list(previous_intents)[: self.low_confidence_turns - 1]
            if len(earlier) == self.low_confidence_turns - 1 and all(
                intent == FALLBACK_INTENT for intent in earlier
            ):
                return Reply(text=LOW_CONFIDENCE_TEXT), HandoffRequest(
                    "low_confidence", {"turns": self.low_confidence_turns,
                                       "top_intent": turn.top_intent})
        return None
