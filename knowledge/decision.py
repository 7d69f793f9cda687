"""Turns ranked articles into what the assistant does: answer, offer choices, or abstain."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.fusion import ArticleScore

ANSWER, CHOOSE, ABSTAIN = "answer", "choose", "abstain"


@dataclass(frozen=True)
class Thresholds:
    """answer: confident enough to quote; choose: worth offering; margin: lead needed to answer."""

    answer: float
    choose: float
    margin: float
    max_choices: int = 3

    def __post_init__(self) -> None:
        if not self.choose <= self.answer:
            raise ValueError(
                f"knowledge thresholds: choose ({self.choose}) must not exceed answer ({self.answer})"
            )
        if self.margin < 0 or self.max_choices < 2:
            raise ValueError("knowledge thresholds: margin must be >= 0 and max_choices >= 2")


@dataclass(frozen=True)
class Decision:
    """The action to take and the articles it concerns (one to answer, 1-3 to offer, none)."""

    kind: str
    articles: tuple[ArticleScore, ...]


def decide(ranked: list[ArticleScore], thresholds: Thresholds) -> Decision:
    """Answer a clear winner, offer the close ones, never guess below the choose threshold."""
    if not ranked or ranked[0].score < thresholds.choose:
        return Decision(ABSTAIN, ())
    top = ranked[0]
    runner_up = ranked[1].score if len(ranked) > 1 else float("-inf")
    if top.score >= thresholds.answer and top.score - runner_up >= thresholds.margin:
        return Decision(ANSWER, (top,))
    close = [a for a in ranked[: thresholds.max_choices] if a.score >= thresholds.choose]
    return Decision(CHOOSE, tuple(close))
