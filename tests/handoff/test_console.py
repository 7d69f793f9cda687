"""The agent console's API and live feed against the real app and database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from handoff.app import create_app
from handoff.appkeys import AGENTS, FANOUT, ROUTER
from handoff.config import Settings
from handoff.fanout import conversation_topic
from tests.conftest import RASA_TOKEN, FakeRasa
from tests.handoff.test_http_api import send, start, transcript

ADMIN = ("admin@localhost", "admin-password-for-tests")
Client = TestClient  # type: ignore[type-arg]


def settings_for(database_url: str, rasa_url: str) -> Settings:
    return Settings(database_url=database_url, rasa_url=rasa_url, rasa_token=RASA_TOKEN,
                    action_server_url="http://127.0.0.1:1", rasa_timeout_seconds=5,
                    admin_password=ADMIN[1])


@pytest.fixture
async def app_client(aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa) -> Client:
    fake_rasa.reply = lambda text: (
        [{"text": "Connecting you."}, {"custom": {"handoff": {"reason": "customer_request"}}}]
        if "human" in text else [{"text": f"echo: {text}"}])
    return await aiohttp_client(create_app(settings_for(database_url, fake_rasa.url)))


class Agent:
    """An agent's browser: its own cookie jar and CSRF token."""

    def __init__(self, client: Client, csrf: str, agent: dict[str, Any]) -> None:
        self.client, self.csrf, self.me = client, csrf, agent

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.client.request(method, path, json=body,
                                             headers={"X-CSRF-Token": self.csrf})
        return response.status, await response.json()


async def log_in(aiohttp_client: Any, app_client: Client, email: str, password: str) -> Agent:
    client = app_client if email == ADMIN[0] else await aiohttp_client(app_client.server)
    response = await client.post("/console/api/login", json={"email": email, "password": password})
    assert response.status == 200, await response.text()
    body = await response.json()
    return Agent(client, body["csrf_token"], body["agent"])


async def second_agent(aiohttp_client: Any, app_client: Client, name: str = "bea") -> Agent:
    await app_client.app[AGENTS].create(f"{name}@shop.example", name.title(), "a-long-password-1")
    return await log_in(aiohttp_client, app_client, f"{name}@shop.example", "a-long-password-1")


async def escalated(client: Client) -> tuple[str, dict[str, str]]:
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="human please")).json()
    assert body["status"] == "waiting"
    return cid, auth


async def test_the_customer_sees_the_close_while_the_assistant_is_still_restarting(
    aiohttp_client: Any, app_client: Client, fake_rasa: FakeRasa
) -> None:
    """Rasa's tracker restart can take as long as Rasa is slow: the close and the survey
    reach the customer's screen first, and a message sent meanwhile is routed after it."""
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, auth = await escalated(app_client)
    assert (await admin.call("POST", f"/console/api/conversations/{cid}/claim"))[0] == 200
    fake_rasa.tracker_gate = asyncio.Event()
    async with app_client.app[FANOUT].subscribe(conversation_topic(cid)) as events:
        closing = asyncio.create_task(admin.call(
            "POST", f"/console/api/conversations/{cid}/resolve", {"resolution_code": "answered"}))
        shown: list[dict[str, Any]] = []
        while not any("buttons" in (m.get("payload") or {}) for m in shown):
            event = await asyncio.wait_for(events.get(), 10)
            if event.get("type") == "message":
                shown.append(event["message"])
        assert any("resolved" in (m.get("payload") or {}) for m in shown)
        assert fake_rasa.tracker_events == [] and not closing.done()  # Rasa still restarting
        restarts_seen: list[int] = []  # by Rasa when the customer's message reaches it
        fake_rasa.reply = lambda text: (restarts_seen.append(len(fake_rasa.tracker_events)),
                                        [{"text": f"echo: {text}"}])[1]
        question = asyncio.create_task(send(app_client, cid, auth, text="one more question"))
        locks, asked = app_client.app[ROUTER]._locks, len(fake_rasa.received)

        async def held_back_or_asked() -> None:  # queued behind the restart, or (wrongly) at Rasa
            while locks._users.get(cid, 0) < 2 and len(fake_rasa.received) == asked:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(held_back_or_asked(), 10)
        fake_rasa.tracker_gate.set()
        assert (await closing)[0] == 200
        assert (await question).status == 200
    assert fake_rasa.tracker_events == [(cid, [{"event": "restart"}])]
    assert restarts_seen == [1]  # the message reached Rasa after its restart, not before


async def test_login_needs_the_right_password_and_is_rate_limited(app_client: Client) -> None:
    for _ in range(5):
        response = await app_client.post("/console/api/login",
                                          json={"email": ADMIN[0], "password": "wrong-password"})
        assert response.status == 401
    response = await app_client.post("/console/api/login",
                                     json={"email": ADMIN[0], "password": ADMIN[1]})
    assert response.status == 429  # even the right password, after five failures
    assert "too many" in (await response.json())["error"]


