"""Several web-service instances on one PostgreSQL and one Redis: agents online anywhere count
everywhere, and each background job runs on exactly one instance at a time."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import select, text

from handoff.app import create_app
from handoff.appkeys import AGENTS, JOBS, QUEUE, ROUTER, SERVICE
from handoff.channels.messaging import Delivery
from handoff.channels.settings import WhatsAppSettings
from handoff.config import Settings
from handoff.conversations.models import utcnow
from handoff.conversations.router import OFFLINE_TEXT
from handoff.db import create_engine
from handoff.fanout import RESYNC, conversation_topic
from handoff.jobs import SingleRunner, lock_key
from handoff.presence import SharedPresence
from handoff.redis_backplane import RedisFanout
from handoff.webhooks import CURSOR_NAME, WebhookCursor
from tests.conftest import FakeRasa, unused_port
from tests.handoff.test_console import ADMIN, log_in, settings_for
from tests.handoff.test_http_api import send, start, transcript
from tests.handoff.test_messaging_channels import (  # noqa: F401  (platforms: a fixture)
    ACCESS_TOKEN,
    APP_SECRET,
    VERIFY,
    FakeGraph,
    platforms,
    post_whatsapp,
    whatsapp_body,
)
from tests.handoff.test_two_instances import redis_reachable
from tests.handoff.test_widget_channel import hello
from tests.handoff.test_widget_channel import until as until_frame
from tests.throwaway import ThrowawayRedis

pytestmark = pytest.mark.skipif(not redis_reachable(), reason="Redis is not reachable at 127.0.0.1:6379")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def postgres_url(database_url: str) -> str:
    if database_url.startswith("sqlite"):
        pytest.skip("several instances share PostgreSQL, not a SQLite file")
    return database_url


@pytest.fixture
def shared(postgres_url: str, fake_rasa: FakeRasa) -> Settings:
    fake_rasa.reply = lambda text: (
        [{"custom": {"handoff": {"reason": "customer_request"}}}] if "person" in text
        else [{"text": f"echo: {text}"}])
    base = settings_for(postgres_url, fake_rasa.url)
    return Settings(**{**base.__dict__, "redis_url": REDIS_URL,
                       "redis_prefix": f"test-{uuid.uuid4().hex}"})


async def until(condition: Callable[[], Awaitable[bool]], seconds: float = 10.0) -> None:
    """Waits for a condition another process or task makes true; fails after `seconds`."""
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.05)


# --- presence -------------------------------------------------------------------------------


async def test_a_customer_on_one_instance_is_queued_for_agents_on_the_other(
    aiohttp_client: Any, shared: Settings
) -> None:
    customer_side = await aiohttp_client(create_app(shared))
    agent_side = await aiohttp_client(create_app(shared))
    # nobody online anywhere: the customer is told the team is away
    cid, auth = await start(customer_side)
    body = await (await send(customer_side, cid, auth, text="a person please")).json()
    assert [r["text"] for r in body["replies"]][-1] == OFFLINE_TEXT

    admin = await log_in(aiohttp_client, agent_side, *ADMIN)
    presence = customer_side.app[QUEUE].presence
    assert isinstance(presence, SharedPresence)
    async with admin.client.ws_connect("/console/ws"):
        async def seen() -> bool:
            await presence.refresh()
            return admin.me["id"] in presence.online()
        await until(seen)
        assert customer_side.app[QUEUE].team_available(utcnow())
        cid, auth = await start(customer_side)
        body = await (await send(customer_side, cid, auth, text="a person please")).json()
        last = body["replies"][-1]["text"]
        assert last != OFFLINE_TEXT and "estimated wait" in last

    async def gone() -> bool:
        await presence.refresh()
        return admin.me["id"] not in presence.online()
    await until(gone)  # the console closed: the instance removed its agent at once
    assert not customer_side.app[QUEUE].team_available(utcnow())


async def test_an_instance_that_stops_renewing_drops_out_after_its_ttl() -> None:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test-{uuid.uuid4().hex}"
    try:
        dying = SharedPresence(redis, prefix, ttl_seconds=0.5)
        watcher = SharedPresence(redis, prefix, ttl_seconds=30)
        dying.connected("agent-1")
        await dying.refresh()  # and then never again, as if killed
        await watcher.refresh()
        assert watcher.online() == {"agent-1"}

        async def expired() -> bool:
            await watcher.refresh()
            return not watcher.online()
        await until(expired, 5)
    finally:
        await redis.aclose()


async def test_presence_keeps_the_last_snapshot_while_redis_is_down() -> None:
    redis = Redis.from_url(REDIS_URL)
    prefix = f"test-{uuid.uuid4().hex}"
    other = SharedPresence(redis, prefix)
    other.connected("agent-b")
    await other.refresh()
    broken = Redis.from_url(REDIS_URL)
    mine = SharedPresence(broken, prefix)
    await mine.refresh()
    assert mine.online() == {"agent-b"}
    await broken.aclose()
    broken = Redis.from_url(f"redis://127.0.0.1:{unused_port()}/0")  # Redis went away
    mine._redis = broken
    mine.connected("agent-a")
    try:
        with pytest.raises(RedisError):
            await mine.refresh()
        assert mine.online() == {"agent-a", "agent-b"}
    finally:
        await other.leave()
        await redis.aclose()
        await broken.aclose()


# --- jobs that run once -----------------------------------------------------------------------


@pytest.fixture
async def runners(postgres_url: str) -> AsyncIterator[list[SingleRunner]]:
    engines = [create_engine(postgres_url) for _ in range(3)]
    yield [SingleRunner(engine, retry_seconds=0.05, check_seconds=0.1) for engine in engines]
    for engine in engines:
        await engine.dispose()


class Witness:
    """A job that records who runs it and how many run it at the same moment."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.most_at_once = 0
        self.starts: list[int] = []

    def job(self, index: int) -> Callable[[], Any]:
        async def run() -> None:
            self.running.add(index)
            self.starts.append(index)
            self.most_at_once = max(self.most_at_once, len(self.running))
            try:
                await asyncio.Event().wait()
            finally:
                self.running.discard(index)
        return run


