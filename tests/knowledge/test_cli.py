"""The commands build, query and evaluate a second knowledge base given by --articles/--index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.cli import main
from tests.knowledge.fakes import HashEmbedder


def test_build_query_evaluate(articles: Path, tmp_path: Path, embedder: HashEmbedder,
                              capsys: pytest.CaptureFixture[str]) -> None:
    common = ["--articles", str(articles), "--index", str(tmp_path / "index"), "--model", embedder.name]
    assert main(["build", *common]) == 0
    assert json.loads(capsys.readouterr().out)["changed"] is True

    assert main(["query", *common, "refund within 30 days", "-k", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["hits"][0]["article_id"] == "refund-policy" and len(result["hits"]) == 2

    labelled = tmp_path / "set.csv"
    labelled.write_text("text,expected_article_id\nrefund within 30 days,refund-policy\n"
                        "forgot password reset link,reset-password\nbanana bread recipe,\n", encoding="utf-8")
    assert main(["evaluate", *common, str(labelled), "--calibrate"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["metrics"]["en"]["recall@1"] == 1.0 and report["metrics"]["en"]["mrr"] == 1.0
    assert report["metrics"]["off_topic"]["n"] == 1
    assert report["calibrated"]["metrics"]["off_topic"]["abstain_rate"] == 1.0


def test_query_without_index_is_a_clear_error(tmp_path: Path, embedder: HashEmbedder,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--index", str(tmp_path / "none"), "--model", embedder.name, "hi"]) == 2
    assert "no knowledge index" in capsys.readouterr().err


def test_unknown_model_is_a_clear_error(articles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "--articles", str(articles), "--index", str(tmp_path / "i"), "--model", "/no/such/model"]) == 2
    assert "SUPPORT_KB_MODEL='/no/such/model'" in capsys.readouterr().err
