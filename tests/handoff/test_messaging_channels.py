"""WhatsApp and Telegram channels against local fakes that check what the real platforms check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import insert, select, update

from handoff.app import create_app
from handoff.appkeys import MESSAGING, QUEUE
from handoff.channels import messaging
from handoff.channels.messaging import ChannelIdentity, Delivery
from handoff.channels.settings import TelegramSettings, WhatsAppSettings
from handoff.config import Settings
from handoff.conversations.models import Message, utcnow
from tests.conftest import FakeRasa
from tests.handoff.test_console import ADMIN, log_in, settings_for

Client = TestClient  # type: ignore[type-arg]
APP_SECRET, ACCESS_TOKEN, VERIFY = "wa-app-secret", "wa-access-token", "wa-verify"
BOT_TOKEN, TG_SECRET = "123:bot-token", "tg-webhook-secret"


class FakeGraph:
    """Meta's Graph API as far as we use it: auth, body shape and WhatsApp's limits."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.fail_next = 0
        self.arrived = asyncio.Event()
        self.held: dict[str, asyncio.Event] = {}  # recipient -> answers once the test sets it
        self.requests = 0

    async def messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return web.json_response({"error": {"message": "Invalid OAuth access token"}}, status=401)
        body = await request.json()
        assert request.match_info["phone"] == "1555000"
        assert body["messaging_product"] == "whatsapp" and body["to"]
        reference = body.get("biz_opaque_callback_data")
        assert reference is None or (isinstance(reference, str) and len(reference) <= 512)
        if body["type"] == "interactive":
            interactive = body["interactive"]
            if interactive["type"] == "button":
                assert 1 <= len(interactive["action"]["buttons"]) <= 3
                assert all(len(b["reply"]["title"]) <= 20 for b in interactive["action"]["buttons"])
            else:
                rows = interactive["action"]["sections"][0]["rows"]
                assert 1 <= len(rows) <= 10 and all(len(r["title"]) <= 24 for r in rows)
        self.requests += 1
        if body["to"] in self.held:  # a slow platform, for this recipient only
            await self.held[body["to"]].wait()
        if self.fail_next:
            self.fail_next -= 1
            return web.json_response({"error": {"message": "temporarily unavailable"}}, status=503)
        self.sent.append(body)
        self.arrived.set()
        return web.json_response({"messages": [{"id": f"wamid.out{len(self.sent)}"}]})


