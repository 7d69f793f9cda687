"""A question asked again is answered without asking Rasa, and Rasa still gets the turn."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from handoff.appkeys import SERVICE
from handoff.conversations.service import HandoffRequest, pending_replays
from handoff.assistant import AssistantTurn
from handoff.repeat_answers import RepeatAnswers, index_stamp, repeatable
from tests.conftest import FakeRasa
from tests.handoff.conftest import Client, MakeClient
from tests.handoff.test_http_api import send, start, transcript

QUESTION = "how many days until my package shows up in berlin"
ANSWERED = {"custom": {"record": {"type": "kb_answered", "data": {"article": "delivery"}}}}


def knowledge_turn(text: str, *, loop: str | None = None,
                   extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The turn bot/channel.py reports for a question answered from the knowledge base."""
    return {"active_loop": loop, "events": [
        {"event": "user", "text": text, "timestamp": 1.0, "message_id": "m1",
         "parse_data": {"intent": {"name": "delivery_period", "confidence": 0.97}},
         "metadata": {}, "input_channel": "support"},
        {"event": "action", "name": "action_answer_from_knowledge_base", "timestamp": 1.1},
        *(extra or []),
        {"event": "bot", "text": "About 3 days.", "timestamp": 1.2, "data": {}},
        {"event": "action", "name": "action_listen", "timestamp": 1.3},
    ]}


@pytest.fixture
def knowledge_rasa(fake_rasa: FakeRasa) -> FakeRasa:
    fake_rasa.intent = lambda text: "delivery_period"
    fake_rasa.reply = lambda text: [{"text": f"About 3 days ({text})."}, ANSWERED]
    fake_rasa.turn = knowledge_turn
    return fake_rasa


async def asked_twice(client: Client) -> tuple[str, dict[str, str]]:
    """A conversation whose second question was answered again without Rasa."""
    cid, auth = await start(client)
    for _ in range(2):
        await send(client, cid, auth, text=QUESTION)
    return cid, auth


async def understood_events(client: Client, cid: str) -> list[dict[str, Any]]:
    return [e.data for e in await client.app[SERVICE].events(cid)
            if e.type == "message_understood"]


