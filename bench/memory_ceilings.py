"""Benchmark: how much memory the web service's in-process tables take when they are full.

    .venv/app/bin/python -m bench.memory_ceilings [--conversations 4000]

Every soak showed the web services growing about 1 MB per 10 minutes. The service keeps
two tables per conversation in memory, each with a bound: the widget's message limiter (a
bucket per chat window, idle ones dropped once there are 10,000) and the reports' "first
... at" times known to be set (20,000 keys, two or three per conversation). Until they are
full they grow with every new conversation. (The repeated answers, 1,024 at most, are kept
per question, not per conversation, and the per-conversation locks and sending lanes are
dropped when their turn or send ends.) This
fills each the way a turn does and measures, with tracemalloc, the bytes per conversation
and the bytes when full, so a soak's growth can be set against them: growth that stops at
the ceiling is these tables filling; growth past it is something else. Results go to
bench/results/memory_ceilings.{json,md}. Reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from handoff.rate_limit import FORGET_IDLE_ABOVE, RateLimiter
from handoff.reports.projection import _Firsts

RESULTS = Path(__file__).resolve().parent / "results"
FIRST_COLUMNS = ("first_customer_at", "first_assistant_reply_at")  # every assistant turn


def _bytes(fill: Callable[[Any, int], None], make: Callable[[], Any], count: int) -> int:
    """Bytes the table holds after `count` conversations, measured by tracemalloc."""
    gc.collect()
    tracemalloc.start()
    table = make()
    before = tracemalloc.get_traced_memory()[0]
    for k in range(count):
        fill(table, k)
    gc.collect()
    size = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del table
    return size


def _limiter_fill(limiter: RateLimiter, _k: int) -> None:
    limiter.retry_after(str(uuid.uuid4()))  # a chat window's key is its conversation id


def _firsts_fill(firsts: _Firsts, _k: int) -> None:
    cid = str(uuid.uuid4())
    firsts.add_all({(cid, column) for column in FIRST_COLUMNS})


def measure(conversations: int) -> dict[str, Any]:
    tables: dict[str, tuple[Callable[[], Any], Callable[[Any, int], None], int]] = {
        "widget message limiter": (lambda: RateLimiter(30, 60, burst=10), _limiter_fill,
                                   FORGET_IDLE_ABOVE),
        "reports' first-times known": (_Firsts, _firsts_fill,
                                       _Firsts.SIZE // len(FIRST_COLUMNS)),
    }
    out: dict[str, Any] = {"conversations": conversations, "tables": {}}
    for name, (make, fill, full_at) in tables.items():
        size = _bytes(fill, make, conversations)
        out["tables"][name] = {"bytes_per_conversation": round(size / conversations),
                               "full_after_conversations": full_at,
                               "mb_when_full": round(size / conversations * full_at / 2**20, 1)}
    out["mb_when_all_full"] = round(sum(t["mb_when_full"] for t in out["tables"].values()), 1)
    out["bytes_per_conversation"] = sum(t["bytes_per_conversation"]
                                        for t in out["tables"].values())
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Memory of the web service's in-process tables, full", "",
             f"Filled with {result['conversations']} conversations each (tracemalloc); "
             "python -m bench.memory_ceilings.", "",
             "| table | bytes per conversation | full after conversations | MB when full |",
             "|---|---|---|---|"]
    for name, row in result["tables"].items():
        lines.append(f"| {name} | {row['bytes_per_conversation']} | "
                     f"{row['full_after_conversations']:,} | {row['mb_when_full']} |")
    lines += ["", f"Together {result['bytes_per_conversation']} bytes per new conversation "
              f"until full, {result['mb_when_all_full']} MB at most."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=4000)
    args = parser.parse_args()
    result = measure(args.conversations)
    (RESULTS / "memory_ceilings.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / "memory_ceilings.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
