"""The one interface through which the assistant reaches store data (SQL demo or a real shop)."""

from __future__ import annotations

from typing import Protocol

from shop.records import (
    BillingCaseInfo,
    InvoiceDetails,
    OrderDetails,
    PaymentReport,
    RefundInfo,
)


class StoreBackend(Protocol):
    """What the flows may ask of a store. Callers verify identity before anything else.

    Errors are the domain errors of shop.errors; a wrong pair and an unknown order both
    raise IdentityNotVerified, so the answer reveals nothing.
    """

    async def verify_identity(self, order_number: str, contact: str, *, requester: str) -> OrderDetails:
        """The order, if `contact` (email or phone) is on it; counts and limits failures per requester."""
        ...

    async def find_order(self, order_number: str) -> OrderDetails:
        """A verified order's current details (OrderNotFound if it vanished)."""
        ...

    async def cancel_order(self, order_number: str) -> OrderDetails:
        """Cancels an order that has not shipped and refunds what was paid."""
        ...

    async def change_address(self, order_number: str, address: str) -> OrderDetails:
        """Redirects an order that has not shipped."""
        ...

    async def invoice_for(self, order_number: str) -> InvoiceDetails:
        """The order's invoice (InvoiceNotFound before payment)."""
        ...

    async def create_billing_case(self, order_number: str, report: PaymentReport) -> BillingCaseInfo:
        """Opens a case for the billing team."""
        ...

    async def create_refund_request(self, order_number: str, line_ids: list[int], reason: str) -> RefundInfo:
        """Requests a refund of the given lines, if the refund policy allows it."""
        ...

    async def refund_status(self, order_number: str) -> list[RefundInfo]:
        """The order's refunds, newest last."""
        ...

    async def close(self) -> None:
        """Releases connections."""
        ...
