"""The knowledge actions answer, offer choices, abstain, store feedback and hand off on request."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.knowledge as kb_actions
from actions.knowledge import (
    ActionAnswerFromKnowledgeBase,
    ActionKnowledgeFeedback,
    ActionKnowledgeHandoff,
    ActionShowArticle,
)
from knowledge.feedback import FeedbackStore
from knowledge.service import KnowledgeBase
from knowledge.settings import load_settings
from tests.knowledge.fakes import HashEmbedder
from tests.shop.harness import records_of


@pytest.fixture
def kb(articles: Path, tmp_path: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch) -> KnowledgeBase:
    """The actions' knowledge base and feedback store, on a temporary index (built on first use)."""
    env = {"SUPPORT_KB_MODEL": embedder.name, "SUPPORT_KB_ANSWER_THRESHOLD": "0.6",
           "SUPPORT_KB_CHOOSE_THRESHOLD": "0.3", "SUPPORT_KB_MARGIN": "0.1",
           "SUPPORT_KB_LEXICAL_WEIGHT": "0"}
    base = KnowledgeBase(load_settings(env, articles_dir=articles, index_dir=tmp_path / "index"))
    base.ensure_built()
    store = FeedbackStore(tmp_path / "feedback.db")
    monkeypatch.setattr(kb_actions, "knowledge_base", lambda: base)
    monkeypatch.setattr(kb_actions, "feedback_store", lambda: store)
    yield base
    store.close()


def tracker(text: str, intent: str = "nlu_fallback", entities: list[dict[str, Any]] | None = None,
            language: str | None = None, events: list[dict[str, Any]] | None = None,
            active_loop: dict[str, Any] | None = None) -> Tracker:
    message = {"text": text, "intent": {"name": intent, "confidence": 0.5}, "entities": entities or [],
               "metadata": {"language": language} if language else {}}
    return Tracker("c1", {}, message, [*(events or []), {"event": "user", **message}], False, None,
                   active_loop or {}, "action_listen")


async def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, t, {})
    return dispatcher.messages, events


