"""Splits articles into passages small enough to embed well and quote as an answer."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from knowledge.articles import Article

_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_BLANK_LINE = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class ChunkSettings:
    """How passages are cut; part of the index fingerprint, so changing it re-embeds."""

    max_words: int = 120
    overlap_words: int = 30

    def __post_init__(self) -> None:
        if self.max_words < 10:
            raise ValueError(f"chunk max_words must be at least 10, got {self.max_words}")
        if not 0 <= self.overlap_words < self.max_words:
            raise ValueError(
                f"chunk overlap_words must be in [0, max_words), got {self.overlap_words}"
            )


@dataclass(frozen=True)
class Chunk:
    """One searchable unit: a passage of an article or one of its sample questions."""

    article_id: str
    language: str
    kind: str  # "passage" (quotable text) or "question" (title / sample question)
    heading: str
    text: str
    position: int

    @property
    def embed_text(self) -> str:
        """What the model sees: passages keep their heading so a short section keeps context."""
        if self.kind == "passage" and self.heading:
            return f"{self.heading}\n{self.text}"
        return self.text

    @property
    def key(self) -> str:
        """Content hash: an unchanged chunk keeps its embedding across rebuilds."""
        return hashlib.sha256(f"{self.kind}\0{self.embed_text}".encode()).hexdigest()


def sections(body: str) -> list[tuple[str, str]]:
    """(heading, text) pairs in order; text before the first heading has an empty heading."""
    result: list[tuple[str, list[str]]] = [("", [])]
    for line in body.splitlines():
        match = _HEADING.match(line.strip())
        if match:
            result.append((match.group(2).strip(), []))
        else:
            result[-1][1].append(line)
    return [(h, "\n".join(lines).strip()) for h, lines in result if "\n".join(lines).strip()]


def _blocks(text: str) -> list[str]:
    """Paragraphs, list items and table rows: the units a passage is packed from."""
    blocks: list[str] = []
    for paragraph in _BLANK_LINE.split(text):
        lines = [line.strip() for line in paragraph.splitlines() if line.strip()]
        if lines and all(line.startswith(("-", "*", "|")) or line[:1].isdigit() for line in lines):
            blocks.extend(line for line in lines if not re.fullmatch(r"\|[-| :]+\|", line))
        elif lines:
            blocks.append(" ".join(lines))
    return blocks


def _pack(blocks: list[str], settings: ChunkSettings) -> list[str]:
    """Greedy packing of whole blocks up to max_words, carrying overlap words forward."""
    passages: list[str] = []
    current: list[str] = []
    for block in blocks:
        words = block.split()
        if len(words) > settings.max_words:  # an over-long paragraph: cut by words
            if current:
                passages.append("\n".join(current))
                current = []
            step = settings.max_words - settings.overlap_words
            for start in range(0, len(words), step):
                passages.append(" ".join(words[start : start + settings.max_words]))
                if start + settings.max_words >= len(words):
                    break
            continue
        if current and sum(len(b.split()) for b in current) + len(words) > settings.max_words:
            passages.append("\n".join(current))
            tail = " ".join(" ".join(current).split()[-settings.overlap_words :])
            current = [f"… {tail}"] if settings.overlap_words else []
        current.append(block)
    if current and not (len(current) == 1 and current[0].startswith("… ") and passages):
        passages.append("\n".join(current))
    return passages


_DEFAULT = ChunkSettings()


def chunk_article(article: Article, settings: ChunkSettings = _DEFAULT) -> list[Chunk]:
    """The article's title and sample questions, then its passages section by section."""
    chunks: list[Chunk] = []
    for question in (article.title, *article.questions):
        chunks.append(Chunk(article.id, article.language, "question", "", question, len(chunks)))
    for heading, text in sections(article.body):
        for passage in _pack(_blocks(text), settings):
            chunks.append(
                Chunk(article.id, article.language, "passage", heading, passage, len(chunks))
            )
    return chunks
