"""Load benchmark: the whole system under N simulated customers against bare Rasa, in one run.

    .venv/app/bin/python -m bench.load [--levels 1,10,50,100] [--duration 45]
                                       [--systems full,rasa-init,rasa-project] [--out DIR]

Starts each system with its own command (`./assistant up`; `rasa run` on the stock REST
channel for the baselines; see systems.py), then for each load level runs N customers for
`--duration` seconds, one system after the other, so a noisy machine weighs on all alike.
Customers run scripted conversations from a fixed mix (customers.py); on the full system one
customer in five is on WhatsApp and three simulated agents claim and answer handoffs.
Reports latency per turn type (send -> last reply), throughput, errors, lost and duplicated
messages, resident memory, CPU seconds per 1,000 turns and start-up time of every process.
Writes DIR/load.json, DIR/load.md and DIR/load.png (default bench/results). Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.load import customers as c
from bench.load import report
from bench.load.systems import (ADMIN_EMAIL, ADMIN_PASSWORD, WHATSAPP, System, baseline_model,
                                project_model, start_action_server, start_bare_rasa, start_full,
                                tf_threads_env, usage, variant)

AGENTS = 3
PERSON_PACED = {"handoff_to_agent_reply", "customer_to_agent_screen", "to_agent"}
RESULTS = Path(__file__).resolve().parents[1] / "results"


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(pick(0.5), 1), "p95_ms": round(pick(0.95), 1),
            "p99_ms": round(pick(0.99), 1), "mean_ms": round(statistics.fmean(ordered), 1)}


class FullSystemLoad:
    """Customers on the widget and WhatsApp, agents on the console, of one `./assistant up`."""

    def __init__(self, system: System, graph: c.FakeGraph) -> None:
        self.system, self.graph = system, graph
        self.sent_at: dict[str, float] = {}  # shared with the agents: text -> sent at
        self.whatsapp: list[c.WhatsAppCustomer] = []
        self._serial = 0

    async def setup(self) -> None:
        base = self.system.web_url
        admin = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        async with admin.post(f"{base}/console/api/login",
                              json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}) as r:
            csrf = (await r.json())["csrf_token"]
        for i in range(AGENTS - 1):
            async with admin.post(f"{base}/console/api/agents", headers={"X-CSRF-Token": csrf},
                                  json={"email": f"agent{i}@bench.local", "name": f"Agent {i}",
                                        "password": ADMIN_PASSWORD, "max_chats": 50}) as r:
                if r.status != 201:
                    raise RuntimeError(f"could not create an agent: {await r.text()}")
        async with admin.patch(f"{base}/console/api/agents/{await self._my_id(admin)}",
                               headers={"X-CSRF-Token": csrf}, json={"max_chats": 50}) as r:
            r.raise_for_status()
        await admin.close()
        self.agent_sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
                               for _ in range(AGENTS)]

    async def _my_id(self, session: aiohttp.ClientSession) -> str:
        async with session.get(f"{self.system.web_url}/console/api/me") as r:
            return str((await r.json())["agent"]["id"])

    async def start_agents(self, record: c.Record) -> list[c.Agent]:
        emails = [ADMIN_EMAIL] + [f"agent{i}@bench.local" for i in range(AGENTS - 1)]
        agents = []
        for session, email in zip(self.agent_sessions, emails, strict=True):
            agent = c.Agent(session, self.system.web_url, record)
            agent.sent_at = self.sent_at
            await agent.log_in(email, ADMIN_PASSWORD)
            agents.append(agent)
        return agents

    async def conversation(self, http: aiohttp.ClientSession, index: int, name: str,
                           turns: list[c.Turn], record: c.Record,
                           answers: dict[str, list[str]] | None = None) -> None:
        self._serial += 1
        if index % 5 == 4:
            await self._whatsapp(http, name, turns, record)
            return
        customer = c.WidgetCustomer(http, self.system.web_url, record)
        await customer.open()
        for turn in turns:
            started = time.perf_counter()
            record.turn(turn.kind, await customer.say(turn))
            if answers is not None:
                answers[turn.text] = [a[:160] for a in customer.last_replies]
        if name == "human":
            greeting = await customer.wait_for(
                lambda m: m["author"] == "agent" and m["text"] == c.AGENT_GREETING)
            record.turn("handoff_to_agent_reply", customer.arrived[greeting["id"]] - started)
            follow = c.Turn("to_agent", f"{c.HUMAN_FOLLOW_UP.text} ({self._serial})")
            self.sent_at[follow.text] = time.perf_counter()
            record.turn("to_agent", await customer.say(follow))
            await customer.wait_for(lambda m: (m.get("payload") or {}).get("resolved") is not None
                                    or m["text"] == c.AGENT_CLOSING)
        await customer.check_and_close()

    async def _whatsapp(self, http: aiohttp.ClientSession, name: str, turns: list[c.Turn],
                        record: c.Record) -> None:
        number = f"9725{self._serial:08d}"
        customer = c.WhatsAppCustomer(http, self.system.web_url, WHATSAPP[
            "SUPPORT_WHATSAPP_APP_SECRET"], self.graph, number, record)
        self.whatsapp.append(customer)
        for turn in turns:
            started = time.perf_counter()
            await customer.say(turn)
        if name == "human":
            at = await customer.wait_text(c.AGENT_GREETING)
            record.turn("handoff_to_agent_reply", at - started)
            follow = c.Turn("to_agent", f"{c.HUMAN_FOLLOW_UP.text} ({self._serial})")
            self.sent_at[follow.text] = time.perf_counter()
            await customer.say(follow)
            await customer.wait_text(c.AGENT_CLOSING)

    def whatsapp_check(self, record: c.Record) -> None:
        """Latency to the last reply and exactly-once, from the stored record and the fake's."""
        db = sqlite3.connect(f"file:{self.system.work / 'support.db'}?mode=ro", uri=True)
        for customer in self.whatsapp:
            rows = db.execute(
                "SELECT m.id, m.message_type, m.source_id, m.reply_to_id, d.status, "
                "d.provider_message_id FROM messages m JOIN channel_identities ci "
                "ON ci.conversation_id = m.conversation_id AND ci.channel = 'whatsapp' "
                "LEFT JOIN deliveries d ON d.message_id = m.id WHERE ci.external_id = ?",
                (customer.number,)).fetchall()
            arrivals = {wamid: at for at, wamid, _ in self.graph.arrivals[customer.number]}
            incoming = {r[2]: r[0] for r in rows if r[1] == "incoming"}
            for wamid, (sent, kind) in customer.sent.items():
                if wamid not in incoming:
                    record.lost.append(f"whatsapp {customer.number}: {wamid} never stored")
                    continue
                if kind == "to_agent":
                    record.turns += 1
                    continue
                replies = [arrivals.get(r[5] or "") for r in rows
                           if r[3] == incoming[wamid] and r[4] not in (None, "skipped")]
                if replies and all(replies):
                    record.turn(f"whatsapp:{kind}", max(replies) - sent)  # type: ignore[type-var]
            delivered = {r[5] for r in rows if r[5]}
            for row in rows:
                if row[4] == "pending" or row[4] == "failed":
                    record.lost.append(f"whatsapp {customer.number}: message {row[0]} {row[4]}")
            for wamid in arrivals:
                if wamid not in delivered:
                    record.duplicated.append(f"whatsapp {customer.number}: {wamid} arrived but "
                                             "is no stored delivery (sent twice?)")
        db.close()
        self.whatsapp.clear()


