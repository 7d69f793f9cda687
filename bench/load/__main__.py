"""Load benchmark: the whole system under N simulated customers against bare Rasa, in one run.

    .venv/app/bin/python -m bench.load [--levels 1,10,50,100] [--duration 45]
                                       [--systems full,rasa-init,rasa-project] [--out DIR]
    # one instance against several (PostgreSQL + Redis), in the same run:
    .venv/app/bin/python -m bench.load --systems full,cluster --levels 50,100 --label cluster-load
    # a soak: steady load on the cluster for 30 minutes, every process sampled every 30 s
    .venv/app/bin/python -m bench.load --systems cluster --levels 10 --duration 1800 \
        --sample-every 30 --label cluster-soak    # (what is sampled and judged: soak.py)

Starts each system with its own command (`./assistant up`, `./assistant cluster`; `rasa run`
on the stock REST channel for the baselines; see systems.py), then for each load level runs
N customers for `--duration` seconds, one system after the other, so a noisy machine weighs
on all alike. Customers run scripted conversations from a fixed mix (customers.py); on the
product (full, cluster) one customer in five is on WhatsApp and three simulated agents claim
and answer handoffs. Reports latency per turn type (send -> last reply), throughput, errors,
lost and duplicated messages, resident memory, CPU seconds per 1,000 turns, the load average
and start-up time of every process. Writes DIR/LABEL.json, .md and .png (default
bench/results/load.*; with `--sample-every`, LABEL.png is the soak's chart). Asserts nothing.
Faults under load: bench/load/faults.py.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.load import customers as c
from bench.load import orders, report, soak
from bench.load.drive import FullSystemLoad, run_level, warm_up
from bench.load.systems import (
    WHATSAPP,
    System,
    baseline_model,
    project_model,
    start_action_server,
    start_bare_rasa,
    start_cluster,
    start_full,
    usage,
    variant,
)

RESULTS = Path(__file__).resolve().parents[1] / "results"
PRODUCT = ("full", "cluster")  # driven over the widget, WhatsApp and the console
CLUSTER_DATABASE = "postgresql://postgres@127.0.0.1:5432/bench_cluster"
CLUSTER_REDIS = "redis://127.0.0.1:6379/0"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    graph = c.FakeGraph(WHATSAPP["SUPPORT_WHATSAPP_ACCESS_TOKEN"], args.whatsapp_latency)
    runner, graph_url = await graph.start()
    systems: dict[str, System] = {}
    extra: list[Any] = []
    fulls: dict[str, FullSystemLoad] = {}
    loop = asyncio.get_running_loop()
    try:
        if {variant(name).kind for name in args.systems} & set(PRODUCT):
            model = await loop.run_in_executor(None, project_model)
        for name in args.systems:
            chosen = variant(name)
            kind = chosen.kind
            if kind in PRODUCT:
                (work / name).mkdir()
                if kind == "full":
                    systems[name] = await loop.run_in_executor(
                        None, start_full, work / name, model, graph_url, chosen.environment())
                else:
                    systems[name] = await loop.run_in_executor(
                        None, start_cluster, work / name, model, graph_url,
                        chosen.environment(), args.cluster_database, args.cluster_redis)
                fulls[name] = FullSystemLoad(systems[name], graph)
                await fulls[name].setup()
                continue
            if not extra:  # the baselines share one action server
                (work / "actions").mkdir()
                process, endpoint, action_seconds = await loop.run_in_executor(
                    None, start_action_server, work / "actions")
                extra.append(process)
            baseline = await loop.run_in_executor(
                None, project_model if kind == "rasa-project" else baseline_model)
            systems[name] = await loop.run_in_executor(
                None, start_bare_rasa, name, work / name, baseline, endpoint, chosen.threads)
            systems[name].shop_url = f"sqlite:///{work}/actions/shop.db"
        answers = {name: await warm_up(system, fulls.get(name)) for name, system in systems.items()}
        await orders.hand_out(systems.values(), len(args.levels) * args.duration)
        results: dict[str, Any] = {name: {"startup_seconds": s.startup_seconds, "levels": [],
                                          "answers": answers[name]}
                                   for name, s in systems.items()}
        for level in args.levels:
            for name, system in systems.items():
                print(f"==> {name}: {level} customers for {args.duration:.0f}s", flush=True)
                sampler = soak.sampling(system, args.sample_every, args.duration, soak.server_ports(
                    system, args.cluster_redis if variant(name).kind == "cluster" else None),
                ) if args.sample_every else None
                outcome = await run_level(system, level, args.duration, fulls.get(name), sampler)
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
                "whatsapp_latency_seconds": args.whatsapp_latency,
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
            kind = variant(name).kind
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc
        if kind not in (*PRODUCT, "rasa-init", "rasa-project"):
            raise argparse.ArgumentTypeError(f"unknown system {kind!r}")
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,10,50,100",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--systems", default="full,rasa-init,rasa-project", type=systems_arg,
                        help="any of full, cluster, rasa-init, rasa-project; NAME@tf1 runs NAME "
                             "with TensorFlow capped at one thread, NAME@norepeat the product "
                             "asking Rasa every message, next to the others")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="load", help="file name stem of the results")
    parser.add_argument("--whatsapp-latency", type=float, default=0.15, metavar="SECONDS",
                        help="how long the fake WhatsApp Cloud API takes to accept a send "
                             "(runs before 2026-12-06 used 0)")
    parser.add_argument("--cluster-database", default=CLUSTER_DATABASE,
                        help="PostgreSQL database the cluster uses; dropped and recreated "
                             "(with <db>_rasa) at the start of the run")
    parser.add_argument("--cluster-redis", default=CLUSTER_REDIS,
                        help="Redis the cluster uses (under a key prefix of the run's own)")
    parser.add_argument("--sample-every", type=float, default=0.0, metavar="SECONDS",
                        help="a soak: sample every process's memory, descriptors and "
                             "connections this often during each level (bench/load/soak.py)")
    parser.add_argument("--warm-up", type=float, default=300.0, metavar="SECONDS",
                        help="with --sample-every: growth is judged from this far into a level")
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    text = report.markdown(result)
    if args.sample_every:
        soak.summarise(result, args.warm_up)
        text += soak.markdown(result)
        soak.chart(result, args.out / f"{args.label}.png")
    else:
        report.chart(result, args.out / f"{args.label}.png")
    (args.out / f"{args.label}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{args.label}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