async def test_a_job_runs_on_one_instance_and_moves_when_that_one_dies(
    runners: list[SingleRunner]
) -> None:
    witness = Witness()
    tasks = [asyncio.create_task(r.run("sweep", witness.job(i))) for i, r in enumerate(runners)]
    try:
        await until(lambda: _now(bool(witness.running)))
        first = next(iter(witness.running))
        # the others have tried for the lock again and again meanwhile
        await until(lambda: _now(all(r.standing_by["sweep"] >= 5
                                     for i, r in enumerate(runners) if i != first)))
        assert witness.running == {first} and witness.most_at_once == 1
        tasks[first].cancel()  # that instance dies
        await asyncio.gather(tasks[first], return_exceptions=True)
        await until(lambda: _now(bool(witness.running - {first})))
        assert witness.most_at_once == 1
        assert sum(1 for r in runners if "sweep" in r.running) == 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_job_stops_when_its_lock_connection_is_cut(
    runners: list[SingleRunner], postgres_url: str
) -> None:
    witness = Witness()
    tasks = [asyncio.create_task(r.run("sweep", witness.job(i))) for i, r in enumerate(runners[:2])]
    engine = create_engine(postgres_url)
    try:
        await until(lambda: _now(bool(witness.running)))
        first, key = next(iter(witness.running)), lock_key("sweep")
        # what a PostgreSQL restart or a dropped network does to the holder's connection
        async with engine.begin() as connection:
            await connection.execute(text(
                "SELECT pg_terminate_backend(pid) FROM pg_locks "
                "WHERE locktype = 'advisory' AND granted "
                "AND classid::bigint = :high AND objid::bigint = :low"),
                {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF})
        await until(lambda: _now(len(witness.starts) >= 2))
        assert witness.most_at_once == 1
        assert first not in witness.running or witness.starts.count(first) >= 2
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await engine.dispose()


async def _now(value: bool) -> bool:
    await asyncio.sleep(0.02)
    return value


async def test_helpdesk_webhooks_are_sent_by_one_instance_each_event_once(
    aiohttp_client: Any, shared: Settings
) -> None:
    received: list[dict[str, Any]] = []

    async def helpdesk(request: web.Request) -> web.Response:
        received.append(json.loads(await request.read()))
        return web.json_response({})

    receiver_app = web.Application()
    receiver_app.router.add_post("/hook", helpdesk)
    receiver = TestServer(receiver_app)
    await receiver.start_server()
    try:
        settings = Settings(**{**shared.__dict__,
                               "webhook_url": str(receiver.make_url("/hook")),
                               "webhook_secret": "a-secret-of-sixteen+"})
        first = await aiohttp_client(create_app(settings))
        second = await aiohttp_client(create_app(settings))
        await until(lambda: _now(sum("webhooks" in c.app[JOBS].running for c in (first, second)) == 1))
        for i in range(4):
            client = first if i % 2 else second
            cid, auth = await start(client)
            await send(client, cid, auth, text="a person please")
        await until(lambda: _now(len({e["id"] for e in received}) >= 4))
        # the cursor has passed every event: any duplicate would have been sent by now
        async def cursor_done() -> bool:
            async with first.app[QUEUE].sessions() as session:
                cursor = await session.get(WebhookCursor, CURSOR_NAME)
            return cursor is not None and cursor.last_event_id >= max(e["id"] for e in received)
        await until(cursor_done)
        ids = [e["id"] for e in received]
        assert len(ids) == len(set(ids)) == 4
        assert sum("webhooks" in c.app[JOBS].running for c in (first, second)) == 1
    finally:
        await receiver.close()


