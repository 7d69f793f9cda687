"""Faults under load: each kind of process of `./assistant cluster` is killed and restarted
once while customers keep chatting, and each fault's recovery and losses are reported.

    .venv/app/bin/python -m bench.load.faults [--customers 20] [--phase 90] [--out DIR]

The cluster runs on a PostgreSQL and a Redis of the run's own (tests/throwaway.py), so they
can be crashed and restarted without touching the machine's shared servers. After a warm-up,
one phase per fault: `--customers` customers (widget and WhatsApp, agents on the console,
the load generator's mix through nginx) chat for `--phase` seconds; `--lead` seconds in, the
fault is injected and the process started again the way a supervisor (systemd's
`Restart=always`) would, with the command line and environment it had:

- web-1, rasa-1: kill -9, then started again;
- action-server: kill -9 of the server and its workers, then started again;
- PostgreSQL: an immediate stop (the postmaster and every backend quit at once, no
  checkpoint: crash recovery at the next start; a kill -9 of the postmaster alone would
  leave its backends running), then started again;
- Redis: kill -9, then started again (it keeps nothing on disk, like a crashed cache).

Per fault: seconds from the fault until every customer the fault did not hand to a person
had a message sent after the fault answered by the assistant (the system's recovery); for
the customers it did hand over ("I'm having trouble ... connecting you to a person"), until a
person answered them and until the assistant did again (paced by the simulated agents, who
close such a chat 60 s after the customer's last word); the first measure, until every
customer had a message sent after the fault answered by anyone, for comparison with earlier
runs; seconds until the process answered its health check again; and — checked message by
message, as in the load run — messages lost or duplicated, plus errors, reconnects and
resends. The customers answered again last are listed with what they sent and were shown
after the fault, when and by whom. Writes DIR/cluster-faults.json and .md. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Coroutine
from pathlib import Path
from typing import Any

from bench.load import customers as c
from bench.load import orders
from bench.load.drive import FullSystemLoad, run_level, warm_up
from bench.load.systems import WHATSAPP, System, answers, project_model, start_cluster
from tests.processes import Launch, crash, stop
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis

RESULTS = Path(__file__).resolve().parents[1] / "results"
FAULTS = ("web-1", "rasa-1", "action-server", "postgresql", "redis")


class Supervisor:
    """Starts a killed process again as it was (command line, environment, folder, log)."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.started: list[subprocess.Popen[bytes]] = []

    def kill_and_restart(self, name: str) -> float:
        """kill -9 of the process (with its children); returns seconds until it answers
        its health check again."""
        assert self.system.run_dir is not None
        pid = self.system.processes[name]
        launch = Launch.of(pid)
        crash(pid)
        killed_at = time.monotonic()
        pid_file = self.system.run_dir / f"{name}.pid"
        # `./assistant cluster` notices the death and removes the pid file; only then is a
        # new one written (else it would remove the new one)
        while pid_file.exists() and self._supervised(pid) and time.monotonic() - killed_at < 10:
            time.sleep(0.1)
        log = Path(launch.env.get("SUPPORT_LOG_DIR", str(self.system.work))) / f"{name}.log"
        process = launch.start(log)
        self.started.append(process)
        pid_file.write_text(f"{process.pid}\n")
        self.system.processes[name] = process.pid
        while not answers(self.system.checks[name]):
            if process.poll() is not None or time.monotonic() - killed_at > 900:
                raise RuntimeError(f"{name} did not start again; see {log}")
            time.sleep(0.2)
        return time.monotonic() - killed_at

    def _supervised(self, pid: int) -> bool:
        """Whether `./assistant` started it (a process this run restarted has no one else)."""
        return all(process.pid != pid for process in self.started)

    def stop(self) -> None:
        stop(self.started)


def restart_database(postgres: ThrowawayPostgres) -> float:
    began = time.monotonic()
    postgres.stop("immediate")
    postgres.start()
    return time.monotonic() - began


