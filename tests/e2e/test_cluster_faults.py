"""`./assistant cluster` (two web services behind nginx, two Rasa servers, an action server)
on a PostgreSQL and a Redis of the tests' own, which they kill and restart.

"Nothing lost" means, for every test: each message a customer sent is stored exactly once,
in the order sent, and each got an answer or a clear refusal that made the customer send it
again (with the same client_message_id, so the retry is stored once). The tests share one
cluster; they run in this file's order, the harshest last.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import threading
import time
import uuid
import zlib
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import asyncpg
import pytest
from playwright.sync_api import Page, expect

from bench.load.customers import FakeGraph, signed_post, whatsapp_message
from tests.conftest import unused_port
from tests.e2e.conftest import ADMIN_PASSWORD, RunningSystem, launch
from tests.e2e.http import Response, call
from tests.e2e.test_console_browser import browser, page  # noqa: F401
from tests.throwaway import PG_BIN, ThrowawayPostgres, ThrowawayRedis

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not (PG_BIN / "initdb").exists() or shutil.which("redis-server") is None,
                       reason="needs PostgreSQL 15's server binaries and redis-server to start "
                              "throwaway servers"),
]
TOKEN = "cluster-token"
WHATSAPP = {"SUPPORT_WHATSAPP_PHONE_NUMBER_ID": "1555777",
            "SUPPORT_WHATSAPP_VERIFY_TOKEN": "cluster-verify",
            "SUPPORT_WHATSAPP_APP_SECRET": "cluster-app-secret",
            "SUPPORT_WHATSAPP_ACCESS_TOKEN": "cluster-access-token"}
T = TypeVar("T")


class GraphThread:
    """Meta's Graph API (the load benchmark's fake: it checks the token and body, and reports
    each message's status to the webhook as Meta does) on an event loop of its own, so the
    cluster can call it while a test blocks."""

    def __init__(self) -> None:
        self.graph = FakeGraph(WHATSAPP["SUPPORT_WHATSAPP_ACCESS_TOKEN"])
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._runner, self.url = self.run(self.graph.start())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def release(self, recipient: str) -> None:
        self.loop.call_soon_threadsafe(self.graph.held[recipient].set)

    def stop(self) -> None:
        self.run(self._runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


class Cluster:
    def __init__(self, system: RunningSystem, postgres: ThrowawayPostgres,
                 redis: ThrowawayRedis, rasa_urls: list[str], whatsapp: GraphThread) -> None:
        self.system, self.postgres, self.redis = system, postgres, redis
        self.url, self.rasa_urls, self.whatsapp = system.web_url, rasa_urls, whatsapp


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("cluster")
    postgres, redis = ThrowawayPostgres(), ThrowawayRedis()
    postgres.start()
    redis.start()
    rasa_ports = [unused_port(), unused_port()]
    port = unused_port()
    whatsapp = GraphThread()
    whatsapp.graph.webhooks[WHATSAPP["SUPPORT_WHATSAPP_PHONE_NUMBER_ID"]] = (
        f"http://127.0.0.1:{port}/webhooks/whatsapp", WHATSAPP["SUPPORT_WHATSAPP_APP_SECRET"])
    env = {
        **os.environ, **WHATSAPP, "SUPPORT_WHATSAPP_API_URL": whatsapp.url,
        "DATABASE_URL": postgres.url, "SUPPORT_REDIS_URL": redis.url,
        "SUPPORT_PORT": str(port),
        "SUPPORT_WEB_PORTS": f"{unused_port()},{unused_port()}",
        "SUPPORT_RASA_PORTS": ",".join(map(str, rasa_ports)),
        "SUPPORT_ACTION_PORT": str(unused_port()),
        "SUPPORT_RASA_TOKEN": TOKEN, "SUPPORT_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "SUPPORT_RUN_DIR": str(tmp / "run"), "SUPPORT_LOG_DIR": str(tmp / "log"),
        "SUPPORT_SHOP_DATABASE_URL": f"sqlite:///{tmp}/shop.db",
        "SUPPORT_LINK_SECRET": "cluster-link-secret-0123456789",
        "SUPPORT_REROUTE_EVERY_SECONDS": "2",
    }
    system = launch("cluster", env, web_url=f"http://127.0.0.1:{port}",
                    rasa_url=f"http://127.0.0.1:{rasa_ports[0]}", action_url="",
                    token=TOKEN, run_dir=tmp / "run", log_dir=tmp / "log")
    try:
        yield Cluster(system, postgres, redis, [f"http://127.0.0.1:{p}" for p in rasa_ports],
                      whatsapp)
    finally:
        if system.process.poll() is None:
            system.stop()
        whatsapp.stop()
        redis.stop()
        postgres.destroy()


class Customer:
    """A customer of the HTTP channel through nginx, who resends what was refused."""

    def __init__(self, url: str) -> None:
        self.url = url
        created = call("POST", f"{url}/api/conversations", {"language": "en"})
        assert created.status == 201, created.body
        self.id = created.body["id"]
        self.headers = {"Authorization": f"Bearer {created.body['token']}"}
        self.sent: list[str] = []
        self.refusals = 0

    def say(self, text: str, attempts: int = 60) -> dict[str, Any]:
        """Sends until the service takes it; a refusal must be a clear 503, never a silent drop."""
        client_id = uuid.uuid4().hex
        self.sent.append(text)
        for _ in range(attempts):
            response = self._send(text, client_id)
            if response.status == 200:
                return dict(response.body)
            assert response.status in (502, 503, 504), (response.status, response.body)
            self.refusals += 1
            time.sleep(0.5)  # a client honouring Retry-After waits before resending
        raise AssertionError(f"{text!r} was never accepted")

    def _send(self, text: str, client_id: str) -> Response:
        try:
            return call("POST", f"{self.url}/api/conversations/{self.id}/messages",
                        {"text": text, "client_message_id": client_id}, self.headers, timeout=60)
        except OSError as exc:  # the connection itself dropped: as unclear as it gets, resend
            return Response(503, repr(exc))

    def stored(self) -> list[str]:
        response = call("GET", f"{self.url}/api/conversations/{self.id}/messages",
                        headers=self.headers)
        assert response.status == 200, response.body
        return [m["text"] for m in response.body["messages"] if m["author"] == "customer"]

    def assert_nothing_lost(self) -> None:
        assert self.stored() == self.sent  # each once, in the order sent


def texts(result: dict[str, Any]) -> str:
    return " ".join(r["text"] or "" for r in result["replies"] if r["type"] == "outgoing")


def home_index(conversation_id: str, servers: int) -> int:
    """Which Rasa server a conversation goes to first (handoff/assistant.py)."""
    return zlib.crc32(conversation_id.encode()) % servers


def test_the_cluster_answers_through_nginx_on_both_instances(cluster: Cluster) -> None:
    customers = [Customer(cluster.url) for _ in range(4)]
    for customer in customers:
        assert "virtual assistant" in texts(customer.say("hi"))
    for customer in customers:
        customer.assert_nothing_lost()
    # nginx spread the customers: both instances served message posts
    for name in ("web-1", "web-2"):
        assert "/messages" in (cluster.system.log_dir / f"{name}.log").read_text(), name


def test_a_killed_rasa_servers_conversations_continue_on_the_other(cluster: Cluster) -> None:
    """Nothing lost: the order form started on rasa-1 goes on at rasa-2 from the shared
    tracker store, and every message is stored once."""
    customer = Customer(cluster.url)
    while home_index(customer.id, 2) != 0:
        customer = Customer(cluster.url)
    assert "order number" in texts(customer.say("where is my order?")).lower()
    cluster.system.kill("rasa-1")
    asked = texts(customer.say("#a10001"))
    assert "email" in asked.lower(), asked  # the form remembered what it was asking
    answer = customer.say("anna.kowalski@example.com")
    assert answer["status"] == "bot" and "A10001" in texts(answer)
    customer.assert_nothing_lost()


async def _widget(url: str) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    session = aiohttp.ClientSession()
    socket = await session.ws_connect(url.replace("http", "ws", 1) + "/widget/ws")
    return session, socket


async def _frame(socket: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            frame = await socket.receive()
            if frame.type != aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"socket closed: {frame.type}")
            data = json.loads(frame.data)
            if data["type"] == kind:
                return dict(data)


async def _answered(socket: aiohttp.ClientWebSocketResponse, text: str) -> dict[str, Any]:
    """Sends a message and waits for its acknowledgement."""
    client_id = uuid.uuid4().hex
    await socket.send_json({"type": "message", "text": text, "client_message_id": client_id})
    ack = await _frame(socket, "ack")
    assert ack["client_message_id"] == client_id
    return ack


async def test_a_killed_web_instance_loses_no_widget_message(cluster: Cluster) -> None:
    """Nothing lost: after web-1 dies, each widget reconnects through nginx and gets its whole
    history — every message once, in order — and carries on."""
    chats = []
    for n in range(4):  # nginx alternates, so some of these sockets are on web-1
        session, socket = await _widget(cluster.url)
        await socket.send_json({"type": "hello", "language": "en", "after": 0})
        welcome = await _frame(socket, "welcome")
        await _answered(socket, f"hello from chat {n}")
        chats.append({"session": session, "socket": socket, "id": welcome["conversation_id"],
                      "token": welcome["token"], "sent": [f"hello from chat {n}"]})
    try:
        cluster.system.kill("web-1")
        dropped = 0
        for n, chat in enumerate(chats):
            text = f"after the crash {n}"
            try:
                await _answered(chat["socket"], text)
            except ConnectionError:
                dropped += 1
                await chat["socket"].close()
                chat["socket"] = await chat["session"].ws_connect(
                    cluster.url.replace("http", "ws", 1) + "/widget/ws")
                await chat["socket"].send_json({"type": "hello", "conversation_id": chat["id"],
                                                "token": chat["token"], "after": 0})
                await _frame(chat["socket"], "welcome")
                await _answered(chat["socket"], text)
            chat["sent"].append(text)
        assert dropped >= 1  # the crash did hit open chats
        for chat in chats:
            response = call("GET", f"{cluster.url}/api/conversations/{chat['id']}/messages",
                            headers={"Authorization": f"Bearer {chat['token']}"})
            stored = [m["text"] for m in response.body["messages"] if m["author"] == "customer"]
            assert stored == chat["sent"]
    finally:
        for chat in chats:
            await chat["socket"].close()
            await chat["session"].close()


def _holder_of_port(port: int, graph_port: int, names: list[str], system: RunningSystem) -> str:
    """Which of the named processes has the TCP connection from `port` to `graph_port` open."""
    inodes = {line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
              if int(line.split()[1].split(":")[1], 16) == port
              and int(line.split()[2].split(":")[1], 16) == graph_port}
    for name in names:
        for fd in Path(f"/proc/{system.pid(name)}/fd").iterdir():
            try:
                if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                    return name
            except OSError:
                pass
    raise AssertionError(f"no process of {names} holds the connection from port {port}")


async def _whatsapp_says(cluster: Cluster, number: str, text: str) -> None:
    async with aiohttp.ClientSession() as http, signed_post(
            http, f"{cluster.url}/webhooks/whatsapp", WHATSAPP["SUPPORT_WHATSAPP_APP_SECRET"],
            whatsapp_message(number, text, name="Dana")) as response:
        assert response.status == 200, await response.text()


async def _arrivals(cluster: Cluster, number: str, count: int, limit: float = 90) -> list[str]:
    """The wamids of what reached WhatsApp for `number`, once there are `count` (bounded)."""
    arrivals = cluster.whatsapp.graph.arrivals[number]
    async with asyncio.timeout(limit):
        while len(arrivals) < count:
            await asyncio.sleep(0.1)
    return [wamid for _, wamid, _ in arrivals]


async def _deliveries(cluster: Cluster, number: str) -> list[tuple[str, str | None]]:
    """(status, the platform's id) of each message the outbox had to send to `number`."""
    connection = await asyncpg.connect(cluster.postgres.url)
    try:
        rows = await connection.fetch(
            "SELECT d.status, d.provider_message_id FROM deliveries d"
            " JOIN messages m ON m.id = d.message_id"
            " JOIN channel_identities i ON i.conversation_id = m.conversation_id"
            " AND i.channel = 'whatsapp' WHERE i.external_id = $1 AND d.status <> 'skipped'"
            " ORDER BY d.message_id", number)
    finally:
        await connection.close()
    return [(row["status"], row["provider_message_id"]) for row in rows]


async def test_a_whatsapp_reply_in_flight_when_its_instance_dies_goes_out_once(
    cluster: Cluster,
) -> None:
    """Nothing lost or shown twice on WhatsApp: WhatsApp takes a reply, and the instance that
    sent it is killed before it hears back. WhatsApp's status for that reply (through nginx,
    to the other instance) confirms it, so it is never sent again; the conversation's later
    replies go out from the surviving instance, each once. Checked reply by reply against
    what reached the fake Graph API."""
    for name in ("web-1", "web-2"):
        if not cluster.system.alive(name):
            cluster.system.restart(name)
            _answers(f"http://127.0.0.1:{cluster.system.launches[name].env['SUPPORT_PORT']}"
                     "/health")
    number, graph = "972500000001", cluster.whatsapp.graph
    graph.held[number] = asyncio.Event()
    await _whatsapp_says(cluster, number, "hi")
    await _arrivals(cluster, number, 1)  # WhatsApp has the reply; its answer is held
    graph_port = int(cluster.whatsapp.url.split(":")[2].split("/")[0])
    sender = _holder_of_port(graph.sender_ports[number][0], graph_port, ["web-1", "web-2"],
                             cluster.system)
    cluster.system.kill(sender)
    cluster.whatsapp.release(number)  # the answer meets a dead socket; the status goes out
    async with asyncio.timeout(60):
        while (await _deliveries(cluster, number))[0][0] != "sent":
            await asyncio.sleep(0.2)
    first = await _deliveries(cluster, number)
    assert first[0] == ("sent", (await _arrivals(cluster, number, 1))[0])

    await _whatsapp_says(cluster, number, "thank you")
    async with asyncio.timeout(90):  # every reply to both messages recorded as sent
        while len(rows := await _deliveries(cluster, number)) <= len(first) or \
                any(status != "sent" for status, _ in rows):
            await asyncio.sleep(0.2)
    arrived = await _arrivals(cluster, number, len(rows))
    assert arrived == [provider_id for _, provider_id in rows]  # each reply once, in order
    cluster.system.restart(sender)
    _answers(f"http://127.0.0.1:{cluster.system.launches[sender].env['SUPPORT_PORT']}/health")


def _answers(url: str, limit: float = 120) -> None:
    """Waits (bounded) until a restarted web service answers its health check."""
    deadline = time.monotonic() + limit
    while True:
        try:
            if call("GET", url, timeout=2).status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer within {limit:.0f}s"
        time.sleep(0.2)


def _screen(widget: Page) -> list[tuple[str, str, str]]:
    """Every bubble of the widget's log, in order: (message id, kind, text)."""
    return [tuple(row) for row in widget.eval_on_selector_all(  # type: ignore[misc]
        ".sw-log li", "items => items.map(i => [i.dataset.id || '', i.className, i.textContent])")]


def test_the_widget_in_a_browser_moves_to_the_other_instance_when_its_own_dies(
    cluster: Cluster, page: Page  # noqa: F811
) -> None:
    """Nothing lost, in a real browser: the widget's socket is on web-2 (web-1 is down when it
    opens), web-1 comes back, web-2 is killed; the widget reconnects through nginx to web-1 and
    shows every stored message once, in the stored order — before and after a reload."""
    if cluster.system.alive("web-1"):
        cluster.system.kill("web-1")
    page.goto(f"{cluster.url}/demo")
    page.click(".sw-launcher")
    for text, answer in (("hi", "virtual assistant"), ("where is my order?", "order number")):
        page.fill(".sw-form textarea", text)
        page.keyboard.press("Enter")
        expect(page.locator(".sw-assistant").last).to_contain_text(answer)
    before = _screen(page)

    cluster.system.restart("web-1")
    _answers(f"http://127.0.0.1:{cluster.system.launches['web-1'].env['SUPPORT_PORT']}/health")
    cluster.system.kill("web-2")
    page.fill(".sw-form textarea", "#a10001")
    page.keyboard.press("Enter")
    expect(page.locator(".sw-assistant").last).to_contain_text("email", timeout=60_000)
    expect(page.locator(".sw-pending")).to_have_count(0)

    saved = json.loads(page.evaluate("localStorage.getItem('support-widget:' + location.origin)"))
    # at once, through nginx, to the one instance left
    stored = call("GET", f"{cluster.url}/api/conversations/{saved['conversation_id']}/messages",
                  headers={"Authorization": f"Bearer {saved['token']}"})
    assert stored.status == 200, stored.body
    expected = [(str(m["id"]), "sw-" + ("activity" if m["type"] == "activity" else m["author"]))
                for m in stored.body["messages"]]
    shown = _screen(page)
    assert shown[:len(before)] == before  # the history stayed on the screen
    assert [(id_, kind) for id_, kind, _ in shown] == expected  # each stored message once
    assert [text for _, kind, text in shown if kind == "sw-customer"] == [
        "hi", "where is my order?", "#a10001"]

    page.reload()
    page.click(".sw-launcher")
    expect(page.locator(".sw-log li")).to_have_count(len(expected))
    assert _screen(page) == shown  # read back from the database by web-1: the same


def test_with_redis_down_customers_are_answered_and_nothing_is_lost(cluster: Cluster) -> None:
    """Nothing lost: with Redis down every message is stored once and answered — by the
    assistant, or (Rasa's lock store is in Redis) by the clear "connecting you to a person"."""
    customer = Customer(cluster.url)
    customer.say("hi")
    cluster.redis.stop()
    try:
        result = customer.say("where is my order?")
        assert result["replies"], result  # an answer, never silence
    finally:
        cluster.redis.start()
    later = Customer(cluster.url)
    assert "virtual assistant" in texts(later.say("hi"))  # recovered: the assistant answers
    customer.assert_nothing_lost()
    later.assert_nothing_lost()


def test_postgres_restarting_while_customers_type_loses_nothing(cluster: Cluster) -> None:
    """Nothing lost: messages accepted before the restart are kept; those sent while it
    restarts are refused with a clear 503 and accepted once resent — each stored once."""
    customers = [Customer(cluster.url) for _ in range(3)]
    for customer in customers:
        customer.say("hi")
    cluster.postgres.stop("immediate")  # a crash, not a polite shutdown
    try:
        response = customers[0]._send("typed while the database is down", uuid.uuid4().hex)
        assert response.status == 503, response.body  # clear: not stored, send again
    finally:
        cluster.postgres.start()
    for n, customer in enumerate(customers):
        customer.say(f"typed after the restart {n}")
    for customer in customers:
        customer.assert_nothing_lost()


def test_action_server_killed_inside_a_form_gives_a_clear_reply(cluster: Cluster) -> None:
    """Nothing lost: the customer is told at once that a person takes over, and the form's
    place in Rasa's tracker store is kept."""
    customer = Customer(cluster.url)
    assert "order number" in texts(customer.say("where is my order?")).lower()
    # the server and its worker processes, as when the machine's OOM killer takes them all
    cluster.system.kill("action-server")
    result = customer.say("#a10001")
    assert result["status"] == "waiting"
    assert "having trouble" in texts(result) or "person" in texts(result)
    customer.assert_nothing_lost()
    tracker = call("GET", f"{cluster.rasa_urls[1]}/conversations/{customer.id}/tracker"
                          f"?token={TOKEN}")
    assert tracker.status == 200
    assert (tracker.body.get("active_loop") or {}).get("name"), tracker.body.get("active_loop")