# --- Redis down ---------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def instances_on_a_throwaway_redis(
    aiohttp_client: Any, shared: Settings
) -> AsyncIterator[tuple[ThrowawayRedis, Any, Any]]:
    """Two instances on a Redis of the test's own, which it may stop and start at will."""
    redis = ThrowawayRedis()
    redis.start()
    try:
        settings = Settings(**{**shared.__dict__, "redis_url": redis.url})
        yield redis, await aiohttp_client(create_app(settings)), \
            await aiohttp_client(create_app(settings))
    finally:
        redis.stop()


async def watch(console: Any, conversation_id: str) -> None:
    """Opens a conversation on a console socket and waits until the server confirms it."""
    await console.send_json({"type": "watch", "conversation_id": conversation_id})
    async with asyncio.timeout(10):
        while (await console.receive_json())["type"] != "watched":
            pass


async def test_with_redis_down_messages_keep_their_order_and_redis_recovers(
    aiohttp_client: Any, shared: Settings, fake_rasa: FakeRasa
) -> None:
    """Nothing lost: every message sent while Redis is down is stored once and answered once,
    never two of one conversation at Rasa together; once Redis is back, an agent on the other
    instance hears of new messages again."""
    async with instances_on_a_throwaway_redis(aiohttp_client, shared) as (redis, first, second):
        cid, auth = await start(first)
        redis.stop()
        fake_rasa.delay = 0.05
        texts = [f"while redis is down {i}" for i in range(6)]
        responses = await asyncio.gather(*(send(first if i % 2 else second, cid, auth, text=t)
                                           for i, t in enumerate(texts)))
        assert [r.status for r in responses] == [200] * 6
        assert fake_rasa.most_in_flight == 1
        assert sorted(b["message"] for b in fake_rasa.received) == sorted(texts)
        stored = [m["text"] for m in await transcript(first, cid, auth) if m["author"] == "customer"]
        assert sorted(stored) == sorted(texts)

        redis.start()  # same port: the instances reconnect by themselves
        admin = await log_in(aiohttp_client, second, *ADMIN)
        async with admin.client.ws_connect("/console/ws") as console:
            await watch(console, cid)
            # the first instance resubscribes within a second; until then its events are
            # only on its own screens, so keep writing until one reaches the other instance
            async with asyncio.timeout(20):
                heard = False
                attempt = 0
                while not heard:
                    attempt += 1
                    await send(first, cid, auth, text=f"redis is back {attempt}")
                    try:
                        async with asyncio.timeout(1):
                            while not heard:
                                event = await console.receive_json()
                                heard = event["type"] == "message" and \
                                    event["message"]["text"].startswith("redis is back")
                    except TimeoutError:
                        pass


async def test_screens_that_missed_events_while_redis_was_down_catch_up_when_it_is_back(
    aiohttp_client: Any, shared: Settings
) -> None:
    """The customer's widget and an agent's console are on the second instance; while Redis
    is down the first stores a message for that chat, whose notice only its own screens get.
    When the second resubscribes it tells its screens to look again: the console is told to
    reload (and does, console.js), the widget reads the message from the database — with no
    further message to bring it."""
    async with instances_on_a_throwaway_redis(aiohttp_client, shared) as (redis, first, second):
        widget, welcome = await hello(second)
        cid = welcome["conversation_id"]
        admin = await log_in(aiohttp_client, second, *ADMIN)
        async with admin.client.ws_connect("/console/ws") as console:
            await watch(console, cid)
            redis.stop()
            note = await first.app[SERVICE].add_system_message(cid, "We are on it.", {})
            first.app[ROUTER].publish_messages(cid, [note])
            redis.start()  # same port; nothing else happens in this chat
            shown = await until_frame(widget, "message", id=note.id)  # bounded: 10 s a frame
            assert shown["message"]["text"] == "We are on it."
            async with asyncio.timeout(20):
                while (await console.receive_json())["type"] != "resync":
                    pass
        await widget.close()