def restart_redis(redis: ThrowawayRedis) -> float:
    began = time.monotonic()
    redis.stop()  # SIGKILL
    redis.start()
    return time.monotonic() - began


def _first(entries: list[tuple[float, float, str]], fault_at: float, by: set[str] | None = None,
           ) -> float | None:
    """When the first message sent after the fault was answered (by one of `by`)."""
    times = [answered for sent, answered, who in entries
             if sent >= fault_at and (by is None or who in by)]
    return min(times, default=None)


def _who(author: str, text: str) -> str:
    """An event of a customer's timeline as `customer`, `assistant`, `trouble` or `agent`."""
    if author.startswith("customer"):
        return "customer"
    if author == "system":
        return "system"  # e.g. the place in the queue
    return c.answered_by([(author, text)])


HANDED_OVER = "connecting you to a person"  # in every handover's reply: trouble, asked, unsure


def with_a_person(events: list[tuple[float, str, str]], at: float) -> bool:
    """Whether the customer's chat was with the people at `at`: handed over (the handover
    reply) and not closed by an agent since."""
    handed = [t for t, _, text in events if t < at and HANDED_OVER in text]
    closed = [t for t, _, text in events if t < at and text == c.AGENT_CLOSING]
    return bool(handed) and max(handed) > max(closed, default=float("-inf"))


def recovery(record: c.Record, customers: int, fault_at: float) -> dict[str, Any]:
    """Seconds from the fault until the last customer was answered again, three ways:

    - *answered again* (the first measure, kept to compare runs): a message sent after the
      fault had all its replies — whoever gave them, or none where a person has the chat;
    - *assistant again*: every customer who was not with a person — neither at the fault
      nor handed over by it ("I'm having trouble" after it) — had a message sent after the
      fault answered by the assistant: the system's own recovery;
    - for those with a person, from the fault (or their handover, if the fault caused it)
      until a person answered them (*person*) and until the assistant answered a message
      they sent after that (*their assistant*): these wait on the simulated agents, who
      answer only the scripted follow-up and close any other chat 60 s after its greeting.
    """
    timeline = record.timeline or {}
    # customer -> from when the people had them: the fault, or the fault's "I'm having trouble"
    since: dict[int, float] = {}
    by_fault: list[int] = []
    for i in range(customers):
        events = timeline.get(i, [])
        troubles = [at for at, who, text in events
                    if at >= fault_at and _who(who, text) == "trouble"]
        if with_a_person(events, fault_at):
            since[i] = fault_at
        elif troubles:
            since[i] = min(troubles)
            by_fault.append(i)
    kept = [i for i in range(customers) if i not in since]

    def latest(firsts: dict[int, float | None]) -> tuple[float | None, list[int]]:
        missing = [i for i, at in firsts.items() if at is None]
        if missing or not firsts:
            return None, missing
        return round(max(at for at in firsts.values() if at is not None) - fault_at, 1), []

    any_answer, any_missing = latest({i: _first(record.answered.get(i, []), fault_at)
                                      for i in range(customers)})
    assistant, assistant_missing = latest({i: _first(record.answered.get(i, []), fault_at,
                                                     {"assistant"}) for i in kept})
    person, person_missing = latest({i: min((at for at, who, text in timeline.get(i, [])
                                             if at >= t and _who(who, text) == "agent"),
                                            default=None) for i, t in since.items()})
    again, again_missing = latest({i: _first(record.answered.get(i, []), t, {"assistant"})
                                   for i, t in since.items()})
    return {"answered_again_seconds": any_answer, "customers_not_answered_again": any_missing,
            "assistant_again_seconds": assistant,
            "customers_not_answered_by_the_assistant_again": assistant_missing,
            "with_a_person": sorted(since), "handed_over_by_the_fault": by_fault,
            "person_answered_seconds": person,
            "with_a_person_never_answered_by_a_person": person_missing,
            "with_a_person_assistant_again_seconds": again,
            "with_a_person_never_answered_by_the_assistant": again_missing}


