"""Simulated customers and agents, over the transports real ones use.

A customer runs scripted conversations drawn from a fixed mix and records, per turn, the time
from sending to the last reply. Every message is checked to arrive exactly once on the other
side: the widget against the stored transcript, WhatsApp against the Graph API fake's record.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

ANNA = "anna.kowalski@example.com"
AGENT_GREETING = "Hi, this is the support team. I have read our conversation - how can I help?"
AGENT_CLOSING = "Glad I could help. Have a good day!"


@dataclass(frozen=True)
class Turn:
    kind: str  # what the latency is reported under
    text: str


# The mix: (weight, turns). Languages follow the store's customers.
SCRIPTS: list[tuple[str, int, list[Turn]]] = [
    ("greeting", 20, [Turn("greeting", "hi"), Turn("greeting", "thanks, bye")]),
    ("knowledge", 35, [Turn("knowledge", "how many days until my package shows up in berlin"),
                       Turn("knowledge", "can i send back a sweater i don't like")]),
    ("order_status", 20, [Turn("order_status", "where is my order?"),
                          Turn("verification", "A10001"), Turn("verification", ANNA)]),
    ("refund", 10, [Turn("refund", "I want a refund for order A10003"),
                    Turn("verification", ANNA), Turn("refund", "1"),
                    Turn("refund", "it arrived damaged"), Turn("refund", "yes")]),
    ("human", 15, [Turn("handoff", "I want to talk to a person")]),
]
HUMAN_FOLLOW_UP = Turn("to_agent", "thanks, that's all I needed")


def script_order(seed: int, count: int) -> list[tuple[str, list[Turn]]]:
    """A deterministic sequence drawn by weight: every system gets the same conversations."""
    wheel = [(name, turns) for name, weight, turns in SCRIPTS for _ in range(weight)]
    step = 37  # coprime with the wheel's 100 slots: spreads the kinds evenly
    return [wheel[(seed * 11 + i * step) % len(wheel)] for i in range(count)]


@dataclass
class Record:
    """What one system at one load level measured."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    turns: int = 0
    conversations: int = 0
    rate_limited: int = 0

    def turn(self, kind: str, seconds: float) -> None:
        self.latencies[kind].append(seconds * 1000)
        self.turns += 1


class TurnFailed(Exception):
    pass


