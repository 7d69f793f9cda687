"""Order flows through the whole system, against the seeded demo store."""

from __future__ import annotations

import json
import sqlite3

from tests.e2e.conftest import RunningSystem
from tests.e2e.http import call
from tests.e2e.test_conversation import Customer, reply_texts

ANNA = "anna.kowalski@example.com"


def test_order_status_after_proving_the_order_is_yours(system: RunningSystem) -> None:
    customer = Customer(system)
    asked = " ".join(reply_texts(customer.say("where is my order?")))
    assert "order number" in asked.lower()
    asked = " ".join(reply_texts(customer.say("#a10001")))
    assert "email" in asked.lower()
    status = customer.say(ANNA)
    text = " ".join(reply_texts(status))
    assert status["status"] == "bot"
    assert "A10001" in text and "tracking number" in text and "on its way" in text


def test_a_wrong_pair_reveals_nothing(system: RunningSystem) -> None:
    def attempt(order: str) -> str:
        customer = Customer(system)
        customer.say("where is my order?")
        customer.say(order)
        return " ".join(reply_texts(customer.say("someone.else@example.com")))

    wrong_owner, no_such_order = attempt("A10001"), attempt("A99999")
    assert wrong_owner == no_such_order
    assert "A10001" not in wrong_owner and "tracking" not in wrong_owner.lower()


def test_invoice_link_is_served_by_the_web_service(system: RunningSystem) -> None:
    customer = Customer(system)
    customer.say("can you send me the invoice for my order")
    customer.say("A10003")
    text = " ".join(reply_texts(customer.say(ANNA)))
    links = [word for word in text.split() if "/invoices/" in word]
    assert links, text
    url = links[0].strip("()<>.,")
    page = call("GET", url.replace(url.split("/invoices/")[0], system.web_url))
    assert page.status == 200 and "A10003" in str(page.body)
    tampered = call("GET", f"{system.web_url}/invoices/{url.split('/invoices/')[1][:-3]}xyz")
    assert tampered.status == 404


NOA = "noa.levi@example.co.il"


def assert_readings_are_rasas(system: RunningSystem, conversation_id: str) -> None:
    """What the web service recorded as Rasa's reading of each message (bot/channel.py) is
    what Rasa's tracker holds for it, answers inside a form included (an in-memory tracker
    once reported the form's opening message for each of them)."""
    tracker = call("GET", f"{system.rasa_url}/conversations/{conversation_id}/tracker"
                          f"?token={system.token}").body
    rasa = [(e["text"], e["parse_data"]["intent"]["name"]) for e in tracker["events"]
            if e["event"] == "user"]
    with sqlite3.connect(system.run_dir.parent / "support.db") as db:
        rows = db.execute(
            "SELECT m.text, e.data FROM conversation_events e JOIN messages m ON m.id = "
            "json_extract(e.data, '$.message_id') WHERE e.type = 'message_understood' "
            "AND e.conversation_id = ? ORDER BY e.id", (conversation_id,)).fetchall()
    recorded = [(text, json.loads(data)["intent"]) for text, data in rows]
    assert recorded == rasa and len({intent for _, intent in rasa}) > 1, (recorded, rasa)


def verified(customer: Customer, request: str, contact: str) -> str:
    """Asks about an order (naming it) and proves it is theirs; the reply after that."""
    asked = " ".join(reply_texts(customer.say(request)))
    assert "email" in asked.lower(), asked
    return " ".join(reply_texts(customer.say(contact)))


def test_cancel_needs_an_explicit_yes_and_only_before_shipping(system: RunningSystem) -> None:
    customer = Customer(system)
    asked = verified(customer, "please cancel order A10005", NOA)
    assert "A10005" in asked and "?" in asked  # asks to confirm, nothing changed yet
    done = " ".join(reply_texts(customer.say("yes")))
    assert "Done: order A10005 is cancelled" in done

    shipped = Customer(system)
    refused = verified(shipped, "cancel my order A10001", ANNA)
    assert "already shipped" in refused and "can't cancel it" in refused


def test_stop_leaves_a_form_and_a_person_can_be_asked_for_mid_form(system: RunningSystem) -> None:
    customer = Customer(system)
    customer.say("I want to cancel my order")
    left = customer.say("never mind")
    assert left["status"] == "bot"
    again = " ".join(reply_texts(customer.say("hello")))
    assert "virtual assistant" in again  # the form is gone; the assistant is itself again

    other = Customer(system)
    other.say("I want a refund for order A10003")
    handed = other.say("let me talk to a real person")
    assert handed["status"] == "waiting"
    activity = [r for r in handed["replies"] if r["type"] == "activity"][0]
    details = activity["payload"]["handoff"]
    assert details["reason"] == "customer_request"
    assert "A10003" in str(details)  # the agent sees what was collected


def test_refund_outside_the_window_is_refused_with_the_reason(system: RunningSystem) -> None:
    customer = Customer(system)
    reply = verified(customer, "I want a refund for order A10004", ANNA)
    for answer in ["1", "it arrived damaged"]:  # which items, then why
        if "refund window" in reply:
            break
        reply = " ".join(reply_texts(customer.say(answer)))
    assert "refund window" in reply


def answer_until(customer: Customer, answers: list[str], done: str) -> str:
    """Answers the form's questions in order until a reply contains `done`."""
    reply = ""
    for answer in answers:
        reply = " ".join(reply_texts(customer.say(answer)))
        if done in reply:
            return reply
    raise AssertionError(f"never got {done!r}; last reply: {reply}")


def test_payment_problem_opens_a_billing_case(system: RunningSystem) -> None:
    customer = Customer(system)
    customer.say("I was charged twice for order A10001")
    reply = answer_until(customer, [ANNA, "1.234,56 €", "yesterday", "visa card",
                                    "the money was taken twice from my account"], "billing case")
    assert "A10001" in reply and "1,234.56" in reply


def test_change_address_before_shipping(system: RunningSystem) -> None:
    customer = Customer(system)
    customer.say("I need to change the delivery address of order A10006")
    reply = answer_until(customer, [NOA, "Herzl St 12, Tel Aviv 6100000, Israel", "yes"],
                         "will be delivered to")
    assert "Done: order A10006" in reply and "Herzl" in reply


def test_refund_request_then_its_status(system: RunningSystem) -> None:
    customer = Customer(system)
    customer.say("I want a refund for order A10003")
    reply = answer_until(customer, [ANNA, "1", "it arrived damaged", "yes"], "refund request")
    assert "Your refund request" in reply
    # the answers to the form's questions are not "not understood": no handoff after them
    assert not [m for m in customer.transcript() if "handoff" in (m.get("payload") or {})]
    assert_readings_are_rasas(system, customer.id)
    number = next(word.strip(".,:;") for word in reply.split() if word.startswith("R") and
                  any(c.isdigit() for c in word))
    status = " ".join(reply_texts(customer.say("where is my refund?")))
    if number not in status:  # the status flow may ask which order first
        status = answer_until(customer, ["A10003", ANNA], number)
    assert number in status