def breakdown(record: c.Record, customers: int, fault_at: float, slowest: int = 5,
              with_a_person: Collection[int] = ()) -> list[dict[str, Any]]:
    """The customers the assistant answered again last (or never), leaving out those with a
    person (see `recovery`): what they sent and were shown around the fault until then, in
    seconds from the fault — what explains the *assistant again* time."""
    timeline = record.timeline or {}
    rows: list[dict[str, Any]] = []

    def row(at: float, who: str, text: str) -> tuple[float | None, str, str]:
        return round(at - fault_at, 1), _who(who, text), text[:80]

    for index in range(customers):
        if index in with_a_person:
            continue
        events = timeline.get(index, [])
        answered = _first(record.answered.get(index, []), fault_at, {"assistant"})
        until = answered if answered is not None else float("inf")
        # what came after the fault explains the wait: all of it up to 20 lines, and only
        # the last 4 before it
        before = [row(*e) for e in events if fault_at - 10 <= e[0] < fault_at][-4:]
        after = [row(*e) for e in events if fault_at <= e[0] <= until + 0.5]
        if len(after) > 20:
            after = [*after[:12], (None, "...", f"{len(after) - 18} more"), *after[-6:]]
        shown = [*before, *after]
        rows.append({"customer": index,
                     "channel": "WhatsApp" if any("WhatsApp" in who for _, who, _ in events)
                     else "widget",
                     "assistant_again_seconds": None if answered is None
                     else round(answered - fault_at, 1),
                     "events": shown})
    rows.sort(key=lambda row: float("-inf") if row["assistant_again_seconds"] is None
              else -row["assistant_again_seconds"])
    return rows[:slowest]


def fault_phase(name: str, inject: Callable[[], float], customers: int, lead: float,
                phase: float) -> Callable[[c.Record], Coroutine[Any, Any, dict[str, Any]]]:
    """What runs beside the customers in one phase: the fault after `lead` seconds, then a
    look at who has been answered again, until all have or the phase is over."""

    async def during(record: c.Record) -> dict[str, Any]:
        record.timeline = defaultdict(list)
        began = time.perf_counter()
        await asyncio.sleep(lead)
        fault_at = time.perf_counter()
        print(f"==> fault: {name}", flush=True)
        back = await asyncio.get_running_loop().run_in_executor(None, inject)
        found = recovery(record, customers, fault_at)
        while (None in (found["answered_again_seconds"], found["assistant_again_seconds"])
               or (found["with_a_person"] and None in (
                   found["person_answered_seconds"],
                   found["with_a_person_assistant_again_seconds"])))\
                and time.perf_counter() < began + phase:
            await asyncio.sleep(0.5)
            found = recovery(record, customers, fault_at)
        return {"fault": name, "process_back_seconds": round(back, 1), **found,
                "slowest_customers": breakdown(record, customers, fault_at,
                                               with_a_person=found["with_a_person"])}

    return during


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    graph = c.FakeGraph(WHATSAPP["SUPPORT_WHATSAPP_ACCESS_TOKEN"], args.whatsapp_latency)
    runner, graph_url = await graph.start()
    postgres, redis = ThrowawayPostgres(), ThrowawayRedis()
    postgres.start()
    redis.start()
    loop = asyncio.get_running_loop()
    system: System | None = None
    supervisor: Supervisor | None = None
    try:
        model = await loop.run_in_executor(None, project_model)
        (work / "cluster").mkdir()
        system = await loop.run_in_executor(
            None, start_cluster, work / "cluster", model, graph_url,
            {"SUPPORT_REROUTE_EVERY_SECONDS": "2"},
            f"postgresql://postgres@127.0.0.1:{postgres.port}/support", redis.url)
        supervisor = Supervisor(system)
        load = FullSystemLoad(system, graph)
        await load.setup()
        await warm_up(system, load)
        await orders.hand_out([system], len(args.faults) * args.phase)
        injections: dict[str, Callable[[], float]] = {
            "web-1": lambda: supervisor.kill_and_restart("web-1"),  # type: ignore[union-attr]
            "rasa-1": lambda: supervisor.kill_and_restart("rasa-1"),  # type: ignore[union-attr]
            "action-server": lambda: supervisor.kill_and_restart(  # type: ignore[union-attr]
                "action-server"),
            "postgresql": lambda: restart_database(postgres),
            "redis": lambda: restart_redis(redis),
        }
        phases = []
        for name in args.faults:
            print(f"==> {name}: {args.customers} customers for {args.phase:.0f}s", flush=True)
            outcome = await run_level(system, args.customers, args.phase, load, fault_phase(
                name, injections[name], args.customers, args.lead, args.phase))
            phases.append(outcome)
            print(json.dumps({k: outcome[k] for k in ("during", "errors", "lost",
                                                        "duplicated")})[:800], flush=True)
        return {"when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count()}, "customers": args.customers,
                "phase_seconds": args.phase, "lead_seconds": args.lead,
                "startup_seconds": system.startup_seconds, "phases": phases}
    finally:
        if system is not None:
            system.stop()
        if supervisor is not None:
            supervisor.stop()
        redis.stop()
        postgres.destroy()
        await runner.cleanup()


