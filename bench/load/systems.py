"""The systems a load run compares, started the way a user starts them, and their processes.

- `full`: the whole product through `./assistant up` (web service, Rasa, action server; SQLite),
  customers on the widget WebSocket and the WhatsApp webhook, agents on the console.
- `cluster`: the same product through `./assistant cluster` (two web services behind nginx,
  two Rasa servers, an action server with two workers; PostgreSQL and Redis), driven exactly
  like `full` through nginx.
- `rasa-init`: baseline (a), what a user gets from Rasa out of the box: `rasa run` on the stock
  REST channel with the config `rasa init` writes (Rasa's default pipeline and policies),
  trained on the project's own domain and data.
- `rasa-project`: baseline (b), the project's own model served the same bare way.
Both baselines call the project's action server, so knowledge and order turns do the same work.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.load.orders import RefundOrders
from tests.processes import tree

ROOT = Path(__file__).resolve().parents[2]
RASA = ROOT / ".venv" / "rasa" / "bin" / "rasa"
APP_PY = ROOT / ".venv" / "app" / "bin" / "python"
BASELINE_CONFIG = ROOT / "bench" / "baselines" / "rasa-init-config.yml"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@localhost", "bench-admin-password"
RASA_TOKEN = "bench-rasa-token"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def training_data() -> list[Path]:
    files = [p for folder in ("bot/nlu", "bot/rules", "bot/stories")
             for p in sorted((ROOT / folder).rglob("*.yml"))]
    return files


def fingerprint(config: Path) -> str:
    digest = hashlib.sha256()
    for path in [config, ROOT / "domain.yml", *training_data(), ROOT / "requirements/rasa.lock"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def baseline_model() -> Path:
    """Baseline (a)'s model, trained on first use (Rasa's defaults train for a long while)."""
    model = ROOT / "models" / f"baseline-rasa-init-{fingerprint(BASELINE_CONFIG)}.tar.gz"
    if not model.exists():
        print(f"==> training baseline (a) with Rasa's default pipeline: {model.name} "
              "(slow: DIET with transformer layers and TED, 100 epochs each)", flush=True)
        data = [str(ROOT / d) for d in ("bot/nlu", "bot/rules", "bot/stories")]
        # Rasa writes the defaults it chose back into the config file: train from a copy
        # so the committed file (and the fingerprint) stays as it is.
        config = Path(tempfile.mkdtemp()) / "config.yml"
        shutil.copy(BASELINE_CONFIG, config)
        subprocess.run([str(RASA), "train", "--config", str(config), "--domain",
                        str(ROOT / "domain.yml"), "--data", *data, "--out", str(model.parent),
                        "--fixed-model-name", model.name.removesuffix(".tar.gz"), "--quiet"],
                       cwd=ROOT, check=True)
    return model


def project_model() -> Path:
    """The model `./assistant` uses (it trains one if the data changed)."""
    out = subprocess.run([str(ROOT / "assistant"), "train"], cwd=ROOT, check=True,
                         capture_output=True, text=True)
    del out
    models = sorted((ROOT / "models").glob("support-*.tar.gz"), key=lambda p: p.stat().st_mtime)
    return models[-1]


def usage(pid: int) -> tuple[float, int]:
    """CPU seconds used so far and resident bytes now, of a process and its descendants."""
    cpu, rss = 0.0, 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
            rss += int(Path(f"/proc/{member}/statm").read_text().split()[1]) * PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(url: str, limit: float, process: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds until `url` answers 200 (raises if the process dies or the limit passes)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        if answers(url):
            return time.monotonic() - started
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {limit:.0f}s")


@dataclass
class System:
    """A started system: its processes (name → pid), start-up seconds and endpoints."""

    name: str
    work: Path
    processes: dict[str, int] = field(default_factory=dict)
    startup_seconds: dict[str, float] = field(default_factory=dict)
    popen: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web_url: str = ""  # the product (full, cluster): the address customers use
    rest_url: str = ""  # baselines: Rasa's REST channel
    graph_secret: str = ""
    whatsapp_phone: str = ""  # its WhatsApp number's id: the fake Graph reports statuses by it
    database_url: str = ""  # the product's database, read for the exactly-once checks
    run_dir: Path | None = None  # where `./assistant` leaves each process's pid file
    checks: dict[str, str] = field(default_factory=dict)  # process -> its health check URL
    shop_url: str = ""  # the SQL store its action server uses
    refund_orders: RefundOrders | None = None  # one per refund conversation (orders.py)

    def usage(self) -> dict[str, tuple[float, int]]:
        return {name: usage(pid) for name, pid in self.processes.items()}

    def refresh_pids(self) -> None:
        """Re-reads the pid files (a fault run restarts processes under new pids)."""
        if self.run_dir is not None:
            for name in self.processes:
                pid_file = self.run_dir / f"{name}.pid"
                if pid_file.exists():
                    self.processes[name] = int(pid_file.read_text())

    def stop(self) -> None:
        # SIGTERM, not SIGINT: a benchmark started in the background ignores SIGINT and so
        # would `./assistant` (bash cannot trap a signal ignored on entry).
        for process in self.popen:
            if process.poll() is None:
                process.terminate()
        for process in self.popen:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: all its children


WHATSAPP = {"SUPPORT_WHATSAPP_VERIFY_TOKEN": "bench-verify",
            "SUPPORT_WHATSAPP_APP_SECRET": "bench-app-secret",
            "SUPPORT_WHATSAPP_ACCESS_TOKEN": "bench-access-token"}


def _product_env(work: Path, model: Path, graph_url: str, extra_env: dict[str, str],
                 public_port: int, action_port: int) -> dict[str, str]:
    """What both `./assistant up` and `./assistant cluster` are started with in a load run."""
    return {**os.environ, **WHATSAPP,
            "SUPPORT_WHATSAPP_API_URL": graph_url,
            # a number of its own, so the fake Graph sends each system its own statuses
            "SUPPORT_WHATSAPP_PHONE_NUMBER_ID": f"1555{public_port}",
            "SUPPORT_MODEL": str(model),
            "SUPPORT_PORT": str(public_port), "SUPPORT_ACTION_PORT": str(action_port),
            "SUPPORT_RASA_TOKEN": RASA_TOKEN, "SUPPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "SUPPORT_RUN_DIR": str(work / "run"), "SUPPORT_LOG_DIR": str(work / "log"),
            "DATABASE_URL": f"sqlite:///{work}/support.db",
            "SUPPORT_SHOP_DATABASE_URL": f"sqlite:///{work}/shop.db",
            "SUPPORT_LINK_SECRET": "bench-link-secret-0123456789",
            # every simulated customer comes from 127.0.0.1: the per-address new-chat limit
            # would otherwise refuse all but the first 20 a minute
            "SUPPORT_WIDGET_NEW_CHATS_PER_MINUTE": "10000", **extra_env}


def _launch(system: System, command: str, env: dict[str, str], checks: dict[str, str]) -> System:
    """Runs `./assistant COMMAND` in a session of its own and waits for every check to answer;
    each process's start-up runs from the launch to its first answer."""
    log = system.work / f"assistant-{command}.log"
    with open(log, "wb") as output:  # the child keeps its own copy of the descriptor
        process = subprocess.Popen([str(ROOT / "assistant"), command], cwd=ROOT, env=env,
                                   stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    system.popen.append(process)
    system.run_dir, system.checks = Path(env["SUPPORT_RUN_DIR"]), checks
    started, pending = time.monotonic(), dict(checks)
    while pending:
        if process.poll() is not None or time.monotonic() - started > 900:
            system.stop()
            raise RuntimeError(f"./assistant {command} did not start; see {log}")
        for name, url in list(pending.items()):
            if answers(url):
                system.startup_seconds[name] = round(time.monotonic() - started, 1)
                del pending[name]
        time.sleep(0.2)
    for pid_file in sorted(system.run_dir.glob("*.pid")):
        system.processes[pid_file.stem] = int(pid_file.read_text())
    return system


def start_full(work: Path, model: Path, graph_url: str, extra_env: dict[str, str]) -> System:
    """`./assistant up` on a fresh SQLite database, WhatsApp pointed at the local fake Graph."""
    ports = {name: free_port() for name in ("web", "rasa", "action")}
    env = _product_env(work, model, graph_url, {"SUPPORT_RASA_PORT": str(ports["rasa"]),
                                                **extra_env}, ports["web"], ports["action"])
    system = System("full", work, web_url=f"http://127.0.0.1:{ports['web']}",
                    graph_secret=WHATSAPP["SUPPORT_WHATSAPP_APP_SECRET"],
                    whatsapp_phone=env["SUPPORT_WHATSAPP_PHONE_NUMBER_ID"],
                    database_url=f"sqlite+aiosqlite:///{work}/support.db",
                    shop_url=f"sqlite:///{work}/shop.db")
    return _launch(system, "up", env, {
        "action-server": f"http://127.0.0.1:{ports['action']}/health",
        "web": f"{system.web_url}/health",
        "rasa": f"http://127.0.0.1:{ports['rasa']}/webhooks/support/"})


def start_cluster(work: Path, model: Path, graph_url: str, extra_env: dict[str, str],
                  database_url: str, redis_url: str) -> System:
    """`./assistant cluster` on `database_url` (emptied first, with Rasa's `<db>_rasa`) and
    `redis_url` under a key prefix of this run's own; customers come in through nginx."""
    asyncio.run(fresh_databases(database_url))
    public, action = free_port(), free_port()
    web_ports, rasa_ports = [free_port(), free_port()], [free_port(), free_port()]
    env = _product_env(work, model, graph_url, {
        "DATABASE_URL": database_url, "SUPPORT_REDIS_URL": redis_url,
        "SUPPORT_REDIS_PREFIX": f"benchload{os.getpid()}",
        "SUPPORT_WEB_PORTS": ",".join(map(str, web_ports)),
        "SUPPORT_RASA_PORTS": ",".join(map(str, rasa_ports)), **extra_env}, public, action)
    system = System("cluster", work, web_url=f"http://127.0.0.1:{public}",
                    graph_secret=WHATSAPP["SUPPORT_WHATSAPP_APP_SECRET"],
                    whatsapp_phone=env["SUPPORT_WHATSAPP_PHONE_NUMBER_ID"],
                    database_url="postgresql+asyncpg:" + database_url.split(":", 1)[1],
                    shop_url=f"sqlite:///{work}/shop.db")
    checks = {"action-server": f"http://127.0.0.1:{action}/health",
              **{f"web-{i + 1}": f"http://127.0.0.1:{port}/health"
                 for i, port in enumerate(web_ports)},
              **{f"rasa-{i + 1}": f"http://127.0.0.1:{port}/webhooks/support/"
                 for i, port in enumerate(rasa_ports)},
              "nginx": f"{system.web_url}/health"}
    return _launch(system, "cluster", env, checks)


async def fresh_databases(database_url: str) -> None:
    """Drops and recreates the service's database and Rasa's `<db>_rasa` beside it, so each
    run starts from nothing like the SQLite one does."""
    url = make_url("postgresql+asyncpg:" + database_url.split(":", 1)[1])
    engine = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            for name in (url.database, f"{url.database}_rasa"):
                await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await connection.execute(text(f'CREATE DATABASE "{url.database}"'))
    finally:
        await engine.dispose()


def start_action_server(work: Path) -> tuple[subprocess.Popen[bytes], str, float]:
    port = free_port()
    env = {**os.environ, "SANIC_HOST": "127.0.0.1", "ACTION_SERVER_SANIC_WORKERS": "1",
           "SUPPORT_SHOP_DATABASE_URL": f"sqlite:///{work}/shop.db",
           "SUPPORT_LINK_SECRET": "bench-link-secret-0123456789"}
    log = open(work / "action-server.log", "wb")
    started = time.monotonic()
    process = subprocess.Popen([str(APP_PY), "-m", "rasa_sdk", "--actions", "actions", "-p",
                                str(port)], cwd=ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    wait_for(f"http://127.0.0.1:{port}/health", 600, process)
    return process, f"http://127.0.0.1:{port}/webhook", time.monotonic() - started


def tf_threads_env(threads: int | None) -> dict[str, str]:
    """The environment that caps TensorFlow's thread pools in a Rasa process (Rasa reads both
    variables at start-up; see its "Configuring TensorFlow" docs). None: TensorFlow's default."""
    if threads is None:
        return {}
    return {"TF_INTRA_OP_PARALLELISM_THREADS": str(threads),
            "TF_INTER_OP_PARALLELISM_THREADS": str(threads)}


# Product variants: the same system with one setting changed, compared within one run.
NO_REPEAT = "norepeat"  # every message to Rasa: knowledge answers not given again
                        # (handoff/repeat_answers.py)


@dataclass(frozen=True)
class Variant:
    kind: str  # full, cluster, rasa-init, rasa-project
    threads: int | None = None  # TensorFlow capped at this many threads
    env: tuple[tuple[str, str], ...] = ()  # further environment of the product

    def environment(self) -> dict[str, str]:
        return {**tf_threads_env(self.threads), **dict(self.env)}


def variant(name: str) -> Variant:
    """'rasa-project@tf1' -> Rasa with TensorFlow capped at one thread; 'full@norepeat' ->
    the product asking Rasa every message. So a setting is compared within one run."""
    base, _, suffix = name.partition("@")
    if not suffix:
        return Variant(base)
    if suffix == NO_REPEAT:
        return Variant(base, env=(("SUPPORT_REPEAT_ANSWERS_SECONDS", "0"),))
    if not suffix.startswith("tf") or not suffix[2:].isdigit() or int(suffix[2:]) < 1:
        raise ValueError(f"unknown system variant {suffix!r} "
                         f"(known: tfN, e.g. {base}@tf1; {NO_REPEAT})")
    return Variant(base, threads=int(suffix[2:]))


def start_bare_rasa(name: str, work: Path, model: Path, action_endpoint: str,
                    tf_threads: int | None = None) -> System:
    """`rasa run` on the stock REST channel, as the Rasa docs show it."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (work / "credentials.yml").write_text("rest:\n")
    (work / "endpoints.yml").write_text(f"action_endpoint:\n  url: {action_endpoint}\n")
    log = open(work / "rasa.log", "wb")
    started = time.monotonic()
    process = subprocess.Popen(
        [str(RASA), "run", "-m", str(model), "-i", "127.0.0.1", "-p", str(port),
         "--credentials", str(work / "credentials.yml"), "--endpoints", str(work / "endpoints.yml")],
        cwd=work, env={**os.environ, **tf_threads_env(tf_threads)}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    system = System(name, work, popen=[process], rest_url=f"http://127.0.0.1:{port}/webhooks/rest/webhook")
    wait_for(f"http://127.0.0.1:{port}/webhooks/rest/", 900, process)
    system.startup_seconds["rasa"] = round(time.monotonic() - started, 1)
    system.processes["rasa"] = process.pid
    return system
