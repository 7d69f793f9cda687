"""Benchmark: the console's contact search over a large store.

    .venv/app/bin/python bench/contact_search_bench.py [--contacts 100000] [--runs 20]
        [--databases sqlite,postgres] [--postgres-url ...] [--workdir var/bench-contacts]

Fills a SQLite file and a PostgreSQL database (once; a filled store of the same size is
reused) with contacts named in Latin, Cyrillic, Hebrew and Arabic script, one conversation
each, WhatsApp numbers on a third and proven emails on a fifth; starts the web service
in-process, logs an agent in over HTTP and times GET /console/api/contacts for queries from
the best case (many matches: the first page is found early in index order) to the worst (no
match: every contact and identity is read), and a deep page by cursor. Reports wall time and
this process's CPU time per request, and the load average. Writes
bench/results/contact-search.{json,md} (or --out). Asserts nothing.
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
from urllib.parse import urlencode

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.console_http import logged_in, time_get  # noqa: E402
from handoff import migrate  # noqa: E402
from handoff.channels.messaging import ChannelIdentity  # noqa: E402
from handoff.contacts.folding import search_text  # noqa: E402
from handoff.contacts.models import ContactIdentity  # noqa: E402
from handoff.conversations.models import Contact, Conversation  # noqa: E402
from handoff.db import create_engine  # noqa: E402

RESULTS = ROOT / "bench" / "results"
START = datetime(2025, 11, 1, tzinfo=timezone.utc)
BATCH = 5000
GIVEN = ["Anna", "Mark", "Пётр", "Олена", "דנה", "יוסי", "ليلى", "محمد", "Straße", "Zoë"]
FAMILY = ["Kowalski", "Levi", "Иванов", "Шевченко", "כהן", "מזרחי", "حسن", "خليل", "Müller", "O'Neil"]


def contact_row(i: int) -> dict[str, Any]:
    name = f"{GIVEN[i % len(GIVEN)]} {FAMILY[(i // len(GIVEN)) % len(FAMILY)]}"
    email = f"customer{i}@example.com" if i % 2 else None
    phone = f"+9725{i:08d}" if i % 3 == 0 else None
    tags = ["vip"] if i % 10 == 0 else []
    return {"id": f"c{i:031d}", "name": name, "email": email, "phone": phone, "tags": tags,
            "created_at": START + timedelta(seconds=i * 300), "notes": None,
            "search_text": search_text(name, email, phone, tags)}


async def ensure_filled(url: str, contacts: int) -> dict[str, Any]:
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            have = (await connection.execute(select(func.count()).select_from(Contact))).scalar()
        if have == contacts:
            return {"filled": "reused", "contacts": have}
        if have:
            raise SystemExit(f"{url} holds {have} contacts, not {contacts}: empty it first")
        started = time.perf_counter()
        for first in range(0, contacts, BATCH):
            rows = [contact_row(i) for i in range(first, min(first + BATCH, contacts))]
            async with engine.begin() as connection:
                await connection.execute(insert(Contact), rows)
                await connection.execute(insert(Conversation), [
                    {"id": f"v{r['id'][1:]}", "contact_id": r["id"], "channel": "whatsapp",
                     "status": "resolved", "token_hash": "x" * 64, "created_at": r["created_at"],
                     "updated_at": r["created_at"], "last_message_at": r["created_at"],
                     "priority": 0, "required_skills": [], "survey_pending": False,
                     "nps_pending": False} for r in rows])
                await connection.execute(insert(ChannelIdentity), [
                    {"channel": "whatsapp", "external_id": f"9725{int(r['id'][1:]) + 50_000_000:08d}",
                     "conversation_id": f"v{r['id'][1:]}"} for r in rows if int(r["id"][1:]) % 3 == 1])
                await connection.execute(insert(ContactIdentity), [
                    {"contact_id": r["id"], "channel": "email", "external_id": r["email"],
                     "verified_at": r["created_at"], "created_at": r["created_at"]}
                    for r in rows if r["email"] and int(r["id"][1:]) % 5 == 1])
        return {"filled": "now", "contacts": contacts,
                "seconds": round(time.perf_counter() - started, 1)}
    finally:
        await engine.dispose()


def queries(contacts: int) -> dict[str, str]:
    """What an agent types, from many matches to none."""
    middle = contacts // 2 // 3 * 3  # a multiple of 3: it has a phone; the next one WhatsApp
    return {
        "common_name_upper_cyrillic": "ПЁТР",  # a tenth of all contacts: first page early
        "tag_vip": "vip",
        "one_email": f"customer{middle + 1}@example.com",
        "one_phone_national": f"05-{middle:08d}",  # stored as +9725<digits>
        "one_whatsapp_number": f"9725{middle + 1 + 50_000_000:08d}",
        "no_match_full_scan": "nobody-like-this",
    }


async def time_search(url: str, contacts: int, runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}

    async def timed(name: str, path: str) -> None:
        body, timing = await time_get(http, path, runs)
        results[name] = {"found_on_page": len(body["contacts"]),
                         "more_pages": body["next_cursor"] is not None, **timing}
        print(url.split(":")[0], name, results[name], flush=True)

    async with logged_in(url, "agent@bench.example", "agent") as http:
        for name, words in queries(contacts).items():
            await timed(name, f"/console/api/contacts?{urlencode({'q': words})}")
        cursor = None  # the fifth page of a common name: four pages walked first
        for _ in range(4):
            page = await (await http.get("/console/api/contacts?" + urlencode(
                {"q": "ПЁТР", **({"cursor": cursor} if cursor else {})}))).json()
            cursor = page["next_cursor"]
        await timed("fifth_page_by_cursor",
                    "/console/api/contacts?" + urlencode({"q": "ПЁТР", "cursor": cursor}))
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres-url",
                        default="postgresql+asyncpg://postgres@127.0.0.1:5432/contacts_bench")
    parser.add_argument("--workdir", default=str(ROOT / "var" / "bench-contacts"))
    parser.add_argument("--out", default="contact-search", help="results file name (without suffix)")
    args = parser.parse_args()
    urls = {"sqlite": f"sqlite+aiosqlite:///{args.workdir}/contacts-{args.contacts}.db",
            "postgres": args.postgres_url}
    report: dict[str, Any] = {"contacts": args.contacts,
                              "load_average_at_start": os.getloadavg()[0], "databases": {}}
    for name in args.databases.split(","):
        fill_info = await ensure_filled(urls[name], args.contacts)
        print(name, fill_info, flush=True)
        report["databases"][name] = {"store": fill_info,
                                     **await time_search(urls[name], args.contacts, args.runs)}
    report["load_average_at_end"] = os.getloadavg()[0]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    lines = [f"# Contact search ({args.contacts} contacts, as many conversations; {date.today()})", "",
             (f"Machine load average (1 min) at start {report['load_average_at_start']:.1f}, "
              f"at end {report['load_average_at_end']:.1f} (2 cores, other work running)."), "",
             ("| database | query | rows on the page | more pages | p50 ms | p95 ms | "
              "process CPU p50 / p95 ms |"), "|---|---|---|---|---|---|---|"]
    for name, found in report["databases"].items():
        for key, row in found.items():
            if key == "store":
                continue
            lines.append(f"| {name} | {key} | {row['found_on_page']} | {row['more_pages']} | "
                         f"{row['p50_ms']} | {row['p95_ms']} | {row['cpu_p50_ms']} / {row['cpu_p95_ms']} |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
