"""Driving the product under load: customers on the widget and WhatsApp, agents on the
console, one load level at a time (used by `python -m bench.load` and bench/load/faults.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import os
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
from sqlalchemy import text

from bench.load import customers as c
from bench.load.orders import with_order
from bench.load.systems import ADMIN_EMAIL, ADMIN_PASSWORD, WHATSAPP, System
from handoff.db import create_engine

AGENTS = 3
# One numbering for every product driven in a run: the WhatsApp fake is shared, so two
# systems must never use the same customer number (nor the same follow-up text).
SERIALS = itertools.count(1)
PERSON_PACED = {"handoff_to_agent_reply", "customer_to_agent_screen", "to_agent"}


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return {"n": len(ordered), "p50_ms": round(pick(0.5), 1), "p95_ms": round(pick(0.95), 1),
            "p99_ms": round(pick(0.99), 1), "mean_ms": round(statistics.fmean(ordered), 1)}


class FullSystemLoad:
    """Customers on the widget and WhatsApp, agents on the console, of the product (one
    `./assistant up`, or `./assistant cluster` through its nginx)."""

    def __init__(self, system: System, graph: c.FakeGraph) -> None:
        self.system, self.graph = system, graph
        self.sent_at: dict[str, float] = {}  # shared with the agents: text -> sent at
        self.whatsapp: list[c.WhatsAppCustomer] = []

    async def setup(self) -> None:
        base = self.system.web_url
        self.graph.webhooks[self.system.whatsapp_phone] = (f"{base}/webhooks/whatsapp",
                                                           self.system.graph_secret)
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
        serial = next(SERIALS)
        if index % 5 == 4:
            await self._whatsapp(http, index, serial, name, turns, record)
            return
        customer = c.WidgetCustomer(http, self.system.web_url, record)
        if record.timeline is not None:
            customer.log = record.timeline[index]
        await customer.open()
        try:
            for turn in turns:
                started = time.perf_counter()
                record.turn(turn.kind, await customer.say(turn))
                record.answered[index].append((started, time.perf_counter(),
                                               customer.last_answered_by))
                if answers is not None:
                    answers[turn.text] = [a[:160] for a in customer.last_replies]
            if name == "human":
                try:
                    greeting = await customer.wait_for(
                        lambda m: m["author"] == "agent" and m["text"] == c.AGENT_GREETING)
                except (asyncio.TimeoutError, c.TurnFailed):
                    record.no_person_came.append(customer.conversation_id)  # diagnosed later
                    raise
                record.turn("handoff_to_agent_reply", customer.arrived[greeting["id"]] - started)
                follow = c.Turn("to_agent", f"{c.HUMAN_FOLLOW_UP.text} ({serial})")
                self.sent_at[follow.text] = time.perf_counter()
                record.turn("to_agent", await customer.say(follow))
                await customer.wait_for(
                    lambda m: (m.get("payload") or {}).get("resolved") is not None
                    or m["text"] == c.AGENT_CLOSING)
                record.answered[index].append((self.sent_at[follow.text], time.perf_counter(),
                                               "agent"))
            await customer.check_and_close()
        finally:
            await customer.close()

    async def _whatsapp(self, http: aiohttp.ClientSession, index: int, serial: int, name: str,
                        turns: list[c.Turn], record: c.Record) -> None:
        number = f"9725{serial:08d}"
        customer = c.WhatsAppCustomer(http, self.system.web_url, WHATSAPP[
            "SUPPORT_WHATSAPP_APP_SECRET"], self.graph, number, record)
        self.whatsapp.append(customer)
        if record.timeline is not None:
            self.graph.logs[number] = record.timeline[index]
        for turn in turns:
            started = time.perf_counter()
            await customer.say(turn)
            record.answered[index].append((started, time.perf_counter(),
                                           customer.last_answered_by))
        if name == "human":
            at = await customer.wait_text(c.AGENT_GREETING)
            record.turn("handoff_to_agent_reply", at - started)
            follow = c.Turn("to_agent", f"{c.HUMAN_FOLLOW_UP.text} ({serial})")
            self.sent_at[follow.text] = time.perf_counter()
            await customer.say(follow)
            await customer.wait_text(c.AGENT_CLOSING)
            record.answered[index].append((self.sent_at[follow.text], time.perf_counter(),
                                           "agent"))

    async def knowledge_answers(self, after_id: int = 0) -> tuple[int, dict[str, int]]:
        """(last event id, counts) of the knowledge answers stored since `after_id`: how many
        Rasa gave and how many were given again without it (handoff/repeat_answers.py)."""
        engine = create_engine(self.system.database_url, pool_size=1)
        counts = {"from_rasa": 0, "repeated": 0}
        try:
            async with engine.connect() as db:
                rows = (await db.execute(text(
                    "SELECT id, data FROM conversation_events "
                    "WHERE type = 'message_understood' AND id > :after"),
                    {"after": after_id})).all()
        finally:
            await engine.dispose()
        for event_id, data in rows:
            data = json.loads(data) if isinstance(data, str) else data or {}
            after_id = max(after_id, event_id)
            if data.get("answered_by") == "knowledge":
                counts["repeated" if data.get("repeated") else "from_rasa"] += 1
        return after_id, counts

    async def whatsapp_check(self, record: c.Record, settle_seconds: float = 60) -> None:
        """Latency to the last reply and exactly-once, from the stored record and the fake's.

        The outbox may still be sending, or recording what it sent, when the customers stop:
        the check is repeated (at most `settle_seconds`) until it finds nothing missing or
        unrecorded, and what it finds then is reported.
        """
        engine = create_engine(self.system.database_url, pool_size=1)
        deadline = time.perf_counter() + settle_seconds
        try:
            while True:
                found = c.Record()
                async with engine.connect() as db:
                    for customer in self.whatsapp:
                        rows = (await db.execute(text(
                            "SELECT m.id, m.message_type, m.source_id, m.reply_to_id, d.status, "
                            "d.provider_message_id FROM messages m JOIN channel_identities ci "
                            "ON ci.conversation_id = m.conversation_id "
                            "AND ci.channel = 'whatsapp' "
                            "LEFT JOIN deliveries d ON d.message_id = m.id "
                            "WHERE ci.external_id = :number"),
                            {"number": customer.number})).all()
                        self._check_whatsapp_customer(customer, rows, found)
                if not (found.lost or found.duplicated) or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(1)
        finally:
            await engine.dispose()
        for kind, samples in found.latencies.items():
            record.latencies[kind] += samples
        record.turns += found.turns
        record.lost += found.lost
        record.duplicated += found.duplicated
        self.whatsapp.clear()
        self.graph.logs.clear()

    def _check_whatsapp_customer(self, customer: c.WhatsAppCustomer, rows: Any,
                                 record: c.Record) -> None:
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
            arrived = [at for at in replies if at is not None]
            if replies and len(arrived) == len(replies):
                record.turn(f"whatsapp:{kind}", max(arrived) - sent)
        delivered = {r[5] for r in rows if r[5]}
        for row in rows:
            if row[4] == "pending" or row[4] == "failed":
                record.lost.append(f"whatsapp {customer.number}: message {row[0]} {row[4]}")
        for wamid in arrivals:
            if wamid not in delivered:
                record.duplicated.append(f"whatsapp {customer.number}: {wamid} arrived but "
                                         "is no stored delivery (sent twice?)")


async def run_level(system: System, level: int, duration: float, full: FullSystemLoad | None,
                    during: Callable[[c.Record], Coroutine[Any, Any, dict[str, Any]]] | None = None,
                    ) -> dict[str, Any]:
    """N customers for `duration` seconds; `during` runs beside them (a fault run's faults)
    and what it returns is reported under "during"."""
    record = c.Record()
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300))
    agents = await full.start_agents(record) if full else []
    before = system.usage()
    answers_from = (await full.knowledge_answers())[0] if full else 0
    pool = system.refund_orders
    orders_before = (pool.fresh, pool.reused) if pool is not None else (0, 0)
    started = time.perf_counter()
    deadline = started + duration
    beside = asyncio.create_task(during(record)) if during is not None else None

    async def customer(index: int) -> None:
        for name, script in c.script_order(index + level * 1000, 10_000):
            if time.perf_counter() > deadline:
                return
            turns = with_order(script, pool)
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
    load_average = os.getloadavg()
    beside_result = await beside if beside is not None else None
    system.refresh_pids()
    after = system.usage()
    if full is not None:
        await full.whatsapp_check(record)
    knowledge = (await full.knowledge_answers(answers_from))[1] if full else None
    idle_closed = sum(agent.idle_closed for agent in agents)
    seats = [agent.seats() for agent in agents]
    no_person_came = [await diagnose(agents[0], conversation_id, started)
                      for conversation_id in record.no_person_came] if agents else []
    for agent in agents:
        await agent.close()
    await http.close()
    # a process restarted during the level counts from zero: its CPU is what it used since
    cpu = {name: after[name][0] - (before[name][0] if before[name][0] <= after[name][0] else 0)
           for name in after}
    return {
        "customers": level, "seconds": round(elapsed, 1), "conversations": record.conversations,
        "load_average_1_5_15": [round(x, 2) for x in load_average],
        "reconnects": record.reconnects, "resent": record.resent,
        "repeated_after_reconnect": record.repeated_after_reconnect,
        "agent_chats_closed_idle": idle_closed,
        **({"agents_at_end": seats} if seats else {}),
        **({"no_person_came": no_person_came} if no_person_came else {}),
        **({"knowledge_answers": knowledge} if knowledge is not None else {}),
        **({"refund_orders": {"fresh": pool.fresh - orders_before[0],
                              "reused": pool.reused - orders_before[1]}} if pool else {}),
        **({"during": beside_result} if beside is not None else {}),
        "turns": record.turns, "turns_per_second": round(record.turns / elapsed, 2),
        "latency": {kind: percentiles(samples) for kind, samples in sorted(record.latencies.items())},
        # every assistant turn (what a person answers is paced by the simulated agents)
        "assistant_turns": percentiles([x for kind, samples in record.latencies.items()
                                        if kind not in PERSON_PACED for x in samples]),
        "errors": dict(record.errors), "lost": record.lost, "duplicated": record.duplicated,
        "rate_limited": record.rate_limited,
        "rss_mb": {name: round(after[name][1] / 2**20) for name in after},
        "rss_mb_at_start": {name: round(before[name][1] / 2**20) for name in before},
        "cpu_seconds_per_1000_turns": {
            name: round(seconds / max(record.turns, 1) * 1000, 1) for name, seconds in cpu.items()},
    }


async def diagnose(agent: c.Agent, conversation_id: str, started: float) -> dict[str, Any]:
    """Where a customer who asked for a person and met nobody stood at the end: status,
    assignee and the conversation's events (seconds from the level's start)."""
    try:
        found = await agent.conversation(conversation_id)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        return {"conversation": conversation_id, "error": repr(exc)}
    offset = time.time() - (time.perf_counter() - started)  # wall clock of the level's start
    return {"conversation": conversation_id, "status": found.get("status"),
            "assignee": found.get("assignee_id"),
            "events": [f"{dt.datetime.fromisoformat(e['at']).timestamp() - offset:.0f}s "
                       f"{e['type']}" for e in found.get("events", [])][-12:],
            **({"error": found["error"]} if "error" in found else {})}


async def warm_up(system: System, full: FullSystemLoad | None) -> dict[str, list[str]]:
    """One conversation of each kind, not recorded: models load lazily on first use.

    Returns what each turn was answered, so the report shows the systems did the same work.
    """
    record = c.Record()
    http = aiohttp.ClientSession()
    agents = await full.start_agents(record) if full else []
    answers: dict[str, list[str]] = {}
    for name, _, script in c.SCRIPTS:
        turns = with_order(script, None)
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
