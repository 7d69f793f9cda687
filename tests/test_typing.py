"""The type hints are checked, not decoration: mypy over the packages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/ too: a soak run once died on a line mypy would have flagged (a dataclass indexed).
CHECKED = ["handoff", "actions", "knowledge", "shop", "bench"]


def test_mypy_finds_no_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", *CHECKED, "--ignore-missing-imports",
         "--explicit-package-bases",
         "--python-version", "3.11", "--no-error-summary", "--follow-imports", "silent"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