async def test_the_same_question_is_answered_again_without_asking_rasa(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    client = await make_client(knowledge_rasa.url)
    first, first_auth = await start(client)
    second, second_auth = await start(client)
    await send(client, first, first_auth, text=QUESTION)
    body = await (await send(client, second, second_auth, text=QUESTION)).json()

    assert [r["message"] for r in knowledge_rasa.received] == [QUESTION]  # asked once
    assert [r["text"] for r in body["replies"]] == [f"About 3 days ({QUESTION})."]
    assert body["status"] == "bot"
    # the record of the answer is kept for the second conversation as for the first
    assert [d.get("repeated") for d in await understood_events(client, second)] == [True]
    assert (await understood_events(client, second))[0]["answered_by"] == "knowledge"
    assert knowledge_rasa.tracker_events == []  # not until it reads this conversation again
    assert len(await transcript(client, second, second_auth)) == 2
    # Rasa gets the turn before the next message: the message, the answer, then listening
    await send(client, second, second_auth, text="thanks")
    [(cid, events)] = knowledge_rasa.tracker_events
    assert cid == second
    assert [e["event"] for e in events] == ["user", "action", "bot", "action"]
    user = events[0]
    assert user["text"] == QUESTION and user["message_id"] != "m1"
    assert user["metadata"] == {"channel": "api", "language": "en"}
    assert all(e["timestamp"] > 1000 for e in events)  # now, not when first answered


async def test_asked_again_in_the_same_conversation_too(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    client = await make_client(knowledge_rasa.url)
    cid, auth = await start(client)
    for _ in range(3):
        assert (await send(client, cid, auth, text=QUESTION)).status == 200
    assert len(knowledge_rasa.received) == 1
    assert knowledge_rasa.tracker_events == []
    await send(client, cid, auth, text="thanks")
    [(_, events)] = knowledge_rasa.tracker_events  # both repeats, in order, in one request
    assert [e["text"] for e in events if e["event"] == "user"] == [QUESTION, QUESTION]
    assert len(events) == 8


async def test_repeats_still_reach_rasa_after_the_service_restarts(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    """What Rasa is owed is in the database with the turn, not in the process's memory."""
    client = await make_client(knowledge_rasa.url)
    cid, auth = await asked_twice(client)
    restarted = await make_client(knowledge_rasa.url)
    await send(restarted, cid, auth, text="thanks")
    [(_, events)] = knowledge_rasa.tracker_events
    assert [e["event"] for e in events] == ["user", "action", "bot", "action"]


@pytest.mark.parametrize("case", ["form active after", "slot set", "other action",
                                  "handoff asked", "not reported"])
async def test_only_a_plain_knowledge_answer_is_repeated(
    make_client: MakeClient, knowledge_rasa: FakeRasa, case: str
) -> None:
    if case == "form active after":
        knowledge_rasa.turn = lambda text: knowledge_turn(text, loop="order_status_form")
    elif case == "slot set":
        knowledge_rasa.turn = lambda text: knowledge_turn(text, extra=[
            {"event": "slot", "name": "order_id", "value": "A1", "timestamp": 1.15}])
    elif case == "other action":
        knowledge_rasa.turn = lambda text: knowledge_turn(text, extra=[
            {"event": "action", "name": "action_kb_show_article", "timestamp": 1.15}])
    elif case == "handoff asked":
        knowledge_rasa.reply = lambda text: [
            {"text": "The knowledge base is unavailable."},
            {"custom": {"handoff": {"reason": "knowledge_unavailable"}}}]
    else:
        knowledge_rasa.turn = None
    client = await make_client(knowledge_rasa.url)
    for _ in range(2):
        cid, auth = await start(client)
        assert (await send(client, cid, auth, text=QUESTION)).status == 200
    assert len(knowledge_rasa.received) == 2
    assert knowledge_rasa.tracker_events == []


async def test_a_conversation_in_a_form_asks_rasa(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    """The knowledge action resumes a form after answering: a form's turn is Rasa's."""
    client = await make_client(knowledge_rasa.url)
    cid, auth = await start(client)
    await send(client, cid, auth, text=QUESTION)  # kept
    other, other_auth = await start(client)
    knowledge_rasa.turn = lambda text: knowledge_turn(text, loop="order_status_form")
    await send(client, other, other_auth, text="where is my order")  # a form starts
    await send(client, other, other_auth, text=QUESTION)
    assert [r["message"] for r in knowledge_rasa.received] == [
        QUESTION, "where is my order", QUESTION]
    assert [d["idle"] for d in await understood_events(client, other)] == [False, False]


@pytest.mark.parametrize("difference", ["language", "text"])
async def test_another_language_or_wording_asks_rasa(
    make_client: MakeClient, knowledge_rasa: FakeRasa, difference: str
) -> None:
    client = await make_client(knowledge_rasa.url)
    cid, auth = await start(client)
    await send(client, cid, auth, text=QUESTION)
    if difference == "language":
        response = await client.post("/api/conversations", json={"language": "de"})
        body = await response.json()
        other, auth = body["id"], {"Authorization": f"Bearer {body['token']}"}
        text = QUESTION
    else:
        other, text = cid, QUESTION + "?"
    await send(client, other, auth, text=text)
    assert len(knowledge_rasa.received) == 2


async def test_turned_off_always_asks_rasa(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    client = await make_client(knowledge_rasa.url, repeat_answers_seconds=0.0)
    cid, auth = await start(client)
    for _ in range(2):
        await send(client, cid, auth, text=QUESTION)
    assert len(knowledge_rasa.received) == 2


async def test_rasa_failing_to_take_the_turn_loses_no_answer(
    make_client: MakeClient, knowledge_rasa: FakeRasa, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client(knowledge_rasa.url)
    cid, auth = await start(client)
    await send(client, cid, auth, text=QUESTION)
    knowledge_rasa.tracker_status = 500
    body = await (await send(client, cid, auth, text=QUESTION)).json()
    assert [r["text"] for r in body["replies"]] == [f"About 3 days ({QUESTION})."]
    body = await (await send(client, cid, auth, text="thanks")).json()
    assert [r["text"] for r in body["replies"]] == ["About 3 days (thanks)."]  # Rasa answers
    assert "could not add repeated answers" in caplog.text
    assert len(await transcript(client, cid, auth)) == 6


async def test_the_next_message_reaches_rasa_after_the_repeated_turn(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    """Rasa's tracker keeps the conversation's order: it has the repeated turn before it
    reads the next message."""
    client = await make_client(knowledge_rasa.url)
    cid, auth = await start(client)
    await send(client, cid, auth, text=QUESTION)
    await send(client, cid, auth, text=QUESTION)
    had_the_turn: list[int] = []
    knowledge_rasa.reply = lambda text: (had_the_turn.append(len(knowledge_rasa.tracker_events)),
                                         [{"text": "You're welcome!"}])[1]
    await send(client, cid, auth, text="thanks")
    assert [r["message"] for r in knowledge_rasa.received] == [QUESTION, "thanks"]
    assert had_the_turn == [1]


async def test_a_person_taking_the_chat_drops_what_rasa_was_owed(
    make_client: MakeClient, knowledge_rasa: FakeRasa
) -> None:
    """Rasa is restarted when people give a chat back: the turns before are not its."""
    client = await make_client(knowledge_rasa.url)
    cid, auth = await asked_twice(client)
    service = client.app[SERVICE]
    await service.hand_off(cid, HandoffRequest(reason="customer_request"))
    await service.return_to_bot(cid, None, "agent_returned")
    await send(client, cid, auth, text="thanks")
    assert knowledge_rasa.tracker_events == []


def test_only_the_repeats_since_rasa_last_read_a_message_are_owed() -> None:
    turn_events = [{"event": "user", "text": "q"}]
    repeat = ("message_understood", {"repeated": True, "replay": turn_events})
    rasa = ("message_understood", {"intent": "greet"})
    assert pending_replays([repeat, repeat, rasa, repeat]) == turn_events * 2  # newest first
    assert pending_replays([repeat, ("returned_to_bot", {}), repeat]) == turn_events
    assert pending_replays([rasa, repeat]) == []
    assert pending_replays([]) == []


def turn(**changes: Any) -> AssistantTurn:
    base = knowledge_turn(QUESTION)
    fields: dict[str, Any] = {"events": tuple(base["events"]), "active_loop": None, **changes}
    return AssistantTurn(replies=[{"text": "About 3 days."}], intent="delivery_period", **fields)


def test_kept_for_ttl_seconds_and_one_index_generation() -> None:
    now, generation = [0.0], ["g1"]
    repeats = RepeatAnswers(ttl=60, clock=lambda: now[0], stamp=lambda: generation[0],
                            stamp_every=0)
    metadata = {"channel": "widget", "language": "en"}
    assert repeats.remember(QUESTION, metadata, turn(), repeats.stamp())
    assert repeats.answer(" " + QUESTION + " ", metadata) is not None  # same words
    now[0] = 59.0
    assert repeats.answer(QUESTION, metadata) is not None
    now[0] = 60.0
    assert repeats.answer(QUESTION, metadata) is None  # expired
    repeats.remember(QUESTION, metadata, turn(), repeats.stamp())
    generation[0] = "g2"  # the knowledge index was rebuilt
    assert repeats.answer(QUESTION, metadata) is None


def test_a_rebuild_while_rasa_answers_is_not_kept_for_the_new_index() -> None:
    generation = ["g1"]
    repeats = RepeatAnswers(ttl=60, stamp=lambda: generation[0], stamp_every=0)
    before = repeats.stamp()
    generation[0] = "g2"  # rebuilt after the question was sent, before the answer came
    repeats.remember(QUESTION, {}, turn(), before)
    assert repeats.answer(QUESTION, {}) is None


def test_the_oldest_question_makes_room() -> None:
    repeats = RepeatAnswers(ttl=60, size=2)
    for text in ("a", "b", "c"):
        repeats.remember(text, {}, turn(), None)
    assert [repeats.answer(t, {}) is not None for t in ("a", "b", "c")] == [False, True, True]


def test_what_counts_as_repeatable() -> None:
    assert repeatable(turn())
    assert not repeatable(turn(repeated=True))
    assert not repeatable(AssistantTurn(replies=[], events=turn().events,
                                        active_loop="unknown"))
    assert not repeatable(turn(events=()))
    assert not repeatable(turn(events=turn().events[1:]))  # no message first


def test_index_stamp_changes_when_the_index_is_rebuilt(tmp_path: Path) -> None:
    stamp = index_stamp(tmp_path)
    assert stamp() is None  # no index yet
    (tmp_path / "CURRENT").write_text("gen-1\n")
    first = stamp()
    (tmp_path / "CURRENT.new").write_text("gen-2\n")
    (tmp_path / "CURRENT.new").replace(tmp_path / "CURRENT")  # as knowledge/store.py does
    assert stamp() not in (None, first)
