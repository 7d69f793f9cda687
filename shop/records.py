"""What the store tells the assistant: plain frozen records that travel as JSON unchanged."""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from typing import Any, TypeVar

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Line:
    """One item of an order."""

    id: int
    sku: str
    name: str
    quantity: int
    unit_price_cents: int

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


@dataclasses.dataclass(frozen=True)
class TrackingEvent:
    """One scan of a parcel by the carrier."""

    at: datetime
    location: str
    description: str


@dataclasses.dataclass(frozen=True)
class ShipmentInfo:
    """A parcel on its way (or delivered): carrier, tracking and the latest events."""

    carrier: str
    tracking_number: str
    tracking_url: str
    shipped_at: datetime
    eta: date | None
    delivered_at: datetime | None
    events: list[TrackingEvent]


@dataclasses.dataclass(frozen=True)
class RefundInfo:
    """A refund request and where it stands."""

    number: str
    order_number: str
    status: str  # requested, approved, paid, rejected
    amount_cents: int
    currency: str
    requested_at: datetime
    updated_at: datetime
    line_ids: list[int]


@dataclasses.dataclass(frozen=True)
class OrderDetails:
    """Everything the assistant may tell a customer who proved the order is theirs."""

    number: str
    status: str
    placed_at: datetime
    currency: str
    total_cents: int
    shipping_address: str
    customer_name: str
    lines: list[Line]
    shipments: list[ShipmentInfo]
    refunds: list[RefundInfo]
    payment_method: str | None


@dataclasses.dataclass(frozen=True)
class InvoiceDetails:
    """An invoice as the customer downloads it."""

    number: str
    order_number: str
    issued_at: datetime
    currency: str
    total_cents: int
    customer_name: str
    customer_email: str
    billing_address: str
    lines: list[Line]


@dataclasses.dataclass(frozen=True)
class PaymentReport:
    """What the customer told us about a payment that went wrong."""

    description: str
    amount_cents: int | None = None
    currency: str | None = None
    payment_date: date | None = None
    method: str | None = None


@dataclasses.dataclass(frozen=True)
class BillingCaseInfo:
    """The case the billing team works on; its number is what the customer quotes."""

    number: str
    order_number: str
    opened_at: datetime


def to_json(record: Any) -> Any:
    """A record (or list, or plain value) as JSON-ready data; times in ISO 8601."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: to_json(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, list):
        return [to_json(item) for item in record]
    if isinstance(record, (datetime, date)):
        return record.isoformat()
    return record


def from_json(kind: type[T], data: Any) -> T:
    """Rebuilds a record from `to_json` output; ValueError/TypeError/KeyError on bad data."""
    return typing.cast(T, _decode(kind, data))


def _decode(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return None if data is None else _decode(options[0], data)
    if origin is list:
        if not isinstance(data, list):
            raise TypeError(f"expected a list, got {type(data).__name__}")
        return [_decode(typing.get_args(kind)[0], item) for item in data]
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {kind.__name__}")
        hints = typing.get_type_hints(kind)
        return kind(**{f.name: _decode(hints[f.name], data[f.name])
                       for f in dataclasses.fields(kind) if f.name in data or f.default is
                       dataclasses.MISSING})
    if kind is datetime:
        return datetime.fromisoformat(data)
    if kind is date:
        return date.fromisoformat(data)
    if kind in (int, str) and (not isinstance(data, kind) or isinstance(data, bool)):
        raise TypeError(f"expected {kind.__name__}, got {type(data).__name__}")
    return data