async def json_frames(socket: aiohttp.ClientWebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    async for frame in socket:
        if frame.type == aiohttp.WSMsgType.TEXT:
            yield json.loads(frame.data)


# --- widget -------------------------------------------------------------------------------


class WidgetCustomer:
    """One chat on the widget protocol (web/widget/PROTOCOL.md)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, record: Record) -> None:
        self._http, self._base, self._record = http, base, record
        self.seen: Counter[int] = Counter()
        self.arrived: dict[int, float] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self.sent: dict[str, str] = {}  # client_message_id -> text
        self.conversation_id = self.token = ""

    async def open(self, language: str = "en") -> None:
        self._socket = await self._http.ws_connect(f"{self._base}/widget/ws", heartbeat=30)
        await self._socket.send_json({"type": "hello", "language": language, "after": 0})
        welcome = await self._socket.receive_json(timeout=60)
        if welcome.get("type") != "welcome":
            raise TurnFailed(f"no welcome: {welcome}")
        self.conversation_id, self.token = welcome["conversation_id"], welcome["token"]
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for event in json_frames(self._socket):
            now = time.perf_counter()
            if event["type"] == "message":
                message = event["message"]
                self.seen[message["id"]] += 1
                self.arrived.setdefault(message["id"], now)
                self.messages[message["id"]] = message
            elif event["type"] == "ack":
                future = self._acks.get(event.get("client_message_id") or "")
                if future is not None and not future.done():
                    future.set_result({**event, "at": now})
            elif event["type"] == "error":
                future = self._acks.get(event.get("client_message_id") or "")
                if future is not None and not future.done():
                    future.set_result({**event, "at": now})
            self._changed.set()

    async def say(self, turn: Turn, timeout: float = 120) -> float:
        """Sends one message; returns seconds until its last reply (or its ack, for agents)."""
        client_id = uuid.uuid4().hex
        self.sent[client_id] = turn.text
        started = time.perf_counter()
        while True:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._acks[client_id] = future
            await self._socket.send_json({"type": "message", "text": turn.text,
                                          "client_message_id": client_id})
            try:
                ack = await asyncio.wait_for(future, timeout)
            except asyncio.TimeoutError:
                raise TurnFailed(f"no ack for {turn.text!r} in {self.conversation_id}") from None
            if ack["type"] == "ack":
                break
            if "retry_after" not in ack:
                raise TurnFailed(f"refused: {ack.get('error')}")
            self._record.rate_limited += 1
            await asyncio.sleep(float(ack["retry_after"]))  # as the widget does
        pending = set(ack["reply_ids"])
        deadline = time.perf_counter() + timeout
        while not pending <= self.arrived.keys():
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.perf_counter()))
            except asyncio.TimeoutError:
                raise TurnFailed(f"replies {sorted(pending - self.arrived.keys())} to "
                                 f"{turn.text!r} in {self.conversation_id} never came") from None
        last = max([ack["at"], *(self.arrived[i] for i in pending)])
        self.last_replies = [str(self.messages[i].get("text") or "") for i in ack["reply_ids"]]
        return last - started

    async def wait_for(self, predicate: Any, timeout: float = 300) -> dict[str, Any]:
        """The first message (already here or arriving) that satisfies `predicate`."""
        deadline = time.perf_counter() + timeout
        while True:
            for message_id in sorted(self.messages):
                if predicate(self.messages[message_id]):
                    return self.messages[message_id]
            self._changed.clear()
            if time.perf_counter() > deadline:
                raise TurnFailed("an expected message never came")
            await asyncio.wait_for(self._changed.wait(), timeout)

    async def check_and_close(self) -> None:
        """Every stored message the customer may see arrived once; everything sent was stored once."""
        async with self._http.get(
                f"{self._base}/api/conversations/{self.conversation_id}/messages",
                headers={"Authorization": f"Bearer {self.token}"}) as response:
            stored = (await response.json())["messages"]
        visible = [m for m in stored if not m.get("private")]
        deadline = time.perf_counter() + 10  # a message stored just now may still be on its way
        while any(m["id"] not in self.seen for m in visible) and time.perf_counter() < deadline:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), 1)
            except asyncio.TimeoutError:
                pass
        for message in visible:
            if self.seen[message["id"]] == 0:
                self._record.lost.append(f"widget {self.conversation_id}: stored message "
                                         f"{message['id']} never reached the customer")
        for message_id, count in self.seen.items():
            if count > 1:
                self._record.duplicated.append(f"widget {self.conversation_id}: message "
                                               f"{message_id} shown {count} times")
        incoming = Counter(m["source_id"] for m in stored if m["type"] == "incoming")
        for client_id in self.sent:
            if incoming[client_id] != 1:
                (self._record.lost if incoming[client_id] == 0 else self._record.duplicated).append(
                    f"widget {self.conversation_id}: customer message {client_id} stored "
                    f"{incoming[client_id]} times")
        await self._socket.close()
        self._reader.cancel()


# --- WhatsApp -----------------------------------------------------------------------------


class FakeGraph:
    """Meta's Graph API messages endpoint: checks the token and body, records each arrival."""

    def __init__(self, access_token: str) -> None:
        self._token = access_token
        self.arrivals: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # to -> ...
        self.changed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.refused = 0

    async def messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            self.refused += 1
            return web.json_response({"error": {"message": "Invalid OAuth access token"}},
                                     status=401)
        body = await request.json()
        if body.get("messaging_product") != "whatsapp" or not body.get("to"):
            self.refused += 1
            return web.json_response({"error": {"message": "bad body"}}, status=400)
        wamid = f"wamid.out.{uuid.uuid4().hex}"
        text = ((body.get("text") or {}).get("body")
                or json.dumps(body.get("interactive") or body.get("template") or {}))
        self.arrivals[body["to"]].append((time.perf_counter(), wamid, text))
        self.changed[body["to"]].set()
        return web.json_response({"messages": [{"id": wamid}]})

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/v21.0/{phone}/messages", self.messages)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner, f"http://127.0.0.1:{port}/v21.0"


class WhatsAppCustomer:
    """A customer on WhatsApp: signed webhook posts in, the Graph fake's arrivals out.

    WhatsApp tells a business nothing like "the answer is complete", so the customer reads the
    first reply and answers once no further reply has come for `think` seconds; the latency to
    the last reply is computed afterwards from the stored replies (see `latencies`).
    """

    def __init__(self, http: aiohttp.ClientSession, base: str, secret: str, graph: FakeGraph,
                 number: str, record: Record, think: float = 0.4) -> None:
        self._http, self._base, self._secret, self._graph = http, base, secret, graph
        self.number, self._record, self._think = number, record, think
        self.sent: dict[str, tuple[float, str]] = {}  # wamid -> (sent at, kind)

    async def say(self, turn: Turn, timeout: float = 120) -> None:
        wamid = f"wamid.in.{uuid.uuid4().hex}"
        body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "contacts": [{"wa_id": self.number, "profile": {"name": "Bench Customer"}}],
                "messages": [{"from": self.number, "id": wamid, "timestamp": str(int(time.time())),
                              "type": "text", "text": {"body": turn.text}}]}}]}]}).encode()
        signature = "sha256=" + hmac.new(self._secret.encode(), body, hashlib.sha256).hexdigest()
        before = len(self._graph.arrivals[self.number])
        started = time.perf_counter()
        self.sent[wamid] = (started, turn.kind)
        async with self._http.post(f"{self._base}/webhooks/whatsapp", data=body, headers={
                "Content-Type": "application/json", "X-Hub-Signature-256": signature}) as response:
            if response.status != 200:
                raise TurnFailed(f"webhook answered {response.status}")
        if turn.kind == "to_agent":
            return
        await self.wait_arrivals(before + 1, timeout)
        while True:  # the customer's think time: read until the replies stop coming
            count = len(self._graph.arrivals[self.number])
            event = self._graph.changed[self.number]
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), self._think)
            except asyncio.TimeoutError:
                if len(self._graph.arrivals[self.number]) == count:
                    return

    async def wait_arrivals(self, count: int, timeout: float) -> None:
        deadline = time.perf_counter() + timeout
        while len(self._graph.arrivals[self.number]) < count:
            event = self._graph.changed[self.number]
            event.clear()
            try:
                await asyncio.wait_for(event.wait(), max(0.0, deadline - time.perf_counter()))
            except asyncio.TimeoutError:
                raise TurnFailed(f"no WhatsApp reply to {self.number} (sent: "
                                 f"{[k for _, k in self.sent.values()]})") from None

    async def wait_text(self, text: str, timeout: float = 300) -> float:
        deadline = time.perf_counter() + timeout
        while True:
            for at, _, body in self._graph.arrivals[self.number]:
                if text in body:
                    return at
            event = self._graph.changed[self.number]
            event.clear()
            if time.perf_counter() > deadline:
                raise TurnFailed(f"{text!r} never reached WhatsApp")
            await asyncio.wait_for(event.wait(), timeout)


