"""Fixtures: a small articles folder and an index built from it with the hash embedder."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.embedding import register_embedder
from tests.knowledge.fakes import HashEmbedder


def write_article(folder: Path, article_id: str, title: str, body: str, language: str = "en",
                  questions: tuple[str, ...] = ()) -> Path:
    """One Markdown article with front matter."""
    folder.mkdir(parents=True, exist_ok=True)
    qs = "".join(f"  - {q}\n" for q in questions)
    text = f"---\nid: {article_id}\ntitle: {title}\nlanguage: {language}\ntags: [{article_id.replace('-', '_')}]\n"
    text += f"questions:\n{qs}" if questions else ""
    text += f"source_url: https://shop.example/{article_id}\n---\n{body}\n"
    path = folder / f"{article_id}.{language}.md"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    """Three English articles and a Hebrew translation of one."""
    folder = tmp_path / "articles"
    write_article(folder, "delivery-times", "How long does delivery take?",
                  "Standard delivery takes 2-3 business days in Germany.\n\n## Abroad\n"
                  "Delivery to Israel takes 7-12 business days.",
                  questions=("when will my parcel arrive",))
    write_article(folder, "refund-policy", "Return and refund policy",
                  "Return items within 30 days for a full refund.\n\n## Exceptions\nUnderwear cannot be returned.")
    write_article(folder, "reset-password", "I forgot my password",
                  "Select forgot password on the sign in page and open the reset link.")
    write_article(folder, "delivery-times", "כמה זמן לוקח משלוח?",
                  "משלוח רגיל לוקח 2-3 ימי עסקים בגרמניה.", language="he")
    return folder


@pytest.fixture
def embedder() -> HashEmbedder:
    """A fresh hash embedder, selectable as model 'hash-test'."""
    fake = HashEmbedder()
    register_embedder(fake)
    return fake
