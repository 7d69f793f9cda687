"""A soak: steady load for a long while, every process of the system sampled as it runs.

    .venv/app/bin/python -m bench.load --systems cluster --levels 10 --duration 1800 \
        --sample-every 30 --label cluster-soak \
        [--warm-up 300] [--cluster-database postgresql://postgres@127.0.0.1:5432/soak_cluster]

With `--sample-every SECONDS` the load run (bench/load/__main__.py) looks at every process of
each system (`System.processes`: web-1, web-2, rasa-1, rasa-2, action-server and nginx for the
cluster), each with its children as in the load report's memory column, every SECONDS from
the start of each level to its end: resident memory, CPU seconds, open file descriptors
(/proc/PID/fd), the descriptors that are sockets, the sockets that are TCP connections (not
listening; by inode in /proc/net/tcp and tcp6) and of those the ones coming in to a port the
process listens on (nginx's and the customers'), the ones to PostgreSQL and the ones to
Redis; and, when the system is on PostgreSQL, the server's own count of connections to its
two databases (pg_stat_activity, the sampler's own left out). LABEL.json keeps every sample;
LABEL.md adds, per process, the value after warm-up against the value at the end, judged
against the targets of issue #10 (rules fixed before the first soak ran):

- *after warm-up* is the median of the first five samples taken `--warm-up` seconds (default
  300) or more into the level, *at the end* the median of the last five: one sample is one
  moment, and a socket open for one turn is there or not;
- resident memory: growth under 5 %;
- descriptors, sockets, TCP connections: growth of at most 5 (absolute, per process with its
  children) — the customers' own connections come and go, a leak of one per conversation
  (thousands of conversations in 30 minutes) does not hide under it;
- messages lost or duplicated: none (the load run's message-by-message checks).

Beside the rules, and judging nothing, each count's *trend*: the Theil-Sen slope of all its
samples after warm-up (the median of the slopes between every two samples, so a burst of
open sockets in a few samples does not tilt it) times the seconds those samples span. Two
windows of five samples see a pool of idle keep-alive connections at two moments; a leak
grows the whole way, and the trend shows which of the two a miss is.

LABEL.png draws memory, descriptors and TCP connections of each process over time.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.exc import SQLAlchemyError

from bench.load import customers as c
from bench.load.systems import System, usage
from handoff.db import create_engine
from tests.processes import tree

WINDOW = 5  # samples: the medians after warm-up and at the end
RSS_GROWTH_PERCENT = 5.0
COUNT_ALLOWANCE = 5
COUNTS = ("fds", "sockets", "tcp")  # judged by COUNT_ALLOWANCE; the tcp_* split is reported
TCP_LISTEN = "0A"


def server_ports(system: System, redis_url: str | None) -> dict[str, int]:
    """The ports of the system's PostgreSQL and Redis: its connections to them are counted."""
    ports = {}
    if system.database_url.startswith("postgresql"):
        ports["postgresql"] = make_url(system.database_url).port or 5432
    if redis_url:
        ports["redis"] = make_url(redis_url).port or 6379
    return ports


def tcp_connections() -> dict[int, tuple[int, int]]:
    """Socket inode -> (local port, remote port) of every TCP socket; a listening one has
    remote port 0."""
    found: dict[int, tuple[int, int]] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] != "0":
                local = int(fields[1].rsplit(":", 1)[1], 16)
                remote = 0 if fields[3] == TCP_LISTEN else int(fields[2].rsplit(":", 1)[1], 16)
                found[int(fields[9])] = (local, remote)
    return found


def descriptors(pids: list[int], tcp: dict[int, tuple[int, int]], ports: dict[str, int],
                ) -> dict[str, Any]:
    """Open descriptors of the processes, of which sockets, of which TCP connections (split
    into those coming in to a port the processes listen on and those to each server)."""
    fds, sockets, connected, listening = 0, 0, [], set()
    for pid in pids:
        try:
            entries = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for entry in entries:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{entry}")
            except OSError:
                continue  # closed since the listing
            fds += 1
            if target.startswith("socket:["):
                sockets += 1
                local, remote = tcp.get(int(target[8:-1]), (0, None))
                if remote == 0:
                    listening.add(local)
                elif remote is not None:
                    connected.append((local, remote))
    remote_ports = [remote for _, remote in connected]
    outgoing = Counter(remote for local, remote in connected if local not in listening)
    return {"fds": fds, "sockets": sockets, "tcp": len(connected),
            "tcp_incoming": sum(local in listening for local, _ in connected),
            **{f"tcp_{name}": remote_ports.count(port) for name, port in ports.items()},
            # kept in the JSON (not judged): which servers the outgoing connections go to
            "tcp_out_by_port": {str(port): n for port, n in sorted(outgoing.items())}}


