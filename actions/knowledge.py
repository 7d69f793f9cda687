"""Answers informational questions from the knowledge index: answer, offer choices, or abstain."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import handoff_payload, record_payload
from handoff.conversations.redaction import redact_card_numbers
from knowledge.articles import Article, load_articles
from knowledge.decision import ANSWER, CHOOSE, Decision
from knowledge.errors import KnowledgeError
from knowledge.feedback import FeedbackStore
from knowledge.language import customer_language
from knowledge.phrases import phrase
from knowledge.service import KnowledgeBase, Offer, Reply
from knowledge.settings import load_settings

log = logging.getLogger(__name__)

# Button payloads (intents in domain.yml, routed in bot/rules/knowledge.yml).
FEEDBACK_INTENT, CHOOSE_INTENT, PERSON_INTENT = "kb_feedback", "kb_choose_article", "kb_ask_person"
ARTICLE_ENTITY, HELPFUL_ENTITY = "kb_article", "kb_helpful"
# An NLU intent this sure of itself settles a close call in favour of the article it is tagged with.
INTENT_PRIOR_CONFIDENCE = 0.9


@lru_cache(maxsize=1)
def knowledge_base() -> KnowledgeBase:
    """One knowledge base per action-server process, configured by SUPPORT_KB_* variables."""
    return KnowledgeBase(load_settings())


@lru_cache(maxsize=1)
def feedback_store() -> FeedbackStore:
    """Where "did it help?" answers go (SUPPORT_KB_FEEDBACK_DB)."""
    return FeedbackStore(knowledge_base().settings.feedback_db)


@lru_cache(maxsize=1)
def articles_by_topic() -> dict[str, Article]:
    """Maps each tag (an intent name) to the English article that answers it; loaded once."""
    index: dict[str, Article] = {}
    for article in load_articles(knowledge_base().settings.articles_dir):
        if article.language == "en":
            for tag in article.tags:
                index.setdefault(tag, article)
    return index


def payload(intent: str, **entities: str) -> str:
    """A button payload Rasa parses without NLU: /intent{"entity": "value"}."""
    return f"/{intent}{json.dumps(entities, ensure_ascii=False)}" if entities else f"/{intent}"


def answer_text(offer: Offer, language: str) -> str:
    """The passage quoted to the customer, with its source (one newline: Rasa splits on blank lines)."""
    meta = offer.article
    source = f"{meta.title} ({meta.source_url})" if meta.source_url else meta.title
    return f"{offer.passage.text}\n{phrase('source', language)}: {source}"


def feedback_buttons(article_id: str, language: str) -> list[dict[str, str]]:
    """Yes / No buttons that store feedback about this article."""
    return [
        {"title": phrase("yes", language), "payload": payload(FEEDBACK_INTENT, kb_article=article_id, kb_helpful="yes")},
        {"title": phrase("no", language), "payload": payload(FEEDBACK_INTENT, kb_article=article_id, kb_helpful="no")},
    ]


def person_button(language: str, key: str = "person") -> dict[str, str]:
    """The button that hands the conversation to a person with reason knowledge_gap."""
    return {"title": phrase(key, language), "payload": payload(PERSON_INTENT)}


def customer_question(tracker: Tracker) -> str:
    """The customer's last typed message (button clicks are payloads starting with '/')."""
    for event in reversed(tracker.events):
        text = event.get("text") or ""
        if event.get("event") == "user" and text and not text.startswith("/"):
            return str(text)
    text = tracker.latest_message.get("text") or ""
    return "" if text.startswith("/") else str(text)


def language_of(tracker: Tracker, question: str) -> str:
    """The customer's language: their message's script, settled by the channel's hint."""
    metadata = tracker.latest_message.get("metadata") or {}
    return customer_language(question, metadata.get("language"))


def entity(tracker: Tracker, name: str) -> str | None:
    """The value of an entity in the latest message (set by a button payload)."""
    value = next(tracker.get_latest_entity_values(name), None)
    return str(value) if value is not None else None


def apply_intent_prior(reply: Reply, tracker: Tracker) -> Reply:
    """A close call whose first choice is the article a confident NLU intent is tagged with is answered."""
    intent = tracker.latest_message.get("intent") or {}
    if reply.kind != CHOOSE or float(intent.get("confidence") or 0) < INTENT_PRIOR_CONFIDENCE:
        return reply
    article = articles_by_topic().get(str(intent.get("name") or ""))
    if article is None or reply.offers[0].article.id != article.id:
        return reply
    return Reply(Decision(ANSWER, reply.decision.articles[:1]), reply.offers[:1], reply.fingerprint)


def offered_articles(tracker: Tracker) -> list[str]:
    """Article ids the assistant offered since the customer's last typed question."""
    offered: list[str] = []
    for event in reversed(tracker.events):
        if event.get("event") == "user" and not str(event.get("text") or "").startswith("/"):
            break
        for button in (event.get("data") or {}).get("buttons") or []:
            text = str(button.get("payload") or "")
            if '"kb_article"' in text:
                article_id = json.loads(text[text.index("{"):]).get(ARTICLE_ENTITY)
                if article_id and article_id not in offered:
                    offered.append(article_id)
    return offered


# The reports group unanswered questions so a manager sees which articles to write next.
QUESTION_RECORD_CHARS = 300