def handoff_of(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    custom = [m["custom"] for m in messages if m.get("custom") and "handoff" in m["custom"]]
    return custom[0]["handoff"] if custom else None


async def test_confident_answer_quotes_passage_cites_source_and_asks_for_feedback(kb: KnowledgeBase) -> None:
    messages, events = await run(ActionAnswerFromKnowledgeBase(), tracker("delivery to israel business days"))
    assert messages[0]["text"].startswith("Delivery to Israel takes 7-12 business days.")
    assert "Source: How long does delivery take? (https://shop.example/delivery-times)" in messages[0]["text"]
    payloads = [b["payload"] for b in messages[1]["buttons"]]
    assert payloads[0] == '/kb_feedback{"kb_article": "delivery-times", "kb_helpful": "yes"}'
    assert handoff_of(messages) is None and events == []
    [(kind, data)] = records_of(messages)  # for the reports' knowledge-base answer rate
    assert (kind, data["article"], data["language"]) == ("kb_answered", "delivery-times", "en")
    assert 0 < data["score"] <= 1


async def test_answers_in_the_customers_language_when_translated(kb: KnowledgeBase) -> None:
    messages, _ = await run(ActionAnswerFromKnowledgeBase(), tracker("delivery to israel business days", language="he"))
    # English text, Hebrew hint: the customer wrote English, so the answer is English.
    assert messages[0]["text"].startswith("Delivery")
    messages, _ = await run(ActionAnswerFromKnowledgeBase(),
                            tracker("משלוח רגיל לוקח 2-3 ימי עסקים בגרמניה"))
    assert messages[0]["text"].startswith("משלוח רגיל")
    assert "מקור: כמה זמן לוקח משלוח?" in messages[0]["text"]


async def test_close_call_offers_articles_and_a_person(kb: KnowledgeBase) -> None:
    messages, _ = await run(ActionAnswerFromKnowledgeBase(), tracker("return password"))
    buttons = messages[0]["buttons"]
    chosen = [json.loads(b["payload"][len("/kb_choose_article"):])["kb_article"]
              for b in buttons if b["payload"].startswith("/kb_choose_article")]
    assert set(chosen) == {"refund-policy", "reset-password"}
    assert buttons[-1]["payload"] == "/kb_ask_person"
    assert handoff_of(messages) is None
    assert records_of(messages) == []  # neither answered nor abstained until the customer picks


async def test_off_topic_abstains_and_only_offers_a_person(kb: KnowledgeBase) -> None:
    messages, _ = await run(ActionAnswerFromKnowledgeBase(), tracker("capital city of france"))
    assert "rather not guess" in messages[0]["text"]
    assert [b["payload"] for b in messages[0]["buttons"]] == ["/kb_ask_person"]
    assert handoff_of(messages) is None  # the handoff happens only if the customer chooses it
    assert records_of(messages) == [("kb_abstained", {"question": "capital city of france",
                                                      "language": "en"})]


async def test_an_unanswered_question_is_recorded_masked_and_short(kb: KnowledgeBase) -> None:
    question = "my card 4111 1111 1111 1111 " + "x" * 400
    messages, _ = await run(ActionAnswerFromKnowledgeBase(), tracker(question))
    [(kind, data)] = records_of(messages)
    assert kind == "kb_abstained" and len(data["question"]) == 300
    assert "4111 1111 1111 1111" not in data["question"] and "1111" in data["question"]


async def test_taking_the_offer_hands_off_with_knowledge_gap_and_what_was_offered(kb: KnowledgeBase) -> None:
    offered = {"event": "bot", "data": {"buttons": [
        {"title": "x", "payload": '/kb_choose_article{"kb_article": "refund-policy"}'}]}}
    question = {"event": "user", "text": "return password"}
    messages, _ = await run(ActionKnowledgeHandoff(), tracker("/kb_ask_person", "kb_ask_person",
                                                              events=[question, offered]))
    assert handoff_of(messages) == {"reason": "knowledge_gap", "question": "return password",
                                    "language": "en", "articles_offered": ["refund-policy"]}


async def test_chosen_article_is_shown_with_feedback_buttons(kb: KnowledgeBase) -> None:
    t = tracker("/kb_choose_article", "kb_choose_article",
                entities=[{"entity": "kb_article", "value": "refund-policy"}],
                events=[{"event": "user", "text": "return password"}])
    messages, _ = await run(ActionShowArticle(), t)
    assert messages[0]["text"].startswith("Return items within 30 days")
    assert "kb_feedback" in messages[1]["buttons"][0]["payload"]
    assert [(k, d["article"]) for k, d in records_of(messages)] == [("kb_answered", "refund-policy")]


@pytest.mark.parametrize(("helpful", "says", "stored"), [("yes", "Glad", True), ("no", "Sorry", False)])
async def test_feedback_is_stored(kb: KnowledgeBase, helpful: str, says: str, stored: bool) -> None:
    t = tracker("/kb_feedback", "kb_feedback",
                entities=[{"entity": "kb_article", "value": "delivery-times"},
                          {"entity": "kb_helpful", "value": helpful}])
    messages, _ = await run(ActionKnowledgeFeedback(), t)
    assert messages[0]["text"].startswith(says)
    assert kb_actions.feedback_store().summary() == {"delivery-times": (1, 0) if stored else (0, 1)}
    assert records_of(messages) == [("kb_feedback", {"article": "delivery-times", "helped": stored})]


async def test_question_in_the_middle_of_a_form_resumes_the_form(kb: KnowledgeBase) -> None:
    _, events = await run(ActionAnswerFromKnowledgeBase(),
                          tracker("delivery to israel business days", active_loop={"name": "cancel_order_form"}))
    assert events == [{"event": "followup", "timestamp": None, "name": "cancel_order_form"}]


async def test_broken_knowledge_base_tells_the_customer_and_hands_off(
    kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = KnowledgeBase(load_settings({"SUPPORT_KB_MODEL": "hash-test"}, index_dir=tmp_path / "none"))
    monkeypatch.setattr(kb_actions, "knowledge_base", lambda: broken)
    messages, _ = await run(ActionAnswerFromKnowledgeBase(), tracker("anything"))
    assert "not available" in messages[0]["text"]
    assert handoff_of(messages) == {"reason": "knowledge_unavailable"}
    assert records_of(messages) == []  # an outage is not a gap in the articles
