"""The widget's WebSocket protocol against the real app and database."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from datetime import timedelta

from sqlalchemy import insert, update
from sqlalchemy.exc import DBAPIError

from handoff.appkeys import FANOUT, ROUTER, SERVICE
from handoff.conversations.models import Message, utcnow
from tests.conftest import FakeRasa
from tests.handoff.test_console import ADMIN, app_client, log_in  # noqa: F401  (fixture)

Client = TestClient  # type: ignore[type-arg]
WS = aiohttp.ClientWebSocketResponse


async def until(socket: WS, kind: str, **match: Any) -> dict[str, Any]:
    """The next frame of `kind` (whose fields match), skipping others; bounded by timeouts."""
    while True:
        frame = await socket.receive_json(timeout=10)
        if frame["type"] == kind and all(
            frame.get(k) == v or (frame.get("message") or {}).get(k) == v for k, v in match.items()
        ):
            return frame


async def frames_until(socket: WS, *kinds: str) -> list[dict[str, Any]]:
    """Frames in arrival order until one of each kind has come (acks and pushes interleave)."""
    frames: list[dict[str, Any]] = []
    while not all(any(f["type"] == kind for f in frames) for kind in kinds):
        frames.append(await socket.receive_json(timeout=10))
    return frames


async def hello(client: Client, **fields: Any) -> tuple[WS, dict[str, Any]]:
    socket = await client.ws_connect("/widget/ws")
    await socket.send_json({"type": "hello", **fields})
    return socket, await until(socket, "welcome")


async def test_new_chat_gets_a_token_and_answers(app_client: Client) -> None:  # noqa: F811
    socket, welcome = await hello(app_client, language="he")
    assert welcome["status"] == "bot" and welcome["token"]
    await socket.send_json({"type": "message", "text": "שלום", "client_message_id": "c1"})
    frames = await frames_until(socket, "ack")
    assert frames[0] == {"type": "typing", "on": True}
    assert {"type": "typing", "on": False} in frames
    ack = next(f for f in frames if f["type"] == "ack")
    assert ack["client_message_id"] == "c1" and ack["duplicate"] is False
    reply = await until(socket, "message", author="assistant")
    assert reply["message"]["text"] == "echo: שלום"
    assert ack["reply_ids"] == [reply["message"]["id"]]  # the answer is complete
    await socket.close()


async def test_resume_replays_history_and_a_resent_message_is_answered_once(
    app_client: Client, fake_rasa: FakeRasa  # noqa: F811
) -> None:
    socket, welcome = await hello(app_client)
    cid, token = welcome["conversation_id"], welcome["token"]
    await socket.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    await until(socket, "ack")
    await socket.close()  # network drop

    again, resumed = await hello(app_client, conversation_id=cid, token=token, after=0)
    assert "token" not in resumed
    history = [(await until(again, "message"))["message"] for _ in range(2)]
    assert [m["text"] for m in history] == ["hi", "echo: hi"]
    await again.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    ack = await until(again, "ack")
    assert ack["duplicate"] is True
    assert ack["reply_ids"] == [history[1]["id"]]  # the same answer, not a new one
    assert len(fake_rasa.received) == 1
    await again.close()

    async with app_client.app[SERVICE]._sessions.begin() as session:  # shown long ago
        await session.execute(update(Message).values(created_at=utcnow() - timedelta(hours=1)))
    later, _ = await hello(app_client, conversation_id=cid, token=token, after=history[-1]["id"])
    await later.send_json({"type": "message", "text": "more", "client_message_id": "c2"})
    first = await until(later, "message")
    assert first["message"]["text"] == "more"  # nothing old before `after` is sent again
    await later.close()


async def test_a_resume_gets_a_message_that_committed_after_a_newer_one_was_shown(
    app_client: Client, fake_rasa: FakeRasa  # noqa: F811
) -> None:
    """On PostgreSQL a message can commit after a newer one reached the screen; if its
    notification died with the instance, a resume from the newest id shown must still bring
    it (the fault run lost one). Recent messages come again; the widget drops ids it has."""
    socket, welcome = await hello(app_client)
    cid, token = welcome["conversation_id"], welcome["token"]
    await socket.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    shown = (await until(socket, "message", author="assistant"))["message"]
    await socket.close()
    async with app_client.app[SERVICE]._sessions.begin() as session:
        await session.execute(update(Message).values(created_at=utcnow() - timedelta(hours=1)))

    def agent_says(message_id: int, text: str) -> Any:
        return insert(Message).values(
            id=message_id, conversation_id=cid, message_type="outgoing", author_type="agent",
            author_id="a1", channel="widget", text=text, private=False, created_at=utcnow())

    newest = shown["id"] + 10
    async with app_client.app[SERVICE]._sessions.begin() as session:
        await session.execute(agent_says(newest, "shown"))  # reached the screen first
    async with app_client.app[SERVICE]._sessions.begin() as session:
        await session.execute(agent_says(shown["id"] + 5, "committed late"))
    again, _ = await hello(app_client, conversation_id=cid, token=token, after=newest)
    resent = [(await until(again, "message"))["message"]["text"] for _ in range(2)]
    assert resent == ["committed late", "shown"]  # the widget drops "shown": it has that id
    await again.close()


async def test_agent_messages_arrive_but_private_notes_never_do(
    aiohttp_client: Any, app_client: Client, fake_rasa: FakeRasa  # noqa: F811
) -> None:
    fake_rasa.reply = lambda text: [{"custom": {"handoff": {"reason": "customer_request"}}}]
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    socket, welcome = await hello(app_client)
    cid = welcome["conversation_id"]
    await socket.send_json({"type": "message", "text": "a person please", "client_message_id": "c1"})
    await until(socket, "ack")
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    joined = await until(socket, "message", type="activity")
    while "agent_joined" not in joined["message"]["payload"]:  # after the handoff's own
        joined = await until(socket, "message", type="activity")
    assert joined["message"]["payload"]["agent_name"] == "Admin"
    await admin.call("POST", f"/console/api/conversations/{cid}/messages",
                     {"text": "secret note", "private": True})
    await admin.call("POST", f"/console/api/conversations/{cid}/messages", {"text": "Hello!"})
    frame = await until(socket, "message", author="agent")
    assert frame["message"]["text"] == "Hello!"  # the note before it was not sent
    await socket.close()


async def test_notifications_out_of_order_lose_nothing_and_repeat_nothing(
    app_client: Client,  # noqa: F811
) -> None:
    """Found by bench/load: an agent's join notice was published while the assistant's
    handoff replies were still being stored; the widget took the higher id as "sent up to
    here" and the customer never saw the replies."""
    socket, welcome = await hello(app_client)
    cid = welcome["conversation_id"]
    service, router = app_client.app[SERVICE], app_client.app[ROUTER]
    earlier = await service.add_system_message(cid, "stored first, announced last")
    later = await service.add_system_message(cid, "stored second, announced first")
    router.publish_messages(cid, [later])
    router.publish_messages(cid, [earlier])
    router.publish_messages(cid, [later])  # a repeated notification (e.g. Redis and a retry)
    first, second = (await until(socket, "message"))["message"], (await until(socket, "message"))["message"]
    assert [first["id"], second["id"]] == [earlier.id, later.id]  # in stored order
    third = await app_client.app[SERVICE].add_system_message(cid, "next")
    router.publish_messages(cid, [third])
    assert (await until(socket, "message"))["message"]["id"] == third.id  # nothing repeated
    await socket.close()


