"""The type hints are checked, not decoration: mypy over the packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ["handoff", "actions", "knowledge", "shop"]


def test_mypy_finds_no_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", *CHECKED, "--ignore-missing-imports",
         "--python-version", "3.11", "--no-error-summary", "--follow-imports", "silent"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
