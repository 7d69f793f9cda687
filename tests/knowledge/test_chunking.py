"""Articles are cut by heading and paragraph, long text with overlap, questions kept apart."""

from __future__ import annotations

import pytest

from knowledge.articles import parse_article
from knowledge.chunking import ChunkSettings, chunk_article, sections

ARTICLE = """---
id: a1
title: Returns
language: en
questions: ["Can I return shoes?"]
---
You can return items within 30 days.

## Exceptions
- Underwear
- Gift cards

## Long
{long}
"""


def test_sections_follow_headings() -> None:
    assert [h for h, _ in sections("intro\n\n## One\ntext\n### Two\nmore")] == ["", "One", "Two"]


def test_titles_and_questions_are_question_chunks_and_passages_keep_their_heading() -> None:
    chunks = chunk_article(parse_article(ARTICLE.format(long="short")))
    assert [(c.kind, c.text) for c in chunks[:2]] == [("question", "Returns"), ("question", "Can I return shoes?")]
    exceptions = next(c for c in chunks if c.heading == "Exceptions")
    assert exceptions.text == "- Underwear\n- Gift cards"
    assert exceptions.embed_text.startswith("Exceptions\n")


def test_long_paragraph_is_split_with_overlap() -> None:
    words = [f"w{i}" for i in range(100)]
    chunks = chunk_article(parse_article(ARTICLE.format(long=" ".join(words))),
                           ChunkSettings(max_words=40, overlap_words=10))
    long = [c.text.split() for c in chunks if c.heading == "Long"]
    assert all(len(part) <= 40 for part in long)
    assert long[0][-10:] == long[1][:10]  # the overlap
    assert {w for part in long for w in part} == set(words)


def test_blocks_are_packed_and_next_passage_repeats_the_tail() -> None:
    body = "\n\n".join(" ".join(f"p{p}w{i}" for i in range(15)) for p in range(4))
    article = parse_article(f"---\nid: x\ntitle: T\nlanguage: en\n---\n{body}\n")
    passages = [c.text for c in chunk_article(article, ChunkSettings(max_words=35, overlap_words=5))
                if c.kind == "passage"]
    assert len(passages) == 3  # 30 words, then tail + 15, then tail + 15
    assert passages[1].startswith("… p1w10 p1w11")


def test_chunk_key_changes_only_with_content() -> None:
    a = chunk_article(parse_article(ARTICLE.format(long="x")))
    b = chunk_article(parse_article(ARTICLE.format(long="y")))
    assert [c.key for c in a[:-1]] == [c.key for c in b[:-1]]
    assert a[-1].key != b[-1].key


@pytest.mark.parametrize(("max_words", "overlap"), [(5, 0), (50, 50), (50, -1)])
def test_bad_settings_are_refused(max_words: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="chunk"):
        ChunkSettings(max_words=max_words, overlap_words=overlap)