async def test_console_api_needs_a_session_and_csrf(aiohttp_client: Any, app_client: Client) -> None:
    assert (await app_client.get("/console/api/queue")).status == 401
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, _ = await escalated(app_client)
    response = await app_client.post(f"/console/api/conversations/{cid}/claim")  # no header
    assert response.status == 403
    assert "X-CSRF-Token" in (await response.json())["error"]
    status, _ = await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    assert status == 200


async def test_escalation_claim_reply_note_close_survey_and_back_to_bot(
    aiohttp_client: Any, app_client: Client, fake_rasa: FakeRasa
) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, auth = await escalated(app_client)
    status, queue = await admin.call("GET", "/console/api/queue")
    assert [row["id"] for row in queue["waiting"]] == [cid]
    assert queue["waiting"][0]["handoff_reason"] == "customer_request"

    assert (await admin.call("POST", f"/console/api/conversations/{cid}/claim"))[0] == 200
    await send(app_client, cid, auth, text="my parcel is lost")
    assert len(fake_rasa.received) == 1  # the assistant stays silent while a person has it
    status, _ = await admin.call("POST", f"/console/api/conversations/{cid}/messages",
                                 {"text": "Sorry! Let me check.", "private": False})
    assert status == 200
    await admin.call("POST", f"/console/api/conversations/{cid}/messages",
                     {"text": "customer seems upset", "private": True})

    seen = [m["text"] for m in await transcript(app_client, cid, auth)]
    assert "Sorry! Let me check." in seen and "my parcel is lost" in seen
    assert "customer seems upset" not in seen  # private notes never reach the customer
    status, details = await admin.call("GET", f"/console/api/conversations/{cid}")
    assert "customer seems upset" in [m["text"] for m in details["messages"]]
    assert details["handoff_details"] == [{"reason": "customer_request"}]

    status, closed = await admin.call("POST", f"/console/api/conversations/{cid}/resolve",
                                      {"resolution_code": "answered"})
    assert status == 200
    survey = closed["messages"][-1]
    assert len(survey["payload"]["buttons"]) == 5
    # the assistant's side was restarted, so it resumes from a known state
    assert fake_rasa.tracker_events == [(cid, [{"event": "restart"}])]

    answered = await (await send(app_client, cid, auth, text="5 great help")).json()
    assert answered["status"] == "bot" and "Thank you" in answered["replies"][0]["text"]
    status, details = await admin.call("GET", f"/console/api/conversations/{cid}")
    csat = [e for e in details["events"] if e["type"] == "csat_submitted"]
    assert csat[0]["data"] == {"score": 5, "comment": "great help"}

    after = await (await send(app_client, cid, auth, text="one more question")).json()
    assert [r["text"] for r in after["replies"]] == ["echo: one more question"]


async def test_two_agents_claiming_at_once_one_wins(aiohttp_client: Any, app_client: Client) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    bea = await second_agent(aiohttp_client, app_client)
    for _ in range(5):
        cid, _ = await escalated(app_client)
        results = await asyncio.gather(
            admin.call("POST", f"/console/api/conversations/{cid}/claim"),
            bea.call("POST", f"/console/api/conversations/{cid}/claim"),
        )
        assert sorted(status for status, _ in results) == [200, 409]
        winner = admin if results[0][0] == 200 else bea
        loser = bea if winner is admin else admin
        status, _ = await loser.call("POST", f"/console/api/conversations/{cid}/messages",
                                     {"text": "mine!"})
        assert status == 403  # only the assigned agent writes to a claimed conversation
        await winner.call("POST", f"/console/api/conversations/{cid}/resolve",
                          {"resolution_code": "answered"})


async def test_capacity_is_enforced(aiohttp_client: Any, app_client: Client) -> None:
    bea = await second_agent(aiohttp_client, app_client)
    await app_client.app[AGENTS].update(bea.me["id"], max_chats=1)
    first, _ = await escalated(app_client)
    second, _ = await escalated(app_client)
    assert (await bea.call("POST", f"/console/api/conversations/{first}/claim"))[0] == 200
    status, body = await bea.call("POST", f"/console/api/conversations/{second}/claim")
    assert status == 409 and "1 open conversations" in body["error"]


async def test_queue_position_and_wait_are_told_when_agents_are_online(
    aiohttp_client: Any, app_client: Client
) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    async with admin.client.ws_connect("/console/ws") as socket:
        first, _ = await escalated(app_client)
        event = await socket.receive_json(timeout=10)
        while event.get("conversation_id") != first:
            event = await socket.receive_json(timeout=10)
        assert event["type"] == "queue"
        cid, auth = await start(app_client)
        body = await (await send(app_client, cid, auth, text="human please")).json()
        assert body["replies"][-1]["payload"]["queue"] == {"position": 2, "eta_minutes": 8}
        assert "number 2 in the queue" in body["replies"][-1]["text"]
        shown = await (await app_client.get(f"/api/conversations/{cid}", headers=auth)).json()
        assert shown["queue"] == {"position": 2, "eta_minutes": 8}


