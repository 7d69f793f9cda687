"""The load run's refund script gets an order of its own each time (bench/load/orders.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.load.customers import SCRIPTS, Turn
from bench.load.orders import FALLBACK, RefundOrders, refund_orders, with_order
from shop.errors import RefundNotAllowed
from shop.sql import SqlStoreBackend
from tests.shop.harness import ANNA, store_backend  # noqa: F401  (fixture)


def test_each_refund_conversation_gets_the_next_order_then_the_demo_one() -> None:
    refund = next(turns for name, _, turns in SCRIPTS if name == "refund")
    pool = RefundOrders(["A20001", "A20002"])
    first, second, third = (with_order(refund, pool) for _ in range(3))
    assert first[0].text == "I want a refund for order A20001"
    assert second[0].text.endswith("A20002") and third[0].text.endswith(FALLBACK)
    assert (pool.fresh, pool.reused) == (2, 1)
    greeting = [Turn("greeting", "hi")]
    assert with_order(greeting, pool) is greeting and pool.used == 3  # no order: none taken
    assert with_order(refund, None)[0].text.endswith(FALLBACK)  # the warm-up


async def test_the_added_orders_can_each_be_refunded_once(
    store_backend: SqlStoreBackend, tmp_path: Path  # noqa: F811
) -> None:
    pool = await refund_orders(f"sqlite:///{tmp_path}/shop.db", 3)
    assert pool.numbers == ["A20001", "A20002", "A20003"]
    for number in pool.numbers:
        order = await store_backend.verify_identity(number, ANNA, requester="bench")
        assert order.status == "delivered"
        line = order.lines[0].id
        await store_backend.create_refund_request(number, [line], "arrived damaged")
        with pytest.raises(RefundNotAllowed):
            await store_backend.create_refund_request(number, [line], "arrived damaged")
    with pytest.raises(ValueError, match="do not fit"):
        await refund_orders(f"sqlite:///{tmp_path}/shop.db", 80_000)