class FakeTelegram:
    """The Bot API's sendMessage and answerCallbackQuery, checking the token and limits."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.answered: list[str] = []
        self.arrived = asyncio.Event()

    async def method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != BOT_TOKEN:
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        body = await request.json()
        if request.match_info["method"] == "answerCallbackQuery":
            self.answered.append(body["callback_query_id"])
            return web.json_response({"ok": True, "result": True})
        for row in (body.get("reply_markup") or {}).get("inline_keyboard", []):
            assert all(len(b["callback_data"].encode()) <= 64 for b in row)
        self.sent.append(body)
        self.arrived.set()
        return web.json_response({"ok": True, "result": {"message_id": len(self.sent)}})


@pytest.fixture
async def platforms() -> AsyncIterator[tuple[FakeGraph, FakeTelegram, str]]:
    graph, telegram = FakeGraph(), FakeTelegram()
    app = web.Application()
    app.router.add_post("/v21.0/{phone}/messages", graph.messages)
    app.router.add_post("/bot{token}/{method}", telegram.method)
    server = TestServer(app)
    await server.start_server()
    yield graph, telegram, str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def client(aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa,
                 platforms: tuple[FakeGraph, FakeTelegram, str]) -> Client:
    base = platforms[2]
    settings = settings_for(database_url, fake_rasa.url)
    settings = Settings(**{
        **settings.__dict__,
        "whatsapp": WhatsAppSettings(VERIFY, APP_SECRET, ACCESS_TOKEN, "1555000", f"{base}/v21.0"),
        "telegram": TelegramSettings(BOT_TOKEN, TG_SECRET, base)})
    app_client = await aiohttp_client(create_app(settings))
    app_client.app[MESSAGING].retry_base_seconds = 0.01
    # Every message must reach the outbox with its own transaction: the scan that would
    # find one that did not is switched off here (it has its own test).
    app_client.app[MESSAGING]._next_scan = float("inf")
    return app_client


def whatsapp_body(wamid: str, text: str | None = None, button: str | None = None,
                  sender: str = "972541234567") -> bytes:
    message: dict[str, Any] = {"from": sender, "id": wamid, "timestamp": "1700000000"}
    if button:
        message |= {"type": "interactive",
                    "interactive": {"type": "button_reply", "button_reply": {"id": button, "title": "Yes"}}}
    else:
        message |= {"type": "text", "text": {"body": text}}
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1555000"},
            "contacts": [{"wa_id": sender, "profile": {"name": "Noa"}}],
            "messages": [message]}}]}]}).encode()


async def post_whatsapp(client: Client, body: bytes, secret: str = APP_SECRET) -> Any:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return await client.post("/webhooks/whatsapp", data=body, headers={
        "X-Hub-Signature-256": signature, "Content-Type": "application/json"})


async def arrival(event: asyncio.Event) -> None:
    async with asyncio.timeout(20):  # a bound on a broken deliverer, not a timing claim
        await event.wait()
    event.clear()


async def test_whatsapp_verification(client: Client) -> None:
    ok = await client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert ok.status == 200 and await ok.text() == "1158201444"
    bad = await client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "x"})
    assert bad.status == 403


async def test_whatsapp_refuses_unsigned_and_forged_posts(client: Client, fake_rasa: FakeRasa) -> None:
    body = whatsapp_body("wamid.1", "hi")
    assert (await client.post("/webhooks/whatsapp", data=body)).status == 401
    assert (await post_whatsapp(client, body, secret="not-the-secret")).status == 401
    tampered = body.replace(b"hi", b"yo")
    signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = await client.post("/webhooks/whatsapp", data=tampered,
                                 headers={"X-Hub-Signature-256": signature})
    assert response.status == 401
    await asyncio.sleep(0)
    assert fake_rasa.received == []


async def test_whatsapp_message_answered_once_despite_retries(
    client: Client, fake_rasa: FakeRasa, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    graph = platforms[0]
    body = whatsapp_body("wamid.A1", "where is my **order**")
    for _ in range(3):  # Meta retries when it thinks we did not answer
        assert (await post_whatsapp(client, body)).status == 200
    await arrival(graph.arrived)
    assert graph.sent[0]["to"] == "972541234567"
    assert graph.sent[0]["text"]["body"] == "echo: where is my *order*"  # WhatsApp's bold
    assert len(fake_rasa.received) == 1
    await asyncio.sleep(0.2)
    assert len(graph.sent) == 1


async def test_whatsapp_buttons_lists_and_statuses(
    client: Client, fake_rasa: FakeRasa, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    graph = platforms[0]
    fake_rasa.reply = lambda text: [{"text": "Pick one", "buttons": [
        {"title": f"Option number {i} with a long title", "payload": f"/choose{{\"n\": {i}}}"}
        for i in range(count)]}]
    count = 2
    await post_whatsapp(client, whatsapp_body("wamid.B1", "options"))
    await arrival(graph.arrived)
    assert graph.sent[-1]["interactive"]["type"] == "button"
    count = 12
    await post_whatsapp(client, whatsapp_body("wamid.B2", button='/choose{"n": 1}'))
    await arrival(graph.arrived)
    assert fake_rasa.received[-1]["message"] == '/choose{"n": 1}'  # the button's payload
    assert graph.sent[-1]["interactive"]["type"] == "list"

    status = {"entry": [{"changes": [{"value": {"statuses": [
        {"id": "wamid.out2", "status": "read", "recipient_id": "972541234567"}]}}]}]}
    assert (await post_whatsapp(client, json.dumps(status).encode())).status == 200
    # the status may come before the sender has recorded the send: it is applied either way
    sessions = client.app[QUEUE].sessions
    async with asyncio.timeout(20):
        while True:
            async with sessions() as session:
                delivery = await session.scalar(
                    select(Delivery).where(Delivery.provider_message_id == "wamid.out2"))
            if delivery is not None and delivery.status == "read":
                break
            await asyncio.sleep(0.02)


async def test_whatsapp_send_failures_are_retried_until_delivered(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    graph = platforms[0]
    graph.fail_next = 3
    await post_whatsapp(client, whatsapp_body("wamid.C1", "hello"))
    await arrival(graph.arrived)
    assert [m["text"]["body"] for m in graph.sent] == ["echo: hello"]


async def test_a_slow_platform_answer_holds_up_only_its_own_customer(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    """The outbox sends for many conversations at once: one customer's reply hanging at the
    platform must not stop everyone else's, nor be sent a second time while it hangs."""
    graph, noa, dan = platforms[0], "972541234567", "972549999999"
    graph.held[noa] = asyncio.Event()
    await post_whatsapp(client, whatsapp_body("wamid.H1", "hello", sender=noa))
    async with asyncio.timeout(20):
        while graph.requests == 0:  # Noa's reply has reached the platform and hangs there
            await asyncio.sleep(0.01)
    for number in range(3):  # rounds of the outbox while Noa's send is in flight
        await post_whatsapp(client, whatsapp_body(f"wamid.D{number}", f"hi {number}", sender=dan))
        await arrival(graph.arrived)
    assert [(m["to"], m["text"]["body"]) for m in graph.sent] == [
        (dan, "echo: hi 0"), (dan, "echo: hi 1"), (dan, "echo: hi 2")]
    graph.held[noa].set()
    await arrival(graph.arrived)
    assert [m["text"]["body"] for m in graph.sent if m["to"] == noa] == ["echo: hello"]
    assert graph.requests == 4


