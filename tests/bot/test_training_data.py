"""The assistant's data hangs together: every intent is routed to a handler that exists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from rasa_sdk.executor import ActionExecutor

from actions.knowledge import KNOWLEDGE_ACTIONS, articles_by_topic

ROOT = Path(__file__).resolve().parents[2]


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


DOMAIN = load(ROOT / "domain.yml")
RULES = [rule for p in sorted((ROOT / "bot/rules").glob("*.yml")) for rule in load(p)["rules"]]
NLU = [item for p in sorted((ROOT / "bot/nlu").glob("*.yml")) for item in load(p)["nlu"]]


def first_steps() -> dict[str, str]:
    """intent -> the action a rule runs right after it."""
    routes = {}
    for rule in RULES:
        steps = rule["steps"]
        if "intent" in steps[0]:
            routes[steps[0]["intent"]] = steps[1]["action"]
    return routes


def test_every_intent_has_a_route_to_a_known_action() -> None:
    routes = first_steps()
    known = set(DOMAIN["actions"]) | set(DOMAIN["responses"]) | set(DOMAIN.get("forms", {}))
    for intent in DOMAIN["intents"]:
        assert intent in routes, f"no rule routes {intent}"
        assert routes[intent] in known, f"{intent} -> unknown {routes[intent]}"


def test_every_domain_action_is_served_by_the_action_server() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    # Base classes (FlowAction, AskAction, ...) register under a bare prefix such as "action_".
    served = {name for name in executor.actions if not name.endswith("_")}
    assert set(KNOWLEDGE_ACTIONS) <= served
    assert set(DOMAIN["actions"]) == served


def test_every_form_has_its_validation_submit_rule_and_a_question_per_slot() -> None:
    actions = set(DOMAIN["actions"])
    submitted = {step["action"] for rule in RULES for step in rule["steps"] if "action" in step}
    for form, spec in DOMAIN["forms"].items():
        assert f"validate_{form}" in actions and f"action_submit_{form}" in submitted
        for slot in spec["required_slots"]:
            assert f"action_ask_{slot}" in actions or f"utter_ask_{slot}" in DOMAIN["responses"]


def test_every_knowledge_intent_has_an_article() -> None:
    topics = articles_by_topic()
    for intent, action in first_steps().items():
        # nlu_fallback searches every article: it is the catch-all, not a topic
        if action == "action_answer_from_knowledge_base" and intent != "nlu_fallback":
            assert intent in topics, f"no article tagged {intent}"


def test_every_intent_has_enough_distinct_examples() -> None:
    examples: dict[str, list[str]] = {}
    for item in NLU:
        if "intent" in item:
            lines = [l[2:].strip() for l in item["examples"].splitlines() if l.startswith("- ")]
            examples.setdefault(item["intent"], []).extend(lines)
    # Button-only intents (knowledge-base feedback, choices) arrive as /payloads, never typed.
    button_only = {i for i in DOMAIN["intents"] if i.startswith("kb_")}
    assert set(examples) == set(DOMAIN["intents"]) - button_only
    seen: dict[str, str] = {}
    for intent, lines in examples.items():
        assert len(lines) >= 40, f"{intent} has only {len(lines)} examples"
        for line in lines:
            assert seen.setdefault(line.lower(), intent) == intent, f"{line!r} in two intents"
