"""Benchmark: loading the managers' dashboard over a synthetic year of support.

    .venv/app/bin/python bench/reports_bench.py [--conversations 100000] [--messages 1000000]
        [--runs 20] [--databases sqlite,postgres] [--postgres-url ...] [--workdir var/bench-reports]

Fills a SQLite file and a PostgreSQL database (once; a filled store of the same size is
reused) with bench/report_history.py, starts the web service in-process on each, logs a
manager in over HTTP and times GET /console/api/reports for the last 30 days and for the
whole year: the full request (auth, every SQL aggregate, JSON). The history is written in
bulk (no ORM), so the reports' projection is then rebuilt from it, as migration 0008 does
for a store upgrading (timed). Also records the query plans of the report's queries (per-day
sums, tallies of the edges, a median, the daily table). Writes bench/results/reports.{json,md}.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.console_http import logged_in, time_get  # noqa: E402
from bench.report_history import fill  # noqa: E402
from handoff import migrate  # noqa: E402
from handoff.conversations.models import Conversation  # noqa: E402
from handoff.db import create_engine  # noqa: E402
from handoff.reports.metrics import daily_query, median_query, tally_queries  # noqa: E402
from handoff.reports.projection import rebuild  # noqa: E402
from handoff.reports.range import ReportRange  # noqa: E402

RESULTS = ROOT / "bench" / "results"
END = datetime(2026, 11, 1, tzinfo=timezone.utc)
TARGET_MS = 300


async def ensure_filled(url: str, conversations: int, messages: int) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            have = (await connection.execute(select(func.count()).select_from(Conversation))).scalar()
        if have == conversations:
            return {"filled": "reused", "conversations": have}
        if have:
            raise SystemExit(f"{url} holds {have} conversations, not {conversations}: empty it first")
        started = time.perf_counter()
        counts: dict[str, float] = {**await fill(engine, conversations, messages, END)}
        filled = time.perf_counter()
        async with engine.begin() as connection:
            await connection.run_sync(rebuild)
        counts["projection_rebuild_seconds"] = round(time.perf_counter() - filled, 1)
        if url.startswith("postgresql"):
            async with engine.connect() as connection:
                await connection.execute(text("COMMIT"))
                await connection.execute(text("VACUUM ANALYZE"))
        else:
            async with engine.begin() as connection:
                await connection.execute(text("ANALYZE"))
        return {"filled_seconds": round(time.perf_counter() - started, 1), **counts}
    finally:
        await engine.dispose()


async def plans(url: str, r: ReportRange) -> dict[str, list[str]]:
    """The database's plan for each query of an unfiltered report over `r`."""
    engine = create_engine(url)
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    queries = {f"tallies_{i}": q for i, q in enumerate(tally_queries(r))}
    queries["median_queue_wait"] = median_query(r, "clock", "queue_wait", 30_000)
    queries["daily"] = daily_query(dialect, r)
    found: dict[str, list[str]] = {}
    try:
        async with engine.connect() as connection:
            for name, query in queries.items():
                compiled = query.compile(connection.engine, compile_kwargs={"literal_binds": True})
                prefix = "EXPLAIN " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
                rows = await connection.execute(text(prefix + str(compiled)))
                found[name] = [" | ".join(str(c) for c in row) for row in rows]
    finally:
        await engine.dispose()
    return found


async def time_dashboard(url: str, runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    async with logged_in(url, "manager@bench.example", "manager") as http:
        last = (END - timedelta(seconds=1)).date()
        month, year = last - timedelta(days=29), last - timedelta(days=364)
        # the dashboard as it opens (unfiltered), and filtered by a channel: a filtered
        # report sums the tallies of its conversations instead of the per-day sums
        ranges = {"30_days": (month, ""), "whole_year": (year, ""),
                  "30_days_widget": (month, "&channel=widget"),
                  "whole_year_widget": (year, "&channel=widget")}
        for name, (first, slice_) in ranges.items():
            body, timing = await time_get(
                http, f"/console/api/reports?from={first}&to={last}{slice_}", runs)
            results[name] = {"conversations": body["summary"]["conversations"], **timing}
            print(url.split(":")[0], name, results[name], flush=True)
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres-url",
                        default="postgresql+asyncpg://postgres@127.0.0.1:5432/reports_bench")
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench-reports"))
    parser.add_argument("--out", default="reports", help="results file name (without suffix)")
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite+aiosqlite:///{args.workdir}/reports-{args.conversations}.db",
            "postgres": args.postgres_url}
    report: dict[str, Any] = {"conversations": args.conversations, "messages": args.messages,
                              "load_average_at_start": os.getloadavg()[0],
                              "target_p95_ms": TARGET_MS, "databases": {}}
    last = (END - timedelta(seconds=1)).date()
    # the store's zone is UTC here; a zone such as Europe/Berlin adds two partial days (edges)
    year = ReportRange(last - timedelta(days=364), last, ZoneInfo("UTC"))
    for name in args.databases.split(","):
        url = urls[name]
        fill_info = await ensure_filled(url, args.conversations, args.messages)
        print(name, fill_info, flush=True)
        report["databases"][name] = {"store": fill_info, **await time_dashboard(url, args.runs),
                                     "plans_whole_year": await plans(url, year)}
    RESULTS.mkdir(exist_ok=True)
    report["load_average_at_end"] = os.getloadavg()[0]
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    lines = [f"# Reports dashboard load ({args.conversations} conversations, "
             f"~{args.messages} messages over a year; {date.today()})", "",
             f"Machine load average (1 min) at start {report['load_average_at_start']:.1f}, "
             f"at end {report['load_average_at_end']:.1f} (2 cores).", "",
             "| database | range | conversations in range | p50 ms | p95 ms | max ms | "
             "process CPU p50 / p95 ms | target p95 |",
             "|---|---|---|---|---|---|---|---|"]
    for name, found in report["databases"].items():
        for key in ("30_days", "whole_year", "30_days_widget", "whole_year_widget"):
            row = found[key]
            lines.append(f"| {name} | {key} | {row['conversations']} | {row['p50_ms']} | "
                         f"{row['p95_ms']} | {row['max_ms']} | {row['cpu_p50_ms']} / "
                         f"{row['cpu_p95_ms']} | < {TARGET_MS} ms |")
    for name, found in report["databases"].items():
        for query, plan in found["plans_whole_year"].items():
            lines += ["", f"## Plan: {query}, whole year, {name}", "", "```", *plan, "```"]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
