"""Both StoreBackend implementations keep the same contract: SQL directly, HTTP via a fake shop."""

from __future__ import annotations

import asyncio
import contextlib
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


async def test_cases_opened_at_the_same_moment_get_numbers_of_their_own(
    store_backend: SqlStoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two customers' billing cases (different orders) count the cases at the same moment and
    so pick the same next number; the second is counted again instead of failing (a refund
    failed that way under the load run, and the customer was handed to a person)."""
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
    first, second = await asyncio.gather(*(
        store_backend.create_billing_case(number, PaymentReport("charged twice"))
        for number in ("A10001", "A10003")))
    assert callers[0] == callers[1]  # the race did happen
    assert first.number != second.number and len(callers) == 3  # one counted again


async def test_two_refunds_of_one_order_at_the_same_moment_grant_it_once(
    store_backend: SqlStoreBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second request reads the order while the first is still deciding, and decides
    after the first committed its refund: it must see that refund. On SQLite, whose
    `FOR UPDATE` does nothing, it did not, and the item was refunded twice."""
    await add_delivered_orders(store_backend.engine, ANNA, ["A30003"])
    order = await store_backend.find_order("A30003")
    stock, reads = SqlStoreBackend._order, 0
    first_read, second_read, first_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def interleaved(self: SqlStoreBackend, session: Any, number: str, *,
                          lock: bool = False) -> Any:
        nonlocal reads
        found = await stock(self, session, number, lock=lock)
        if lock:
            reads += 1
            if reads == 1:  # the first waits until the second has read (if it can)
                first_read.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(second_read.wait(), 2)
            elif reads == 2:  # the second decides only after the first committed
                second_read.set()
                await first_done.wait()
        return found

    async def request(after: asyncio.Event | None) -> Any:
        if after is not None:
            await after.wait()
        try:
            return await store_backend.create_refund_request(
                order.number, [order.lines[0].id], "arrived broken")
        except RefundNotAllowed as refused:
            return refused
        finally:
            if after is None:
                first_done.set()

    monkeypatch.setattr(SqlStoreBackend, "_order", interleaved)
    outcomes = await asyncio.gather(request(None), request(first_read))
    granted = [o for o in outcomes if not isinstance(o, RefundNotAllowed)]
    refused = [o for o in outcomes if isinstance(o, RefundNotAllowed)]
    assert len(granted) == 1 and len(refused) == 1
    assert refused[0].reason == "already_refunded"
    assert [r.number for r in await store_backend.refund_status(order.number)] == [
        granted[0].number]
