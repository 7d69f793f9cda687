"""CSV cells a spreadsheet shows as text: every CSV the console serves (reports, audit trail)
holds text customers or agents wrote, and a cell starting like a formula would be run."""

from __future__ import annotations

from typing import Any

# A spreadsheet runs a cell starting with one of these as a formula.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value for a CSV cell: text that starts like a formula is quoted, None is empty."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return "" if value is None else value