async def test_agent_sees_customer_messages_live(aiohttp_client: Any, app_client: Client) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, auth = await escalated(app_client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    async with admin.client.ws_connect("/console/ws") as socket:
        await socket.send_json({"type": "watch", "conversation_id": cid})
        await socket.send_json({"type": "watch", "conversation_id": cid})  # twice is harmless
        event = await socket.receive_json(timeout=10)
        while event["type"] != "watched":
            event = await socket.receive_json(timeout=10)
        assert event["conversation_id"] == cid
        await send(app_client, cid, auth, text="hello agent")
        event = await socket.receive_json(timeout=10)
        while event["type"] != "message":
            event = await socket.receive_json(timeout=10)
        assert event["message"]["text"] == "hello agent"


async def test_socket_refuses_foreign_origin(aiohttp_client: Any, app_client: Client) -> None:
    await log_in(aiohttp_client, app_client, *ADMIN)
    response = await app_client.get("/console/ws", headers={"Origin": "https://evil.example"})
    assert response.status == 403


async def test_transfer_to_a_skill_requeues(aiohttp_client: Any, app_client: Client) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, _ = await escalated(app_client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    status, _ = await admin.call("POST", f"/console/api/conversations/{cid}/transfer",
                                 {"skill": "language:he"})
    assert status == 200
    _, queue = await admin.call("GET", "/console/api/queue")
    assert queue["waiting"][0]["required_skills"] == ["language:he"]
    assert queue["waiting"][0]["eligible"] is False


async def test_handback_returns_to_the_assistant(
    aiohttp_client: Any, app_client: Client, fake_rasa: FakeRasa
) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, auth = await escalated(app_client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    status, _ = await admin.call("POST", f"/console/api/conversations/{cid}/handback")
    assert status == 200
    body = await (await send(app_client, cid, auth, text="thanks")).json()
    assert body["status"] == "bot" and body["replies"][0]["text"] == "echo: thanks"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/console/api/conversations/nope/claim", None, 404),
        ("/console/api/conversations/{cid}/messages", {"text": ""}, 422),
        ("/console/api/conversations/{cid}/resolve", {"resolution_code": "<b>"}, 400),
        ("/console/api/conversations/{cid}/transfer", {}, 400),
        ("/console/api/agents", {"email": "x@y.z", "name": "X", "password": "short"}, 422),
    ],
)
async def test_console_bad_input(aiohttp_client: Any, app_client: Client, path: str,
                                 body: Any, status: int) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, _ = await escalated(app_client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    got, answer = await admin.call("POST", path.format(cid=cid), body)
    assert got == status and "error" in answer


async def test_only_admins_manage_agents(aiohttp_client: Any, app_client: Client) -> None:
    bea = await second_agent(aiohttp_client, app_client)
    status, _ = await bea.call("POST", "/console/api/agents",
                               {"email": "c@shop.example", "name": "C", "password": "long-enough-pw"})
    assert status == 403
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    status, created = await admin.call("POST", "/console/api/agents", {
        "email": "c@shop.example", "name": "C", "password": "long-enough-pw",
        "skills": ["language:ar"], "max_chats": 2})
    assert status == 201 and created["skills"] == ["language:ar"]
    status, _ = await admin.call("POST", "/console/api/agents", {
        "email": "c@shop.example", "name": "C", "password": "long-enough-pw"})
    assert status == 422  # duplicate email


async def test_restart_mid_handoff_keeps_the_conversation_with_the_agent(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa, app_client: Client
) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, auth = await escalated(app_client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    await admin.call("POST", f"/console/api/conversations/{cid}/messages", {"text": "on it"})
    before = await transcript(app_client, cid, auth)
    await app_client.close()  # the web service stops

    restarted = await aiohttp_client(create_app(settings_for(database_url, fake_rasa.url)))
    assert await transcript(restarted, cid, auth) == before
    again = await log_in(aiohttp_client, restarted, *ADMIN)
    _, queue = await again.call("GET", "/console/api/queue")
    assert [row["id"] for row in queue["mine"]] == [cid]
    body = await (await send(restarted, cid, auth, text="still there?")).json()
    assert body["status"] == "with_agent" and body["replies"] == []


async def test_outside_business_hours_the_customer_is_told_and_asked_for_a_message(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa
) -> None:
    from handoff.business_hours import BusinessHours

    fake_rasa.reply = lambda text: [{"custom": {"handoff": {"reason": "customer_request"}}}]
    settings = settings_for(database_url, fake_rasa.url)
    never = BusinessHours.parse("", "UTC")  # no day named: always closed
    client = await aiohttp_client(create_app(Settings(**{**settings.__dict__, "business_hours": never})))
    admin = await log_in(aiohttp_client, client, *ADMIN)
    async with admin.client.ws_connect("/console/ws"):  # an agent online does not change hours
        cid, auth = await start(client)
        body = await (await send(client, cid, auth, text="human")).json()
    assert body["replies"][-1]["payload"] == {"queue": {"offline": True}}
    assert "leave your question" in body["replies"][-1]["text"]
    # the message they leave is kept for the team: the conversation waits in the queue,
    # with the contact details it holds on the contact record
    await send(client, cid, auth, text="call me on +49 30 555 1234 or noa@example.com, order 1234")
    _, queue = await admin.call("GET", "/console/api/queue")
    assert [row["id"] for row in queue["waiting"]] == [cid]
    assert queue["waiting"][0]["contact"]["phone"] == "+49305551234"
    assert queue["waiting"][0]["contact"]["email"] == "noa@example.com"


async def test_transcript_export_as_json_and_text(aiohttp_client: Any, app_client: Client) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    cid, auth = await escalated(app_client)
    await admin.call("POST", f"/console/api/conversations/{cid}/claim")
    await admin.call("POST", f"/console/api/conversations/{cid}/messages", {"text": "Hello!"})
    await admin.call("POST", f"/console/api/conversations/{cid}/messages",
                     {"text": "VIP customer", "private": True})
    await admin.call("POST", f"/console/api/conversations/{cid}/resolve",
                     {"resolution_code": "answered"})
    await send(app_client, cid, auth, text="4 quick and kind")

    status, record = await admin.call("GET", f"/console/api/conversations/{cid}/export")
    assert status == 200
    assert record["handoffs"][0]["reason"] == "customer_request"
    assert record["agents"] == [{"id": admin.me["id"], "name": "Admin"}]
    assert record["survey"] == {"score": 4, "comment": "quick and kind"}
    assert [m["author"] for m in record["messages"]][:2] == ["customer", "assistant"]

    response = await admin.client.get(f"/console/api/conversations/{cid}/export?format=text")
    text = await response.text()
    assert "Handed off at" in text and "customer_request" in text
    assert "Admin: Hello!" in text and "Admin [internal note]: VIP customer" in text
    assert "Survey: 4/5" in text and "Customer: human please" in text
    bad = await admin.client.get(f"/console/api/conversations/{cid}/export?format=pdf")
    assert bad.status == 400
    stranger = await aiohttp_client(app_client.server)  # no session cookie
    assert (await stranger.get(f"/console/api/conversations/{cid}/export")).status == 401


async def test_admin_sets_business_hours_which_survive_a_restart(
    aiohttp_client: Any, database_url: str, fake_rasa: FakeRasa, app_client: Client
) -> None:
    bea = await second_agent(aiohttp_client, app_client)
    closed = {"hours": "sun 00:00-00:01", "timezone": "Pacific/Auckland"}
    assert (await bea.call("PUT", "/console/api/business-hours", closed))[0] == 403
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    status, body = await admin.call("PUT", "/console/api/business-hours",
                                    {"hours": "mon-fri 25:00-26:00", "timezone": "UTC"})
    assert status == 400 and "impossible" in body["error"]
    status, body = await admin.call("PUT", "/console/api/business-hours", closed)
    assert status == 200 and body["timezone"] == "Pacific/Auckland"
    await app_client.close()
    restarted = await aiohttp_client(create_app(settings_for(database_url, fake_rasa.url)))
    again = await log_in(aiohttp_client, restarted, *ADMIN)
    status, body = await again.call("GET", "/console/api/business-hours")
    assert body["hours"] == "sun 00:00-00:01"


async def test_urgent_handoffs_jump_the_queue_and_language_becomes_a_skill(
    aiohttp_client: Any, app_client: Client, fake_rasa: FakeRasa
) -> None:
    admin = await log_in(aiohttp_client, app_client, *ADMIN)
    calm, _ = await escalated(app_client)
    response = await app_client.post("/api/conversations", json={"language": "he"})
    body = await response.json()
    upset, auth = body["id"], {"Authorization": f"Bearer {body['token']}"}
    await send(app_client, upset, auth, text="where is my order")
    await send(app_client, upset, auth, text="THIS IS USELESS, YOU STUPID BOT!!!")
    _, queue = await admin.call("GET", "/console/api/queue")
    assert [row["id"] for row in queue["waiting"]] == [upset, calm]
    assert queue["waiting"][0]["priority"] == 1
    assert queue["waiting"][0]["required_skills"] == ["language:he"]
    assert queue["waiting"][0]["eligible"] is False  # the admin has no Hebrew skill