def _seconds(during: dict[str, Any], key: str, missing: str) -> str:
    if key not in during:
        return "-"  # a run from before this was measured
    value = during[key]
    if value is not None:
        return str(value)
    if not during.get(missing):
        return "none to measure"  # every customer was with a person
    return f"not within the phase ({len(during[missing])} not)"


def markdown(result: dict[str, Any]) -> str:
    intro = (f"{result['customers']} customers (widget and WhatsApp, agents on the console) "
             f"chat through nginx for {result['phase_seconds']:.0f} s per fault; the fault "
             f"comes {result['lead_seconds']:.0f} s in. *Assistant again*: seconds from the "
             "fault until every customer who was not with a person had a message sent after "
             "the fault answered by the assistant — the system's own recovery. *With a person*: "
             "customers whose chat was with the people at the fault (handed over before it, "
             "not yet closed), and in brackets those the fault itself handed over (the \"I'm "
             "having trouble ... connecting you to a person\" reply after it); *person*: until "
             "a person had answered each of them since the fault or their handover; *their "
             "assistant*: until the assistant answered each of them again. Both wait on the "
             "simulated agents, who answer only the scripted follow-up and close any other "
             "chat 60 s after their greeting. *Answered again*: the earlier measure, until "
             "every customer had all the replies to a message sent after the fault, whoever "
             "gave them (a message to a chat a person has gets none: its acknowledgement "
             "counts). *Back*: seconds until the killed process answered its health check "
             "again (PostgreSQL, Redis: the restart until they accepted connections). "
             "*Duplicated*: a message stored twice, sent twice on one socket, or delivered "
             "twice to WhatsApp. *Repeated after reconnect*: messages a widget's new socket "
             "sent again after a reconnect; the protocol has clients drop an id already shown, "
             "and the widget does (the cluster browser test checks its screen), so they are "
             "counted apart.")
    title = (f"# Faults under load: `./assistant cluster` ({result['when']}, "
             f"{result['machine']['cpus']} cores)")
    out = [title, "", intro, "",
           ("| fault | assistant again (s) | with a person (by the fault) | person (s) "
            "| their assistant (s) "
            "| answered again (s) | back (s) | lost | duplicated | errors | reconnects "
            "| resent | repeated after reconnect | turns | turns/s | load avg (1 min) | "
            "CPU s / 1000 turns |"),
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for phase in result["phases"]:
        during = phase["during"]
        handed = during.get("with_a_person", [])
        assistant = _seconds(during, "assistant_again_seconds",
                             "customers_not_answered_by_the_assistant_again")
        person = _seconds(during, "person_answered_seconds",
                          "with_a_person_never_answered_by_a_person") if handed else "-"
        theirs = _seconds(during, "with_a_person_assistant_again_seconds",
                          "with_a_person_never_answered_by_the_assistant") if handed else "-"
        out.append(
            f"| {during['fault']} | {assistant} | "
            f"{len(handed)} ({len(during.get('handed_over_by_the_fault', []))}) | "
            f"{person} | {theirs} | "
            f"{_seconds(during, 'answered_again_seconds', 'customers_not_answered_again')} | "
            f"{during['process_back_seconds']} | "
            f"{len(phase['lost'])} | {len(phase['duplicated'])} | "
            f"{sum(phase['errors'].values())} | {phase['reconnects']} | {phase['resent']} | "
            f"{phase.get('repeated_after_reconnect', '-')} | "
            f"{phase['turns']} | {phase['turns_per_second']} | "
            f"{phase['load_average_1_5_15'][0]} | "
            f"{round(sum(phase['cpu_seconds_per_1000_turns'].values()), 1)} |")
    problems = [(p["during"]["fault"], kind, item) for p in result["phases"]
                for kind in ("lost", "duplicated") for item in p[kind]]
    problems += [(p["during"]["fault"], "error", f"{n} × {e}") for p in result["phases"]
                 for e, n in p["errors"].items()]
    if problems:
        out += ["", "What went wrong, per fault:", ""]
        out += [f"- {fault}: {kind}: {item}" for fault, kind, item in problems[:60]]
    stuck = [(p["during"]["fault"], p) for p in result["phases"] if p.get("no_person_came")]
    if stuck:
        out += ["", "## Customers who asked for a person and met nobody, per fault", "",
                ("Each one's conversation at the end of the phase (status, assignee, its last "
                 "events, seconds from the phase's start), and the simulated agents then: chats "
                 "open, claims, conversations each tried to claim once (a 409 is not retried) "
                 "and chats closed idle.")]
        for fault, phase in stuck:
            out += ["", f"### {fault}", "",
                    "- agents: " + "; ".join(
                        f"{a['open_chats']} open, {a['claims']} claims, {a['tried']} tried, "
                        f"{a['closed_idle']} closed idle" for a in phase.get("agents_at_end", []))]
            for row in phase.get("no_person_came", []):
                out.append(f"- {row['conversation']}: {row.get('status')}, assignee "
                           f"{row.get('assignee')}; " + ", ".join(row.get("events", []))
                           + (f" ({row['error']})" if "error" in row else ""))
    out += ["", "## The customers the assistant answered again last, per fault", "",
            ("Customers not with a person; seconds from the fault; what each sent and was "
             "shown until the assistant answered a message it sent after the fault "
             "(*assistant again*).")]
    for phase in result["phases"]:
        out += ["", f"### {phase['during']['fault']}", ""]
        for row in phase["during"].get("slowest_customers", []):
            again = row.get("assistant_again_seconds")
            out.append(f"- customer {row['customer']} ({row['channel']}): "
                       + (f"answered by the assistant again at {again} s"
                          if again is not None else "not answered by the assistant again "
                          "within the phase"))
            out += [f"  - {'' if at is None else f'{at:+.1f} s '}{who}: {text}"
                    for at, who, text in row["events"]]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--phase", type=float, default=90.0, help="seconds of load per fault")
    parser.add_argument("--lead", type=float, default=20.0,
                        help="seconds of load before the fault")
    parser.add_argument("--faults", default=",".join(FAULTS), type=lambda s: s.split(","),
                        help=f"which, in order (default: all of {', '.join(FAULTS)})")
    parser.add_argument("--whatsapp-latency", type=float, default=0.15, metavar="SECONDS",
                        help="how long the fake WhatsApp Cloud API takes to accept a send")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    unknown = set(args.faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}: choose from {', '.join(FAULTS)}")
    result = asyncio.run(main_async(args))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cluster-faults.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "cluster-faults.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