async def test_replies_in_quick_succession_each_go_out_once(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    """Rounds of the outbox overlap with sends ending: a reply recorded as sent while a round
    read it as pending must not go out again (it did, before a round skipped such lanes)."""
    graph, hub = platforms[0], client.app[MESSAGING]
    for number in range(6):
        await post_whatsapp(client, whatsapp_body(f"wamid.Q{number}", f"question {number}"))
    async with asyncio.timeout(20):
        while len(graph.sent) < 6:
            await arrival(graph.arrived)
    async with asyncio.timeout(20):
        while True:  # the last send is recorded just after it arrives
            async with hub._sessions() as session:
                rows = list(await session.execute(select(Delivery.status, Delivery.attempts)))
            if all(status == "sent" for status, _ in rows):
                break
            await asyncio.sleep(0.02)
    assert [attempts for _, attempts in rows] == [1] * 6 and graph.requests == 6
    assert sorted(m["text"]["body"] for m in graph.sent) == [f"echo: question {n}" for n in range(6)]


async def test_a_reply_waiting_for_its_retry_holds_back_the_next_one(
    client: Client, fake_rasa: FakeRasa, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    """Two replies to one message, the first refused once by the platform: the second goes
    out after it, never before, so the customer reads them in the order they were written."""
    graph = platforms[0]
    fake_rasa.reply = lambda text: [{"text": f"first to {text}"}, {"text": f"then to {text}"}]
    graph.fail_next = 1
    await post_whatsapp(client, whatsapp_body("wamid.O1", "hello"))
    async with asyncio.timeout(20):
        while len(graph.sent) < 2:
            await arrival(graph.arrived)
    assert [m["text"]["body"] for m in graph.sent] == ["first to hello", "then to hello"]
    assert graph.requests == 3  # the refused one, then each once


def sent_status(wamid: str, reference: str, status: str = "sent") -> bytes:
    """Meta's status webhook for one message, echoing the send's `biz_opaque_callback_data`."""
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": {"phone_number_id": "1555000"},
            "statuses": [{"id": wamid, "status": status, "timestamp": "1700000001",
                          "recipient_id": "972541234567",
                          "biz_opaque_callback_data": reference}]}}]}]}).encode()


