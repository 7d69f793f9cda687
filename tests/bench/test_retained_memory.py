"""The retained-memory benchmark sees a table that grows with every conversation."""

from __future__ import annotations

from typing import Any

import pytest

import bench.retained_memory as retained_memory

CONVERSATIONS = 60


def limiter_bytes(result: dict[str, Any]) -> int:
    return sum(row["bytes"] for row in result["second_lot"]["top_lines"]
               if "handoff/rate_limit.py" in row["line"])


async def test_a_table_without_a_bound_shows_and_a_bounded_one_does_not(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The widget limiter keeps a bucket per chat window, some 90 bytes: out of reach of its
    # bound it keeps one per conversation, at a bound of 5 at most a handful.
    monkeypatch.setattr(retained_memory, "SMALL_BOUND", 10**6)
    unbounded = await retained_memory.measure(CONVERSATIONS, None, "")
    monkeypatch.setattr(retained_memory, "SMALL_BOUND", 5)
    bounded = await retained_memory.measure(CONVERSATIONS, None, "")
    assert limiter_bytes(unbounded) > CONVERSATIONS * 60, unbounded["second_lot"]["top_lines"]
    assert limiter_bytes(bounded) < CONVERSATIONS * 20, bounded["second_lot"]["top_lines"]
    assert "| bytes | blocks | allocated at |" in retained_memory.markdown(bounded)
