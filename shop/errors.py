"""What can go wrong when the assistant asks the store something, in the store's own words."""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's domain errors; `code` is what the HTTP/JSON protocol carries."""

    code = "store_error"


class IdentityNotVerified(StoreError):
    """The order number and contact do not belong together (or the order does not exist)."""

    code = "identity_not_verified"


class TooManyAttempts(StoreError):
    """Too many wrong order-number/contact pairs from this conversation: wait or ask a person."""

    code = "too_many_attempts"


class OrderNotFound(StoreError):
    """No order with that number; only raised after identity was checked."""

    code = "order_not_found"


class OrderNotChangeable(StoreError):
    """The order has shipped (or is closed), so it can no longer be cancelled or redirected."""

    code = "order_not_changeable"

    def __init__(self, status: str) -> None:
        super().__init__(f"the order is {status}")
        self.status = status


class InvoiceNotFound(StoreError):
    """The order has no invoice yet (it has not been paid)."""

    code = "invoice_not_found"


class RefundNotAllowed(StoreError):
    """The refund policy refuses this request; `reason` says which rule."""

    code = "refund_not_allowed"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # not_delivered, window_closed, already_refunded, no_items


class StoreUnavailable(StoreError):
    """The shop system did not answer or answered something unusable."""

    code = "store_unavailable"


ERRORS_BY_CODE: dict[str, type[StoreError]] = {
    cls.code: cls
    for cls in (IdentityNotVerified, TooManyAttempts, OrderNotFound, InvoiceNotFound,
                StoreUnavailable)
}
