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

from handoff.conversations.router import TROUBLE_TEXT

ANNA = "anna.kowalski@example.com"
AGENT_GREETING = "Hi, this is the support team. I have read our conversation - how can I help?"
AGENT_CLOSING = "Glad I could help. Have a good day!"


@dataclass(frozen=True)
class Turn:
    kind: str  # what the latency is reported under
    text: str


# The mix: (weight, turns). Languages follow the store's customers. `{order}`: an order of
# the conversation's own (orders.py).
SCRIPTS: list[tuple[str, int, list[Turn]]] = [
    ("greeting", 20, [Turn("greeting", "hi"), Turn("greeting", "thanks, bye")]),
    ("knowledge", 35, [Turn("knowledge", "how many days until my package shows up in berlin"),
                       Turn("knowledge", "can i send back a sweater i don't like")]),
    ("order_status", 20, [Turn("order_status", "where is my order?"),
                          Turn("verification", "A10001"), Turn("verification", ANNA)]),
    ("refund", 10, [Turn("refund", "I want a refund for order {order}"),
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
    reconnects: int = 0  # sockets reopened after the server side went away
    repeated_after_reconnect: int = 0  # messages a new socket sent again (dropped by id)
    resent: int = 0  # messages sent again (same id) after a refusal or a dropped connection
    # customer index -> (sent at, answered at, by whom) of each answered message: when every
    # customer was answered again after a fault (bench/load/faults.py); see `answered_by`
    answered: dict[int, list[tuple[float, float, str]]] = field(
        default_factory=lambda: defaultdict(list))
    # customer index -> (at, who, text): what each customer sent and was shown, when a fault
    # run keeps it for its per-customer breakdown (None: not kept)
    timeline: dict[int, list[tuple[float, str, str]]] | None = None
    # conversation ids of customers who asked for a person and were not greeted by one in time
    no_person_came: list[str] = field(default_factory=list)

    def turn(self, kind: str, seconds: float) -> None:
        self.latencies[kind].append(seconds * 1000)
        self.turns += 1


class TurnFailed(Exception):
    pass


def answered_by(replies: list[tuple[str, str]]) -> str:
    """Who answered a message, from its replies' (author, text): `assistant`; `trouble` (the
    assistant could not answer and handed the chat to a person); `agent`; `nobody` (the chat
    is with the people: the message was stored and acknowledged, and nobody answered it)."""
    if any(text == TROUBLE_TEXT for _, text in replies):
        return "trouble"
    if any(author == "agent" or text in (AGENT_GREETING, AGENT_CLOSING)
           for author, text in replies):
        return "agent"
    if any(author != "customer" for author, _ in replies):  # WhatsApp's: no author known
        return "assistant"
    return "nobody"


async def json_frames(socket: aiohttp.ClientWebSocketResponse) -> AsyncIterator[dict[str, Any]]:
    async for frame in socket:
        if frame.type == aiohttp.WSMsgType.TEXT:
            yield json.loads(frame.data)


# --- widget -------------------------------------------------------------------------------


class WidgetCustomer:
    """One chat on the widget protocol (web/widget/PROTOCOL.md).

    Like the real widget, when the socket drops (an instance died, the database restarts) it
    reconnects, resumes with `after: <last id seen>` and resends every unacknowledged message
    with its `client_message_id`; what it was shown is then checked for loss and repeats.
    """

    RECONNECT_FOR_SECONDS = 300.0  # a bound on an outage the customer waits through

    def __init__(self, http: aiohttp.ClientSession, base: str, record: Record) -> None:
        self._http, self._base, self._record = http, base, record
        self.seen: Counter[int] = Counter()
        self.arrived: dict[int, float] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._changed = asyncio.Event()
        self.sent: dict[str, str] = {}  # client_message_id -> text
        self.conversation_id = self.token = ""
        self._closing = False
        self.log: list[tuple[float, str, str]] | None = None  # (at, who, text), if kept
        self.last_answered_by = "nobody"

    async def open(self, language: str = "en") -> None:
        deadline = time.perf_counter() + self.RECONNECT_FOR_SECONDS
        while True:  # a new chat needs the database too: wait out an outage like a resume
            try:
                welcome = await self._connect({"type": "hello", "language": language, "after": 0})
                break
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, TurnFailed):
                if time.perf_counter() > deadline:
                    raise
                self._record.reconnects += 1
                await asyncio.sleep(1.0)
        self.conversation_id, self.token = welcome["conversation_id"], welcome["token"]
        self._reader = asyncio.create_task(self._read())

    async def _connect(self, hello: dict[str, Any]) -> dict[str, Any]:
        self._socket = await self._http.ws_connect(f"{self._base}/widget/ws", heartbeat=30)
        await self._socket.send_json(hello)
        frame = await self._socket.receive(timeout=60)
        welcome = json.loads(frame.data) if frame.type == aiohttp.WSMsgType.TEXT else {}
        if welcome.get("type") != "welcome":  # an error, or the socket closed at once
            await self._socket.close()
            raise TurnFailed(f"no welcome: {frame.type.name} {welcome}")
        return dict(welcome)

    async def _resume(self) -> None:
        """Reopens the socket (retrying until the deadline) and resends what is unacknowledged."""
        deadline = time.perf_counter() + self.RECONNECT_FOR_SECONDS
        while not self._closing:
            try:
                await self._connect({"type": "hello", "conversation_id": self.conversation_id,
                                     "token": self.token, "after": max(self.seen, default=0)})
                self._record.reconnects += 1
                break
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, TurnFailed,
                    ValueError) as exc:
                if time.perf_counter() > deadline:
                    self._fail(TurnFailed(f"could not reconnect {self.conversation_id}: {exc!r}"))
                    return
                await asyncio.sleep(0.5)
        for client_id, future in list(self._acks.items()):
            if not future.done():
                self._record.resent += 1
                await self._send(client_id)

    def _fail(self, error: Exception) -> None:
        for future in self._acks.values():
            if not future.done():
                future.set_exception(error)

    async def _send(self, client_id: str) -> None:
        """A send on a socket that just died is not an error: the resume resends it."""
        try:
            await self._socket.send_json({"type": "message", "text": self.sent[client_id],
                                          "client_message_id": client_id})
        except (ConnectionError, aiohttp.ClientError, RuntimeError):
            pass

    async def _read(self) -> None:
        while not self._closing:
            await self._read_socket()
            if not self._closing:
                await self._resume()

    async def _read_socket(self) -> None:
        on_this_socket: set[int] = set()
        async for event in json_frames(self._socket):
            now = time.perf_counter()
            if event["type"] == "message":
                message = event["message"]
                if message["id"] in on_this_socket:
                    self.seen[message["id"]] += 1  # one socket sent it twice: a duplicate
                elif message["id"] in self.seen:
                    # sent again on a new socket after a reconnect; the protocol has clients
                    # drop an id already shown (the widget does), so the screen shows it once
                    self._record.repeated_after_reconnect += 1
                else:
                    self.seen[message["id"]] += 1
                on_this_socket.add(message["id"])
                if self.log is not None and message["id"] not in self.arrived and message[
                        "author"] != "customer":
                    self.log.append((now, message["author"], str(message.get("text") or "")))
                self.arrived.setdefault(message["id"], now)
                self.messages[message["id"]] = message
            elif event["type"] == "ack" or event["type"] == "error":
                future = self._acks.get(event.get("client_message_id") or "")
                if future is not None and not future.done():
                    future.set_result({**event, "at": now})
            self._changed.set()

    async def say(self, turn: Turn, timeout: float = 120) -> float:
        """Sends one message; returns seconds until its last reply (or its ack, for agents)."""
        client_id = uuid.uuid4().hex
        self.sent[client_id] = turn.text
        started = time.perf_counter()
        if self.log is not None:
            self.log.append((started, "customer (widget)", turn.text))
        while True:
            future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
            self._acks[client_id] = future
            await self._send(client_id)
            try:
                # an outage the socket waits through may take up to the reconnect bound
                ack = await asyncio.wait_for(future, timeout + self.RECONNECT_FOR_SECONDS)
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
        self.last_answered_by = answered_by([(self.messages[i]["author"], text) for i, text in
                                             zip(ack["reply_ids"], self.last_replies, strict=True)])
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
        stored = await self.stored()
        visible = [m for m in stored if not m.get("private")]
        deadline = time.perf_counter() + 30  # a message stored just now may still be on its way
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
        await self.close()

    async def stored(self) -> list[dict[str, Any]]:
        """The stored transcript; a refusal while the database restarts is asked again."""
        deadline = time.perf_counter() + self.RECONNECT_FOR_SECONDS
        while True:
            try:
                async with self._http.get(
                        f"{self._base}/api/conversations/{self.conversation_id}/messages",
                        headers={"Authorization": f"Bearer {self.token}"}) as response:
                    if response.status == 200:
                        return list((await response.json())["messages"])
                    problem = f"answered {response.status}"
            except aiohttp.ClientError as exc:
                problem = repr(exc)
            if time.perf_counter() > deadline:
                raise TurnFailed(f"transcript of {self.conversation_id}: {problem}")
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        await self._socket.close()
        self._reader.cancel()


# --- WhatsApp -----------------------------------------------------------------------------


def signed_post(http: aiohttp.ClientSession, url: str, secret: str, payload: dict[str, Any],
                ) -> Any:
    """A webhook post as Meta signs it (`X-Hub-Signature-256`)."""
    body = json.dumps(payload).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return http.post(url, data=body, headers={"X-Hub-Signature-256": signature,
                                              "Content-Type": "application/json"})


def whatsapp_message(number: str, text: str, wamid: str | None = None,
                     name: str = "Bench Customer") -> dict[str, Any]:
    """Meta's webhook body for one text a customer sent (`wamid`: its id, new if not given)."""
    return {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "contacts": [{"wa_id": number, "profile": {"name": name}}],
            "messages": [{"from": number, "id": wamid or f"wamid.in.{uuid.uuid4().hex}",
                          "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": text}}]}}]}]}


