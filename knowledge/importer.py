"""Brings a store's existing FAQ (CSV or JSON Lines) in as Markdown articles with front matter."""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import yaml

from knowledge.articles import parse_article
from knowledge.errors import ImportFormatError

TITLE_KEYS = ("title", "question", "q")
BODY_KEYS = ("answer", "body", "a", "text")
ALT_KEYS = ("alternative_questions", "alt_questions", "questions", "alternatives", "paraphrases")


def _rows(path: Path) -> list[dict[str, Any]]:
    """Records from a .csv or .jsonl/.json-lines file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                return list(csv.DictReader(handle))
        if suffix in (".jsonl", ".ndjson"):
            rows = []
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError as exc:
                        raise ImportFormatError(f"{path}:{number}: not JSON ({exc})") from exc
                    if not isinstance(record, dict):
                        raise ImportFormatError(f"{path}:{number}: expected a JSON object")
                    rows.append(record)
            return rows
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportFormatError(f"{path}: cannot read FAQ file ({exc})") from exc
    raise ImportFormatError(f"{path}: unknown FAQ format {suffix!r}; use .csv or .jsonl")


def _first(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in record.items() if k is not None}
    return next((lowered[k] for k in keys if lowered.get(k) not in (None, "", [])), None)


def slugify(text: str) -> str:
    """A file-safe id from a title, keeping non-Latin letters (Hebrew, Cyrillic...)."""
    text = unicodedata.normalize("NFKC", text).lower()
    slug = re.sub(r"[^\w]+", "-", text, flags=re.UNICODE).strip("-_")
    return slug[:60].strip("-") or "article"


def _alternatives(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in re.split(r"\s*(?:\||\n|;)\s*", str(value)) if part.strip()]


def to_article(record: dict[str, Any], where: str, language: str, source_url: str | None) -> tuple[str, str]:
    """(id, Markdown text) for one FAQ record; ImportFormatError names the row."""
    title = _first(record, TITLE_KEYS)
    body = _first(record, BODY_KEYS)
    if not title or not str(title).strip():
        raise ImportFormatError(f"{where}: no title/question")
    if not body or not str(body).strip():
        raise ImportFormatError(f"{where}: no answer/body for {str(title)[:60]!r}")
    article_id = slugify(str(_first(record, ("id", "slug")) or title))
    meta: dict[str, Any] = {
        "id": article_id,
        "title": str(title).strip(),
        "language": str(_first(record, ("language", "lang")) or language),
        "tags": _alternatives(_first(record, ("tags", "category"))),
        "questions": _alternatives(_first(record, ALT_KEYS)),
    }
    url = _first(record, ("source_url", "url", "link"))
    if url or source_url:
        meta["source_url"] = str(url or f"{source_url.rstrip('/')}/{article_id}")  # type: ignore[union-attr]
    text = "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n"
    text += str(body).strip().replace("\r\n", "\n") + "\n"
    parse_article(text, Path(where))  # what we write must load
    return article_id, text


def import_faq(
    path: Path, articles_dir: Path, language: str = "en", source_url: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Writes one <id>.<language>.md per record; refuses duplicates and, unless told, overwrites."""
    records = _rows(path)
    if not records:
        raise ImportFormatError(f"{path}: no FAQ records")
    prepared: dict[Path, str] = {}
    for number, record in enumerate(records, 1):
        where = f"{path}:{number + 1 if path.suffix.lower() == '.csv' else number}"
        article_id, text = to_article(record, where, language, source_url)
        lang = yaml.safe_load(text.split("---\n")[1])["language"]
        target = articles_dir / f"{article_id}.{lang}.md"
        if target in prepared:
            raise ImportFormatError(f"{where}: id {article_id!r} ({lang}) appears twice in the file")
        if target.exists() and not overwrite:
            raise ImportFormatError(f"{where}: {target} exists; pass --overwrite to replace it")
        prepared[target] = text
    articles_dir.mkdir(parents=True, exist_ok=True)
    for target, text in prepared.items():
        target.write_text(text, encoding="utf-8")
    return list(prepared)
