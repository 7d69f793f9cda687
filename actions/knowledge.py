"""Answers informational questions from the store's help articles, citing the source."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.handoff import handoff_payload
from knowledge.articles import Article, load_articles


@lru_cache(maxsize=1)
def articles_by_topic() -> dict[str, Article]:
    """Maps each tag (an intent name) to the English article that answers it; loaded once."""
    index: dict[str, Article] = {}
    for article in load_articles():
        if article.language != "en":
            continue
        for tag in article.tags:
            index.setdefault(tag, article)
    return index


def answer_text(article: Article) -> str:
    """The passage quoted to the customer, with its source."""
    source = f"{article.title} ({article.source_url})" if article.source_url else article.title
    # One newline: Rasa splits a text on blank lines into separate messages.
    return f"{article.summary}\nSource: {source}"


class ActionAnswerFromKnowledgeBase(Action):
    """Looks up the article for the customer's question and quotes its answer."""

    def name(self) -> str:
        return "action_answer_from_knowledge_base"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        topic = (tracker.latest_message.get("intent") or {}).get("name") or ""
        article = articles_by_topic().get(topic)
        if article is None:
            # Never guess: say so and let a person answer.
            dispatcher.utter_message(
                text="I don't have an answer to that in our help centre. "
                "I'm passing your question to a person from our team."
            )
            dispatcher.utter_message(json_message=handoff_payload("knowledge_gap", topic=topic))
            return []
        dispatcher.utter_message(text=answer_text(article))
        return []
