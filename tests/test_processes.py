"""Crashing a process with its children and starting it again as it was (tests/processes.py),
which the fault tests and the fault benchmark rely on."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.processes import Launch, crash, stop, tree

# a parent that starts a child of its own and reports both pids, then waits
PARENT = ("import os, subprocess, sys, time; "
          "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); "
          "print(os.getpid(), child.pid, flush=True); time.sleep(600)")


def gone(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie of someone else's has no state to run
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_crash_kills_the_process_and_its_children_and_launch_starts_it_again(
        tmp_path: Path) -> None:
    first = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "MARK": "as-it-was"}, cwd=tmp_path)
    assert first.stdout is not None
    parent, child = map(int, first.stdout.readline().split())
    first.stdout.close()
    assert set(tree(parent)) == {parent, child}
    launch = Launch.of(parent)
    assert launch.argv == [sys.executable, "-c", PARENT]
    assert launch.env["MARK"] == "as-it-was" and launch.cwd == str(tmp_path)

    crash(parent)
    deadline = time.monotonic() + 30
    while not gone(child):  # reparented to init, which reaps it
        assert time.monotonic() < deadline, "the child outlived the crash"
        time.sleep(0.05)
    assert first.poll() is not None

    again = launch.start(tmp_path / "again.log")
    try:
        deadline = time.monotonic() + 30
        while len(tree(again.pid)) < 2:
            assert time.monotonic() < deadline, "the restarted process did not start its child"
            time.sleep(0.05)
        assert Launch.of(again.pid).env["MARK"] == "as-it-was"
        assert (tmp_path / "again.log").read_text().split()[0] == str(again.pid)
    finally:
        stop([again])
    assert again.returncode is not None