async def test_a_message_stored_by_someone_else_during_a_turn_arrives_in_order(
    app_client: Client, fake_rasa: FakeRasa  # noqa: F811
) -> None:
    """The push sends a socket's own turn without reading the database (one instance: no
    event is ever missed); a message another writer stores while the assistant thinks still
    arrives, once and in stored order, by its own event."""
    socket, welcome = await hello(app_client)
    cid = welcome["conversation_id"]
    service, router = app_client.app[SERVICE], app_client.app[ROUTER]
    fake_rasa.delay = 0.5
    await socket.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    await until(socket, "typing", on=True)  # stored; the assistant is thinking
    meanwhile = await service.add_system_message(cid, "stored during the turn")
    router.publish_messages(cid, [meanwhile])
    frames = await frames_until(socket, "ack")
    while not any(f["type"] == "message" and f["message"]["author"] == "assistant"
                  for f in frames):
        frames.append(await socket.receive_json(timeout=10))
    shown = [f["message"] for f in frames if f["type"] == "message"]
    assert [m["text"] for m in shown] == ["hi", "stored during the turn", "echo: hi"]
    assert [m["id"] for m in shown] == sorted(m["id"] for m in shown)
    third = await service.add_system_message(cid, "next")
    router.publish_messages(cid, [third])
    assert (await until(socket, "message"))["message"]["id"] == third.id  # nothing repeated
    await socket.close()


