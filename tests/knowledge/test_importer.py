"""A foreign FAQ in CSV or JSON Lines becomes articles that build and answer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.articles import load_articles
from knowledge.cli import main
from knowledge.errors import ImportFormatError
from knowledge.importer import import_faq
from tests.knowledge.fakes import HashEmbedder


def test_csv_with_alternative_questions(tmp_path: Path) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer,alternative_questions\n"
                   "Do you ship to Norway?,Yes: 5-8 business days.,Norway delivery|Shipping to Oslo\n",
                   encoding="utf-8")
    written = import_faq(faq, tmp_path / "kb", source_url="https://other.example/faq")
    [article] = load_articles(tmp_path / "kb")
    assert written == [tmp_path / "kb" / "do-you-ship-to-norway.en.md"]
    assert article.questions == ("Norway delivery", "Shipping to Oslo")
    assert article.source_url == "https://other.example/faq/do-you-ship-to-norway"


def test_jsonl_with_ids_and_languages(tmp_path: Path) -> None:
    faq = tmp_path / "faq.jsonl"
    rows = [{"id": "q1", "title": "Опт?", "body": "Да, от 10 штук.", "language": "ru",
             "questions": ["Оптовые цены"]}, {"id": "q2", "question": "Wholesale?", "answer": "Yes."}]
    faq.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    import_faq(faq, tmp_path / "kb")
    assert {(a.id, a.language) for a in load_articles(tmp_path / "kb")} == {("q1", "ru"), ("q2", "en")}


@pytest.mark.parametrize(
    ("name", "text", "words"),
    [("a.csv", "question,answer\nHello?,\n", "faq.csv:2: no answer"),
     ("a.jsonl", '{"title": "x", "body": "y"}\nnot json\n', "faq.jsonl:2: not JSON"),
     ("a.csv", "question,answer\nSame?,a\nSame?,b\n", "appears twice"),
     ("a.txt", "whatever", "use .csv or .jsonl")],
)
def test_bad_faq_names_file_and_row(tmp_path: Path, name: str, text: str, words: str) -> None:
    faq = tmp_path / f"faq{Path(name).suffix}"
    faq.write_text(text, encoding="utf-8")
    with pytest.raises(ImportFormatError, match=words):
        import_faq(faq, tmp_path / "kb")


def test_existing_articles_are_not_overwritten_silently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer\nHello?,World.\n", encoding="utf-8")
    assert main(["import", str(faq), "--articles", str(tmp_path / "kb")]) == 0
    assert main(["import", str(faq), "--articles", str(tmp_path / "kb")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_import_with_index_builds_it(tmp_path: Path, embedder: HashEmbedder, capsys: pytest.CaptureFixture[str]) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text("question,answer\nDo you ship to Norway?,Yes.\n", encoding="utf-8")
    assert main(["import", str(faq), "--articles", str(tmp_path / "kb"), "--index", str(tmp_path / "ix"),
                 "--model", embedder.name]) == 0
    assert json.loads(capsys.readouterr().out)["build"]["articles"] == 1
