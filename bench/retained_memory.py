"""Benchmark: the memory the web service keeps per conversation once its bounded tables are full.

    .venv/app/bin/python -m bench.retained_memory [--conversations 2000]
        [--database postgresql://postgres@127.0.0.1:5432/retained_memory]
        [--redis redis://127.0.0.1:6379/5]

bench/memory_ceilings.py measures the two in-process tables that grow with every new
conversation up to a bound; this measures everything else. The real web service runs in this
process (Rasa played by an instant stand-in), with those two bounds set to a few dozen
entries so they are full from the start. `conversations` widget conversations of three turns,
ten at a time over real WebSockets, warm it up; then two more lots of `conversations`, with a
tracemalloc snapshot before and after each. What the second lot leaves behind, per
conversation, is memory that a long-running instance keeps adding: near zero is the aim, and
the lines that allocated it say where a table without a bound is. It found asyncpg's cache
of prepared statements filling with the reports' IN lists of every length: 176 bytes per
conversation before the fix and 31 after, in the same lots of 1,000 on PostgreSQL + Redis.
Lots of 1,000 can still catch the pool opening its last connections, each preparing its
statements (one run on the fixed code kept 172), so the default is 2,000: its second lot
kept 10 (bench/results/retained_memory-cluster.md). `--database` (recreated for the run) and
`--redis` measure the cluster's configuration; the default is a temporary SQLite file.
Results go to bench/results/retained_memory{,-LABEL}.{json,md}. Reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

import handoff.rate_limit
from handoff.rate_limit import FORGET_IDLE_ABOVE
import handoff.reports.projection
from bench.load.systems import fresh_databases
from bench.widget_capacity import RESULTS, active_chat, fake_rasa, free_port
from handoff.app import create_app
from handoff.channels import widget
from handoff.config import Settings, _database_url

SMALL_BOUND = 50  # entries: the bounded tables are full after a few dozen conversations
TOP_LINES = 12


async def conversations(http: aiohttp.ClientSession, url: str, count: int,
                        at_once: int = 10) -> float:
    started = time.monotonic()
    for first in range(0, count, at_once):
        await asyncio.gather(*(active_chat(http, url, turns=3)
                               for _ in range(min(at_once, count - first))))
    return time.monotonic() - started


def snapshot() -> tracemalloc.Snapshot:
    gc.collect()
    return tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)])


def retained(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot,
             count: int) -> dict[str, Any]:
    stats = after.compare_to(before, "lineno")
    total = sum(stat.size_diff for stat in stats)
    return {"bytes": total, "bytes_per_conversation": round(total / count),
            "top_lines": [{"line": str(stat.traceback[0]), "bytes": stat.size_diff,
                           "blocks": stat.count_diff} for stat in stats[:TOP_LINES]]}


async def measure(count: int, database: str | None, redis: str) -> dict[str, Any]:
    handoff.rate_limit.FORGET_IDLE_ABOVE = SMALL_BOUND  # read at each call
    firsts = handoff.reports.projection._FIRSTS_SET
    firsts._size = SMALL_BOUND
    try:
        return await _measure(count, database, redis)
    finally:
        handoff.rate_limit.FORGET_IDLE_ABOVE = FORGET_IDLE_ABOVE
        firsts._size = firsts.SIZE


async def _measure(count: int, database: str | None, redis: str) -> dict[str, Any]:
    rasa = await fake_rasa()
    with tempfile.TemporaryDirectory() as tmp:
        if database:
            await fresh_databases(database)
        port = free_port()
        settings = Settings(
            database_url=_database_url(database or f"sqlite:///{tmp}/retained.db"),
            rasa_url=str(rasa.make_url("")).rstrip("/"), rasa_token="bench",
            action_server_url="http://127.0.0.1:1", admin_password="bench-password-1",
            admin_password_file=Path(tmp) / "admin.txt", redis_url=redis, port=port,
            widget_new_chats_per_minute=10**6, widget_messages_per_minute=10**6)
        app = create_app(settings)
        for limiter in app[widget.LIMITS].values():
            # A bucket idle for 20 s carries no information and goes once the table is past
            # its bound; the lots run far faster than customers, so their clock runs 1000
            # times faster too, or the last 20 s of chats would all count as kept.
            limiter._clock = lambda: time.monotonic() * 1000
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        url = f"ws://127.0.0.1:{port}/widget/ws"
        try:
            async with aiohttp.ClientSession() as http:
                await conversations(http, url, count)  # pools, caches, the tables full
                tracemalloc.start()
                first = snapshot()
                seconds = [await conversations(http, url, count)]
                second = snapshot()
                seconds.append(await conversations(http, url, count))
                third = snapshot()
                tracemalloc.stop()
        finally:
            await runner.cleanup()
            await rasa.close()
    return {"conversations_per_lot": count, "database": "postgresql" if database else "sqlite",
            "redis": bool(redis), "seconds_per_lot": [round(s, 1) for s in seconds],
            "first_lot": retained(first, second, count),
            "second_lot": retained(second, third, count)}


def markdown(result: dict[str, Any]) -> str:
    setup = result["database"] + (" + Redis" if result["redis"] else "")
    lines = [f"# Memory the web service keeps per conversation ({setup})", "",
             f"Two lots of {result['conversations_per_lot']} widget conversations (three turns "
             "each) after as many to warm up, the bounded tables already full; tracemalloc. "
             "python -m bench.retained_memory.", ""]
    for lot in ("first_lot", "second_lot"):
        kept = result[lot]
        lines += [f"## {lot.replace('_', ' ')}: {kept['bytes']:,} bytes, "
                  f"{kept['bytes_per_conversation']} per conversation", "",
                  "| bytes | blocks | allocated at |", "|---|---|---|"]
        lines += [f"| {row['bytes']:,} | {row['blocks']} | `{row['line']}` |"
                  for row in kept["top_lines"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--database", default=None,
                        help="a PostgreSQL URL (the database is dropped and created)")
    parser.add_argument("--redis", default="")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    result = asyncio.run(measure(args.conversations, args.database, args.redis))
    name = "retained_memory" + (f"-{args.label}" if args.label else "")
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / f"{name}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
