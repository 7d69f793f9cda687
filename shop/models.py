"""The demo store's tables: customers, orders and what happens to them after checkout."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from handoff.conversations.models import UTCDateTime


class Base(DeclarativeBase):
    """Declarative base for the shop's tables (own metadata, own Alembic history)."""

    type_annotation_map = {datetime: UTCDateTime(), list[int]: JSON, dict[str, Any]: JSON}


class OrderStatus(str, enum.Enum):
    """Where an order is in its life; only pending, paid and packed orders can still change."""

    PENDING = "pending"  # placed, payment not captured yet
    PAID = "paid"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


CHANGEABLE = frozenset({OrderStatus.PENDING, OrderStatus.PAID, OrderStatus.PACKED})


class Customer(Base):
    __tablename__ = "shop_customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), unique=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    language: Mapped[str] = mapped_column(String(8), default="en")
    created_at: Mapped[datetime]

    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "shop_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("shop_customers.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3))
    total_cents: Mapped[int]
    shipping_address: Mapped[str] = mapped_column(Text)
    placed_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    customer: Mapped[Customer] = relationship(back_populates="orders")
    lines: Mapped[list[OrderLine]] = relationship(order_by="OrderLine.id")
    shipments: Mapped[list[Shipment]] = relationship(order_by="Shipment.id")
    invoices: Mapped[list[Invoice]] = relationship(order_by="Invoice.id")
    payments: Mapped[list[Payment]] = relationship(order_by="Payment.id")
    refunds: Mapped[list[Refund]] = relationship(order_by="Refund.id")


class OrderLine(Base):
    __tablename__ = "shop_order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int]
    unit_price_cents: Mapped[int]


class Shipment(Base):
    __tablename__ = "shop_shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    carrier: Mapped[str] = mapped_column(String(64))
    tracking_number: Mapped[str] = mapped_column(String(64))
    tracking_url: Mapped[str] = mapped_column(String(300))
    shipped_at: Mapped[datetime]
    eta: Mapped[date | None] = mapped_column(Date)
    delivered_at: Mapped[datetime | None]

    events: Mapped[list[ShipmentEvent]] = relationship(order_by="ShipmentEvent.at")


class ShipmentEvent(Base):
    __tablename__ = "shop_shipment_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shop_shipments.id"), index=True)
    at: Mapped[datetime]
    location: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(200))


class Invoice(Base):
    __tablename__ = "shop_invoices"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    issued_at: Mapped[datetime]
    total_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))


class Payment(Base):
    __tablename__ = "shop_payments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    method: Mapped[str] = mapped_column(String(24))  # card, paypal, bank_transfer, ...
    card_last4: Mapped[str | None] = mapped_column(String(4))
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))  # captured, failed, authorized
    at: Mapped[datetime]


class Refund(Base):
    __tablename__ = "shop_refunds"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    line_ids: Mapped[list[int]]
    amount_cents: Mapped[int]
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # requested, approved, paid, rejected
    requested_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class BillingCase(Base):
    __tablename__ = "shop_billing_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id"), index=True)
    amount_cents: Mapped[int | None]
    currency: Mapped[str | None] = mapped_column(String(3))
    payment_date: Mapped[date | None] = mapped_column(Date)
    method: Mapped[str | None] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    opened_at: Mapped[datetime]


class VerificationFailure(Base):
    """One wrong order-number/contact pair: counted to rate-limit guessing."""

    __tablename__ = "shop_verification_failures"
    __table_args__ = (Index("ix_shop_verification_failures_key", "requester", "order_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    requester: Mapped[str] = mapped_column(String(200))
    order_number: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(index=True)
