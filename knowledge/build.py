"""Builds the index from an articles folder, re-embedding only chunks whose text changed."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from knowledge.articles import Article, load_articles
from knowledge.chunking import Chunk, ChunkSettings, chunk_article
from knowledge.embedding import Embedder
from knowledge.errors import IndexCorrupt, IndexMissing
from knowledge.store import FORMAT_VERSION, ArticleMeta, read_current, write_generation
from knowledge.vector_index import VectorIndex, index_kind_for


@dataclass(frozen=True)
class BuildReport:
    """What a build did: how much was embedded anew and where the index now is."""

    index_dir: str
    fingerprint: str
    model: str
    articles: int
    chunks: int
    embedded: int
    reused: int
    index_kind: str
    seconds: float
    changed: bool


def article_sha(article: Article) -> str:
    """Hash of everything in an article that reaches the index."""
    meta = [article.id, article.language, article.title, list(article.tags), list(article.questions)]
    payload = json.dumps([meta, article.source_url, article.body], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def fingerprint(articles: list[Article], model: str, settings: ChunkSettings) -> str:
    """Content + model + settings: equal fingerprints mean an identical index."""
    parts = sorted(f"{a.id}/{a.language}/{article_sha(a)}" for a in articles)
    payload = json.dumps([FORMAT_VERSION, model, asdict(settings), parts])
    return hashlib.sha256(payload.encode()).hexdigest()


def _embed(embedder: Embedder, chunks: list[Chunk], batch: int = 64) -> np.ndarray:
    """Questions are embedded as queries (symmetric match), passages as passages."""
    vectors = np.zeros((len(chunks), embedder.dim), dtype=np.float32)
    for kind, embed in (("question", embedder.embed_queries), ("passage", embedder.embed_passages)):
        rows = [i for i, c in enumerate(chunks) if c.kind == kind]
        for start in range(0, len(rows), batch):
            part = rows[start : start + batch]
            vectors[part] = embed([chunks[i].embed_text for i in part])
    return vectors


def _reusable(index_dir: Path, model: str, dim: int, settings: ChunkSettings) -> dict[str, np.ndarray]:
    """chunk key -> vector from the serving index, when it was made the same way."""
    try:
        previous = read_current(index_dir)
    except (IndexMissing, IndexCorrupt):
        return {}
    m = previous.manifest
    if m.get("model") != model or m.get("dim") != dim or m.get("chunk_settings") != asdict(settings):
        return {}
    return {c.key: previous.vectors[i] for i, c in enumerate(previous.chunks)}


def build_index(
    articles_dir: Path,
    index_dir: Path,
    embedder: Embedder,
    settings: ChunkSettings | None = None,
    force: bool = False,
) -> BuildReport:
    """Loads, chunks, embeds what changed and writes a new generation; no-op when unchanged."""
    started = time.perf_counter()
    settings = settings or ChunkSettings()
    articles = load_articles(articles_dir)  # raises before anything on disk changes
    if not articles:
        raise IndexCorrupt(f"{articles_dir}: no articles (*.md) to index")
    fp = fingerprint(articles, embedder.name, settings)
    chunks = [chunk for article in articles for chunk in chunk_article(article, settings)]
    kind = index_kind_for(len(chunks))
    try:
        serving = read_current(index_dir)
        unchanged = serving.manifest.get("fingerprint") == fp
    except (IndexMissing, IndexCorrupt):
        unchanged = False
    if unchanged and not force:
        return BuildReport(
            str(index_dir), fp, embedder.name, len(articles), len(chunks), 0, len(chunks),
            kind, time.perf_counter() - started, changed=False,
        )
    known = _reusable(index_dir, embedder.name, embedder.dim, settings)
    missing = [c for c in chunks if c.key not in known]
    fresh = dict(zip([c.key for c in missing], _embed(embedder, missing), strict=True))
    vectors = np.stack([known[c.key] if c.key in known else fresh[c.key] for c in chunks]).astype(np.float32)
    manifest = {
        "format": FORMAT_VERSION,
        "fingerprint": fp,
        "model": embedder.name,
        "dim": embedder.dim,
        "chunk_settings": asdict(settings),
        "index_kind": kind,
        "chunk_count": len(chunks),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "articles": [asdict(_meta(a, articles_dir)) for a in articles],
    }
    write_generation(index_dir, manifest, chunks, vectors, VectorIndex.build(vectors, kind))
    return BuildReport(
        str(index_dir), fp, embedder.name, len(articles), len(chunks), len(missing),
        len(chunks) - len(missing), kind, time.perf_counter() - started, changed=True,
    )


def _meta(article: Article, articles_dir: Path) -> ArticleMeta:
    path = article.path.relative_to(articles_dir) if article.path else Path(article.id)
    return ArticleMeta(
        article.id, article.language, article.title, article.source_url, article.tags,
        article.summary, str(path), article_sha(article),
    )
