"""How the fault run measures "every customer answered again" (bench/load/faults.py)."""

from __future__ import annotations

from collections import defaultdict

from bench.load.customers import (
    AGENT_CLOSING,
    AGENT_GREETING,
    TROUBLE_TEXT,
    Record,
    answered_by,
)
from bench.load.faults import breakdown, recovery


def test_recovery_is_when_the_last_customer_was_answered_for_a_message_sent_after_the_fault() -> None:
    record = Record()
    record.answered[0] += [(1.0, 2.0, "assistant"), (9.0, 12.0, "assistant"),
                           (13.0, 14.0, "assistant")]
    # sent before the fault: does not count
    record.answered[1] += [(8.0, 15.0, "assistant"), (11.0, 16.5, "assistant")]
    found = recovery(record, 2, fault_at=10.0)
    assert (found["answered_again_seconds"], found["customers_not_answered_again"]) == (6.5, [])
    assert (found["assistant_again_seconds"], found["with_a_person"]) == (6.5, [])


def test_a_customer_never_answered_again_is_named() -> None:
    record = Record()
    record.answered[0] += [(11.0, 12.0, "assistant")]
    record.answered[2] += [(5.0, 30.0, "assistant")]
    found = recovery(record, 3, fault_at=10.0)
    assert (found["answered_again_seconds"], found["customers_not_answered_again"]) == (
        None, [1, 2])
    assert found["customers_not_answered_by_the_assistant_again"] == [1, 2]


def test_customers_the_fault_handed_to_a_person_are_measured_apart() -> None:
    """Customer 1's message in flight at the fault got "I'm having trouble ...": its next
    messages are acknowledged and answered by nobody until a person greets and, 60 s of
    silence later, closes; only then does the assistant answer it again. That does not hold
    up the assistant's recovery for the others."""
    record = Record()
    record.timeline = defaultdict(list)
    record.answered[0] += [(11.0, 13.0, "assistant")]
    record.answered[1] += [(9.0, 11.0, "trouble"), (12.0, 12.1, "nobody"),
                           (80.0, 81.0, "assistant")]
    record.timeline[1] += [(9.0, "customer (widget)", "where is my order?"),
                           (11.0, "assistant", TROUBLE_TEXT), (12.0, "customer (widget)", "A10001"),
                           (14.0, "agent", AGENT_GREETING), (74.0, "agent", AGENT_CLOSING),
                           (80.0, "customer (widget)", "hi"), (81.0, "assistant", "Hello!")]
    found = recovery(record, 2, fault_at=10.0)
    assert found["answered_again_seconds"] == 3.0  # the old measure counts the bare ack
    assert (found["with_a_person"], found["handed_over_by_the_fault"]) == ([1], [1])
    assert found["assistant_again_seconds"] == 3.0
    assert found["person_answered_seconds"] == 4.0
    assert found["with_a_person_assistant_again_seconds"] == 71.0
    slowest = breakdown(record, 2, fault_at=10.0, with_a_person=found["with_a_person"])
    assert [row["customer"] for row in slowest] == [0]  # the assistant's own recovery


def test_the_breakdown_ranks_by_when_the_assistant_answered_again() -> None:
    """Customer 1 was answered by a person first (its chat was handed over after the fault,
    not by it) and by the assistant only later: it heads the breakdown, which shows why."""
    record = Record()
    record.timeline = defaultdict(list)
    record.answered[0] += [(11.0, 12.0, "assistant")]
    record.answered[1] += [(11.0, 11.5, "agent"), (24.0, 25.0, "assistant")]
    record.timeline[1] += [(11.0, "customer (widget)", "yes"), (11.5, "agent", AGENT_CLOSING),
                           (24.0, "customer (widget)", "hi"), (25.0, "assistant", "Hello!"),
                           (90.0, "customer (widget)", "later")]
    found = recovery(record, 2, fault_at=10.0)
    assert (found["assistant_again_seconds"], found["with_a_person"]) == (15.0, [])
    slowest = breakdown(record, 2, fault_at=10.0)
    assert [(row["customer"], row["assistant_again_seconds"]) for row in slowest] == [
        (1, 15.0), (0, 2.0)]
    assert [who for _, who, _ in slowest[0]["events"]] == [
        "customer", "agent", "customer", "assistant"]  # not what came after


def test_who_answered_a_message() -> None:
    assert answered_by([("assistant", "Hi!"), ("system", "Was this helpful?")]) == "assistant"
    assert answered_by([("", "Hi!")]) == "assistant"  # WhatsApp: told apart by text only
    assert answered_by([("assistant", TROUBLE_TEXT), ("system", "You are next")]) == "trouble"
    assert answered_by([("", AGENT_CLOSING)]) == "agent"
    assert answered_by([]) == "nobody"  # a person has the chat: acknowledged, not answered


def test_a_customer_already_with_a_person_at_the_fault_is_not_the_assistants_to_answer() -> None:
    """WhatsApp customer 1 was handed over before the fault and said "yes" to the agent's
    greeting: that waits for the agent's idle close, 60 s after the greeting, and only then
    does the customer start a chat the assistant answers. The assistant's recovery is
    customer 0's."""
    record = Record()
    record.timeline = defaultdict(list)
    record.answered[0] += [(11.0, 12.0, "assistant")]
    record.answered[1] += [(2.0, 63.0, "agent"), (64.0, 65.0, "assistant")]
    unsure = ("I'm still not sure I understand, so I'm connecting you to a person from our "
              "support team.")
    record.timeline[1] += [(1.0, "to WhatsApp", unsure),
                           (1.1, "to WhatsApp", AGENT_GREETING), (2.0, "customer (WhatsApp)", "yes"),
                           (61.1, "to WhatsApp", AGENT_CLOSING), (64.0, "customer (WhatsApp)", "hi"),
                           (65.0, "to WhatsApp", "Hi! I'm the store's virtual assistant.")]
    found = recovery(record, 2, fault_at=10.0)
    assert found["answered_again_seconds"] == 55.0
    assert (found["with_a_person"], found["handed_over_by_the_fault"]) == ([1], [])
    assert found["assistant_again_seconds"] == 2.0
    assert found["person_answered_seconds"] == 51.1
    assert found["with_a_person_assistant_again_seconds"] == 55.0