def record_answered(dispatcher: CollectingDispatcher, offer: Offer, language: str) -> None:
    dispatcher.utter_message(json_message=record_payload(
        "kb_answered", article=offer.article.id, score=round(float(offer.score), 3), language=language))


def record_abstained(dispatcher: CollectingDispatcher, question: str, language: str) -> None:
    """Keeps the question (card numbers masked, shortened) the knowledge base had no answer for."""
    dispatcher.utter_message(json_message=record_payload(
        "kb_abstained", question=redact_card_numbers(question)[:QUESTION_RECORD_CHARS],
        language=language))


def resume_form(tracker: Tracker) -> list[dict[str, Any]]:
    """A question asked in the middle of a form is answered, then the form asks again."""
    loop = (tracker.active_loop or {}).get("name")
    return [FollowupAction(loop)] if loop else []


class ActionAnswerFromKnowledgeBase(Action):
    """Retrieves the best articles and answers, offers the close ones, or offers a person."""

    def name(self) -> str:
        return "action_answer_from_knowledge_base"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        question = customer_question(tracker)
        language = language_of(tracker, question)
        try:
            reply = await asyncio.to_thread(knowledge_base().ask, question, language)
        except KnowledgeError:
            log.exception("knowledge base unavailable")
            dispatcher.utter_message(text=phrase("unavailable", language))
            dispatcher.utter_message(json_message=handoff_payload("knowledge_unavailable"))
            return []
        reply = apply_intent_prior(reply, tracker)
        if reply.kind == ANSWER:
            offer = reply.offers[0]
            dispatcher.utter_message(text=answer_text(offer, language))
            dispatcher.utter_message(
                text=phrase("helped", language), buttons=feedback_buttons(offer.article.id, language)
            )
            record_answered(dispatcher, offer, language)
        elif reply.kind == CHOOSE:
            buttons = [
                {"title": o.article.title, "payload": payload(CHOOSE_INTENT, kb_article=o.article.id)}
                for o in reply.offers
            ]
            dispatcher.utter_message(
                text=phrase("choose", language), buttons=[*buttons, person_button(language, "none")]
            )
        else:  # never guess: say so and offer a person; the handoff happens only if chosen
            dispatcher.utter_message(text=phrase("abstain", language), buttons=[person_button(language)])
            record_abstained(dispatcher, question, language)
        return resume_form(tracker)


class ActionShowArticle(Action):
    """Answers with the article the customer picked from the offered choices."""

    def name(self) -> str:
        return "action_kb_show_article"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        question = customer_question(tracker)
        language = language_of(tracker, question)
        article_id = entity(tracker, ARTICLE_ENTITY) or ""
        try:
            offer = await asyncio.to_thread(knowledge_base().show, article_id, language, question)
        except KnowledgeError:
            log.exception("knowledge base unavailable")
            offer = None
        if offer is None:
            dispatcher.utter_message(text=phrase("abstain", language), buttons=[person_button(language)])
            record_abstained(dispatcher, question, language)
            return []
        dispatcher.utter_message(text=answer_text(offer, language))
        dispatcher.utter_message(text=phrase("helped", language), buttons=feedback_buttons(article_id, language))
        record_answered(dispatcher, offer, language)
        return resume_form(tracker)


class ActionKnowledgeFeedback(Action):
    """Stores whether an answer helped; when it did not, offers a person."""

    def name(self) -> str:
        return "action_kb_feedback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        question = customer_question(tracker)
        language = language_of(tracker, question)
        article_id = entity(tracker, ARTICLE_ENTITY)
        helpful = (entity(tracker, HELPFUL_ENTITY) or "").lower() in ("yes", "true", "1")
        if article_id:
            await feedback_store().arecord(tracker.sender_id, article_id, language, helpful, question)
        if helpful:
            dispatcher.utter_message(text=phrase("thanks", language))
        else:
            dispatcher.utter_message(text=phrase("sorry", language), buttons=[person_button(language)])
        if article_id:  # after what the customer sees
            dispatcher.utter_message(json_message=record_payload(
                "kb_feedback", article=article_id, helped=helpful))
        return []


class ActionKnowledgeHandoff(Action):
    """The customer took the offer of a person after the knowledge base could not help."""

    def name(self) -> str:
        return "action_kb_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        question = customer_question(tracker)
        language = language_of(tracker, question)
        dispatcher.utter_message(text=phrase("handoff", language))
        dispatcher.utter_message(
            json_message=handoff_payload(
                "knowledge_gap", question=question, language=language,
                articles_offered=offered_articles(tracker),
            )
        )
        return []


KNOWLEDGE_ACTIONS = {
    action().name(): action
    for action in (ActionAnswerFromKnowledgeBase, ActionShowArticle, ActionKnowledgeFeedback, ActionKnowledgeHandoff)
}


def _warm_up() -> None:
    """Builds the index if missing and loads model + index (seconds; a fresh clone ~30 s)."""
    try:
        knowledge_base().ensure_built()
        knowledge_base().retriever()
    except KnowledgeError:
        log.exception("knowledge base not ready; answers will offer a person until it is fixed")


def _started_as_action_server() -> bool:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return bool(spec and spec.name.startswith("rasa_sdk"))


if _started_as_action_server():  # `python -m rasa_sdk --actions actions` (./assistant up)
    _warm_up()  # before the server answers its health check, so no customer meets a cold index
