"""A local stand-in for a real shop's API (shop/http.py's protocol), checking what a real one would.

It refuses requests without the token, bodies that are not JSON objects of the documented
shape, and answers refusals with the documented error codes; the data behind it is the
seeded demo store.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from aiohttp import web

from shop.errors import OrderNotChangeable, RefundNotAllowed, StoreError
from shop.records import PaymentReport, to_json
from shop.sql import SqlStoreBackend

STATUS_BY_CODE = {"identity_not_verified": 403, "too_many_attempts": 429, "order_not_found": 404,
                  "invoice_not_found": 404, "order_not_changeable": 409, "refund_not_allowed": 409}
ORDER_NUMBER = re.compile(r"^[A-Z]\d{5}$")


class BadBody(Exception):
    """The request body is not what the protocol says."""


def fake_shop_app(backend: SqlStoreBackend, token: str) -> web.Application:
    routes = web.RouteTableDef()

    @web.middleware
    async def checks(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return web.json_response({"error": "unauthorized"}, status=401)
        number = request.match_info.get("number")
        if number is not None and not ORDER_NUMBER.match(number):
            return web.json_response({"error": "order_not_found"}, status=404)
        try:
            response = await handler(request)
        except BadBody as exc:
            return web.json_response({"error": "bad_request", "detail": str(exc)}, status=422)
        except OrderNotChangeable as exc:
            return web.json_response({"error": exc.code, "status": exc.status}, status=409)
        except RefundNotAllowed as exc:
            return web.json_response({"error": exc.code, "reason": exc.reason}, status=409)
        except StoreError as exc:
            return web.json_response({"error": exc.code}, status=STATUS_BY_CODE[exc.code])
        return response

    async def body(request: web.Request, **fields: type) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise BadBody("send application/json")
        data = await request.json()
        if not isinstance(data, dict):
            raise BadBody("the body must be an object")
        for name, kind in fields.items():
            if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
                raise BadBody(f"{name} must be {kind.__name__}")
        return data

    def answer(record: Any) -> web.Response:
        return web.json_response(to_json(record))

    @routes.post("/identity/verify")
    async def verify(request: web.Request) -> web.Response:
        data = await body(request, order_number=str, contact=str, requester=str)
        return answer(await backend.verify_identity(
            data["order_number"], data["contact"], requester=data["requester"]))

    @routes.get("/orders/{number}")
    async def find(request: web.Request) -> web.Response:
        return answer(await backend.find_order(request.match_info["number"]))

    @routes.post("/orders/{number}/cancel")
    async def cancel(request: web.Request) -> web.Response:
        return answer(await backend.cancel_order(request.match_info["number"]))

    @routes.put("/orders/{number}/shipping-address")
    async def address(request: web.Request) -> web.Response:
        data = await body(request, address=str)
        return answer(await backend.change_address(request.match_info["number"], data["address"]))

    @routes.get("/orders/{number}/invoice")
    async def invoice(request: web.Request) -> web.Response:
        return answer(await backend.invoice_for(request.match_info["number"]))

    @routes.post("/orders/{number}/billing-cases")
    async def billing_case(request: web.Request) -> web.Response:
        data = await body(request, description=str)
        report = PaymentReport(
            description=data["description"], amount_cents=data.get("amount_cents"),
            currency=data.get("currency"), method=data.get("method"),
            payment_date=date.fromisoformat(data["payment_date"]) if data.get("payment_date") else None)
        return answer(await backend.create_billing_case(request.match_info["number"], report))

    @routes.post("/orders/{number}/refunds")
    async def refund(request: web.Request) -> web.Response:
        data = await body(request, line_ids=list, reason=str)
        if not all(isinstance(i, int) for i in data["line_ids"]):
            raise BadBody("line_ids must be integers")
        return answer(await backend.create_refund_request(
            request.match_info["number"], data["line_ids"], data["reason"]))

    @routes.get("/orders/{number}/refunds")
    async def refunds(request: web.Request) -> web.Response:
        return web.json_response({"refunds": to_json(await backend.refund_status(request.match_info["number"]))})

    app = web.Application(middlewares=[checks])
    app.add_routes(routes)
    return app
