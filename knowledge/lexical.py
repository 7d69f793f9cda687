"""The lexical signal: BM25 over the chunks, with a tokeniser that works for all five languages."""

from __future__ import annotations

import re

import bm25s
import numpy as np

_WORD = re.compile(r"\w+", re.UNICODE)
# Only the most frequent function words: BM25's IDF handles the rest.
_STOPWORDS = frozenset(
    ["a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "is", "are", "do", "does", "did", "i", "my", "me", "you", "your", "it", "can", "how", "what", "when", "where", "which", "with", "be", "at", "by", "from", "this", "that"]
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens without English stop words; digits are kept (order numbers, days)."""
    return [t for t in _WORD.findall(text.lower()) if t not in _STOPWORDS and len(t) > 1]


class LexicalIndex:
    """BM25 scores for every chunk; rebuilt from the chunk texts at load (cheap, no model)."""

    def __init__(self, texts: list[str]) -> None:
        self._size = len(texts)
        self._bm25 = bm25s.BM25()
        tokens = [tokenize(t) or ["\u2205"] for t in texts]
        if texts:
            self._bm25.index(tokens, show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        """(n_chunks,) BM25 scores, zero for chunks sharing no word with the query."""
        terms = tokenize(query)
        if not terms or not self._size:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