async def run_level(system: System, level: int, duration: float,
                    full: FullSystemLoad | None) -> dict[str, Any]:
    record = c.Record()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
    agents = await full.start_agents(record) if full else []
    before = system.usage()
    started = time.perf_counter()
    deadline = started + duration

    async def customer(index: int) -> None:
        for name, turns in c.script_order(index + level * 1000, 10_000):
            if time.perf_counter() > deadline:
                return
            try:
                if full is not None:
                    await full.conversation(http, index, name, turns, record)
                else:
                    rest = c.RestCustomer(http, system.rest_url)
                    for turn in turns:
                        record.turn(turn.kind, await rest.say(turn))
                    if name == "human":
                        record.turn("to_agent", await rest.say(c.HUMAN_FOLLOW_UP))
                record.conversations += 1
            except (c.TurnFailed, asyncio.TimeoutError, aiohttp.ClientError, KeyError) as exc:
                channel = "whatsapp" if full is not None and index % 5 == 4 else "widget/rest"
                record.errors[f"{name} on {channel}: {type(exc).__name__}: {exc}"[:160]] += 1

    await asyncio.gather(*(customer(i) for i in range(level)))
    elapsed = time.perf_counter() - started
    after = system.usage()
    if full is not None:
        await asyncio.sleep(2)  # let the outbox finish sending before the exactly-once check
        full.whatsapp_check(record)
    for agent in agents:
        await agent.close()
    await http.close()
    cpu = {name: after[name][0] - before[name][0] for name in after}
    return {
        "customers": level, "seconds": round(elapsed, 1), "conversations": record.conversations,
        "turns": record.turns, "turns_per_second": round(record.turns / elapsed, 2),
        "latency": {kind: percentiles(samples) for kind, samples in sorted(record.latencies.items())},
        # every assistant turn (what a person answers is paced by the simulated agents)
        "assistant_turns": percentiles([x for kind, samples in record.latencies.items()
                                        if kind not in PERSON_PACED for x in samples]),
        "errors": dict(record.errors), "lost": record.lost, "duplicated": record.duplicated,
        "rate_limited": record.rate_limited,
        "rss_mb": {name: round(after[name][1] / 2**20) for name in after},
        "cpu_seconds_per_1000_turns": {
            name: round(seconds / max(record.turns, 1) * 1000, 1) for name, seconds in cpu.items()},
    }