class FakeGraph:
    """Meta's Graph API messages endpoint: checks the token and body, records each arrival,
    and reports each message "sent" to the number's webhook as Meta does (echoing the send's
    `biz_opaque_callback_data`), retrying while the webhook does not answer 200."""

    def __init__(self, access_token: str, latency: float = 0.0) -> None:
        self._token = access_token
        self.latency = latency  # seconds the platform takes to answer a send
        self.webhooks: dict[str, tuple[str, str]] = {}  # phone number id -> (url, app secret)
        # A recipient whose sends are taken but answered (and reported) only once this is set:
        # the fault tests kill the sender in between.
        self.held: dict[str, asyncio.Event] = {}
        self.sender_ports: dict[str, list[int]] = defaultdict(list)  # recipient -> client ports
        self._reports: set[asyncio.Task[None]] = set()
        self._http: aiohttp.ClientSession | None = None  # the status reports' connections
        self.arrivals: dict[str, list[tuple[float, str, str]]] = defaultdict(list)  # to -> ...
        self.logs: dict[str, list[tuple[float, str, str]]] = {}  # to -> a customer's timeline
        self.changed: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self.refused = 0

    async def messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self._token}":
            self.refused += 1
            return web.json_response({"error": {"message": "Invalid OAuth access token"}},
                                     status=401)
        body = await request.json()
        reference = body.get("biz_opaque_callback_data")
        if body.get("messaging_product") != "whatsapp" or not body.get("to") or \
                (reference is not None and (not isinstance(reference, str) or len(reference) > 512)):
            self.refused += 1
            return web.json_response({"error": {"message": "bad body"}}, status=400)
        if self.latency:
            await asyncio.sleep(self.latency)  # Meta's servers are a network away
        wamid = f"wamid.out.{uuid.uuid4().hex}"
        text = ((body.get("text") or {}).get("body")
                or json.dumps(body.get("interactive") or body.get("template") or {}))
        self.arrivals[body["to"]].append((time.perf_counter(), wamid, text))
        if body["to"] in self.logs:
            self.logs[body["to"]].append((time.perf_counter(), "to WhatsApp", text))
        self.changed[body["to"]].set()
        if request.transport is not None:
            self.sender_ports[body["to"]].append(request.transport.get_extra_info("peername")[1])
        webhook = self.webhooks.get(request.match_info["phone"])
        if webhook is not None:  # reported even if the sender hangs up meanwhile
            status = {"id": wamid, "status": "sent", "timestamp": str(int(time.time())),
                      "recipient_id": body["to"]}
            if reference is not None:
                status["biz_opaque_callback_data"] = reference
            task = asyncio.create_task(self._report(*webhook, status, self.held.get(body["to"])))
            self._reports.add(task)
            task.add_done_callback(self._reports.discard)
        if body["to"] in self.held:
            await self.held[body["to"]].wait()
        return web.json_response({"messages": [{"id": wamid}]})

    async def _report(self, url: str, secret: str, status: dict[str, Any],
                      held: asyncio.Event | None) -> None:
        if held is not None:
            await held.wait()
        payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
                                           "statuses": [status]}}]}]}
        pause = 1.0
        if self._http is None:
            self._http = aiohttp.ClientSession()
        for _ in range(12):  # Meta keeps retrying far longer; a bench run is minutes
            try:
                async with signed_post(self._http, url, secret, payload) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def _close(self, _app: web.Application) -> None:
        for task in list(self._reports):
            task.cancel()
        await asyncio.gather(*self._reports, return_exceptions=True)
        if self._http is not None:
            await self._http.close()

    async def start(self) -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/v21.0/{phone}/messages", self.messages)
        app.on_cleanup.append(self._close)
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
        self.last_answered_by = "nobody"

    async def say(self, turn: Turn, timeout: float = 120) -> None:
        wamid = f"wamid.in.{uuid.uuid4().hex}"
        payload = whatsapp_message(self.number, turn.text, wamid)
        before = len(self._graph.arrivals[self.number])
        started = time.perf_counter()
        self.sent[wamid] = (started, turn.kind)
        if self._number_log is not None:
            self._number_log.append((started, "customer (WhatsApp)", turn.text))
        await self._deliver(payload, started + timeout)
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
                    # WhatsApp says nothing of authors: a reply is told apart by its text
                    self.last_answered_by = answered_by(
                        [("", text) for _, _, text in self._graph.arrivals[self.number][before:]])
                    return

    @property
    def _number_log(self) -> list[tuple[float, str, str]] | None:
        return self._graph.logs.get(self.number)

    async def _deliver(self, payload: dict[str, Any], deadline: float) -> None:
        """Posts the webhook; like Meta, delivers the same event again until it gets a 200."""
        while True:
            try:
                async with signed_post(self._http, f"{self._base}/webhooks/whatsapp",
                                       self._secret, payload) as response:
                    if response.status == 200:
                        return
                    problem = f"webhook answered {response.status}"
                    if response.status not in (502, 503, 504):
                        raise TurnFailed(problem)
            except aiohttp.ClientError as exc:
                problem = f"webhook: {exc!r}"
            if time.perf_counter() > deadline:
                raise TurnFailed(problem)
            self._record.resent += 1
            await asyncio.sleep(1.0)

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
    """An agent on the console: claims what waits, greets, and closes after the customer's reply.

    Like the console page, when its socket drops it reconnects, watches its chats again and
    reads what it missed from the conversation's transcript.
    """

    RECONNECT_FOR_SECONDS = 300.0
    IDLE_CLOSE_SECONDS = 60.0  # no word from the customer for this long: the chat is closed

    def __init__(self, http: aiohttp.ClientSession, base: str, record: Record) -> None:
        self._http, self._base, self._record = http, base, record
        self._tasks: set[asyncio.Task[None]] = set()
        self.idle_closed = 0
        self._customer_messages: dict[str, asyncio.Queue[dict[str, Any]]] = defaultdict(asyncio.Queue)
        self._queued: set[int] = set()
        self._watching: set[str] = set()
        self.sent_at: dict[str, float] = {}  # text -> when a customer sent it (set by customers)
        self.claims = 0
        self._tried: set[str] = set()
        self._queue_changed = asyncio.Event()
        self._queue_changed.set()  # what already waits when the agent logs in
        self._closing = False

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
        while not self._closing:
            async for event in json_frames(self._socket):
                if event.get("type") == "queue":
                    self._queue_changed.set()
                elif event.get("type") == "resync":  # like the console page: read it all again
                    self._queue_changed.set()
                    for conversation_id in list(self._watching):
                        self._spawn(self._catch_up_quietly(conversation_id))
                elif event.get("type") == "message":
                    self._customer_said(event["message"])
                elif event.get("type") == "watched" and \
                        event.get("conversation_id") in self._watching:
                    # like the console page: what was stored before the watch held, from the
                    # transcript (a follow-up stored just then reached no screen; the chat was
                    # closed as idle a minute later in a fault run)
                    self._spawn(self._catch_up_quietly(event["conversation_id"]))
            if not self._closing:
                await self._reconnect()

    def _customer_said(self, message: dict[str, Any]) -> None:
        if message["author"] == "customer" and message["id"] not in self._queued:
            self._queued.add(message["id"])
            self._customer_messages[message["conversation_id"]].put_nowait(message)

    async def _reconnect(self) -> None:
        deadline = time.perf_counter() + self.RECONNECT_FOR_SECONDS
        while not self._closing:
            try:
                self._socket = await self._http.ws_connect(f"{self._base}/console/ws",
                                                           heartbeat=30)
                for conversation_id in list(self._watching):
                    await self._socket.send_json({"type": "watch",
                                                  "conversation_id": conversation_id})
                    await self._catch_up(conversation_id)
                self._record.reconnects += 1
                self._queue_changed.set()
                return
            except (aiohttp.ClientError, ConnectionError, TurnFailed) as exc:
                if time.perf_counter() > deadline:
                    self._record.errors[f"agent could not reconnect: {exc!r}"[:120]] += 1
                    self._closing = True
                    return
                await asyncio.sleep(0.5)

    async def _catch_up(self, conversation_id: str) -> list[dict[str, Any]]:
        """What the socket may have missed, from the transcript (the source of truth)."""
        async with self._http.get(
                f"{self._base}/console/api/conversations/{conversation_id}") as response:
            if response.status != 200:
                raise TurnFailed(f"conversation answered {response.status}")
            messages = list((await response.json())["messages"])
        for message in messages:
            self._customer_said({**message, "conversation_id": conversation_id})
        return messages

    async def _catch_up_quietly(self, conversation_id: str) -> None:
        try:
            await self._catch_up(conversation_id)
        except (aiohttp.ClientError, TurnFailed) as exc:
            self._record.errors[f"agent catch-up: {exc!r}"[:120]] += 1

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
                await asyncio.sleep(0.5)  # the page failed to load: look again
                self._queue_changed.set()

    async def _claim_waiting(self) -> None:
        async with self._http.get(f"{self._base}/console/api/queue") as response:
            if response.status != 200:  # e.g. 503 while the database restarts
                raise TurnFailed(f"queue answered {response.status}")
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
                elif response.status == 409 and "open conversations" in await response.text():
                    # at capacity (AtCapacity): not a colleague's claim; try again later
                    self._tried.discard(row["id"])
                    self._record.errors["agent at capacity (claim answered 409)"] += 1
                elif response.status not in (409, 403):
                    self._tried.discard(row["id"])  # not decided (e.g. 503): try it again
                    raise TurnFailed(f"claim answered {response.status}")

    async def _serve(self, conversation_id: str) -> None:
        try:
            self._watching.add(conversation_id)
            await self._socket.send_json({"type": "watch", "conversation_id": conversation_id})
            await self._post(conversation_id, "messages", {"text": AGENT_GREETING})
            deadline = time.perf_counter() + self.IDLE_CLOSE_SECONDS
            while True:
                try:
                    message = await asyncio.wait_for(
                        self._customer_messages[conversation_id].get(),
                        max(0.0, deadline - time.perf_counter()))
                except asyncio.TimeoutError:
                    # a chat handed over by a failure (an assistant down in a fault run), not
                    # by a customer asking: closed as idle, as a person would, to free the seat
                    self.idle_closed += 1
                    break
                sent = self.sent_at.get(message["text"])
                if sent is not None:
                    self._record.turn("customer_to_agent_screen", time.perf_counter() - sent)
                    break
            await self._post(conversation_id, "messages", {"text": AGENT_CLOSING})
            await self._post(conversation_id, "resolve", {"resolution_code": "answered"})
            self._watching.discard(conversation_id)
            await self._socket.send_json({"type": "unwatch", "conversation_id": conversation_id})
        except Exception as exc:  # reported, not raised: one stuck chat must not stop the run
            self._record.errors[f"agent: {exc!r}"[:120]] += 1

    async def _post(self, conversation_id: str, action: str, body: dict[str, Any]) -> None:
        """Like a person: a clear refusal (503) is sent again; after an unclear failure (the
        instance died mid-request) the transcript says whether it was done before resending."""
        deadline = time.perf_counter() + self.RECONNECT_FOR_SECONDS
        while True:
            try:
                async with self._http.post(
                        f"{self._base}/console/api/conversations/{conversation_id}/{action}",
                        json=body, headers=self._headers) as response:
                    if response.status == 200:
                        return
                    problem = f"{action} answered {response.status}: {await response.text()}"
                    clear = response.status == 503
                    if response.status < 500 and response.status != 409:
                        raise TurnFailed(problem)
            except aiohttp.ClientError as exc:
                problem, clear = f"{action}: {exc!r}", False
            if time.perf_counter() > deadline:
                raise TurnFailed(problem)
            await asyncio.sleep(0.5)
            if not clear and await self._done(conversation_id, action, body):
                return
            self._record.resent += 1

    async def _done(self, conversation_id: str, action: str, body: dict[str, Any]) -> bool:
        try:
            messages = await self._catch_up(conversation_id)
        except (aiohttp.ClientError, TurnFailed):
            return False
        if action == "resolve":
            return any("resolved" in (m.get("payload") or {}) for m in messages)
        return any(m["author"] == "agent" and m["text"] == body.get("text") for m in messages)

    def seats(self) -> dict[str, Any]:
        """What this agent is doing now: chats open, claims so far, conversations it gave up on."""
        return {"open_chats": len(self._watching), "claims": self.claims,
                "tried": len(self._tried), "closed_idle": self.idle_closed}

    async def conversation(self, conversation_id: str) -> dict[str, Any]:
        """The console's view of a conversation (status, assignee, events), for a diagnosis."""
        async with self._http.get(
                f"{self._base}/console/api/conversations/{conversation_id}") as response:
            if response.status != 200:
                return {"error": f"answered {response.status}"}
            return dict(await response.json())

    async def close(self) -> None:
        """Logs off like a person at the end of a shift: chats still open are resolved, so
        the next run's agents (the same accounts) do not start with their seats taken —
        fault run 2's agents did, reached their 50 chats by the fourth phase and were refused
        every claim (409, at capacity) while customers waited 300 s."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        for conversation_id in list(self._watching):
            try:
                async with self._http.post(
                        f"{self._base}/console/api/conversations/{conversation_id}/resolve",
                        json={"resolution_code": "answered"}, headers=self._headers,
                        timeout=aiohttp.ClientTimeout(total=10)):
                    pass
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass  # reported nowhere: the run is over; a chat left open shows next run
        await self._socket.close()
        self._reader.cancel()