def sample_processes(system: System, ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    system.refresh_pids()  # a restarted process is sampled under its new pid (and shows)
    tcp = tcp_connections()
    out = {}
    for name, pid in system.processes.items():
        cpu, rss = usage(pid)
        out[name] = {"pid": pid, "rss_mb": round(rss / 2**20, 1), "cpu_seconds": round(cpu, 1),
                     **descriptors(tree(pid), tcp, ports)}
    return out


async def server_connections(engine: Any, database: str) -> dict[str, int]:
    """PostgreSQL's count of connections to the service's and Rasa's database."""
    names = [database, f"{database}_rasa"]
    async with engine.connect() as db:
        rows = (await db.execute(text(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE datname = ANY(:names) "
            "AND pid <> pg_backend_pid() GROUP BY datname"), {"names": names})).all()
    counts = dict(rows)
    return {"service_db": int(counts.get(database, 0)), "rasa_db": int(counts.get(names[1], 0))}


def sampling(system: System, every: float, duration: float, ports: dict[str, int],
             ) -> Callable[[c.Record], Coroutine[Any, Any, dict[str, Any]]]:
    """What runs beside the customers of a level (drive.run_level's `during`): a sample at
    0, every, 2 × every, ... up to `duration` seconds."""

    async def during(record: c.Record) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        began = time.perf_counter()
        postgres = "postgresql" in ports
        engine = create_engine(system.database_url, pool_size=1) if postgres else None
        samples: list[dict[str, Any]] = []
        try:
            for k in range(int(duration // every) + 1):
                await asyncio.sleep(max(0.0, began + k * every - time.perf_counter()))
                processes = await loop.run_in_executor(None, sample_processes, system, ports)
                if engine is not None:
                    try:
                        processes["postgresql (server)"] = await server_connections(
                            engine, str(make_url(system.database_url).database))
                    except (SQLAlchemyError, OSError) as exc:  # in the sample; the soak goes on
                        processes["postgresql (server)"] = {"error": repr(exc)[:200]}
                samples.append({"t": round(time.perf_counter() - began, 1),
                                "load_1min": round(os.getloadavg()[0], 2),
                                "turns": record.turns, "errors": sum(record.errors.values()),
                                "processes": processes})
        finally:
            if engine is not None:
                await engine.dispose()
        return {"every_seconds": every, "samples": samples}

    return during


def _median(samples: list[dict[str, Any]], process: str, measure: str) -> float | None:
    values = [s["processes"].get(process, {}).get(measure) for s in samples]
    numbers = [v for v in values if isinstance(v, int | float)]
    return statistics.median(numbers) if numbers else None


def _trend(samples: list[dict[str, Any]], process: str, measure: str) -> float | None:
    """Theil-Sen slope of the measure over the samples, times the seconds they span."""
    points = [(s["t"], v) for s in samples
              if isinstance(v := s["processes"].get(process, {}).get(measure), int | float)]
    slopes = [(v2 - v1) / (t2 - t1) for (t1, v1), (t2, v2) in combinations(points, 2) if t2 > t1]
    if not slopes:
        return None
    return round(statistics.median(slopes) * (points[-1][0] - points[0][0]), 1)


def summary(level: dict[str, Any], warm_up: float) -> dict[str, Any]:
    """Per process and measure: after warm-up, at the end, growth and whether it is within
    the target (see the module's docstring for the rules)."""
    samples = level["during"]["samples"]
    after = [s for s in samples if s["t"] >= warm_up]
    first, last = after[:WINDOW], after[-WINDOW:]
    processes: dict[str, Any] = {}
    names = dict.fromkeys(name for s in samples for name in s["processes"])
    for name in names:
        measures = dict.fromkeys(m for s in samples for m, v in s["processes"].get(name, {}).items()
                                 if m not in ("pid", "cpu_seconds") and isinstance(v, int | float))
        rows: dict[str, Any] = {}
        for measure in measures:
            start, end = _median(first, name, measure), _median(last, name, measure)
            if start is None or end is None:
                continue
            row: dict[str, Any] = {"after_warm_up": start, "end": end,
                                   "growth": round(end - start, 1),
                                   "growth_percent": round((end - start) / start * 100, 1)
                                   if start else None,
                                   "trend": _trend(after, name, measure)}
            if measure == "rss_mb":
                row["met"] = (end - start) / start * 100 < RSS_GROWTH_PERCENT
            elif measure in COUNTS or name == "postgresql (server)":
                row["met"] = end - start <= COUNT_ALLOWANCE
            rows[measure] = row
        pids = {s["processes"].get(name, {}).get("pid") for s in samples} - {None}
        processes[name] = {"measures": rows, "restarted": len(pids) > 1}
    turns_per_second = None
    if len(first) > 1 and len(last) > 1:
        rate = lambda window: (window[-1]["turns"] - window[0]["turns"]) / max(
            window[-1]["t"] - window[0]["t"], 1e-9)
        turns_per_second = {"after_warm_up": round(rate(first), 2), "end": round(rate(last), 2)}
    return {"warm_up_seconds": warm_up, "window_samples": WINDOW,
            "samples_after_warm_up": len(after), "enough_samples": len(after) >= 2 * WINDOW,
            "first_window_seconds": [first[0]["t"], first[-1]["t"]] if first else None,
            "last_window_seconds": [last[0]["t"], last[-1]["t"]] if last else None,
            "rules": {"rss_growth_percent_below": RSS_GROWTH_PERCENT,
                      "count_growth_at_most": COUNT_ALLOWANCE},
            "turns_per_second": turns_per_second,
            "lost": len(level["lost"]), "duplicated": len(level["duplicated"]),
            "processes": processes}


def summarise(result: dict[str, Any], warm_up: float) -> None:
    """Adds a `soak` summary to every sampled level of a load run's result."""
    for data in result["systems"].values():
        for level in data["levels"]:
            if "samples" in level.get("during", {}):
                level["soak"] = summary(level, warm_up)


def _soaked(result: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(system, level, its soak summary) of every level that was sampled."""
    for system, data in result["systems"].items():
        for level in data["levels"]:
            if "soak" in level:
                yield system, level, level["soak"]


def _cell(measures: dict[str, Any], measure: str, unit: str = "") -> str:
    row = measures.get(measure)
    if row is None:
        return "-"
    change = (f"{row['growth_percent']:+.1f} %" if unit == "%" and row["growth_percent"]
              is not None else f"{row['growth']:+g}")
    mark = "" if "met" not in row else (" ✓" if row["met"] else " **✗**")
    return f"{row['after_warm_up']:g} → {row['end']:g} ({change}){mark}"


def _target(soak: dict[str, Any], target: str, measures: tuple[str, ...]) -> str:
    """A row of the targets table: what missed it, or the largest growth if nothing did."""
    rows = [(f"{name} {measure}", measure, r) for name, p in soak["processes"].items()
            for measure, r in p["measures"].items() if measure in measures]
    relative = measures == ("rss_mb",)
    missed = [f"{what} {_cell({m: r}, m, '%' if relative else '')}"
              for what, m, r in rows if not r["met"]]
    if not rows:
        return f"| {target} | nothing measured | **missed** |"
    if missed:
        return f"| {target} | missed by {', '.join(missed)} | **missed** |"
    what, m, r = max(rows, key=lambda x: x[2]["growth_percent" if relative else "growth"] or 0)
    return f"| {target} | largest: {what} {_cell({m: r}, m, '%' if relative else '')} | met |"


TRENDS = (("rss_mb", "RSS MB"), ("fds", "descriptors"), ("sockets", "sockets"),
          ("tcp", "TCP connections"), ("tcp_incoming", "coming in"),
          ("tcp_postgresql", "to PostgreSQL"), ("tcp_redis", "to Redis"),
          ("service_db", "service's database"), ("rasa_db", "Rasa's database"))


def _trends(soak: dict[str, Any]) -> list[str]:
    """The table of trends (module docstring): reported beside the rules, judging nothing."""
    shown = [(m, title) for m, title in TRENDS
             if any(m in p["measures"] for p in soak["processes"].values())]
    out = ["", ("Trend after warm-up (Theil-Sen slope of all samples after warm-up × the "
                "seconds they span; reported, judges nothing):"), "",
           "| process | " + " | ".join(title for _, title in shown) + " |",
           "|---|" + "---|" * len(shown)]
    for name, row in soak["processes"].items():
        cells = [row["measures"].get(m, {}).get("trend") for m, _ in shown]
        out.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:+g}" for c in cells)
                   + " |")
    return out


def markdown(result: dict[str, Any]) -> str:
    out: list[str] = []
    for system, level, soak in _soaked(result):
        every = level["during"]["every_seconds"]
        first, last = soak["first_window_seconds"], soak["last_window_seconds"]
        out += ["", (f"## Soak: {system}, {level['customers']} customers, "
                     f"{level['seconds']:.0f} s, a sample every {every:g} s"), "",
                (f"*After warm-up*: median of the samples at {first[0]:.0f}-{first[1]:.0f} "
                 f"s; *end*: median of those at {last[0]:.0f}-{last[1]:.0f} s "
                 f"({soak['samples_after_warm_up']} samples after the "
                 f"{soak['warm_up_seconds']:.0f} s warm-up). Each process is counted with "
                 "its children. Targets: resident "
                f"memory growth under {soak['rules']['rss_growth_percent_below']:g} %; "
                "descriptors, sockets and TCP connections (and PostgreSQL's own count of "
                f"connections) growing by at most {soak['rules']['count_growth_at_most']} "
                "(absolute); ✓ met, ✗ missed."), "",
                ("| process | RSS MB | descriptors | sockets | TCP connections | "
                 "of which coming in | to PostgreSQL | to Redis | restarted |"),
                "|---|---|---|---|---|---|---|---|---|"]
        for name, row in soak["processes"].items():
            m = row["measures"]
            if name == "postgresql (server)":
                out.append(f"| {name}: connections to the service's / Rasa's database | - | "
                           f"- | - | {_cell(m, 'service_db')} / {_cell(m, 'rasa_db')} | "
                           "- | - | - | - |")
                continue
            out.append(f"| {name} | {_cell(m, 'rss_mb', '%')} | {_cell(m, 'fds')} | "
                       f"{_cell(m, 'sockets')} | {_cell(m, 'tcp')} | "
                       f"{_cell(m, 'tcp_incoming')} | "
                       f"{_cell(m, 'tcp_postgresql')} | {_cell(m, 'tcp_redis')} | "
                       f"{'yes' if row['restarted'] else 'no'} |")
        rate = soak["turns_per_second"] or {}
        out += ["", "| target | measured | |", "|---|---|---|",
                (f"| zero lost messages (and none duplicated) | {soak['lost']} lost, "
                 f"{soak['duplicated']} duplicated | "
                 f"{'met' if soak['lost'] == soak['duplicated'] == 0 else '**missed**'} |")]
        out.append(_target(soak, "resident memory of every process: growth under "
                           f"{RSS_GROWTH_PERCENT:g} % after warm-up", ("rss_mb",)))
        out.append(_target(soak, "no growth in open connections or descriptors (at most "
                           f"+{COUNT_ALLOWANCE} each)", (*COUNTS, "service_db", "rasa_db")))
        short = "" if soak["enough_samples"] else (
            " Too few samples after warm-up for two separate windows.")
        out += _trends(soak)
        out += ["", (f"Turns per second after warm-up {rate.get('after_warm_up', '-')}, "
                     f"at the end {rate.get('end', '-')}.{short}")]
    return "\n".join(out) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(2, 2, figsize=(12, 7.5))
    panels = [(axes[0][0], "rss_mb", "resident memory (MB, log scale)", False),
              (axes[0][1], "rss_mb", "resident memory, % of after warm-up", True),
              (axes[1][0], "fds", "open file descriptors", False),
              (axes[1][1], "tcp", "TCP connections", False)]
    for system, level, soak in _soaked(result):
        samples = level["during"]["samples"]
        label = f"{system} {level['customers']}: " if len(result["systems"]) > 1 else ""
        for name, row in soak["processes"].items():
            if name == "postgresql (server)":
                continue
            minutes = [s["t"] / 60 for s in samples if name in s["processes"]]
            for axis, measure, _, relative in panels:
                values = [s["processes"][name].get(measure) for s in samples
                          if name in s["processes"]]
                base = row["measures"].get(measure, {}).get("after_warm_up")
                if relative and base:
                    values = [v / base * 100 for v in values]
                axis.plot(minutes, values, "-", label=f"{label}{name}", linewidth=1.2)
        for axis, *_ in panels:
            axis.axvline(soak["warm_up_seconds"] / 60, color="grey", linestyle=":")
        axes[0][1].axhline(100 + RSS_GROWTH_PERCENT, color="red", linestyle=":",
                           label=f"+{RSS_GROWTH_PERCENT:g} %")
    axes[0][0].set_yscale("log")
    for axis, _, title, _ in panels:
        axis.set(xlabel="minutes into the level", title=title)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