async def test_a_message_in_the_history_is_not_sent_again_when_its_notice_comes_late(
    app_client: Client,  # noqa: F811
) -> None:
    """Found by the cluster fault run: a widget resuming after its instance died subscribed,
    then read the history; the notice of a message stored meanwhile came after, and the
    message went out twice on the one socket."""
    first, welcome = await hello(app_client)
    cid, token = welcome["conversation_id"], welcome["token"]
    await first.close()
    service, router = app_client.app[SERVICE], app_client.app[ROUTER]
    stored = await service.add_system_message(cid, "stored while the widget reconnected")
    socket, _ = await hello(app_client, conversation_id=cid, token=token, after=0)
    assert (await until(socket, "message"))["message"]["id"] == stored.id  # in the history
    router.publish_messages(cid, [stored])  # its notice, late
    following = await service.add_system_message(cid, "next")
    router.publish_messages(cid, [following])
    assert (await until(socket, "message"))["message"]["id"] == following.id  # not `stored`
    await socket.close()


async def test_the_answer_reaches_the_socket_even_if_its_notice_is_lost(
    app_client: Client, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Found by the cluster fault run: a notice published while Redis restarted reached no
    one, and the widget waited for the answer its ack promised."""
    socket, _ = await hello(app_client)
    monkeypatch.setattr(app_client.app[FANOUT], "publish", lambda topic, event: None)
    await socket.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    ack = await until(socket, "ack")
    reply = await until(socket, "message", author="assistant")
    assert ack["reply_ids"] == [reply["message"]["id"]]
    await socket.close()


async def test_a_push_that_cannot_read_the_database_closes_the_socket_for_a_resume(
    app_client: Client, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """Found by the cluster fault run: when PostgreSQL restarted, the push died and the socket
    stayed open without ever pushing again; closing it makes the widget resume."""
    socket, welcome = await hello(app_client)
    cid, token = welcome["conversation_id"], welcome["token"]
    service, router = app_client.app[SERVICE], app_client.app[ROUTER]
    stored = await service.add_system_message(cid, "stored while the database restarts")

    async def restarting(*args: Any, **kwargs: Any) -> Any:
        raise DBAPIError("SELECT", {}, ConnectionError("the database is restarting"))

    monkeypatch.setattr(service, "transcript", restarting)
    router.publish_messages(cid, [stored])
    closed = await socket.receive(timeout=10)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1011
    monkeypatch.undo()
    again, _ = await hello(app_client, conversation_id=cid, token=token, after=0)
    assert (await until(again, "message"))["message"]["id"] == stored.id  # nothing lost
    await again.close()


async def test_a_message_the_database_cannot_store_closes_the_socket_for_a_resend(
    app_client: Client, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    """A storage error used to reach the HTTP edge, which wrote a 503 response into the open
    WebSocket (the browser saw a broken frame); now the socket closes with 1011, and the same
    message sent again after the resume is stored and answered once."""
    socket, welcome = await hello(app_client)
    cid, token = welcome["conversation_id"], welcome["token"]
    service = app_client.app[SERVICE]

    async def restarting(*args: Any, **kwargs: Any) -> Any:
        raise DBAPIError("INSERT", {}, ConnectionError("the database is restarting"))

    monkeypatch.setattr(service, "accept", restarting)
    await socket.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    closed = await socket.receive(timeout=10)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1011
    monkeypatch.undo()
    assert await service.transcript(cid) == []  # nothing half-stored
    again, _ = await hello(app_client, conversation_id=cid, token=token, after=0)
    await again.send_json({"type": "message", "text": "hi", "client_message_id": "c1"})
    ack = await until(again, "ack")
    assert not ack["duplicate"] and len(ack["reply_ids"]) == 1
    assert [m.source_id for m in await service.transcript(cid)].count("c1") == 1
    await again.close()


async def test_a_hello_the_database_cannot_answer_closes_the_socket_for_a_retry(
    app_client: Client, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    socket, welcome = await hello(app_client)
    await socket.close()

    async def restarting(*args: Any, **kwargs: Any) -> Any:
        raise DBAPIError("SELECT", {}, ConnectionError("the database is restarting"))

    monkeypatch.setattr(app_client.app[SERVICE], "authenticate", restarting)
    again = await app_client.ws_connect("/widget/ws")
    await again.send_json({"type": "hello", "conversation_id": welcome["conversation_id"],
                           "token": welcome["token"], "after": 0})
    closed = await again.receive(timeout=10)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1011


async def test_queue_position_updates_while_waiting(
    aiohttp_client: Any, app_client: Client, fake_rasa: FakeRasa  # noqa: F811
) -> None:
    fake_rasa.reply = lambda text: [{"custom": {"handoff": {"reason": "customer_request"}}}]
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    async with admin.client.ws_connect("/console/ws"):
        first, w1 = await hello(app_client)
        await first.send_json({"type": "message", "text": "human", "client_message_id": "a"})
        await until(first, "ack")
        second, w2 = await hello(app_client)
        await second.send_json({"type": "message", "text": "human", "client_message_id": "b"})
        assert (await until(second, "queue"))["position"] == 2
        await admin.call("POST", f"/console/api/conversations/{w1['conversation_id']}/claim")
        assert (await until(second, "queue"))["position"] == 1
        await first.close()
        await second.close()


@pytest.mark.parametrize(
    ("frames", "words"),
    [
        ([{"type": "message", "text": "hi"}], "say hello first"),
        ([{"type": "hello", "conversation_id": "x", "token": "y"}], "not found"),
        ([{"type": "hello", "language": 5}], "language"),
    ],
)
async def test_bad_hello_is_refused_clearly(app_client: Client, frames: list[Any],  # noqa: F811
                                            words: str) -> None:
    socket = await app_client.ws_connect("/widget/ws")
    for frame in frames:
        await socket.send_json(frame)
    error = await until(socket, "error")
    assert words in error["error"]
    await socket.close()


async def test_bad_frames_get_errors_and_nothing_is_stored(
    app_client: Client, fake_rasa: FakeRasa  # noqa: F811
) -> None:
    socket, _ = await hello(app_client)
    await socket.send_str("{not json")
    assert "JSON" in (await until(socket, "error"))["error"]
    await socket.send_json({"type": "dance"})
    assert "unknown" in (await until(socket, "error"))["error"]
    await socket.send_json({"type": "message", "text": "   ", "client_message_id": "c9"})
    error = await until(socket, "error")
    assert error["client_message_id"] == "c9" and "empty" in error["error"]
    await socket.send_json({"type": "message", "text": "x" * 5000})
    assert "limit" in (await until(socket, "error"))["error"]
    assert fake_rasa.received == []
    await socket.close()


async def test_widget_script_and_demo_page_are_served(app_client: Client) -> None:  # noqa: F811
    script = await app_client.get("/widget.js")
    assert script.status == 200 and "SupportWidget" in await script.text()
    page = await app_client.get("/demo")
    assert page.status == 200 and 'src="/widget.js"' in await page.text()


async def test_flooding_is_limited_and_nothing_legitimate_is_lost(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa
) -> None:
    from handoff.app import create_app
    from handoff.config import Settings
    from tests.handoff.test_console import settings_for

    base = settings_for(database_url, fake_rasa.url)
    client = await aiohttp_client(create_app(Settings(**{
        **base.__dict__, "widget_messages_per_minute": 6, "widget_new_chats_per_minute": 2})))
    socket, _ = await hello(client)
    for i in range(3):  # a burst of max(5, 6 // 3) = 5 is allowed
        await socket.send_json({"type": "message", "text": f"m{i}", "client_message_id": f"c{i}"})
    for i in range(3, 7):
        await socket.send_json({"type": "message", "text": f"m{i}", "client_message_id": f"c{i}"})
    limited = await until(socket, "error")
    assert limited["client_message_id"] == "c5" and limited["retry_after"] > 0
    stored = len(fake_rasa.received)
    assert stored == 5
    await socket.close()

    second, _ = await hello(client)  # a second new chat from this address is fine
    third = await client.ws_connect("/widget/ws")
    await third.send_json({"type": "hello"})
    refused = await until(third, "error")
    assert "too many new chats" in refused["error"]
    await second.close()
    await third.close()


async def test_an_oversized_frame_closes_that_socket_only(app_client: Client) -> None:  # noqa: F811
    socket, _ = await hello(app_client)
    await socket.send_str('{"type": "message", "text": "' + "x" * 70_000 + '"}')
    closing = await socket.receive(timeout=10)
    assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    assert closing.data == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    other, welcome = await hello(app_client)  # the service is fine
    assert welcome["status"] == "bot"
    await other.close()


@pytest.mark.parametrize(("waiting", "payload", "after"), [
    (False, {"handoff": {"reason": "customer_request"}}, True),
    (False, {"queue": {"position": 2, "eta_minutes": 8}}, True),
    (True, {"agent_joined": "a1", "agent_name": "Ada"}, False),
    (True, {"transfer": {"to_skill": None}}, True),
    (False, {"transfer": {"to_skill": "language:he"}}, True),
    (True, {"transfer": {"to_agent": "a2"}}, False),
    (True, {"resolved": "answered"}, False),
    (False, {"returned_to_bot": "agent_handback"}, False),
    (True, None, True),
    (False, {"buttons": []}, False),
])
def test_whether_a_chat_still_waits_follows_its_activity(
    waiting: bool, payload: dict[str, Any] | None, after: bool
) -> None:
    from handoff.channels.widget import still_waiting

    assert still_waiting(waiting, payload) is after
