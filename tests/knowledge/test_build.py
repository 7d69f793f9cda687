"""Building: fingerprints, incremental re-embedding, atomic switch, clear errors on bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from knowledge.articles import load_articles
from knowledge.build import build_index, fingerprint
from knowledge.chunking import ChunkSettings
from knowledge.errors import (
    ArticleFormatError,
    DuplicateArticle,
    EmptyArticle,
    IndexMissing,
    IndexModelMismatch,
)
from knowledge.fusion import FusionSettings
from knowledge.retrieval import Retriever
from knowledge.service import KnowledgeBase
from knowledge.settings import load_settings
from knowledge.store import read_current
from tests.knowledge.conftest import write_article
from tests.knowledge.fakes import HashEmbedder


def test_fingerprint_depends_on_content_model_and_settings(articles: Path) -> None:
    loaded = load_articles(articles)
    base = fingerprint(loaded, "m", ChunkSettings())
    assert base == fingerprint(list(reversed(loaded)), "m", ChunkSettings())
    assert base != fingerprint(loaded, "other", ChunkSettings())
    assert base != fingerprint(loaded, "m", ChunkSettings(max_words=50))
    write_article(articles, "reset-password", "I forgot my password", "Changed text.")
    assert base != fingerprint(load_articles(articles), "m", ChunkSettings())


def test_rebuild_embeds_only_changed_chunks(articles: Path, tmp_path: Path, embedder: HashEmbedder) -> None:
    index = tmp_path / "index"
    first = build_index(articles, index, embedder)
    assert first.changed and first.embedded == first.chunks and first.reused == 0
    again = build_index(articles, index, embedder)
    assert not again.changed and again.embedded == 0

    embedder.embedded.clear()
    write_article(articles, "reset-password", "I forgot my password", "Use the reset link in the email.")
    third = build_index(articles, index, embedder)
    assert third.changed and third.embedded == 1 and third.reused == third.chunks - 1
    assert embedder.embedded == ["Use the reset link in the email."]
    assert read_current(index).manifest["fingerprint"] == third.fingerprint


def test_only_two_generations_are_kept(articles: Path, tmp_path: Path, embedder: HashEmbedder) -> None:
    index = tmp_path / "index"
    for text in ("one", "two", "three"):
        write_article(articles, "reset-password", "I forgot my password", text)
        build_index(articles, index, embedder)
    assert len(list(index.glob("gen-*"))) == 2


def test_bad_articles_fail_before_anything_changes(articles: Path, tmp_path: Path, embedder: HashEmbedder) -> None:
    index = tmp_path / "index"
    good = build_index(articles, index, embedder).fingerprint
    (articles / "broken.en.md").write_text("---\nid: [x\n---\nbody", encoding="utf-8")
    with pytest.raises(ArticleFormatError, match="broken.en.md"):
        build_index(articles, index, embedder)
    assert read_current(index).manifest["fingerprint"] == good


def test_duplicate_ids_and_empty_articles_name_the_file(articles: Path) -> None:
    (articles / "copy.en.md").write_text(
        (articles / "refund-policy.en.md").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(DuplicateArticle, match=r"refund-policy.en.md.*refund-policy.*copy.en.md"):
        load_articles(articles)
    (articles / "copy.en.md").write_text("---\nid: e\ntitle: T\nlanguage: en\n---\n\n", encoding="utf-8")
    with pytest.raises(EmptyArticle, match="copy.en.md"):
        load_articles(articles)


def test_index_built_with_another_model_is_refused(articles: Path, tmp_path: Path, embedder: HashEmbedder) -> None:
    build_index(articles, tmp_path / "index", embedder)
    with pytest.raises(IndexModelMismatch, match="hash-test.*SUPPORT_KB_MODEL"):
        Retriever(read_current(tmp_path / "index"), HashEmbedder(name="other"), FusionSettings())


def test_a_repeated_question_is_embedded_once_per_index_generation(
    articles: Path, tmp_path: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_index(articles, tmp_path / "index", embedder)
    embedder.queried.clear()  # the build embeds the articles' sample questions
    retriever = Retriever(read_current(tmp_path / "index"), embedder, FusionSettings())
    first = retriever.rank("how do refunds work")
    assert retriever.rank("how do refunds work") == first
    assert embedder.queried == ["how do refunds work"]
    vector = retriever.embed("how do refunds work")
    with pytest.raises(ValueError):
        vector[0] = 1.0  # shared between callers: nobody may change it
    monkeypatch.setattr("knowledge.retrieval.QUERY_CACHE_SIZE", 2)
    for question in ("a", "b", "c"):
        retriever.embed(question)
    retriever.embed("how do refunds work")  # pushed out by three newer questions
    assert embedder.queried == ["how do refunds work", "a", "b", "c", "how do refunds work"]
    fresh = Retriever(read_current(tmp_path / "index"), embedder, FusionSettings())
    fresh.embed("a")  # a reloaded index starts its own cache (the model may have changed)
    assert embedder.queried[-1] == "a"


def test_missing_index_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(IndexMissing, match="python -m knowledge build"):
        read_current(tmp_path / "nothing")


def test_running_service_picks_up_a_rebuild_and_survives_a_broken_one(
    articles: Path, tmp_path: Path, embedder: HashEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    index = tmp_path / "index"
    env = {"SUPPORT_KB_MODEL": embedder.name}
    kb = KnowledgeBase(load_settings(env, articles_dir=articles, index_dir=index))
    kb.ensure_built()
    first = kb.retriever()
    assert kb.retriever() is first  # unchanged pointer: no reload

    write_article(articles, "gift-cards", "Gift cards", "Gift cards never expire.")
    build_index(articles, index, embedder)
    second = kb.retriever()
    assert second is not first
    assert second.rank("do gift cards expire")[0].article_id == "gift-cards"

    pointer = index / "CURRENT"
    pointer.write_text("gen-does-not-exist\n", encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        assert kb.retriever() is second  # the previous index keeps serving
    assert "previous one keeps serving" in caplog.text


def test_service_rebuilds_when_configured_model_differs(articles: Path, tmp_path: Path, embedder: HashEmbedder) -> None:
    from knowledge.embedding import register_embedder

    index = tmp_path / "index"
    build_index(articles, index, embedder)
    other = HashEmbedder(name="hash-other")
    register_embedder(other)
    kb = KnowledgeBase(load_settings({"SUPPORT_KB_MODEL": "hash-other"}, articles_dir=articles, index_dir=index))
    report = kb.ensure_built()
    assert report is not None and report.model == "hash-other"
    assert kb.retriever().generation.manifest["model"] == "hash-other"
