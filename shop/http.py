"""The store backend for a real shop system, over a small HTTP/JSON API (described below).

    POST /identity/verify             {order_number, contact, requester} -> order
    GET  /orders/{n}                                                     -> order
    POST /orders/{n}/cancel                                              -> order
    PUT  /orders/{n}/shipping-address {address}                         -> order
    GET  /orders/{n}/invoice                                             -> invoice
    POST /orders/{n}/billing-cases    payment report                     -> billing case
    POST /orders/{n}/refunds          {line_ids, reason}                 -> refund
    GET  /orders/{n}/refunds                                             -> {refunds: [...]}

Bodies are shop.records as JSON (records.to_json). Every request carries
`Authorization: Bearer <token>`. A refusal is a 4xx with {"error": <code>} using the codes
of shop.errors (plus "status" for order_not_changeable and "reason" for refund_not_allowed).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from shop.errors import (
    ERRORS_BY_CODE,
    OrderNotChangeable,
    RefundNotAllowed,
    StoreError,
    StoreUnavailable,
)
from shop.records import (
    BillingCaseInfo,
    InvoiceDetails,
    OrderDetails,
    PaymentReport,
    RefundInfo,
    from_json,
    to_json,
)

T = TypeVar("T")


class HttpStoreBackend:
    """StoreBackend over HTTP/JSON; a failure to reach the shop is StoreUnavailable."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, kind: type[T], method: str, path: str, body: Any = None) -> T:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(
                method, self._base + path, json=body,
                headers={"Authorization": f"Bearer {self._token}"},
            ) as response:
                data = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise StoreUnavailable(f"the shop API did not answer: {exc!r}") from exc
        if status >= 400:
            raise _error(status, data)
        try:
            return from_json(kind, data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise StoreUnavailable(f"the shop API answered an unexpected body: {exc!r}") from exc

    @staticmethod
    def _order_path(order_number: str, suffix: str = "") -> str:
        return f"/orders/{quote(order_number, safe='')}{suffix}"

    async def verify_identity(self, order_number: str, contact: str, *, requester: str) -> OrderDetails:
        return await self._call(OrderDetails, "POST", "/identity/verify", {
            "order_number": order_number, "contact": contact, "requester": requester})

    async def find_order(self, order_number: str) -> OrderDetails:
        return await self._call(OrderDetails, "GET", self._order_path(order_number))

    async def cancel_order(self, order_number: str) -> OrderDetails:
        return await self._call(OrderDetails, "POST", self._order_path(order_number, "/cancel"))

    async def change_address(self, order_number: str, address: str) -> OrderDetails:
        return await self._call(OrderDetails, "PUT", self._order_path(order_number, "/shipping-address"),
                                {"address": address})

    async def invoice_for(self, order_number: str) -> InvoiceDetails:
        return await self._call(InvoiceDetails, "GET", self._order_path(order_number, "/invoice"))

    async def create_billing_case(self, order_number: str, report: PaymentReport) -> BillingCaseInfo:
        return await self._call(BillingCaseInfo, "POST",
                                self._order_path(order_number, "/billing-cases"), to_json(report))

    async def create_refund_request(self, order_number: str, line_ids: list[int], reason: str) -> RefundInfo:
        return await self._call(RefundInfo, "POST", self._order_path(order_number, "/refunds"),
                                {"line_ids": line_ids, "reason": reason})

    async def refund_status(self, order_number: str) -> list[RefundInfo]:
        listing = await self._call(_RefundList, "GET", self._order_path(order_number, "/refunds"))
        return listing.refunds


@dataclass(frozen=True)
class _RefundList:
    """The body of GET /orders/{n}/refunds."""

    refunds: list[RefundInfo]


def _error(status: int, data: Any) -> StoreError:
    """The domain error a refusal stands for; anything unrecognised means the shop failed."""
    code = data.get("error") if isinstance(data, dict) else None
    if status < 500 and code == OrderNotChangeable.code and isinstance(data.get("status"), str):
        return OrderNotChangeable(data["status"])
    if status < 500 and code == RefundNotAllowed.code and isinstance(data.get("reason"), str):
        return RefundNotAllowed(data["reason"])
    if status < 500 and isinstance(code, str) and code in ERRORS_BY_CODE:
        return ERRORS_BY_CODE[code](code)
    return StoreUnavailable(f"the shop API answered HTTP {status}")
