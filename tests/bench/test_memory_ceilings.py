"""The memory-ceilings benchmark still fills the tables the web service keeps."""

from __future__ import annotations

from bench.memory_ceilings import markdown, measure


def test_each_table_is_filled_and_its_ceiling_follows_from_its_bound() -> None:
    result = measure(300)
    limiter = result["tables"]["widget message limiter"]
    firsts = result["tables"]["reports' first-times known"]
    # a key string and a bucket per chat; two keys per conversation in the first-times table
    assert 100 < limiter["bytes_per_conversation"] < firsts["bytes_per_conversation"] < 2000
    assert firsts["full_after_conversations"] == 10_000
    assert result["bytes_per_conversation"] == (limiter["bytes_per_conversation"]
                                                + firsts["bytes_per_conversation"])
    assert "| widget message limiter |" in markdown(result)
