"""What handoff/repeat_answers.py assumes of the rules, kept true by the rules themselves.

A knowledge answer is given again without asking Rasa only in a conversation with no form
active. That is right only while every rule that reaches the knowledge base from a question
intent depends on nothing but the intent: no condition, no earlier step, not only at the
start of a conversation. A rule that needs more must be for a form (an `active_loop`
condition), where the answer is never repeated.
"""

from __future__ import annotations

from typing import Any

from handoff.repeat_answers import KNOWLEDGE_ACTION
from tests.bot.test_training_data import ROOT, RULES


def knowledge_intents() -> set[str]:
    return {step["intent"] for rule in RULES for step in rule["steps"][:1]
            if "intent" in step and {"action": KNOWLEDGE_ACTION} in rule["steps"]}


def in_a_form_only(rule: dict[str, Any]) -> bool:
    return any("active_loop" in item for item in rule.get("condition") or [])


def test_questions_reach_the_knowledge_base_whatever_came_before() -> None:
    intents = knowledge_intents()
    assert {"delivery_period", "nlu_fallback"} <= intents
    for rule in RULES:
        mentioned = {step.get("intent") for step in rule["steps"]} & intents
        if not mentioned or in_a_form_only(rule):
            continue
        assert rule["steps"] == [{"intent": next(iter(mentioned))},
                                 {"action": KNOWLEDGE_ACTION}], rule["rule"]
        assert not {"condition", "conversation_start", "wait_for_user_input"} & set(rule), \
            rule["rule"]


def test_no_story_decides_them() -> None:
    """Stories would let what came before change the answer; the project has none."""
    assert not list((ROOT / "bot").glob("stories/*.yml"))
