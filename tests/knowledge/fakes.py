"""A deterministic bag-of-words embedder: fast, no model, same interface as the real ones."""

from __future__ import annotations

import hashlib

import numpy as np

from knowledge.lexical import tokenize


class HashEmbedder:
    """Hashes words into buckets; texts sharing words are close. Counts what it embeds."""

    def __init__(self, name: str = "hash-test", dim: int = 512) -> None:
        self.name = name
        self.dim = dim
        self.embedded: list[str] = []
        self.queried: list[str] = []

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dim, dtype=np.float32)
        for token in tokenize(text):
            vector[int(hashlib.md5(token.encode()).hexdigest(), 16) % self.dim] += 1.0
        norm = np.linalg.norm(vector)
        return vector / norm if norm else vector

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dim), np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        self.queried.extend(texts)
        return self._embed(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.embedded.extend(texts)
        return self._embed(texts)
