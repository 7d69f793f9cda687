"""Benchmark: what one assistant turn costs the web service itself, in CPU.

    .venv/app/bin/python -m bench.web_turn_cost [--chats 10] [--turns 30] [--label NAME]
                                                [--code OTHER_CHECKOUT]

Starts the web service as its own process on a temporary SQLite database, with an instant
stand-in for Rasa in this process, runs `chats` widget conversations of `turns` messages
each over real WebSockets, and reads the service's CPU seconds from /proc before and after.
CPU per turn holds on a busy machine where wall time does not, so it is the number to
compare a change by; `--code` measures another checkout's web service (a git worktree of
the commit before), so a before/after pair can alternate in one sitting. The whole-system
run is `python -m bench.load`.
Appends a line to bench/results/web_turn_cost.jsonl. Reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.load.systems import usage
from handoff.reports.catch_up import EVERY_SECONDS
from bench.widget_capacity import (
    RESULTS,
    ROOT,
    active_chat,
    fake_rasa,
    free_port,
    start_web_service,
    wait_healthy,
)


async def run(chats: int, turns: int, code: Path) -> dict[str, Any]:
    rasa = await fake_rasa()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_web_service(tmp, port, rasa,
                                   SUPPORT_WIDGET_NEW_CHATS_PER_MINUTE=str(2 * chats + 10),
                                   SUPPORT_WIDGET_MESSAGES_PER_MINUTE="10000",
                                   PYTHONPATH=str(code))
        url = f"ws://127.0.0.1:{port}/widget/ws"
        try:
            async with aiohttp.ClientSession() as http:
                await wait_healthy(http, port)
                await active_chat(http, url, 3)  # warm-up: imports, first connections
                cpu_before, _ = usage(server.pid)
                started = time.perf_counter()
                done = await asyncio.gather(*(active_chat(http, url, turns) for _ in range(chats)))
                elapsed = time.perf_counter() - started
                # background work these turns caused (the reports' catch-up runs every
                # EVERY_SECONDS) is part of their cost: wait one period before reading CPU
                await asyncio.sleep(EVERY_SECONDS + 0.5)
                cpu_after, rss = usage(server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
            await rasa.close()
    total = sum(len(chat) for chat in done)
    return {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "chats": chats, "turns": total, "seconds": round(elapsed, 2),
            "web_cpu_ms_per_turn": round((cpu_after - cpu_before) / total * 1000, 2),
            # with --chats 1: what the web service alone adds to one customer's turn
            "turn_ms_p50": round(statistics.median(x for chat in done for x in chat), 2),
            "rss_mb": round(rss / 2**20), "load_average_1m": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=10)
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--label", default="", help="what this run measures (e.g. a commit)")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose web service is measured (default: this one)")
    args = parser.parse_args()
    result = {"label": args.label, "code": str(args.code),
              **asyncio.run(run(args.chats, args.turns, args.code.resolve()))}
    RESULTS.mkdir(exist_ok=True)
    with (RESULTS / "web_turn_cost.jsonl").open("a") as out:
        out.write(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
