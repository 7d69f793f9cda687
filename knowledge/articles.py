"""Loads the store's help articles (Markdown with YAML front matter) from knowledge/articles/."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from knowledge.errors import ArticleFormatError, DuplicateArticle, EmptyArticle

ARTICLES_DIR = Path(__file__).resolve().parent / "articles"
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*\n(.*)\Z", re.DOTALL)


__all__ = ["ARTICLES_DIR", "Article", "ArticleFormatError", "load_articles", "parse_article"]


@dataclass(frozen=True)
class Article:
    """One help-centre article in one language."""

    id: str
    title: str
    language: str
    body: str
    tags: tuple[str, ...] = ()
    questions: tuple[str, ...] = ()
    source_url: str | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def summary(self) -> str:
        """The first paragraph: written to answer the most common question on its own."""
        for block in re.split(r"\n\s*\n", self.body.strip()):
            text = block.strip()
            if text and not text.startswith("#"):
                return " ".join(line.strip() for line in text.splitlines())
        return ""


def parse_article(text: str, path: Path | None = None) -> Article:
    """Parses one Markdown article; raises ArticleFormatError with the reason."""
    where = str(path) if path else "<article>"
    match = _FRONT_MATTER.match(text)
    if not match:
        raise ArticleFormatError(f"{where}: missing '---' front matter block")
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ArticleFormatError(f"{where}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(meta, dict):
        raise ArticleFormatError(f"{where}: front matter must be a mapping")
    missing = [key for key in ("id", "title", "language") if not meta.get(key)]
    if missing:
        raise ArticleFormatError(f"{where}: front matter lacks {', '.join(missing)}")
    if not match.group(2).strip():
        raise EmptyArticle(f"{where}: article {meta['id']!r} has no text after the front matter")
    return Article(
        id=str(meta["id"]),
        title=str(meta["title"]),
        language=str(meta["language"]),
        body=match.group(2),
        tags=tuple(str(t) for t in meta.get("tags") or ()),
        questions=tuple(str(q) for q in meta.get("questions") or ()),
        source_url=meta.get("source_url"),
        path=path,
    )


def load_articles(directory: Path = ARTICLES_DIR) -> list[Article]:
    """Every article under `directory`, sorted by file name; one file per (id, language)."""
    if not directory.is_dir():
        raise ArticleFormatError(f"{directory}: articles directory does not exist")
    articles: list[Article] = []
    seen: dict[tuple[str, str], Path] = {}
    for path in sorted(directory.glob("**/*.md")):
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ArticleFormatError(f"{path}: not UTF-8 text ({exc})") from exc
        article = parse_article(text, path)
        key = (article.id, article.language)
        if key in seen:
            raise DuplicateArticle(
                f"{path}: article id {article.id!r} ({article.language}) is already used by {seen[key]}"
            )
        seen[key] = path
        articles.append(article)
    return articles
