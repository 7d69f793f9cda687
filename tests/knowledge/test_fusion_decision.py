"""Fusion groups chunks by article; the decision answers, offers choices or abstains."""

from __future__ import annotations

import pytest

from knowledge.decision import ABSTAIN, ANSWER, CHOOSE, Thresholds, decide
from knowledge.fusion import ArticleScore, ChunkScore, FusionSettings, fuse, saturate


def test_fuse_takes_best_dense_chunk_per_article_plus_weighted_lexical() -> None:
    ranked = fuse(
        [ChunkScore(0, "a", 0.80, 0.0), ChunkScore(1, "a", 0.70, 6.0), ChunkScore(2, "b", 0.82, 0.0)],
        FusionSettings(lexical_weight=0.1, lexical_saturation=6.0),
    )
    assert [r.article_id for r in ranked] == ["a", "b"]  # 0.80 + 0.1 * 0.5 beats 0.82
    assert ranked[0].best_chunk == 0 and ranked[0].score == pytest.approx(0.85)


def test_without_lexical_weight_dense_decides() -> None:
    ranked = fuse([ChunkScore(0, "a", 0.80, 50.0), ChunkScore(1, "b", 0.82, 0.0)],
                  FusionSettings(lexical_weight=0.0))
    assert ranked[0].article_id == "b"


def test_saturation_is_query_independent_and_bounded() -> None:
    assert saturate(0.0, 6.0) == 0.0
    assert saturate(6.0, 6.0) == pytest.approx(0.5)
    assert 0.99 < saturate(1000.0, 6.0) < 1.0


def scored(*scores: float) -> list[ArticleScore]:
    return [ArticleScore(f"a{i}", s, s, 0.0, i) for i, s in enumerate(scores)]


T = Thresholds(answer=0.9, choose=0.8, margin=0.03)


@pytest.mark.parametrize(
    ("scores", "kind", "offered"),
    [
        ((0.95, 0.85), ANSWER, ["a0"]),
        ((0.95, 0.93, 0.81, 0.80), CHOOSE, ["a0", "a1", "a2"]),  # a close call: top three
        ((0.85, 0.70), CHOOSE, ["a0"]),  # above choose only
        ((0.79, 0.78), ABSTAIN, []),
        ((), ABSTAIN, []),
    ],
)
def test_decision(scores: tuple[float, ...], kind: str, offered: list[str]) -> None:
    decision = decide(scored(*scores), T)
    assert decision.kind == kind
    assert [a.article_id for a in decision.articles] == offered


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValueError, match="choose"):
        Thresholds(answer=0.5, choose=0.6, margin=0.0)