async def test_screens_read_the_database_again_when_another_instance_dies() -> None:
    """An instance killed between storing a message and publishing its event takes the event
    with it; when its subscription ends, the other instances tell their screens to read the
    database (a widget on the survivor saw an agent's greeting a minute late without this)."""
    prefix = f"test-{uuid.uuid4().hex}"
    survivor_redis, dying_redis = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    survivor, dying = RedisFanout(survivor_redis, prefix), RedisFanout(dying_redis, prefix)
    survivor.PEER_CHECK_SECONDS = 0.05
    await survivor.start()
    await dying.start()
    try:
        async with survivor.subscribe(conversation_topic("c1")) as screen:
            async def both_seen() -> bool:
                await asyncio.sleep(0.05)
                return survivor.subscribers_seen == 2
            await until(both_seen, 10)
            assert screen.empty()
            await dying.close()  # its subscription ends, as a kill -9 ends it
            async with asyncio.timeout(10):
                event = await screen.get()
            assert event["type"] == RESYNC
    finally:
        await survivor.close()
        await survivor_redis.aclose()
        await dying_redis.aclose()


async def test_business_hours_saved_on_one_instance_apply_on_every_instance(
    aiohttp_client: Any, shared: Settings
) -> None:
    first = await aiohttp_client(create_app(shared))
    second = await aiohttp_client(create_app(shared))
    admin = await log_in(aiohttp_client, second, *ADMIN)
    status, body = await admin.call("PUT", "/console/api/business-hours",
                                    {"hours": "mon-fri 09:00-17:00", "timezone": "Europe/Berlin"})
    assert status == 200, body

    async def applied() -> bool:
        await asyncio.sleep(0.02)
        return first.app[QUEUE].hours.text == "mon-fri 09:00-17:00"
    await until(applied)
    assert first.app[QUEUE].hours.zone.key == "Europe/Berlin"


async def test_two_agents_on_different_instances_claiming_at_once_one_wins(
    aiohttp_client: Any, shared: Settings
) -> None:
    first = await aiohttp_client(create_app(shared))
    second = await aiohttp_client(create_app(shared))
    admin = await log_in(aiohttp_client, first, *ADMIN)
    await first.app[AGENTS].create("bea@shop.example", "Bea", "a-long-password-1")
    bea = await log_in(aiohttp_client, second, "bea@shop.example", "a-long-password-1")
    for _ in range(5):
        cid, auth = await start(first)
        await send(first, cid, auth, text="a person please")
        results = await asyncio.gather(
            admin.call("POST", f"/console/api/conversations/{cid}/claim"),
            bea.call("POST", f"/console/api/conversations/{cid}/claim"))
        assert sorted(status for status, _ in results) == [200, 409]


async def test_whatsapp_webhooks_on_a_third_instance_reach_the_agent_and_go_out_once(
    aiohttp_client: Any, shared: Settings, fake_rasa: FakeRasa,
    platforms: tuple[FakeGraph, Any, str],  # noqa: F811  (the fixture, imported above)
) -> None:
    """Nothing lost or doubled: Meta's retries land on different instances, the message is
    stored and answered once, the agent on another instance sees it, and each outgoing
    message reaches WhatsApp once although every instance could deliver it."""
    graph, _, base = platforms
    settings = Settings(**{**shared.__dict__, "whatsapp": WhatsAppSettings(
        VERIFY, APP_SECRET, ACCESS_TOKEN, "1555000", f"{base}/v21.0")})
    widget_side, console_side, webhook_side = [
        await aiohttp_client(create_app(settings)) for _ in range(3)]
    admin = await log_in(aiohttp_client, console_side, *ADMIN)
    async with admin.client.ws_connect("/console/ws") as console:
        body = whatsapp_body("wamid.T1", "a person please")
        for instance in (webhook_side, widget_side, console_side):  # Meta retrying
            assert (await post_whatsapp(instance, body)).status == 200
        async with asyncio.timeout(10):
            while (event := await console.receive_json()).get("type") != "queue" or \
                    not event.get("conversation_id"):
                pass
        cid = event["conversation_id"]
        status, _ = await admin.call("POST", f"/console/api/conversations/{cid}/claim")
        assert status == 200
        status, _ = await admin.call("POST", f"/console/api/conversations/{cid}/messages",
                                     {"text": "Hello, I am here to help"})
        assert status == 200
    assert [b["message"] for b in fake_rasa.received] == ["a person please"]

    async def all_sent() -> bool:
        await asyncio.sleep(0.05)
        async with webhook_side.app[QUEUE].sessions() as session:
            rows = list(await session.scalars(select(Delivery)))
        return bool(rows) and all(r.status in ("sent", "skipped") for r in rows) and \
            any("Hello, I am here to help" == (b.get("text") or {}).get("body") for b in graph.sent)
    await until(all_sent, 20)
    async with webhook_side.app[QUEUE].sessions() as session:
        sent = [r for r in await session.scalars(select(Delivery)) if r.status == "sent"]
    assert len(graph.sent) == len(sent)  # each delivery went out once
    bodies = [(b.get("text") or {}).get("body") for b in graph.sent]
    assert bodies.count("Hello, I am here to help") == 1


