"""Starts the real system with the project's own command (`./assistant up`) for e2e tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unused_port
from tests.processes import Launch, crash, stop

ROOT = Path(__file__).resolve().parents[2]
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@localhost", "e2e-admin-password"
START_LIMIT_SECONDS = 600  # a bound on a stuck start, not a timing claim
WEB_ALONE_START_LIMIT_SECONDS = 120  # the same, for the web service alone


@dataclass
class RunningSystem:
    """The three processes `./assistant up` started, and where to reach them."""

    process: subprocess.Popen[str]
    web_url: str
    rasa_url: str
    action_url: str
    token: str
    run_dir: Path
    log_dir: Path
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    launches: dict[str, Launch] = field(default_factory=dict)  # how each killed one started
    restarted: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pid(self, name: str) -> int:
        return int((self.run_dir / f"{name}.pid").read_text())

    def alive(self, name: str) -> bool:
        try:
            os.kill(self.pid(name), 0)
        except (FileNotFoundError, ProcessLookupError):
            return False
        return True

    def kill(self, name: str) -> None:
        """Stops one process the way a crash would (kill -9)."""
        pid = self.pid(name)
        self.launches[name] = Launch.of(pid)
        crash(pid)

    def restart(self, name: str) -> None:
        """Starts a killed process again as it was, as a supervisor would; `stop` stops it."""
        # after `./assistant` dropped the dead one's pid file (it would remove a new one)
        deadline = time.monotonic() + 30
        while (self.run_dir / f"{name}.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        process = self.launches[name].start(self.log_dir / f"{name}.log")
        self.restarted.append(process)
        (self.run_dir / f"{name}.pid").write_text(f"{process.pid}\n")

    def stop(self) -> int:
        """Ctrl-C, as a person would (and a stop of what was restarted); returns the exit code."""
        stop(self.restarted)
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=120)
        if self.reader is not None:
            self.reader.join(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


def start_system(tmp: Path) -> RunningSystem:
    ports = {name: unused_port() for name in ("web", "rasa", "action")}
    run_dir, log_dir = tmp / "run", tmp / "log"
    env = {
        **os.environ,
        "SUPPORT_PORT": str(ports["web"]),
        "SUPPORT_RASA_PORT": str(ports["rasa"]),
        "SUPPORT_ACTION_PORT": str(ports["action"]),
        "SUPPORT_RASA_TOKEN": "e2e-token",
        "SUPPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SUPPORT_RUN_DIR": str(run_dir),
        "SUPPORT_LOG_DIR": str(log_dir),
        "DATABASE_URL": f"sqlite:///{tmp}/support.db",
        # the demo store, seeded by the action server on first use
        "SUPPORT_SHOP_DATABASE_URL": f"sqlite:///{tmp}/shop.db",
        "SUPPORT_LINK_SECRET": "e2e-link-secret-0123456789",
    }
    return launch("up", env, web_url=f"http://127.0.0.1:{ports['web']}",
                  rasa_url=f"http://127.0.0.1:{ports['rasa']}",
                  action_url=f"http://127.0.0.1:{ports['action']}",
                  token="e2e-token", run_dir=run_dir, log_dir=log_dir)


def ctrl_c_reaches_it() -> None:
    """Ctrl-C as a person would send it, even when the suite itself was started in the
    background (`cmd &` makes a shell ignore SIGINT, children inherit that, and bash cannot
    trap a signal ignored on entry: `./assistant` would never hear the Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def launch(command: str, env: dict[str, str], **where: Any) -> RunningSystem:
    """Runs `./assistant COMMAND` and waits for its "==> ready" line."""
    process = subprocess.Popen(
        [str(ROOT / "assistant"), command], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=ctrl_c_reaches_it,
    )
    system = RunningSystem(process=process, **where)
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            system.output.append(line)
            if line.startswith("==> ready"):
                ready.set()

    system.reader = threading.Thread(target=pump, daemon=True)
    system.reader.start()
    deadline = time.monotonic() + START_LIMIT_SECONDS
    while not ready.is_set():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            logs = "".join(system.output)
            raise RuntimeError(f"./assistant {command} did not become ready:\n{logs}")
        ready.wait(0.5)
    return system


def _running(tmp: Path) -> Iterator[RunningSystem]:
    running = start_system(tmp)
    yield running
    if running.process.poll() is None:
        running.stop()


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    yield from _running(tmp_path_factory.mktemp("system"))


@pytest.fixture(scope="module")
def fragile_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSystem]:
    """A separate system for tests that kill its processes."""
    yield from _running(tmp_path_factory.mktemp("fragile"))


@contextmanager
def web_service_alone(tmp: Path, database_url: str, **env: str) -> Iterator[str]:
    """Only the web service (`python -m handoff serve`) on a database the test prepared, for
    console pages that need no assistant; yields its address and stops it afterwards."""
    port = unused_port()
    environment = {**os.environ, "DATABASE_URL": database_url, "SUPPORT_PORT": str(port),
                   "SUPPORT_RASA_TOKEN": "unused", "SUPPORT_RASA_URL": "http://127.0.0.1:1",
                   "SUPPORT_ADMIN_PASSWORD": "unused-admin-password", **env}
    with open(tmp / "web.log", "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "handoff", "serve"], cwd=ROOT,
                                   env=environment, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + WEB_ALONE_START_LIMIT_SECONDS
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp / "web.log").read_text()) from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
