"""Rasa's own end-to-end test conversations (bot/tests/test_stories.yml) against the trained model."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model() -> str:
    model = os.environ.get("SUPPORT_MODEL", "")
    if not Path(model).is_file():
        pytest.fail("SUPPORT_MODEL is not set to a trained model: run through ./assistant test")
    return model


def test_data_validates() -> None:
    done = subprocess.run(
        [str(ROOT / ".venv/rasa/bin/rasa"), "data", "validate", "--fail-on-warnings",
         "--config", "config.yml", "--domain", "domain.yml", "--data", "bot/nlu", "bot/rules"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


def test_story_conversations_pass(model: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(ROOT / ".venv/rasa/bin/rasa"), "test", "core", "-m", model,
         "--stories", "bot/tests/test_stories.yml", "--out", str(tmp_path),
         "--fail-on-prediction-errors", "--no-plot"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )
    failed = tmp_path / "failed_test_stories.yml"
    details = failed.read_text(encoding="utf-8") if failed.exists() else ""
    assert done.returncode == 0, details or (done.stdout[-3000:] + done.stderr[-3000:])
    stories = (yaml.safe_load(details) or {}).get("stories") if details else None
    assert not stories, details
