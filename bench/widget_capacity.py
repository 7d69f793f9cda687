"""Benchmark: how many widget connections one web-service process holds, and at what memory.

    .venv/app/bin/python bench/widget_capacity.py [--idle 2000] [--active 100]

Starts the web service as its own process (SQLite, a stand-in for Rasa in this process),
opens `idle` widget chats that stay connected, then runs `active` conversations that each
send messages and wait for the answers, and reads the service's resident memory from /proc.
Also reports the widget script's gzipped size. Writes bench/results/widget_capacity.{json,md}.
Targets (issue): 2,000 idle + 100 active under 400 MB; widget.js under 30 kB gzipped.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def fake_rasa() -> TestServer:
    async def webhook(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"messages": [{"text": f"echo: {body['message']}"}],
                                  "intent": {"name": "greet", "confidence": 0.9}})

    app = web.Application()
    app.router.add_post("/webhooks/support/webhook", webhook)
    server = TestServer(app)
    await server.start_server()
    return server


def start_web_service(tmp: str, port: int, rasa: TestServer, **env: str) -> subprocess.Popen[bytes]:
    """The web service as its own process on a SQLite file in `tmp`, Rasa played by `rasa`."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp}/bench.db", "SUPPORT_PORT": str(port),
           "SUPPORT_RASA_URL": str(rasa.make_url("")).rstrip("/"), "SUPPORT_RASA_TOKEN": "bench",
           "SUPPORT_ADMIN_PASSWORD": "bench-password-1",
           "PYTHONPATH": str(ROOT),  # this checkout's code, not the editable install's
           **env}
    return subprocess.Popen([sys.executable, "-m", "handoff", "serve"], cwd=tmp, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_healthy(http: aiohttp.ClientSession, port: int) -> None:
    for _ in range(300):
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the web service did not start")


async def hello(http: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    socket_ = await http.ws_connect(url, heartbeat=None)
    await socket_.send_json({"type": "hello"})
    while (await socket_.receive_json(timeout=60))["type"] != "welcome":
        pass
    return socket_


async def active_chat(http: aiohttp.ClientSession, url: str, turns: int) -> list[float]:
    socket_ = await hello(http, url)
    latencies = []
    for turn in range(turns):
        started = time.perf_counter()
        await socket_.send_json({"type": "message", "text": f"hello {turn}", "client_message_id": f"t{turn}"})
        while True:
            frame = await socket_.receive_json(timeout=60)
            if frame["type"] == "message" and frame["message"]["author"] == "assistant":
                break
        latencies.append((time.perf_counter() - started) * 1000)
    await socket_.close()
    return latencies


async def run(idle: int, active: int, turns: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * idle + 1024)), hard))
    rasa = await fake_rasa()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_web_service(tmp, port, rasa, SUPPORT_WIDGET_NEW_CHATS_PER_MINUTE=str(idle + active + 10))
        url = f"ws://127.0.0.1:{port}/widget/ws"
        connector = aiohttp.TCPConnector(limit=0)
        try:
            async with aiohttp.ClientSession(connector=connector) as http:
                await wait_healthy(http, port)
                baseline = rss_mb(server.pid)
                started = time.perf_counter()
                sockets = []
                for batch in range(0, idle, 100):
                    sockets += await asyncio.gather(*(hello(http, url) for _ in range(min(100, idle - batch))))
                connect_s = time.perf_counter() - started
                after_idle = rss_mb(server.pid)
                chats = await asyncio.gather(*(active_chat(http, url, turns) for _ in range(active)))
                after_active = rss_mb(server.pid)
                latencies = sorted(x for chat in chats for x in chat)
                for socket_ in sockets:
                    await socket_.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
            await rasa.close()
    script = (ROOT / "web" / "widget" / "widget.js").read_bytes()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)
    return {"idle_connections": idle, "active_conversations": active, "turns_each": turns,
            "rss_mb": {"started": round(baseline, 1), "with_idle": round(after_idle, 1),
                       "with_idle_and_active": round(after_active, 1)},
            "connect_seconds": round(connect_s, 1),
            "active_turn_ms": {"p50": pick(0.5), "p95": pick(0.95), "p99": pick(0.99)},
            "widget_js_bytes": len(script), "widget_js_gzip_bytes": len(gzip.compress(script, 9))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--active", type=int, default=100)
    parser.add_argument("--turns", type=int, default=5)
    args = parser.parse_args()
    result = asyncio.run(run(args.idle, args.active, args.turns))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "widget_capacity.json").write_text(json.dumps(result, indent=2) + "\n")
    rss = result["rss_mb"]
    table = "\n".join([
        "# Widget capacity (one web-service process, SQLite)\n",
        "| measure | value | target |", "|---|---|---|",
        f"| resident memory at start | {rss['started']} MB | |",
        f"| with {args.idle} idle widget connections | {rss['with_idle']} MB | |",
        f"| plus {args.active} active conversations ({args.turns} turns each) | {rss['with_idle_and_active']} MB | < 400 MB |",
        f"| active turn (send -> assistant reply) p50 / p95 | {result['active_turn_ms']['p50']} / {result['active_turn_ms']['p95']} ms | |",
        f"| widget.js gzipped | {result['widget_js_gzip_bytes'] / 1024:.1f} kB ({result['widget_js_bytes'] / 1024:.1f} kB raw) | < 30 kB |",
    ])
    (RESULTS / "widget_capacity.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
