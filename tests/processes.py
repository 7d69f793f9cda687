"""Crashing a process and starting it again the way a supervisor (systemd's `Restart=always`)
would: the cluster fault tests and the fault benchmark (bench/load/faults.py) both do it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def tree(pid: int) -> list[int]:
    """`pid` and all its descendants (Rasa, Sanic's workers and `./assistant` fork)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass(frozen=True)
class Launch:
    """How a running process was started: enough to start it again as it was."""

    argv: list[str]
    env: dict[str, str]
    cwd: str

    @classmethod
    def of(cls, pid: int) -> Launch:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        env = dict(item.split(b"=", 1) for item in
                   Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in item)
        return cls([os.fsdecode(a) for a in argv],
                   {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()},
                   os.readlink(f"/proc/{pid}/cwd"))

    def start(self, log: Path) -> subprocess.Popen[bytes]:
        """Starts it again in a session of its own, appending to its log."""
        with open(log, "ab") as output:  # the child keeps its own copy of the descriptor
            return subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=True)


def crash(pid: int, limit: float = 30) -> None:
    """kill -9 of the process and its descendants, children first (as the OOM killer takes
    a whole service); returns once the process is gone."""
    for member in reversed(tree(pid)):
        try:
            os.kill(member, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)  # a child of ours (restarted earlier): reap it
        except ChildProcessError:
            pass  # someone else's child (`./assistant` reaps it)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not die")


def stop(processes: list[subprocess.Popen[bytes]], grace: float = 30) -> None:
    """SIGTERM to each process and its descendants; SIGKILL to a session that outlives it."""
    for process in processes:
        for member in reversed(tree(process.pid)):
            try:
                os.kill(member, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for process in processes:
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=grace)
