"""An order of its own for every refund conversation.

The refund script used to ask for order A10003 every time: from the second conversation on,
the shop refused ("those items already have a refund request"), the script's next answers
made no sense to the assistant, and it handed the customer to a person — a handoff the
generator caused, which in a fault run looked like slow recovery (customers waiting for the
simulated agents' 60 s idle close). Before a run the generator adds fresh delivered orders
for the demo customer to each system's shop database and hands them out one per refund.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bench.load.customers import ANNA, Turn
from handoff.db import create_engine
from shop.config import shop_database_url
from shop.seed import add_delivered_orders

if TYPE_CHECKING:
    from bench.load.systems import System

PLACEHOLDER = "{order}"
FALLBACK = "A10003"  # the demo store's delivered order: the warm-up, and a pool run dry


@dataclass
class RefundOrders:
    """Hands out each order once; when they run out, the demo order again (counted)."""

    numbers: list[str]
    used: int = 0

    def take(self) -> str:
        self.used += 1
        return self.numbers[self.used - 1] if self.used <= len(self.numbers) else FALLBACK

    @property
    def reused(self) -> int:
        return max(0, self.used - len(self.numbers))

    @property
    def fresh(self) -> int:
        return self.used - self.reused


def with_order(turns: list[Turn], orders: RefundOrders | None) -> list[Turn]:
    """The script's turns with its order number filled in (the same order for all of them)."""
    if not any(PLACEHOLDER in turn.text for turn in turns):
        return turns
    number = orders.take() if orders is not None else FALLBACK
    return [replace(turn, text=turn.text.replace(PLACEHOLDER, number)) for turn in turns]


async def refund_orders(shop_url: str, count: int, first: int = 20001) -> RefundOrders:
    """Adds `count` delivered orders for the demo customer to the shop at `shop_url` (the
    SQL store's URL as the action server has it)."""
    if first + count > 100_000:
        raise ValueError(f"{count} orders do not fit in A{first}..A99999")
    engine = create_engine(shop_database_url({"SUPPORT_SHOP_DATABASE_URL": shop_url}))
    numbers = [f"A{n}" for n in range(first, first + count)]
    try:
        await add_delivered_orders(engine, ANNA, numbers)
    finally:
        await engine.dispose()
    return RefundOrders(numbers)


async def hand_out(systems: Iterable[System], seconds: float) -> None:
    """Gives each system a pool for `seconds` of load (systems sharing a shop share one):
    about two refund conversations a second at the throughput seen here, with room to spare."""
    by_shop: dict[str, list[System]] = {}
    for system in systems:
        if system.shop_url:
            by_shop.setdefault(system.shop_url, []).append(system)
    for shop_url, sharing in by_shop.items():
        pool = await refund_orders(shop_url, int(len(sharing) * (3 * seconds + 50)))
        for system in sharing:
            system.refund_orders = pool
