"""How the fault run measures "every customer answered again" (bench/load/faults.py)."""

from __future__ import annotations

from bench.load.customers import Record
from bench.load.faults import recovery


def test_recovery_is_when_the_last_customer_was_answered_for_a_message_sent_after_the_fault() -> None:
    record = Record()
    record.answered[0] += [(1.0, 2.0), (9.0, 12.0), (13.0, 14.0)]
    record.answered[1] += [(8.0, 15.0), (11.0, 16.5)]  # sent before the fault: does not count
    assert recovery(record, 2, fault_at=10.0) == (6.5, [])


def test_a_customer_never_answered_again_is_named() -> None:
    record = Record()
    record.answered[0] += [(11.0, 12.0)]
    record.answered[2] += [(5.0, 30.0)]
    assert recovery(record, 3, fault_at=10.0) == (None, [1, 2])
