"""Benchmark: how fast a person's conversation feels, through the real web service.

    .venv/app/bin/python bench/handoff_latency.py [--rounds 200] [--agents 3]

Starts the web service in-process on a temporary SQLite database with a scripted stand-in
for Rasa (Rasa's own cost is measured in bench/ of the benchmarks issue), logs agents in
over HTTP and measures, over real sockets:
- escalation: customer message that hands off -> the queue event on every online agent's socket;
- customer -> agent: customer's POST -> the message event on the assigned agent's socket;
- agent -> customer: agent's POST -> the reply readable in the customer's transcript.
Writes bench/results/handoff_latency.{json,md}. Reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from handoff.app import create_app
from handoff.appkeys import AGENTS
from handoff.config import Settings

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "bench-token"
PASSWORD = "bench-password-1"


async def fake_rasa() -> TestServer:
    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        replies: list[dict[str, Any]] = [{"text": "ok"}]
        if "human" in body["message"]:
            replies = [{"custom": {"handoff": {"reason": "customer_request"}}}]
        return web.json_response({"messages": replies, "intent": {"name": "greet", "confidence": 0.9}})

    async def events(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/webhooks/support/webhook", webhook)
    app.router.add_post("/conversations/{cid}/tracker/events", events)
    server = TestServer(app)
    await server.start_server()
    return server


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"n": len(ordered), "p50_ms": round(pick(0.50), 2), "p95_ms": round(pick(0.95), 2),
            "p99_ms": round(pick(0.99), 2), "mean_ms": round(statistics.fmean(ordered), 2)}


async def wait_for(socket: aiohttp.ClientWebSocketResponse, kind: str, key: str, value: str) -> None:
    while True:
        event = await socket.receive_json(timeout=30)
        if event.get("type") == kind and (
            event.get(key) == value or (event.get("message") or {}).get(key) == value):
            return


async def run(rounds: int, agents: int) -> dict[str, Any]:
    rasa = await fake_rasa()
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp}/bench.db",
                            rasa_url=str(rasa.make_url("")).rstrip("/"), rasa_token=TOKEN,
                            action_server_url="http://127.0.0.1:9", admin_password=PASSWORD,
                            admin_password_file=Path(tmp) / "admin.txt")
        app = create_app(settings)
        server = TestServer(app)
        await server.start_server()
        base = str(server.make_url("")).rstrip("/")
        for i in range(agents - 1):
            await app[AGENTS].create(f"agent{i}@bench", f"Agent {i}", PASSWORD, max_chats=50)
        emails = ["admin@localhost"] + [f"agent{i}@bench" for i in range(agents - 1)]
        sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in emails]
        csrf = []
        for session, email in zip(sessions, emails, strict=True):
            async with session.post(f"{base}/console/api/login",
                                    json={"email": email, "password": PASSWORD}) as r:
                csrf.append((await r.json())["csrf_token"])
        sockets = [await s.ws_connect(f"{base}/console/ws") for s in sessions]
        customer = aiohttp.ClientSession()
        escalation, to_agent, to_customer = [], [], []
        try:
            for _ in range(rounds):
                async with customer.post(f"{base}/api/conversations", json={}) as r:
                    conv = await r.json()
                auth = {"Authorization": f"Bearer {conv['token']}"}
                cid = conv["id"]
                started = time.perf_counter()
                await customer.post(f"{base}/api/conversations/{cid}/messages",
                                    json={"text": "human please"}, headers=auth)
                await asyncio.gather(*(wait_for(s, "queue", "conversation_id", cid) for s in sockets))
                escalation.append((time.perf_counter() - started) * 1000)

                agent, socket = sessions[0], sockets[0]
                headers = {"X-CSRF-Token": csrf[0]}
                await agent.post(f"{base}/console/api/conversations/{cid}/claim", headers=headers)
                await socket.send_json({"type": "watch", "conversation_id": cid})
                await wait_for(socket, "watched", "conversation_id", cid)

                started = time.perf_counter()
                await customer.post(f"{base}/api/conversations/{cid}/messages",
                                    json={"text": "my parcel is lost"}, headers=auth)
                await wait_for(socket, "message", "text", "my parcel is lost")
                to_agent.append((time.perf_counter() - started) * 1000)

                started = time.perf_counter()
                await agent.post(f"{base}/console/api/conversations/{cid}/messages",
                                 json={"text": "on it"}, headers=headers)
                async with customer.get(f"{base}/api/conversations/{cid}/messages",
                                        headers=auth) as r:
                    assert any(m["text"] == "on it" for m in (await r.json())["messages"])
                to_customer.append((time.perf_counter() - started) * 1000)

                await agent.post(f"{base}/console/api/conversations/{cid}/resolve",
                                 json={"resolution_code": "answered"}, headers=headers)
                await socket.send_json({"type": "unwatch", "conversation_id": cid})
        finally:
            for socket in sockets:
                await socket.close()
            for session in [*sessions, customer]:
                await session.close()
            await server.close()
            await rasa.close()
    return {"rounds": rounds, "agents_online": agents, "database": "sqlite",
            "escalation_to_every_agent_queue": percentiles(escalation),
            "customer_to_agent_screen": percentiles(to_agent),
            "agent_to_customer": percentiles(to_customer)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--agents", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(run(args.rounds, args.agents))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "handoff_latency.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = ["| path | n | p50 ms | p95 ms | p99 ms | target (p95) |", "|---|---|---|---|---|---|"]
    targets = {"escalation_to_every_agent_queue": "< 200 ms", "customer_to_agent_screen": "< 50 ms",
               "agent_to_customer": "< 50 ms"}
    for key, target in targets.items():
        r = result[key]
        rows.append(f"| {key} | {r['n']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | {target} |")
    (RESULTS / "handoff_latency.md").write_text(
        f"# Handoff latency ({result['agents_online']} agents online, SQLite)\n\n" + "\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
