"""`python -m shop seed` fills an empty store with a few hundred orders in every state, once."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from handoff.db import session_factory
from shop.models import Order, OrderStatus
from shop.seed import DEMO_ORDERS, seed_if_empty
from tests.shop.harness import seeded_backend


async def test_seed_covers_every_state_and_runs_once(database_url: str) -> None:
    backend = await seeded_backend(database_url)
    try:
        async with session_factory(backend.engine)() as session:
            statuses = Counter((await session.scalars(select(Order.status))).all())
        assert sum(statuses.values()) >= 300
        assert {s.value for s in OrderStatus} == set(statuses)
        assert await seed_if_empty(backend.engine) == 0  # a store with orders is left alone
        for demo in DEMO_ORDERS:
            assert (await backend.find_order(demo.number)).status == demo.status.value
        shipped = await backend.find_order("A10001")
        assert shipped.shipments[0].tracking_number and shipped.shipments[0].eta
        assert shipped.shipments[0].events
    finally:
        await backend.close()


def test_seed_command_reports_what_it_did(tmp_path, monkeypatch, capsys) -> None:
    from shop.__main__ import main

    monkeypatch.setenv("SUPPORT_SHOP_DATABASE_URL", f"sqlite:///{tmp_path}/shop.db")
    assert main(["seed"]) == 0
    assert main(["seed"]) == 0
    out = capsys.readouterr().out
    assert "added 300 demo orders" in out and "already has orders" in out
