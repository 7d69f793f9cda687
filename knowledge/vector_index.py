"""Nearest-neighbour search over chunk vectors: exact for small indexes, HNSW for large ones."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# Below this many vectors an exact scan is both faster to build and fast enough to search.
EXACT_MAX_VECTORS = 50_000
HNSW_NEIGHBOURS = 32
HNSW_EF_SEARCH = 128


def index_kind_for(size: int) -> str:
    """The FAISS index type chosen by corpus size: 'flat' (exact) or 'hnsw'."""
    return "flat" if size <= EXACT_MAX_VECTORS else "hnsw"


class VectorIndex:
    """Inner-product (cosine on unit vectors) search, one interface over both index types."""

    def __init__(self, index: faiss.Index, kind: str) -> None:
        self._index = index
        self.kind = kind

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str | None = None) -> VectorIndex:
        """An index over `vectors` (n, dim), unit length; `kind` defaults by size."""
        n, dim = vectors.shape
        kind = kind or index_kind_for(n)
        if kind == "flat":
            index: faiss.Index = faiss.IndexFlatIP(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = HNSW_EF_SEARCH
        else:
            raise ValueError(f"unknown vector index kind {kind!r} (expected 'flat' or 'hnsw')")
        if n:
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index, kind)

    @property
    def size(self) -> int:
        """Number of vectors indexed."""
        return int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) of the k nearest chunks for one query vector; ids are chunk positions."""
        k = min(k, self.size)
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        scores, ids = self._index.search(np.ascontiguousarray(query.reshape(1, -1), np.float32), k)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def save(self, path: Path) -> None:
        """Writes the FAISS index file."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, kind: str) -> VectorIndex:
        """Reads a FAISS index file written by `save`."""
        index = faiss.read_index(str(path))
        if kind == "hnsw":
            faiss.downcast_index(index).hnsw.efSearch = HNSW_EF_SEARCH  # type: ignore[attr-defined]
        return cls(index, kind)
