"""Fuses dense and lexical chunk scores into one calibrated score per article."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class FusionSettings:
    """lexical_weight 0 means dense only; lexical_saturation is the BM25 score worth half."""

    lexical_weight: float = 0.1
    lexical_saturation: float = 6.0


def saturate(bm25: float, saturation: float) -> float:
    """Maps a BM25 score to [0, 1) without looking at other results, so thresholds stay fixed."""
    return bm25 / (bm25 + saturation) if bm25 > 0 else 0.0


@dataclass(frozen=True)
class ChunkScore:
    """One candidate chunk with both signals."""

    chunk_id: int
    article_id: str
    dense: float
    lexical: float


@dataclass(frozen=True)
class ArticleScore:
    """An article's fused score and the chunk that earned its dense part."""

    article_id: str
    score: float
    dense: float
    lexical: float
    best_chunk: int


def fuse(candidates: Iterable[ChunkScore], settings: FusionSettings) -> list[ArticleScore]:
    """Per article: best dense chunk + weight x best saturated lexical chunk; best first."""
    dense: dict[str, tuple[float, int]] = {}
    lexical: dict[str, float] = {}
    for c in candidates:
        if c.article_id not in dense or c.dense > dense[c.article_id][0]:
            dense[c.article_id] = (c.dense, c.chunk_id)
        lexical[c.article_id] = max(lexical.get(c.article_id, 0.0), c.lexical)
    scored = []
    for article_id, (best_dense, chunk_id) in dense.items():
        lex = saturate(lexical[article_id], settings.lexical_saturation)
        score = best_dense + settings.lexical_weight * lex
        scored.append(ArticleScore(article_id, score, best_dense, lex, chunk_id))
    return sorted(scored, key=lambda s: (-s.score, s.article_id))
