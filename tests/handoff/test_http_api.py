"""The customer's HTTP channel against the real app and database, with a scripted Rasa."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff.appkeys import SERVICE
from tests.conftest import FakeRasa, unused_port
from tests.handoff.conftest import Client, MakeClient


@pytest.fixture
async def client(make_client: MakeClient, fake_rasa: FakeRasa) -> Client:
    return await make_client(fake_rasa.url)


async def start(client: Client) -> tuple[str, dict[str, str]]:
    response = await client.post("/api/conversations", json={"language": "en"})
    assert response.status == 201
    body = await response.json()
    return body["id"], {"Authorization": f"Bearer {body['token']}"}


async def send(client: Client, cid: str, auth: dict[str, str], **body: Any) -> Any:
    return await client.post(f"/api/conversations/{cid}/messages", json=body, headers=auth)


async def transcript(client: Client, cid: str, auth: dict[str, str]) -> list[dict[str, Any]]:
    response = await client.get(f"/api/conversations/{cid}/messages", headers=auth)
    assert response.status == 200
    return (await response.json())["messages"]


async def test_message_is_stored_sent_to_rasa_and_reply_relayed(
    client: Client, fake_rasa: FakeRasa
) -> None:
    cid, auth = await start(client)
    response = await send(client, cid, auth, text="  where is my order  ")
    assert response.status == 200
    body = await response.json()
    assert body["message"]["text"] == "where is my order"
    assert [r["text"] for r in body["replies"]] == ["echo: where is my order"]
    assert body["status"] == "bot"
    assert fake_rasa.received == [  # a new message: Rasa need not look for it in its tracker
        {"sender": cid, "message": "where is my order",
         "metadata": {"channel": "api", "language": "en"},
         "message_id": str(body["message"]["id"]), "resumed": False}
    ]
    messages = await transcript(client, cid, auth)
    assert [(m["type"], m["author"], m["text"]) for m in messages] == [
        ("incoming", "customer", "where is my order"),
        ("outgoing", "assistant", "echo: where is my order"),
    ]


async def test_buttons_are_kept_with_the_reply(client: Client, fake_rasa: FakeRasa) -> None:
    buttons = [{"title": "Yes", "payload": "/affirm"}]
    fake_rasa.reply = lambda text: [{"text": "Did that help?", "buttons": buttons}]
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="hi")).json()
    assert body["replies"][0]["payload"] == {"buttons": buttons}


async def test_handoff_payload_marks_conversation_waiting_and_silences_assistant(
    client: Client, fake_rasa: FakeRasa
) -> None:
    fake_rasa.reply = lambda text: [
        {"text": "Connecting you to a person."},
        {"custom": {"handoff": {"reason": "customer_request", "intent": "human_handoff"}}},
    ]
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="human please")).json()
    assert body["status"] == "waiting"
    assert [(r["type"], r["author"]) for r in body["replies"]] == [
        ("outgoing", "assistant"), ("activity", "system"), ("outgoing", "system")]
    assert body["replies"][1]["payload"]["handoff"]["reason"] == "customer_request"
    # no agent has a console open: the customer is told so, not left waiting in silence
    assert body["replies"][2]["payload"] == {"queue": {"offline": True}}

    later = await (await send(client, cid, auth, text="hello? anyone?")).json()
    assert later["replies"] == [] and later["status"] == "waiting"
    assert len(fake_rasa.received) == 1  # the assistant never saw the second message
    conversation = await (await client.get(f"/api/conversations/{cid}", headers=auth)).json()
    assert conversation["handoff_reason"] == "customer_request"
    texts = [m["text"] for m in await transcript(client, cid, auth)]
    assert "hello? anyone?" in texts  # stored for the agent, not lost


async def test_records_from_actions_are_stored_as_events_and_never_shown(
    client: Client, fake_rasa: FakeRasa
) -> None:
    fake_rasa.reply = lambda text: [
        {"text": "Your order A10001 has shipped."},
        {"custom": {"record": {"type": "order_viewed", "data": {"order": "A10001"}}}},
        # a reply may not forge the service's own events, nor send a malformed record
        {"custom": {"record": {"type": "resolved", "data": {}}}},
        {"custom": {"record": {"type": "kb_answered", "data": "not a dict"}}},
    ]
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="where is A10001")).json()
    assert [r["text"] for r in body["replies"]] == ["Your order A10001 has shipped."]
    assert [m["text"] for m in await transcript(client, cid, auth)] == [
        "where is A10001", "Your order A10001 has shipped."]
    service = client.app[SERVICE]
    events = [(e.type, e.data) for e in await service.events(cid)
              if e.type not in ("conversation_created", "message_understood")]
    message_id = body["message"]["id"]
    assert events == [("order_viewed", {"message_id": message_id, "order": "A10001"}),
                      ("kb_answered", {"message_id": message_id})]


async def test_retried_send_is_stored_once_and_gets_the_same_replies(
    client: Client, fake_rasa: FakeRasa
) -> None:
    cid, auth = await start(client)
    first = await (await send(client, cid, auth, text="hi", client_message_id="m-1")).json()
    again = await (await send(client, cid, auth, text="hi", client_message_id="m-1")).json()
    assert again["duplicate"] is True and first["duplicate"] is False
    assert again["message"]["id"] == first["message"]["id"]
    assert again["replies"] == first["replies"]
    assert len(fake_rasa.received) == 1
    assert len(await transcript(client, cid, auth)) == 2


async def test_concurrent_retries_are_stored_once(client: Client, fake_rasa: FakeRasa) -> None:
    cid, auth = await start(client)
    results = await asyncio.gather(
        *(send(client, cid, auth, text="hi", client_message_id="same") for _ in range(5))
    )
    bodies = [await r.json() for r in results]
    assert {b["message"]["id"] for b in bodies} == {bodies[0]["message"]["id"]}
    assert sum(not b["duplicate"] for b in bodies) == 1
    assert len(fake_rasa.received) == 1


async def test_messages_of_one_conversation_reach_rasa_in_order(
    client: Client, fake_rasa: FakeRasa
) -> None:
    cid, auth = await start(client)
    texts = [f"message {i}" for i in range(8)]
    for response in await asyncio.gather(*(send(client, cid, auth, text=t) for t in texts)):
        assert response.status == 200
    stored = [m["text"] for m in await transcript(client, cid, auth) if m["type"] == "incoming"]
    assert [m["message"] for m in fake_rasa.received] == stored
    # every reply directly follows the message it answers
    messages = await transcript(client, cid, auth)
    pairs = list(zip(messages[::2], messages[1::2], strict=True))
    assert all(reply["text"] == f"echo: {msg['text']}" for msg, reply in pairs)


async def test_rasa_down_hands_off_with_a_clear_reply(make_client: MakeClient) -> None:
    client = await make_client(f"http://127.0.0.1:{unused_port()}")
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="where is my order")).json()
    assert body["status"] == "waiting"
    assert "connecting you to a person" in body["replies"][0]["text"]
    conversation = await (await client.get(f"/api/conversations/{cid}", headers=auth)).json()
    assert conversation["handoff_reason"] == "assistant_unavailable"
    texts = [m["text"] for m in await transcript(client, cid, auth)]
    assert texts[0] == "where is my order"


@pytest.mark.parametrize("status", [500, 503])
async def test_rasa_error_hands_off(client: Client, fake_rasa: FakeRasa, status: int) -> None:
    fake_rasa.status = status
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="hi")).json()
    assert body["status"] == "waiting"


async def test_silent_assistant_hands_off(client: Client, fake_rasa: FakeRasa) -> None:
    fake_rasa.reply = lambda text: []  # what Rasa returns when the action server is down
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="refund please")).json()
    assert body["status"] == "waiting"
    conversation = await (await client.get(f"/api/conversations/{cid}", headers=auth)).json()
    assert conversation["handoff_reason"] == "assistant_no_reply"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"", 400, "not valid JSON"),
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"text": "\xff\xfe broken"}', 400, "UTF-8"),
        (b'{"text": ""}', 422, "empty"),
        (b'{"text": "   \\n\\t "}', 422, "empty"),
        (b'{"text": 42}', 422, "string"),
        (b'{}', 422, "string"),
        (b'{"text": "bin\\u0000ary"}', 422, "binary"),
        (b'{"text": "hi", "client_message_id": 7}', 400, "client_message_id"),
        (b'{"text": "' + b"a" * 5000 + b'"}', 422, "limit is 4000"),
        (b'{"text": "' + b"a" * 100_000 + b'"}', 413, "larger than"),
    ],
)
async def test_bad_messages_get_a_clear_4xx_and_store_nothing(
    client: Client, fake_rasa: FakeRasa, body: bytes, status: int, words: str
) -> None:
    cid, auth = await start(client)
    response = await client.post(
        f"/api/conversations/{cid}/messages",
        data=body,
        headers={**auth, "Content-Type": "application/json"},
    )
    assert response.status == status
    assert words in (await response.json())["error"]
    assert await transcript(client, cid, auth) == []
    assert fake_rasa.received == []


async def test_unknown_conversation_and_wrong_token_look_the_same(client: Client) -> None:
    cid, auth = await start(client)
    wrong = {"Authorization": "Bearer not-the-token"}
    for path, headers in [(f"/api/conversations/{cid}", wrong),
                          ("/api/conversations/doesnotexist", auth)]:
        response = await client.get(path, headers=headers)
        assert response.status == 404
        assert await response.json() == {"error": "conversation not found"}
    response = await send(client, "doesnotexist", auth, text="hi")
    assert response.status == 404


async def test_missing_token_is_401(client: Client) -> None:
    cid, _ = await start(client)
    response = await client.post(f"/api/conversations/{cid}/messages", json={"text": "hi"})
    assert response.status == 401
    assert "Bearer" in (await response.json())["error"]


async def test_bad_start_and_listing_parameters(client: Client) -> None:
    response = await client.post("/api/conversations", json={"language": 5})
    assert response.status == 400
    cid, auth = await start(client)
    response = await client.get(f"/api/conversations/{cid}/messages?after=x", headers=auth)
    assert response.status == 400


async def test_unknown_route_is_json_404(client: Client) -> None:
    response = await client.get("/nowhere")
    assert response.status == 404
    assert "error" in await response.json()


async def test_health(client: Client) -> None:
    response = await client.get("/health")
    assert response.status == 200 and await response.json() == {"status": "ok"}


async def test_card_number_is_masked_before_storage_and_rasa(
    client: Client, fake_rasa: FakeRasa
) -> None:
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="card 4242 4242 4242 4242 declined")).json()
    assert body["message"]["text"] == "card •••• 4242 declined"
    assert fake_rasa.received[0]["message"] == "card •••• 4242 declined"
    assert "4242 4242" not in str(await transcript(client, cid, auth))


async def reason_of(client: Client, cid: str, auth: dict[str, str]) -> str | None:
    return (await (await client.get(f"/api/conversations/{cid}", headers=auth)).json())[
        "handoff_reason"]


async def test_frustrated_customer_goes_to_a_person_without_asking_rasa(
    client: Client, fake_rasa: FakeRasa
) -> None:
    cid, auth = await start(client)
    await send(client, cid, auth, text="where is my order")
    body = await (await send(client, cid, auth, text="THIS IS USELESS, YOU STUPID BOT!!!")).json()
    assert body["status"] == "waiting"
    assert "frustrating" in body["replies"][0]["text"]
    assert await reason_of(client, cid, auth) == "frustration"
    assert [m["message"] for m in fake_rasa.received] == ["where is my order"]


async def test_configured_topic_always_goes_to_a_person(client: Client, fake_rasa: FakeRasa) -> None:
    fake_rasa.intent = lambda text: "delete_account" if "delete" in text else "greet"
    cid, auth = await start(client)
    body = await (await send(client, cid, auth, text="please delete my account")).json()
    assert body["status"] == "waiting"
    assert body["replies"][0]["text"] == "echo: please delete my account"  # the answer stays
    assert await reason_of(client, cid, auth) == "topic:delete_account"


async def test_a_fallback_the_knowledge_base_answered_was_understood(
    client: Client, fake_rasa: FakeRasa
) -> None:
    answered = {"custom": {"record": {"type": "kb_answered", "data": {"article": "delivery"}}}}
    fake_rasa.intent = lambda text: "nlu_fallback"
    fake_rasa.reply = lambda text: [{"text": "answer"}, answered] if "days" in text else [
        {"text": "rephrase?"}]
    cid, auth = await start(client)
    for text in ["how many days to berlin", "xyzzy", "how many days to haifa"]:
        body = await (await send(client, cid, auth, text=text)).json()
        assert body["status"] == "bot"  # never two not-understood turns in a row
    last = await (await send(client, cid, auth, text="plugh")).json()
    assert last["status"] == "bot"  # the answered turn before it does not count
    final = await (await send(client, cid, auth, text="xyzzy plugh")).json()
    assert final["status"] == "waiting"
    assert await reason_of(client, cid, auth) == "low_confidence"


async def test_answers_to_a_form_never_count_as_not_understood(
    client: Client, fake_rasa: FakeRasa
) -> None:
    """A refund form asks which item and why: "1" and "it arrived damaged" are not intents
    (Rasa reads them as a fallback) but the form takes them. The form's last answer ends it,
    and that turn must not hand off either (it did, right after the refund was registered)."""
    form_until = {"1": "refund_form", "it arrived damaged": None, "xyzzy": None,
                  "plugh": None}
    fake_rasa.intent = lambda text: "request_refund" if "refund" in text else "nlu_fallback"
    fake_rasa.turn = lambda text: {"events": [], "active_loop": form_until.get(text, "refund_form")}
    cid, auth = await start(client)
    for text in ["I want a refund", "1", "it arrived damaged"]:
        body = await (await send(client, cid, auth, text=text)).json()
        assert body["status"] == "bot", text
    # outside the form again: two misunderstood messages in a row still go to a person,
    # and the form's answers before them do not make it one
    assert (await (await send(client, cid, auth, text="xyzzy")).json())["status"] == "bot"
    assert (await (await send(client, cid, auth, text="plugh")).json())["status"] == "waiting"
    assert await reason_of(client, cid, auth) == "low_confidence"


async def test_two_turns_not_understood_go_to_a_person(client: Client, fake_rasa: FakeRasa) -> None:
    fake_rasa.intent = lambda text: "nlu_fallback" if "xyzzy" in text else "greet"
    cid, auth = await start(client)
    first = await (await send(client, cid, auth, text="xyzzy plugh")).json()
    assert first["status"] == "bot"  # once is a rephrase request, not a handoff
    await send(client, cid, auth, text="hello")
    again = await (await send(client, cid, auth, text="xyzzy again")).json()
    assert again["status"] == "bot"  # not consecutive
    last = await (await send(client, cid, auth, text="xyzzy xyzzy")).json()
    assert last["status"] == "waiting"
    assert await reason_of(client, cid, auth) == "low_confidence"
