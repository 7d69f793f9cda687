"""Measures retrieval and the answer/choose/abstain decision on labelled question sets."""

from __future__ import annotations

import csv
import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.decision import ABSTAIN, ANSWER, CHOOSE, Thresholds, decide
from knowledge.errors import KnowledgeError
from knowledge.fusion import ArticleScore
from knowledge.language import detect_language
from knowledge.retrieval import Retriever

RANK_DEPTH = 10


@dataclass(frozen=True)
class Case:
    """One labelled question; an empty `expected` means the assistant must abstain."""

    text: str
    expected: str
    language: str
    source: str


def read_cases(path: Path) -> list[Case]:
    """Rows of `text,expected_article_id` (or `expected`), optional `language` column."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read evaluation set ({exc})") from exc
    if rows and "text" not in rows[0]:
        raise KnowledgeError(f"{path}: needs a 'text' column and 'expected_article_id'")
    cases = []
    for row in rows:
        text = (row.get("text") or "").strip()
        if not text:
            continue
        expected = (row.get("expected_article_id") or row.get("expected") or "").strip()
        language = (row.get("language") or "").strip() or detect_language(text) or "en"
        cases.append(Case(text, expected, language, path.name))
    return cases


def _outcome(ranked: list[ArticleScore], case: Case, thresholds: Thresholds) -> str:
    """answer_ok / answer_wrong / choose_ok / choose_wrong / abstain."""
    decision = decide(ranked, thresholds)
    if decision.kind == ABSTAIN:
        return ABSTAIN
    hit = any(a.article_id == case.expected for a in decision.articles) if case.expected else False
    return f"{decision.kind}_{'ok' if hit else 'wrong'}"


def summarise(results: list[tuple[Case, list[ArticleScore]]], thresholds: Thresholds) -> dict[str, Any]:
    """Per language (and overall): recall@1/@3, MRR, and decision rates at `thresholds`."""
    groups: dict[str, list[tuple[Case, list[ArticleScore]]]] = defaultdict(list)
    for case, ranked in results:
        key = case.language if case.expected else "off_topic"
        groups[key].append((case, ranked))
        if case.expected:
            groups["all_in_scope"].append((case, ranked))
    report: dict[str, Any] = {}
    for key, items in sorted(groups.items()):
        outcomes = [_outcome(ranked, case, thresholds) for case, ranked in items]
        n = len(items)
        entry: dict[str, Any] = {"n": n}
        if key != "off_topic":
            ranks = [_rank(case.expected, ranked) for case, ranked in items]
            entry["recall@1"] = round(sum(r == 1 for r in ranks) / n, 3)
            entry["recall@3"] = round(sum(0 < r <= 3 for r in ranks) / n, 3)
            entry["mrr"] = round(sum(1 / r for r in ranks if r) / n, 3)
            answered = sum(o.startswith(ANSWER) for o in outcomes)
            entry["answer_precision"] = round(outcomes.count("answer_ok") / answered, 3) if answered else None
        for kind in (ANSWER, CHOOSE, ABSTAIN):
            entry[f"{kind}_rate"] = round(sum(o.startswith(kind) for o in outcomes) / n, 3)
        if key != "off_topic":
            entry["choose_contains_expected"] = round(outcomes.count("choose_ok") / n, 3)
        report[key] = entry
    return report


def _rank(expected: str, ranked: list[ArticleScore]) -> int:
    """1-based rank of the expected article, 0 when not in the top RANK_DEPTH."""
    return next((i + 1 for i, a in enumerate(ranked) if a.article_id == expected), 0)


def utility(results: list[tuple[Case, list[ArticleScore]]], thresholds: Thresholds) -> float:
    """What calibration maximises: a wrong answer costs twice what a right one earns."""
    value = {"answer_ok": 1.0, "answer_wrong": -2.0, "choose_ok": 0.5, "choose_wrong": -0.5}
    total = 0.0
    for case, ranked in results:
        outcome = _outcome(ranked, case, thresholds)
        if case.expected:
            total += value.get(outcome, 0.0)
        else:  # off-topic: abstaining is the right answer, a confident answer the worst
            total += {ABSTAIN: 1.0, "choose_wrong": -0.5, "answer_wrong": -2.0}[outcome]
    return total


def calibrate(
    results: list[tuple[Case, list[ArticleScore]]], min_off_topic_abstain: float = 0.95
) -> tuple[Thresholds, float]:
    """Grid search for the thresholds with the best utility that abstain on enough off-topic."""
    tops = [ranked[0].score for _, ranked in results if ranked]
    grid = sorted({round(float(q), 3) for q in np.quantile(tops, np.linspace(0, 1, 41))})
    off_topic = [(c, r) for c, r in results if not c.expected]
    best: tuple[float, Thresholds] | None = None
    for choose, answer in itertools.combinations_with_replacement(grid, 2):
        for margin in (0.0, 0.01, 0.02, 0.03, 0.05, 0.08):
            t = Thresholds(answer=answer, choose=choose, margin=margin)
            if off_topic:
                abstained = sum(_outcome(r, c, t) == ABSTAIN for c, r in off_topic) / len(off_topic)
                if abstained < min_off_topic_abstain:
                    continue
            u = utility(results, t)
            if best is None or u > best[0]:
                best = (u, t)
    if best is None:
        raise KnowledgeError("calibration: no thresholds abstain on enough off-topic questions")
    return best[1], best[0]


def run(retriever: Retriever, cases: list[Case]) -> list[tuple[Case, list[ArticleScore]]]:
    """Ranks every case's question (the expensive part, done once per evaluation)."""
    return [(case, retriever.rank(case.text, k=RANK_DEPTH)) for case in cases]
