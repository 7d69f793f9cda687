"""What the console benchmarks share: the web service in-process with one agent logged in
over HTTP, and timing a GET (wall and this process's CPU per request). Asserts nothing about
speed; only that each request succeeded."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from handoff.app import create_app
from handoff.appkeys import AGENTS
from handoff.config import Settings

PASSWORD = "bench-password-1"


@asynccontextmanager
async def logged_in(database_url: str, email: str, role: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP session of `email` (created with `role` if missing) on the web service, which
    runs in this process on `database_url` with no assistant."""
    settings = Settings(database_url=database_url, rasa_url="http://127.0.0.1:1",
                        rasa_token="bench", action_server_url="http://127.0.0.1:1",
                        admin_password=PASSWORD)
    server = TestServer(create_app(settings))
    await server.start_server()
    try:
        agents = server.app[AGENTS]
        if not any(a.email == email for a in await agents.all()):
            await agents.create(email, role.title(), PASSWORD, role=role)
        async with aiohttp.ClientSession(base_url=str(server.make_url("")),
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            login = await http.post("/console/api/login", json={"email": email, "password": PASSWORD})
            assert login.status == 200, await login.text()
            yield http
    finally:
        await server.close()


async def time_get(http: aiohttp.ClientSession, path: str,
                   runs: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last answer and the timings of `runs` GETs after two warm-up ones."""
    body: dict[str, Any] = {}
    for _ in range(2):  # warm-up: connection pool, page cache
        body = await (await http.get(path)).json()
    times, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        response = await http.get(path)
        body = await response.json()
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
        assert response.status == 200, body
    times.sort()
    cpu.sort()
    p95 = max(0, round(0.95 * runs) - 1)
    return body, {"runs": runs, "p50_ms": round(statistics.median(times), 1),
                  "p95_ms": round(times[p95], 1), "max_ms": round(times[-1], 1),
                  # CPU this process used (SQLite runs in it; PostgreSQL's own is not counted):
                  # what a request costs when it does not wait for a busy machine's cores
                  "cpu_p50_ms": round(statistics.median(cpu), 1),
                  "cpu_p95_ms": round(cpu[p95], 1)}
