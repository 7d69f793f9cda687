from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.articles import ArticleFormatError, load_articles, parse_article

GOOD = """---
id: a1
title: "Returns: the rules"
language: en
tags: [refund_policy]
---
You can return items within 30 days.
Unused, with tags.

## Exceptions
Underwear cannot be returned.
"""


def test_parses_front_matter_and_summary() -> None:
    article = parse_article(GOOD)
    assert (article.id, article.title, article.tags) == ("a1", "Returns: the rules", ("refund_policy",))
    assert article.summary == "You can return items within 30 days. Unused, with tags."


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("no front matter", "front matter block"),
        ("---\nid: [unclosed\n---\nbody", "not valid YAML"),
        ("---\n- a list\n---\nbody", "mapping"),
        ("---\nid: x\n---\nbody", "title, language"),
    ],
)
def test_bad_articles_name_the_problem(text: str, words: str) -> None:
    with pytest.raises(ArticleFormatError, match=words):
        parse_article(text, Path("bad.md"))


def test_shipped_articles_are_valid_and_unique() -> None:
    articles = load_articles()
    assert len(articles) >= 16
    assert len({(a.id, a.language) for a in articles}) == len(articles)
    assert all(a.summary and a.source_url for a in articles)


MOST_ASKED = ("delivery-times", "refund-policy", "payment-methods", "recover-password", "track-order",
              "contact-us", "delivery-options", "cancel-order", "refund-status")


def test_most_asked_articles_are_translated() -> None:
    languages = {(a.id, a.language) for a in load_articles()}
    missing = [(i, l) for i in MOST_ASKED for l in ("en", "he", "ar", "ru", "uk") if (i, l) not in languages]
    assert missing == []