async def warm_up(system: System, full: FullSystemLoad | None) -> dict[str, list[str]]:
    """One conversation of each kind, not recorded: models load lazily on first use.

    Returns what each turn was answered, so the report shows the systems did the same work.
    """
    record = c.Record()
    http = aiohttp.ClientSession()
    agents = await full.start_agents(record) if full else []
    answers: dict[str, list[str]] = {}
    for name, _, turns in c.SCRIPTS:
        if full is not None:
            await full.conversation(http, 0, name, turns, record, answers)
        else:
            rest = c.RestCustomer(http, system.rest_url)
            for turn in turns:
                await rest.say(turn)
                answers[turn.text] = [a[:160] for a in rest.last_replies]
    if full is not None:
        full.whatsapp.clear()
    for agent in agents:
        await agent.close()
    await http.close()
    if record.errors:
        raise RuntimeError(f"{system.name} failed its warm-up: {dict(record.errors)}")
    return answers


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    graph = c.FakeGraph(WHATSAPP["SUPPORT_WHATSAPP_ACCESS_TOKEN"])
    runner, graph_url = await graph.start()
    systems: dict[str, System] = {}
    extra: list[Any] = []
    fulls: dict[str, FullSystemLoad] = {}
    loop = asyncio.get_running_loop()
    try:
        for name in args.systems:
            kind, threads = variant(name)
            if kind == "full":
                model = await loop.run_in_executor(None, project_model)
                (work / name).mkdir()
                systems[name] = await loop.run_in_executor(
                    None, start_full, work / name, model, graph_url, tf_threads_env(threads))
                fulls[name] = FullSystemLoad(systems[name], graph)
                await fulls[name].setup()
                continue
            if not extra:  # the baselines share one action server
                (work / "actions").mkdir()
                process, endpoint, action_seconds = await loop.run_in_executor(
                    None, start_action_server, work / "actions")
                extra.append(process)
            model = await loop.run_in_executor(
                None, project_model if kind == "rasa-project" else baseline_model)
            systems[name] = await loop.run_in_executor(
                None, start_bare_rasa, name, work / name, model, endpoint, threads)
        answers = {name: await warm_up(system, fulls.get(name)) for name, system in systems.items()}
        results: dict[str, Any] = {name: {"startup_seconds": s.startup_seconds, "levels": [],
                                          "answers": answers[name]}
                                   for name, s in systems.items()}
        for level in args.levels:
            for name, system in systems.items():
                print(f"==> {name}: {level} customers for {args.duration:.0f}s", flush=True)
                outcome = await run_level(system, level, args.duration, fulls.get(name))
                results[name]["levels"].append(outcome)
                print(json.dumps({k: outcome[k] for k in (
                    "turns_per_second", "errors", "lost", "duplicated")})[:600], flush=True)
        shared: dict[str, Any] = {}
        if extra:
            _, action_rss = usage(extra[0].pid)
            shared = {"rss_mb": round(action_rss / 2**20),
                      "startup_seconds": round(action_seconds, 1)}
        return {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count()}, "duration_seconds": args.duration,
                "levels": args.levels, "systems": results, "baseline_action_server": shared}
    finally:
        for full in fulls.values():
            for session in full.agent_sessions:
                await session.close()
        for system in systems.values():
            system.stop()
        for process in extra:
            process.terminate()
            process.wait(timeout=60)
        await runner.cleanup()


def systems_arg(value: str) -> list[str]:
    names = value.split(",")
    for name in names:
        try:
            kind, _ = variant(name)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
        if kind not in ("full", "rasa-init", "rasa-project"):
            raise argparse.ArgumentTypeError(f"unknown system {kind!r}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,10,50,100",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--systems", default="full,rasa-init,rasa-project", type=systems_arg,
                        help="any of full, rasa-init, rasa-project; NAME@tf1 runs NAME with "
                             "TensorFlow capped at one thread, next to the others")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="load", help="file name stem of the results")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.label}.md").write_text(report.markdown(result))
    report.chart(result, args.out / f"{args.label}.png")
    print(report.markdown(result))


if __name__ == "__main__":
    main()