# --- bare Rasa ----------------------------------------------------------------------------


class RestCustomer:
    """A customer of bare Rasa on its stock REST channel: one POST per message."""

    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http, self._url, self.sender = http, url, uuid.uuid4().hex

    async def say(self, turn: Turn, timeout: float = 120) -> float:
        started = time.perf_counter()
        async with self._http.post(self._url, json={"sender": self.sender, "message": turn.text},
                                   timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            if response.status != 200:
                raise TurnFailed(f"Rasa answered {response.status}")
            replies = await response.json()
        if not isinstance(replies, list):
            raise TurnFailed("Rasa's REST channel answered something other than a list")
        self.last_replies = [str(r.get("text") or r.get("custom") or "") for r in replies]
        return time.perf_counter() - started


# --- agents -------------------------------------------------------------------------------


class Agent:
    """An agent on the console: claims what waits, greets, and closes after the customer's reply."""

    def __init__(self, http: aiohttp.ClientSession, base: str, record: Record) -> None:
        self._http, self._base, self._record = http, base, record
        self._tasks: set[asyncio.Task[None]] = set()
        self._customer_messages: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self.seen: Counter[int] = Counter()
        self.sent_at: dict[str, float] = {}  # text -> when a customer sent it (set by customers)
        self.claims = 0
        self._tried: set[str] = set()
        self._queue_changed = asyncio.Event()
        self._queue_changed.set()  # what already waits when the agent logs in

    async def log_in(self, email: str, password: str) -> None:
        async with self._http.post(f"{self._base}/console/api/login",
                                   json={"email": email, "password": password}) as response:
            if response.status != 200:
                raise TurnFailed(f"agent {email} could not log in: {response.status}")
            self._headers = {"X-CSRF-Token": (await response.json())["csrf_token"]}
        self._socket = await self._http.ws_connect(f"{self._base}/console/ws", heartbeat=30)
        self._reader = asyncio.create_task(self._read())
        self._spawn(self._watch_queue())

    async def _read(self) -> None:
        async for event in json_frames(self._socket):
            if event.get("type") == "queue":
                self._queue_changed.set()
            elif event.get("type") == "message":
                message = event["message"]
                self.seen[message["id"]] += 1
                if message["author"] == "customer" and self.seen[message["id"]] == 1:
                    self._customer_messages[message["conversation_id"]].put_nowait(message)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch_queue(self) -> None:
        """Like a person at the console: looks at the queue when it changes, one look at a time."""
        while True:
            await self._queue_changed.wait()
            self._queue_changed.clear()
            try:
                await self._claim_waiting()
            except (aiohttp.ClientError, TurnFailed) as exc:
                self._record.errors[f"agent queue: {exc!r}"[:120]] += 1

    async def _claim_waiting(self) -> None:
        async with self._http.get(f"{self._base}/console/api/queue") as response:
            waiting = (await response.json())["waiting"]
        for row in waiting:
            # one try per conversation: a 409 means a colleague was faster
            if not row["eligible"] or row["id"] in self._tried:
                continue
            self._tried.add(row["id"])
            async with self._http.post(
                    f"{self._base}/console/api/conversations/{row['id']}/claim",
                    headers=self._headers) as response:
                if response.status == 200:
                    self.claims += 1
                    self._spawn(self._serve(row["id"]))
                elif response.status not in (409, 403):
                    self._record.errors[f"claim answered {response.status}"] += 1

    async def _serve(self, conversation_id: str) -> None:
        try:
            await self._socket.send_json({"type": "watch", "conversation_id": conversation_id})
            await self._post(conversation_id, "messages", {"text": AGENT_GREETING})
            while True:
                message = await asyncio.wait_for(
                    self._customer_messages[conversation_id].get(), 300)
                sent = self.sent_at.get(message["text"])
                if sent is not None:
                    self._record.turn("customer_to_agent_screen", time.perf_counter() - sent)
                    break
            await self._post(conversation_id, "messages", {"text": AGENT_CLOSING})
            await self._post(conversation_id, "resolve", {"resolution_code": "answered"})
            await self._socket.send_json({"type": "unwatch", "conversation_id": conversation_id})
        except Exception as exc:  # reported, not raised: one stuck chat must not stop the run
            self._record.errors[f"agent: {exc!r}"[:120]] += 1

    async def _post(self, conversation_id: str, action: str, body: dict[str, Any]) -> None:
        async with self._http.post(
                f"{self._base}/console/api/conversations/{conversation_id}/{action}",
                json=body, headers=self._headers) as response:
            if response.status != 200:
                raise TurnFailed(f"{action} answered {response.status}: {await response.text()}")

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._socket.close()
        self._reader.cancel()
