"""Answers "which article, and which passage of it?" for one loaded index generation."""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict

import numpy as np

from knowledge.chunking import Chunk
from knowledge.embedding import Embedder
from knowledge.errors import IndexModelMismatch
from knowledge.fusion import ArticleScore, ChunkScore, FusionSettings, fuse
from knowledge.lexical import LexicalIndex
from knowledge.store import ArticleMeta, Generation

# Chunks taken from each signal before fusing; plenty for articles with a dozen chunks each.
CANDIDATES = 64
# Recent query vectors kept per index generation: 2,048 × 384 floats is about 3 MB.
QUERY_CACHE_SIZE = 2048


class Retriever:
    """Dense (FAISS) + lexical (BM25) search over one generation, grouped by article."""

    def __init__(self, generation: Generation, embedder: Embedder, fusion: FusionSettings) -> None:
        model = generation.manifest.get("model")
        if model != embedder.name:
            raise IndexModelMismatch(
                f"{generation.path}: index built with model {model!r} but SUPPORT_KB_MODEL is "
                f"{embedder.name!r}; rebuild with `python -m knowledge build --model {embedder.name}`"
            )
        self.generation = generation
        self.embedder = embedder
        self.fusion = fusion
        self.lexical = LexicalIndex([c.embed_text for c in generation.chunks])
        self.articles: dict[tuple[str, str], ArticleMeta] = {
            (a.id, a.language): a for a in generation.articles
        }
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()  # recent queries, LRU
        self._cache_lock = threading.Lock()  # actions may run in several threads
        self._passages: dict[tuple[str, str], list[int]] = defaultdict(list)
        for i, chunk in enumerate(generation.chunks):
            if chunk.kind == "passage":
                self._passages[(chunk.article_id, chunk.language)].append(i)

    @property
    def fingerprint(self) -> str:
        """The content + model + settings fingerprint of the generation in use."""
        return str(self.generation.manifest["fingerprint"])

    def embed(self, query: str) -> np.ndarray:
        """The query's vector (the slow part: ~10-15 ms on two cores).

        Customers ask the same things in the same words (and quick-reply buttons send the
        same text), so recent queries' vectors are kept: per index generation, since a
        rebuild may change the model. Read-only, so no caller can alter a shared vector.
        """
        with self._cache_lock:
            vector = self._vectors.get(query)
            if vector is not None:
                self._vectors.move_to_end(query)
                return vector
        vector = self.embedder.embed_queries([query])[0]
        vector.setflags(write=False)
        with self._cache_lock:
            self._vectors[query] = vector
            if len(self._vectors) > QUERY_CACHE_SIZE:
                self._vectors.popitem(last=False)
        return vector

    def rank(self, query: str, vector: np.ndarray | None = None, k: int = 5) -> list[ArticleScore]:
        """The k best articles for `query`, fused score first."""
        vector = self.embed(query) if vector is None else vector
        chunks = self.generation.chunks
        _, dense_ids = self.generation.index.search(vector, CANDIDATES)
        lexical = self.lexical.scores(query)
        ids = {int(i) for i in dense_ids}
        if self.fusion.lexical_weight and lexical.any():
            top = np.argpartition(-lexical, min(CANDIDATES, len(lexical) - 1))[:CANDIDATES]
            ids.update(int(i) for i in top if lexical[i] > 0)
        order = sorted(ids)
        dense = np.asarray(self.generation.vectors[order]) @ vector
        candidates = [
            ChunkScore(i, chunks[i].article_id, float(d), float(lexical[i]))
            for i, d in zip(order, dense, strict=True)
        ]
        return fuse(candidates, self.fusion)[:k]

    def meta(self, article_id: str, language: str) -> ArticleMeta | None:
        """The article in `language`, or in English, or in any language it exists in."""
        for lang in (language, "en"):
            if (article_id, lang) in self.articles:
                return self.articles[(article_id, lang)]
        return next((a for (aid, _), a in self.articles.items() if aid == article_id), None)

    def best_passage(self, article: ArticleMeta, query: str, vector: np.ndarray) -> Chunk:
        """The passage of this article (in its language) closest to the question."""
        ids = self._passages[(article.id, article.language)]
        dense = np.asarray(self.generation.vectors[ids]) @ vector
        lexical = self.lexical.scores(query)[ids] if self.fusion.lexical_weight else 0 * dense
        fused = dense + self.fusion.lexical_weight * lexical / (lexical + self.fusion.lexical_saturation)
        return self.generation.chunks[ids[int(np.argmax(fused))]]
