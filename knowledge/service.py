"""The knowledge base as the action server uses it: loaded once, hot-reloaded, never half-built."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from knowledge.build import BuildReport, build_index
from knowledge.chunking import Chunk
from knowledge.decision import ABSTAIN, Decision, decide
from knowledge.embedding import load_embedder
from knowledge.errors import IndexMissing, KnowledgeError
from knowledge.retrieval import Retriever
from knowledge.settings import KnowledgeSettings
from knowledge.store import ArticleMeta, pointer_path, read_current

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Offer:
    """One article as shown to the customer: in their language where a translation exists."""

    article: ArticleMeta
    passage: Chunk
    score: float


@dataclass(frozen=True)
class Reply:
    """What retrieval decided for one question, ready for the action to phrase."""

    decision: Decision
    offers: tuple[Offer, ...]
    fingerprint: str

    @property
    def kind(self) -> str:
        """answer, choose or abstain."""
        return self.decision.kind


class KnowledgeBase:
    """Serves the generation the index pointer names; a broken new one leaves the old serving."""

    def __init__(self, settings: KnowledgeSettings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._retriever: Retriever | None = None
        self._seen: tuple[int, int, int] | None = None  # pointer (inode, mtime_ns, size)

    def ensure_built(self) -> BuildReport | None:
        """Builds the index when there is none, or it was made with another model."""
        try:
            generation = read_current(self.settings.index_dir)
            if generation.manifest.get("model") == self.settings.model:
                return None
            log.warning(
                "%s was built with %r; rebuilding for SUPPORT_KB_MODEL=%r",
                self.settings.index_dir, generation.manifest.get("model"), self.settings.model,
            )
        except IndexMissing:
            log.info("no knowledge index at %s; building it", self.settings.index_dir)
        return build_index(
            self.settings.articles_dir, self.settings.index_dir, load_embedder(self.settings.model)
        )

    def retriever(self) -> Retriever:
        """The current retriever, reloaded if the pointer file changed since the last call."""
        stamp = self._stamp()
        if self._retriever is not None and stamp == self._seen:
            return self._retriever
        with self._lock:
            stamp = self._stamp()
            if self._retriever is not None and stamp == self._seen:
                return self._retriever
            try:
                fresh = Retriever(
                    read_current(self.settings.index_dir),
                    load_embedder(self.settings.model),
                    self.settings.fusion,
                )
            except KnowledgeError:
                if self._retriever is None:
                    raise
                log.exception("knowledge index at %s not reloaded; the previous one keeps serving",
                              self.settings.index_dir)
                self._seen = stamp  # do not retry on every message; retry when it changes again
                return self._retriever
            self._retriever, self._seen = fresh, stamp
            log.info("knowledge index %s loaded (%s)", fresh.fingerprint[:12], fresh.generation.path)
            return fresh

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(pointer_path(self.settings.index_dir))
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def ask(self, question: str, language: str) -> Reply:
        """Retrieve, decide, and pick each offered article's passage in the customer's language."""
        retriever = self.retriever()
        vector = retriever.embed(question)
        ranked = retriever.rank(question, vector, k=max(5, self.settings.thresholds.max_choices))
        decision = decide(ranked, self.settings.thresholds)
        offers = []
        for scored in decision.articles:
            meta = retriever.meta(scored.article_id, language)
            if meta is not None:
                offers.append(Offer(meta, retriever.best_passage(meta, question, vector), scored.score))
        if decision.kind != ABSTAIN and not offers:
            decision = Decision(ABSTAIN, ())
        return Reply(decision, tuple(offers), retriever.fingerprint)

    def show(self, article_id: str, language: str, question: str) -> Offer | None:
        """One article chosen by the customer, with the passage closest to their question."""
        retriever = self.retriever()
        meta = retriever.meta(article_id, language)
        if meta is None:
            return None
        vector = retriever.embed(question or meta.title)
        return Offer(meta, retriever.best_passage(meta, question or meta.title, vector), 1.0)


