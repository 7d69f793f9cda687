"""Both StoreBackend implementations keep the same contract: SQL directly, HTTP via a fake shop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shop.backend import StoreBackend
from shop.errors import (
    IdentityNotVerified,
    InvoiceNotFound,
    OrderNotChangeable,
    OrderNotFound,
    RefundNotAllowed,
    StoreUnavailable,
    TooManyAttempts,
)
from shop.http import HttpStoreBackend
from shop.records import PaymentReport
from shop.seed import add_delivered_orders
from shop.sql import SqlStoreBackend
from tests.shop.fake_shop import fake_shop_app
from tests.shop.harness import ANNA, store_backend

__all__ = ["store_backend"]
TOKEN = "shop-api-token"


@pytest.fixture(params=["sql", "http"])
async def backend(request: pytest.FixtureRequest, store_backend: SqlStoreBackend) -> AsyncIterator[StoreBackend]:
    if request.param == "sql":
        yield store_backend
        return
    server = TestServer(fake_shop_app(store_backend, TOKEN))
    await server.start_server()
    http = HttpStoreBackend(str(server.make_url("")), TOKEN)
    yield http
    await http.close()
    await server.close()


async def test_identity_and_rate_limit(backend: StoreBackend) -> None:
    order = await backend.verify_identity("A10001", "+1 (415) 555-0101", requester="c1")
    assert order.number == "A10001" and order.shipments[0].events
    for number in ("A10001", "A10001", "A10001"):
        with pytest.raises(IdentityNotVerified):
            await backend.verify_identity(number, "x@example.com", requester="c2")
    with pytest.raises(TooManyAttempts):
        await backend.verify_identity("A10001", ANNA, requester="c2")
    with pytest.raises(IdentityNotVerified):  # unknown order: the same answer as a wrong pair
        await backend.verify_identity("Z00000", ANNA, requester="c3")


async def test_changes_only_before_shipping(backend: StoreBackend) -> None:
    with pytest.raises(OrderNotChangeable) as refused:
        await backend.cancel_order("A10001")
    assert refused.value.status == "shipped"
    moved = await backend.change_address("A10006", "Herzl St 7, Haifa 3303107")
    assert moved.shipping_address == "Herzl St 7, Haifa 3303107"
    cancelled = await backend.cancel_order("A10002")
    assert cancelled.status == "cancelled" and cancelled.refunds[-1].status == "approved"
    with pytest.raises(OrderNotFound):
        await backend.find_order("Z00000")


async def test_invoices_cases_and_refunds(backend: StoreBackend) -> None:
    invoice = await backend.invoice_for("A10003")
    assert invoice.order_number == "A10003" and invoice.lines
    with pytest.raises(InvoiceNotFound):
        await backend.invoice_for("A10005")
    case = await backend.create_billing_case("A10001", PaymentReport(
        "charged twice", 6450, "USD", date(2026, 11, 20), "card"))
    assert case.number.startswith("BC") and case.order_number == "A10001"
    order = await backend.find_order("A10003")
    refund = await backend.create_refund_request("A10003", [order.lines[0].id], "too small")
    assert refund.amount_cents == order.lines[0].total_cents
    assert [r.number for r in await backend.refund_status("A10003")] == [refund.number]
    for number, reason in (("A10004", "window_closed"), ("A10001", "not_delivered")):
        with pytest.raises(RefundNotAllowed) as refused:
            await backend.create_refund_request(number, [1], "x")
        assert refused.value.reason == reason


async def test_http_backend_treats_a_broken_shop_as_unavailable(store_backend: SqlStoreBackend) -> None:
    server = TestServer(fake_shop_app(store_backend, TOKEN))
    await server.start_server()
    wrong = HttpStoreBackend(str(server.make_url("")), "wrong-token")
    try:
        with pytest.raises(StoreUnavailable):
            await wrong.find_order("A10001")
    finally:
        await wrong.close()
        await server.close()

    async def garbage(request: web.Request) -> web.Response:
        return web.json_response({"number": "A10001"})  # missing every other field

    app = web.Application()
    app.router.add_get("/orders/{number}", garbage)
    broken = TestServer(app)
    await broken.start_server()
    url = str(broken.make_url(""))
    backend = HttpStoreBackend(url, TOKEN)
    try:
        with pytest.raises(StoreUnavailable):
            await backend.find_order("A10001")
    finally:
        await backend.close()
        await broken.close()
    down = HttpStoreBackend(url, TOKEN, timeout=1)  # nothing listens there any more
    with pytest.raises(StoreUnavailable):
        await down.find_order("A10001")
    await down.close()


async def test_refunds_asked_at_the_same_moment_get_numbers_of_their_own(
    store_backend: SqlStoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two customers' refunds (different orders) count the refunds at the same moment and so
    pick the same next number; the second is counted again instead of failing (it failed
    under the load run, and the customer was handed to a person)."""
    await add_delivered_orders(store_backend.engine, ANNA, ["A30001", "A30002"])
    counted = asyncio.Event()
    callers: list[str] = []
    stock = SqlStoreBackend._next_number

    async def at_once(session: Any, table: Any, prefix: str) -> str:
        number = await stock(session, table, prefix)
        callers.append(number)
        if len(callers) == 2:
            counted.set()
        if len(callers) <= 2:  # the first two both count before either inserts
            await counted.wait()
        return number

    monkeypatch.setattr(SqlStoreBackend, "_next_number", staticmethod(at_once))
    orders = [await store_backend.find_order(n) for n in ("A30001", "A30002")]
    first, second = await asyncio.gather(*(
        store_backend.create_refund_request(o.number, [o.lines[0].id], "too small")
        for o in orders))
    assert callers[0] == callers[1]  # the race did happen
    assert first.number != second.number
    assert [r.number for o in orders for r in await store_backend.refund_status(o.number)] == [
        first.number, second.number]
