"""Several instances against one: N customers through the front door, nothing may be lost.

    .venv/app/bin/python -m bench.cluster_load [--levels 50,100] [--out bench/results]
    .venv/app/bin/python -m bench.cluster_load --systems cluster --soak 30 --levels 10

Starts a PostgreSQL and a Redis of its own (tests/throwaway.py), then, one after the other,
`./assistant up` on that PostgreSQL (one web service, one Rasa server) and `./assistant
cluster` (two web services behind nginx, two Rasa servers, an action server with two
workers). At each level N customers each hold a scripted order conversation over the HTTP
API (4 turns, resending a refused message with the same client_message_id). Reports turns
per second, latency per turn, refusals, and — read back from the database — messages lost
or stored twice. Writes OUT/cluster_load.json and OUT/cluster_load.md. Asserts nothing.
With --soak MINUTES each customer starts conversation after conversation until the time is
up (OUT/cluster_soak.*), and the resident memory of every process is taken before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import unused_port
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ["hi", "where is my order?", "#a10001", "anna.kowalski@example.com"]
TOKEN = "bench-token"


def start(command: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([str(ROOT / "assistant"), command], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 900
    while b"==> ready" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"./assistant {command} did not start; see {log}")
        time.sleep(0.5)
    return process


async def customer(http: aiohttp.ClientSession, url: str, latencies: list[float],
                   counts: dict[str, int]) -> tuple[str, str, list[str]]:
    async with http.post(f"{url}/api/conversations", json={"language": "en"}) as response:
        body = await response.json()
    cid, headers = body["id"], {"Authorization": f"Bearer {body['token']}"}
    for text in SCRIPT:
        client_id, began = uuid.uuid4().hex, time.monotonic()
        for _ in range(60):
            try:
                async with http.post(f"{url}/api/conversations/{cid}/messages", headers=headers,
                                     json={"text": text, "client_message_id": client_id}) as r:
                    if r.status == 200:
                        await r.read()
                        break
                    counts["refused"] += 1
            except aiohttp.ClientError:
                counts["dropped_connections"] += 1
            await asyncio.sleep(0.5)
        else:
            counts["gave_up"] += 1
        latencies.append(time.monotonic() - began)
    return cid, body["token"], SCRIPT


async def level(url: str, customers: int, soak_seconds: float = 0.0) -> dict[str, Any]:
    latencies: list[float] = []
    counts = {"refused": 0, "dropped_connections": 0, "gave_up": 0}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=0)) as http:
        began = time.monotonic()

        async def one() -> list[tuple[str, str, list[str]]]:
            done = [await customer(http, url, latencies, counts)]
            while time.monotonic() - began < soak_seconds:
                done.append(await customer(http, url, latencies, counts))
            return done
        results = [r for batch in await asyncio.gather(*(one() for _ in range(customers)))
                   for r in batch]
        seconds = time.monotonic() - began
        lost = doubled = 0
        for cid, token, sent in results:
            async with http.get(f"{url}/api/conversations/{cid}/messages",
                                headers={"Authorization": f"Bearer {token}"}) as r:
                stored = [m["text"] for m in (await r.json())["messages"]
                          if m["author"] == "customer"]
            lost += sum(1 for text in sent if text not in stored)
            doubled += len(stored) - len(set(stored))
    ordered = sorted(latencies)
    return {"customers": customers, "conversations": len(results), "turns": len(latencies), "seconds": round(seconds, 1),
            "turns_per_second": round(len(latencies) / seconds, 2),
            "p50_s": round(statistics.median(ordered), 2),
            "p95_s": round(ordered[int(len(ordered) * 0.95) - 1], 2),
            "lost": lost, "stored_twice": doubled, **counts}


def memory(run_dir: Path) -> dict[str, int]:
    """Resident MiB of each supervised process (with its children)."""
    sizes = {}
    for pid_file in run_dir.glob("*.pid"):
        pids = [int(pid_file.read_text())]
        for pid in list(pids):
            for task in Path(f"/proc/{pid}/task").glob("*"):
                pids += [int(c) for c in (task / "children").read_text().split()]
        total = 0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        sizes[pid_file.stem] = total // 1024
    return sizes


def run(mode: str, levels: list[int], work: Path, soak_seconds: float = 0.0) -> list[dict[str, Any]]:
    postgres, redis = ThrowawayPostgres(), ThrowawayRedis()
    postgres.start()
    redis.start()
    port = unused_port()
    env = {**os.environ, "DATABASE_URL": postgres.url, "SUPPORT_PORT": str(port),
           "SUPPORT_RASA_TOKEN": TOKEN, "SUPPORT_ADMIN_PASSWORD": "bench-admin-password",
           "SUPPORT_RUN_DIR": str(work / mode / "run"), "SUPPORT_LOG_DIR": str(work / mode / "log"),
           "SUPPORT_SHOP_DATABASE_URL": f"sqlite:///{work}/{mode}-shop.db",
           "SUPPORT_LINK_SECRET": "bench-link-secret-0123456789",
           "SUPPORT_RASA_PORT": str(unused_port()), "SUPPORT_ACTION_PORT": str(unused_port())}
    if mode == "cluster":
        env |= {"SUPPORT_REDIS_URL": redis.url,
                "SUPPORT_WEB_PORTS": f"{unused_port()},{unused_port()}",
                "SUPPORT_RASA_PORTS": f"{unused_port()},{unused_port()}"}
    (work / mode).mkdir(parents=True, exist_ok=True)
    process = start("cluster" if mode == "cluster" else "up", env, work / mode / "assistant.log")
    try:
        rows = []
        for n in levels:
            before = memory(work / mode / "run")
            row = asyncio.run(level(f"http://127.0.0.1:{port}", n, soak_seconds))
            rows.append({"system": mode, **row, **({"rss_mib_before": before,
                         "rss_mib_after": memory(work / mode / "run")} if soak_seconds else {})})
        return rows
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
        redis.stop()
        postgres.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster_load")
    parser.add_argument("--levels", default="50,100")
    parser.add_argument("--systems", default="single,cluster")
    parser.add_argument("--soak", type=float, default=0.0, help="minutes per level")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    with tempfile.TemporaryDirectory(prefix="cluster-load-") as tmp:
        rows = [row for mode in args.systems.split(",")
                for row in run(mode, levels, Path(tmp), args.soak * 60)]
    args.out.mkdir(parents=True, exist_ok=True)
    name = "cluster_soak" if args.soak else "cluster_load"
    (args.out / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
    columns = list(rows[0])
    table = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    table += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    (args.out / f"{name}.md").write_text(
        f"# One instance vs the cluster ({os.cpu_count()} CPUs)\n\n" + "\n".join(table) + "\n")
    print("\n".join(table))


if __name__ == "__main__":
    main()
