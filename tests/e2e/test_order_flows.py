"""Order flows through the whole system, against the seeded demo store."""

from __future__ import annotations

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