async def test_a_conversation_lock_is_renewed_while_held_and_freed_soon_after_its_holder_dies(
) -> None:
    from handoff.redis_backplane import RedisLocks
    redis = Redis.from_url(REDIS_URL)
    prefix = f"t{secrets.token_hex(4)}"
    locks = RedisLocks(redis, prefix, ttl_ms=300, wait_seconds=5)
    key = f"{prefix}:lock:c1"
    try:
        async with locks.hold("c1"):
            await asyncio.sleep(1.0)  # > 3 lifetimes: only renewal keeps it
            assert await redis.get(key) is not None
            ttl = await redis.pttl(key)
            assert 0 < ttl <= 300
        assert await redis.get(key) is None  # released at the end
        # A holder that dies (its renewal task gone with it) leaves a lock that expires:
        await redis.set(key, "dead-instance", px=300)
        assert not await redis.set(key, "someone-else", nx=True)  # held
        async with locks.hold("c1"):  # within wait_seconds (else LockTimeout): it expired
            assert await redis.get(key) not in (None, b"dead-instance")
    finally:
        await redis.delete(key)
        await redis.aclose()


async def test_a_lock_is_released_even_if_its_renewal_swallows_the_cancel() -> None:
    """Found in the cluster load run: a holder cancelled its renewal task and awaited it, the
    cancel landed inside a Redis call that swallowed it, and the renewal went on renewing while
    the holder waited forever — the conversation stayed locked, its message answered but
    never acknowledged. Here the renewal swallows every cancel."""
    from handoff.redis_backplane import RedisLocks
    redis = Redis.from_url(REDIS_URL)
    prefix = f"t{secrets.token_hex(4)}"
    locks = RedisLocks(redis, prefix, ttl_ms=300, wait_seconds=5)
    key = f"{prefix}:lock:c1"
    renewing, renewals = asyncio.Event(), []

    async def renew_swallowing_cancels(*args: Any, **kwargs: Any) -> int:
        renewals.append(1)
        renewing.set()
        try:
            await asyncio.sleep(0.2)
        except asyncio.CancelledError:
            pass  # as the Redis call did
        return 1

    locks._renew = renew_swallowing_cancels  # type: ignore[assignment]
    holder: asyncio.Task[None] | None = None
    try:
        async def hold_until_renewing() -> None:
            async with locks.hold("c1"):
                await renewing.wait()  # the holder finishes while its renewal is in flight

        holder = asyncio.create_task(hold_until_renewing())
        done, _ = await asyncio.wait({holder}, timeout=5)  # (wait_for's cancel would free it)
        assert holder in done, "the holder waited for its renewal forever"
        assert await redis.get(key) is None  # released
        await asyncio.sleep(0.5)  # > one renewal interval and one renewal
        count = len(renewals)
        await asyncio.sleep(0.5)
        assert len(renewals) == count  # and the renewal stopped
    finally:
        if holder is not None and not holder.done():
            holder.cancel()
        await redis.delete(key)
        await redis.aclose()


async def test_a_burst_of_redis_commands_opens_a_bounded_number_of_connections() -> None:
    """redis-py's default pool opened a connection per command in flight and kept them all,
    so every burst left an instance more connections to Redis (seen in the soak), and refused
    commands past 100 in flight: here 160 are in flight and none is refused."""
    from handoff.app import REDIS_MAX_CONNECTIONS, redis_client

    redis, observer = redis_client(REDIS_URL), Redis.from_url(REDIS_URL)
    key = f"test-burst-{uuid.uuid4().hex}"
    try:
        await asyncio.gather(*(redis.incr(key) for _ in range(5 * REDIS_MAX_CONNECTIONS)))
        assert int(await redis.get(key)) == 5 * REDIS_MAX_CONNECTIONS  # none refused
        ours = [c for c in await observer.client_list() if c["name"] == "support-web"]
        assert 1 <= len(ours) <= REDIS_MAX_CONNECTIONS
    finally:
        await redis.delete(key)
        await redis.aclose()
        await observer.aclose()
