"""A customer talks to the real system: web service -> Rasa -> action server and back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, RunningSystem
from tests.e2e.http import call


class Customer:
    """A customer of the plain HTTP channel."""

    def __init__(self, system: RunningSystem) -> None:
        self.base = system.web_url
        response = call("POST", f"{self.base}/api/conversations", {"language": "en"})
        assert response.status == 201
        data = response.body
        self.id, self.headers = data["id"], {"Authorization": f"Bearer {data['token']}"}

    def say(self, text: str, **extra: Any) -> dict[str, Any]:
        response = call("POST", f"{self.base}/api/conversations/{self.id}/messages",
                        {"text": text, **extra}, self.headers)
        assert response.status == 200, response.body
        return response.body

    def transcript(self) -> list[dict[str, Any]]:
        response = call("GET", f"{self.base}/api/conversations/{self.id}/messages",
                        headers=self.headers)
        return response.body["messages"]

    def conversation(self) -> dict[str, Any]:
        return call("GET", f"{self.base}/api/conversations/{self.id}", headers=self.headers).body


def reply_texts(result: dict[str, Any]) -> list[str]:
    return [r["text"] for r in result["replies"] if r["type"] == "outgoing" and r["text"]]


def test_a_conversation_through_all_three_processes(system: RunningSystem) -> None:
    customer = Customer(system)
    hello = customer.say("hello there")
    assert hello["status"] == "bot"
    assert "virtual assistant" in reply_texts(hello)[0]

    answer = customer.say("how long does delivery to the UK take?")
    assert answer["status"] == "bot"
    assert "Source:" in reply_texts(answer)[0]  # answered from an article, with its source

    person = customer.say("I want to talk to a real person")
    assert person["status"] == "waiting"
    assert "connecting you to a person" in reply_texts(person)[0]
    activity = [r for r in person["replies"] if r["type"] == "activity"]
    assert activity[0]["payload"]["handoff"]["reason"] == "customer_request"

    silent = customer.say("are you still there?")
    assert silent["replies"] == [] and silent["status"] == "waiting"

    incoming = [m["text"] for m in customer.transcript() if m["type"] == "incoming"]
    assert incoming == [
        "hello there", "how long does delivery to the UK take?",
        "I want to talk to a real person", "are you still there?",
    ]


def test_a_question_asked_again_is_answered_again_and_rasa_keeps_the_turn(
    system: RunningSystem,
) -> None:
    """The second asking skips Rasa (handoff/repeat_answers.py), yet Rasa's tracker gets the
    turn before its next message: the answer's buttons, which read the tracker, work as
    after the first."""
    question = "how many days does shipping to Haifa take?"
    first, second = Customer(system), Customer(system)
    answer = first.say(question)
    again = second.say(question)
    assert reply_texts(again) == reply_texts(answer) and "Source:" in reply_texts(again)[0]

    with sqlite3.connect(system.run_dir.parent / "support.db") as db:
        rows = db.execute("SELECT conversation_id, data FROM conversation_events "
                          "WHERE type = 'message_understood' AND conversation_id IN (?, ?)",
                          (first.id, second.id)).fetchall()
    repeated = {cid: json.loads(data).get("repeated", False) for cid, data in rows}
    assert repeated == {first.id: False, second.id: True}

    buttons = [b for r in again["replies"] for b in (r.get("payload") or {}).get("buttons", [])]
    no = next(b["payload"] for b in buttons if b["payload"].startswith("/kb_feedback")
              and '"no"' in b["payload"])
    sorry = second.say(no)
    assert "didn't help" in reply_texts(sorry)[0]
    # the repeated turn reached Rasa's tracker before the button did
    tracker = call("GET", f"{system.rasa_url}/conversations/{second.id}/tracker"
                          f"?token={system.token}").body
    seen = [e["text"] if e["event"] == "user" else e.get("name") for e in tracker["events"]
            if e["event"] in ("user", "action")]
    assert seen.index(question) < seen.index("action_answer_from_knowledge_base") < seen.index(no)
    person = next(b["payload"] for r in sorry["replies"]
                  for b in (r.get("payload") or {}).get("buttons", []))
    handed = second.say(person)
    assert handed["status"] == "waiting"
    handoff = next(r["payload"]["handoff"] for r in handed["replies"] if r["type"] == "activity")
    # the question the customer typed, read from Rasa's tracker by the action
    assert handoff["reason"] == "knowledge_gap"
    assert question in json.dumps(handoff, ensure_ascii=False)


def test_a_retried_message_is_answered_once(system: RunningSystem) -> None:
    customer = Customer(system)
    first = customer.say("hi", client_message_id="abc")
    second = customer.say("hi", client_message_id="abc")
    assert second["duplicate"] and second["replies"] == first["replies"]
    assert len(customer.transcript()) == 2


def test_a_message_rasa_already_read_is_answered_from_its_tracker_not_read_again(
    system: RunningSystem,
) -> None:
    """The web service died after Rasa read a message, before storing the replies; the
    message comes again marked `resumed`. Rasa answers from its tracker — the same replies
    and reading — and holds the message once. Read again, the form the message opened
    would have taken it for the order number it asks for."""
    url = f"{system.rasa_url}/webhooks/support/webhook"
    headers = {"Authorization": f"Bearer {system.token}"}
    sender = f"resumed-{uuid.uuid4().hex}"
    asked = {"sender": sender, "message": "where is my order?", "message_id": "41"}
    first = call("POST", url, {**asked, "resumed": False}, headers)
    assert first.status == 200, first.body
    assert "order number" in json.dumps(first.body["messages"])
    again = call("POST", url, {**asked, "resumed": True}, headers)
    assert again.status == 200, again.body
    assert again.body["messages"] == first.body["messages"]
    assert again.body["intent"] == first.body["intent"]
    assert again.body["turn"]["active_loop"] == first.body["turn"]["active_loop"]
    tracker = call("GET", f"{system.rasa_url}/conversations/{sender}/tracker?token={system.token}")
    said = [e for e in tracker.body["events"] if e["event"] == "user"]
    assert [e["message_id"] for e in said] == ["41"]

    # a resumed message Rasa never got is read as usual: here, the order number asked for
    answer = call("POST", url, {"sender": sender, "message": "A10001", "message_id": "42",
                                "resumed": True}, headers)
    assert "A10001" in json.dumps(answer.body["messages"])
    assert call("POST", url, {**asked, "message_id": 43}, headers).status == 400


def test_rasa_refuses_callers_without_the_token(system: RunningSystem) -> None:
    url = f"{system.rasa_url}/webhooks/support/webhook"
    assert call("POST", url, {"sender": "x", "message": "hi"}).status == 401
    assert call("GET", f"{system.rasa_url}/status").status == 401


def test_routing_evaluator_uses_the_running_assistant(
    system: RunningSystem, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text(
        "text,expected\n"
        "hi,greet\n"
        "where is my parcel? order 12345,flow\n"
        "what payment methods do you accept,knowledge\n"
        "let me speak to a human,handoff\n"
        "what's the weather in Paris tomorrow,out_of_scope\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    env = {"SUPPORT_RASA_URL": system.rasa_url, "SUPPORT_RASA_TOKEN": system.token,
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "handoff.routing_eval", str(rows), "-o", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    results, summary = lines[:-1], lines[-1]["summary"]
    assert [r["handler"] for r in results] == [
        "response:utter_greet", "flow:order_status", "knowledge:payment_methods",
        "handoff", "out_of_scope",
    ]
    assert all(0 < r["confidence"] <= 1 for r in results)
    assert summary["accuracy"] == 1.0 and summary["per_label"]["greet"]["n"] == 1
    assert "accuracy 100.0%" in done.stderr


def test_routing_evaluator_rejects_a_csv_without_text(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("message\nhi\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "handoff.routing_eval", str(bad)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "needs a 'text' column" in done.stderr


@pytest.mark.parametrize(
    ("csv_name", "floor"), [("routing_holdout.csv", 0.90), ("routing_holdout_2.csv", 0.85)]
)
def test_held_out_routing_accuracy(
    system: RunningSystem, tmp_path: Path, csv_name: str, floor: float
) -> None:
    """Phrasings the model never saw are routed right.

    A regression guard on the training data and pipeline, not a benchmark: each floor is
    below what the current model reaches (0.965 and 0.911, README.md) and far above chance.
    The first set steered one round of data augmentation; the second was never used for it.
    """
    out = tmp_path / "holdout.jsonl"
    env = {"SUPPORT_RASA_URL": system.rasa_url, "SUPPORT_RASA_TOKEN": system.token,
           "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "handoff.routing_eval", f"bot/tests/{csv_name}", "-o", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(out.read_text(encoding="utf-8").splitlines()[-1])["summary"]
    assert summary["rows"] >= 200
    assert summary["accuracy"] >= floor, summary["top_confusions"]