async def cut_off_lane(hub: messaging.MessagingHub) -> None:
    """Ends the outbox's one lane where it stands, as a kill -9 of its instance would: its
    send stays marked "sending" and nothing records how it went."""
    lane = next(iter(hub._lanes.values()))
    lane.cancel()
    await asyncio.gather(lane, return_exceptions=True)


async def deliveries(hub: messaging.MessagingHub) -> list[Delivery]:
    async with hub._sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.message_id)))


async def recorded_deliveries(hub: messaging.MessagingHub) -> list[Delivery]:
    """The deliveries once every send is recorded (a send arrives just before its record)."""
    async with asyncio.timeout(20):
        while True:
            rows = await deliveries(hub)
            if all(d.status not in ("pending", "sending") for d in rows):
                return rows
            await asyncio.sleep(0.02)


async def test_a_send_cut_off_after_whatsapp_took_it_is_confirmed_by_its_status_not_resent(
    client: Client, fake_rasa: FakeRasa, platforms: tuple[FakeGraph, FakeTelegram, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The instance running the outbox dies after WhatsApp took a reply but before recording
    it. WhatsApp's status for that message carries the send's reference, which confirms it:
    the reply is not sent again, and the next reply, held back meanwhile, follows it."""
    graph, hub = platforms[0], client.app[MESSAGING]
    fake_rasa.reply = lambda text: [{"text": f"first to {text}"}, {"text": f"then to {text}"}]
    recording, dead = hub._record_attempt, asyncio.Event()

    async def dies_before_recording(*args: Any) -> None:
        if not dead.is_set():
            dead.set()
            await asyncio.Future()  # never: the process is gone
        await recording(*args)

    monkeypatch.setattr(hub, "_record_attempt", dies_before_recording)
    await post_whatsapp(client, whatsapp_body("wamid.K1", "hello"))
    async with asyncio.timeout(20):
        await dead.wait()
    await cut_off_lane(hub)
    first, second = await deliveries(hub)
    assert (first.status, second.status) == ("sending", "pending")
    assert await hub.deliver_due() == 0  # the second waits behind the one in doubt
    assert [m["text"]["body"] for m in graph.sent] == ["first to hello"]

    reference = graph.sent[0]["biz_opaque_callback_data"]
    assert reference == messaging.delivery_reference(first.id)
    assert (await post_whatsapp(client, sent_status("wamid.out1", reference))).status == 200
    async with asyncio.timeout(20):
        while len(graph.sent) < 2:
            await arrival(graph.arrived)
    first, second = await recorded_deliveries(hub)
    assert (first.status, first.provider_message_id) == ("sent", "wamid.out1")
    assert await hub.resume_cut_off() == 0
    assert [m["text"]["body"] for m in graph.sent] == ["first to hello", "then to hello"]
    assert graph.requests == 2


async def test_reconciling_reads_only_the_statuses_that_would_move_a_delivery(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each outbox round applies statuses that came just before their send was recorded.
    One already applied, or one behind what the delivery has reached, is left in the
    database: every round read the whole window's statuses, and the soak's outbox instance
    spent twice the other's CPU per turn on it
    (bench/results/ab/2026-12-07-cluster-soak-0535.md)."""
    graph, hub = platforms[0], client.app[MESSAGING]
    await post_whatsapp(client, whatsapp_body("wamid.R1", "hello"))
    await arrival(graph.arrived)
    (delivery,) = await recorded_deliveries(hub)
    assert delivery.status == "sent"
    wamid = delivery.provider_message_id
    assert wamid is not None
    applied: list[str] = []
    advance, reconcile = messaging._advance, hub.reconcile_statuses
    monkeypatch.setattr(messaging, "_advance", lambda d, status, error: (
        applied.append(status), advance(d, status, error)))

    async def not_in_the_background() -> None:  # the outbox's own rounds would race ours
        return None

    monkeypatch.setattr(hub, "reconcile_statuses", not_in_the_background)

    async def racing(status: str) -> None:  # stored by a webhook that did not see the send
        async with hub._sessions.begin() as session:
            session.add(messaging.DeliveryStatus(provider_message_id=wamid, status=status))

    await racing("sent")
    await reconcile()
    assert applied == []  # "sent" is where the delivery is already
    await racing("delivered")
    await reconcile()
    await reconcile()
    assert applied == ["delivered"]  # once: the second round finds nothing left to move
    await racing("sent")  # late and behind
    await racing("read")
    await reconcile()
    assert applied == ["delivered", "read"]
    assert (await deliveries(hub))[0].status == "read"


async def test_a_send_cut_off_before_whatsapp_took_it_goes_out_once_when_its_time_is_up(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The instance dies after marking a reply "sending" but before the request left: no
    status ever comes, so once `IN_FLIGHT_SECONDS` pass the reply is sent, once."""
    graph, hub = platforms[0], client.app[MESSAGING]
    monkeypatch.setattr(messaging, "IN_FLIGHT_SECONDS", 0.2)
    adapter, dead = hub.adapters["whatsapp"], asyncio.Event()
    sending = adapter.send

    async def dies_before_the_request(*args: Any) -> str | None:
        if not dead.is_set():
            dead.set()
            await asyncio.Future()
        return await sending(*args)

    monkeypatch.setattr(adapter, "send", dies_before_the_request)
    await post_whatsapp(client, whatsapp_body("wamid.L1", "hello"))
    async with asyncio.timeout(20):
        await dead.wait()
    await cut_off_lane(hub)
    assert graph.requests == 0
    await arrival(graph.arrived)
    [delivery] = await recorded_deliveries(hub)
    assert [m["text"]["body"] for m in graph.sent] == ["echo: hello"] and graph.requests == 1
    assert delivery.attempts == 2  # the one cut off, then the one that went out
    assert delivery.status == "sent" and delivery.provider_message_id == "wamid.out1"


async def test_an_instance_never_resends_its_own_slow_send(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str],
) -> None:
    """A send still waiting for the platform past `IN_FLIGHT_SECONDS` belongs to a live lane
    of this very instance: it is not cut off, and goes out once."""
    graph, hub, noa = platforms[0], client.app[MESSAGING], "972541234567"
    graph.held[noa] = asyncio.Event()
    await post_whatsapp(client, whatsapp_body("wamid.M1", "hello", sender=noa))
    async with asyncio.timeout(20):
        while graph.requests == 0:
            await asyncio.sleep(0.01)
    async with hub._sessions.begin() as session:  # its time is up
        await session.execute(update(Delivery).values(
            next_attempt_at=utcnow() - timedelta(seconds=1)))
    assert await hub.resume_cut_off() == 0
    graph.held[noa].set()
    await arrival(graph.arrived)
    assert graph.requests == 1 and [m["text"]["body"] for m in graph.sent] == ["echo: hello"]


async def test_the_outbox_scan_reads_only_recent_messages_and_finds_a_late_commit(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    """The safety-net scan finds messages stored without the ORM (so without their delivery
    row); it stops re-reading messages old enough to have committed, but a message that
    committed after a newer one (PostgreSQL hands out ids before commit) is still sent."""
    graph, hub = platforms[0], client.app[MESSAGING]
    await post_whatsapp(client, whatsapp_body("wamid.L1", "hello"))
    await arrival(graph.arrived)

    def reply(message_id: int, text: str) -> Any:
        return insert(Message).values(
            id=message_id, conversation_id=conversation_id, message_type="outgoing",
            author_type="agent", author_id="a1", channel="whatsapp", text=text,
            private=False, created_at=utcnow())

    async with hub._sessions.begin() as session:
        old = list(await session.scalars(select(Message).order_by(Message.id)))
        await session.execute(update(Message).values(created_at=utcnow() - timedelta(minutes=5)))
        conversation_id, top = old[0].conversation_id, old[-1].id
        # ids handed out to two replies: the later one commits first
        await session.execute(reply(top + 5, "committed first"))
    hub._next_scan = 0.0
    hub.wake.set()
    async with asyncio.timeout(20):
        while hub._enqueued_below == 0:  # the outbox's next scan moves its mark
            await asyncio.sleep(0.01)
    assert hub._enqueued_below == top + 1  # past the settled messages, not past the new one
    async with hub._sessions.begin() as session:
        await session.execute(reply(top + 2, "committed late"))
    hub._next_scan = 0.0
    hub.wake.set()
    async with asyncio.timeout(20):
        while len(graph.sent) < 3:
            await arrival(graph.arrived)
    assert sorted(m["text"]["body"] for m in graph.sent[1:]) == ["committed first", "committed late"]


def test_every_messaging_channel_has_its_messages_put_in_the_outbox() -> None:
    from handoff.channels import telegram, whatsapp
    assert {whatsapp.CHANNEL, telegram.CHANNEL} == set(messaging.MESSAGING_CHANNELS)


async def test_a_send_the_database_could_not_record_is_not_sent_again(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """WhatsApp has the reply but the database is restarting when the outbox records it:
    the outbox waits for the database instead of leaving the reply to go out twice."""
    graph, hub = platforms[0], client.app[MESSAGING]
    monkeypatch.setattr(messaging, "RECORD_RETRY_FIRST_SECONDS", 0.01)
    real, refused = hub._sessions, []

    class RestartingAfterTheSend:
        def __call__(self) -> Any:
            return real()

        def begin(self) -> Any:
            if graph.sent and not refused:
                refused.append(True)
                raise ConnectionRefusedError("the database system is starting up")
            return real.begin()

    monkeypatch.setattr(hub, "_sessions", RestartingAfterTheSend())
    await post_whatsapp(client, whatsapp_body("wamid.R1", "hello"))
    await arrival(graph.arrived)
    async with asyncio.timeout(20):
        while True:
            async with real() as session:
                delivery = await session.scalar(
                    select(Delivery).where(Delivery.provider_message_id.is_not(None)))
            if delivery is not None:
                break
            await asyncio.sleep(0.02)
    assert refused and delivery.status == "sent" and delivery.attempts == 1
    assert delivery.provider_message_id == "wamid.out1"  # the first send, not a second one
    hub.wake.set()  # another round of the outbox finds nothing to send
    await post_whatsapp(client, whatsapp_body("wamid.R2", "again"))
    await arrival(graph.arrived)
    assert [m["text"]["body"] for m in graph.sent] == ["echo: hello", "echo: again"]


async def test_a_send_being_recorded_when_the_outbox_stops_is_still_recorded(
    client: Client, platforms: tuple[FakeGraph, FakeTelegram, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The instance loses the outbox (its lock's connection died with PostgreSQL) while a reply
    WhatsApp has taken waits for the database to be recorded: the reply is recorded once the
    database is back, not dropped for the next leader to send again."""
    graph, hub = platforms[0], client.app[MESSAGING]
    monkeypatch.setattr(messaging, "RECORD_RETRY_FIRST_SECONDS", 0.01)
    real, database_back = hub._sessions, asyncio.Event()

    class DownAfterTheSend:
        def __call__(self) -> Any:
            return real()

        def begin(self) -> Any:
            if graph.sent and not database_back.is_set():
                raise ConnectionRefusedError("the database system is starting up")
            return real.begin()

    monkeypatch.setattr(hub, "_sessions", DownAfterTheSend())
    await post_whatsapp(client, whatsapp_body("wamid.S1", "hello"))
    await arrival(graph.arrived)  # WhatsApp has it; recording it is refused
    job = next(task for task in asyncio.all_tasks()  # the app's task running the outbox
               if task.get_coro().__qualname__ == "SingleRunner.run"  # type: ignore[union-attr]
               and task.get_coro().cr_frame.f_locals.get("name") == "messaging")  # type: ignore[union-attr]
    job.cancel()  # the outbox stops while the lane waits to record
    await asyncio.sleep(0)
    database_back.set()
    await asyncio.gather(job, return_exceptions=True)
    async with real() as session:
        delivery = await session.scalar(select(Delivery).where(Delivery.attempts > 0))
    assert delivery is not None and delivery.status == "sent"
    assert delivery.provider_message_id == "wamid.out1" and graph.requests == 1


async def test_agent_reply_after_the_24_hour_window_is_not_sent_and_the_agent_is_told(
    aiohttp_client: Any, client: Client, fake_rasa: FakeRasa,
    platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    graph = platforms[0]
    fake_rasa.reply = lambda text: [{"custom": {"handoff": {"reason": "customer_request"}}}]
    await post_whatsapp(client, whatsapp_body("wamid.D1", "a person please"))
    await arrival(graph.arrived)  # the "team is away" notice
    admin = await log_in(aiohttp_client, client, *ADMIN)
    _, queue = await admin.call("GET", "/console/api/queue")
    cid = queue["waiting"][0]["id"]
    assert queue["waiting"][0]["channel"] == "whatsapp"
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    await arrival(graph.arrived)  # "... joined the chat", while the window was open
    async with client.app[QUEUE].sessions.begin() as session:
        await session.execute(update(ChannelIdentity).values(last_inbound_at=utcnow() - timedelta(hours=25)))
    sent_before = len(graph.sent)
    await admin.call("POST", f"/console/api/conversations/{cid}/messages", {"text": "Sorry for the wait"})
    async with asyncio.timeout(20):
        while True:
            _, details = await admin.call("GET", f"/console/api/conversations/{cid}")
            notes = [m["text"] for m in details["messages"] if m["private"]]
            if notes:
                break
            await asyncio.sleep(0.05)
    assert "24-hour WhatsApp window" in notes[0]
    assert len(graph.sent) == sent_before


def telegram_update(update_id: int, text: str | None = None, data: str | None = None) -> dict[str, Any]:
    chat = {"id": 4242, "type": "private"}
    if data is not None:
        return {"update_id": update_id, "callback_query": {
            "id": f"cq{update_id}", "data": data, "message": {"message_id": 1, "chat": chat}}}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "chat": chat, "from": {"id": 4242, "first_name": "Ivan"}, "text": text}}


async def test_telegram_secret_messages_callbacks_and_redelivery(
    client: Client, fake_rasa: FakeRasa, platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    telegram = platforms[1]
    unsigned = await client.post("/webhooks/telegram", json=telegram_update(1, "hi"))
    assert unsigned.status == 401
    headers = {"X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
    fake_rasa.reply = lambda text: [{"text": "Did that help?", "buttons": [
        {"title": "Yes", "payload": "/affirm"}, {"title": "No", "payload": "/deny"}]}]
    for _ in range(2):  # Telegram redelivers an update it thinks failed
        response = await client.post("/webhooks/telegram", json=telegram_update(10, "привет"), headers=headers)
        assert response.status == 200
    await arrival(telegram.arrived)
    assert telegram.sent[0]["chat_id"] == "4242"
    assert telegram.sent[0]["reply_markup"]["inline_keyboard"][0][0] == {"text": "Yes", "callback_data": "/affirm"}
    await client.post("/webhooks/telegram", json=telegram_update(11, data="/affirm"), headers=headers)
    await arrival(telegram.arrived)
    assert telegram.answered == ["cq11"]
    assert [m["message"] for m in fake_rasa.received] == ["привет", "/affirm"]


async def test_messaging_config_needs_every_secret() -> None:
    from handoff.config import ConfigError

    with pytest.raises(ConfigError, match="SUPPORT_WHATSAPP_APP_SECRET"):
        Settings.from_env({"SUPPORT_RASA_TOKEN": "t", "SUPPORT_WHATSAPP_PHONE_NUMBER_ID": "1",
                           "SUPPORT_WHATSAPP_VERIFY_TOKEN": "v", "SUPPORT_WHATSAPP_ACCESS_TOKEN": "a"})
    with pytest.raises(ConfigError, match="SUPPORT_TELEGRAM_SECRET"):
        Settings.from_env({"SUPPORT_RASA_TOKEN": "t", "SUPPORT_TELEGRAM_BOT_TOKEN": "1:x"})


def test_list_and_template_button_replies_are_read_as_the_chosen_id() -> None:
    from handoff.channels.whatsapp import parse_webhook

    def payload(message: dict[str, Any]) -> dict[str, Any]:
        return {"entry": [{"changes": [{"value": {"messages": [
            {"from": "1", "id": "wamid.x", **message}]}}]}]}

    listed, _ = parse_webhook(payload({"type": "interactive", "interactive": {
        "type": "list_reply", "list_reply": {"id": "/kb_choose_article", "title": "Refunds"}}}))
    template, _ = parse_webhook(payload({"type": "button", "button": {"payload": "/affirm", "text": "Yes"}}))
    image, _ = parse_webhook(payload({"type": "image", "image": {"id": "m1"}}))
    assert [m.text for m in listed + template] == ["/kb_choose_article", "/affirm"]
    assert image == []  # not understood yet: dropped, and Meta is still answered 200


async def test_after_the_window_a_configured_template_goes_out_instead(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa,
    platforms: tuple[FakeGraph, FakeTelegram, str]
) -> None:
    graph, _, base = platforms
    settings = settings_for(database_url, fake_rasa.url)
    settings = Settings(**{**settings.__dict__, "whatsapp": WhatsAppSettings(
        VERIFY, APP_SECRET, ACCESS_TOKEN, "1555000", f"{base}/v21.0", template="follow_up:he")})
    client = await aiohttp_client(create_app(settings))
    fake_rasa.reply = lambda text: [{"custom": {"handoff": {"reason": "customer_request"}}}]
    await post_whatsapp(client, whatsapp_body("wamid.T1", "a person please"))
    await arrival(graph.arrived)
    admin = await log_in(aiohttp_client, client, *ADMIN)
    _, queue = await admin.call("GET", "/console/api/queue")
    cid = queue["waiting"][0]["id"]
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    async with client.app[QUEUE].sessions.begin() as session:
        await session.execute(update(ChannelIdentity).values(last_inbound_at=utcnow() - timedelta(hours=25)))
    await admin.call("POST", f"/console/api/conversations/{cid}/messages", {"text": "Are you there?"})
    while not any(m["type"] == "template" for m in graph.sent):  # the join notice may come first
        await arrival(graph.arrived)
    template = [m for m in graph.sent if m["type"] == "template"]
    assert template and template[-1]["template"] == {"name": "follow_up", "language": {"code": "he"}}


def test_only_messages_of_a_messaging_channel_wake_the_outbox() -> None:
    from handoff.app import _concerns
    channels = ["whatsapp", "telegram"]
    assert not _concerns({"type": "messages", "channels": ["widget"]}, channels)
    assert _concerns({"type": "messages", "channels": ["whatsapp"]}, channels)
    assert _concerns({"type": "messages", "channels": ["api", "telegram"]}, channels)
    assert _concerns({"type": "messages", "conversation_id": "c"}, channels)  # older publisher
