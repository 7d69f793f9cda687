"""The store backend on the shop's own database (the demo store, or a shop that shares its DB)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from handoff.db import create_engine, session_factory
from shop import policy
from shop.errors import (
    IdentityNotVerified,
    InvoiceNotFound,
    OrderNotChangeable,
    OrderNotFound,
    RefundNotAllowed,
    TooManyAttempts,
)
from shop.models import (
    CHANGEABLE,
    BillingCase,
    Order,
    OrderStatus,
    Refund,
    Shipment,
    VerificationFailure,
)
from shop.records import (
    BillingCaseInfo,
    InvoiceDetails,
    Line,
    OrderDetails,
    PaymentReport,
    RefundInfo,
    ShipmentInfo,
    TrackingEvent,
)

T = TypeVar("T")
# A new refund or case number taken by another request at the same moment: counted again.
NUMBERING_ATTEMPTS = 5

_ORDER_LOADS = (
    selectinload(Order.customer),
    selectinload(Order.lines),
    selectinload(Order.shipments).selectinload(Shipment.events),
    selectinload(Order.payments),
    selectinload(Order.refunds),
    selectinload(Order.invoices),
)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _refund_info(refund: Refund, order_number: str) -> RefundInfo:
    return RefundInfo(
        number=refund.number, order_number=order_number, status=refund.status,
        amount_cents=refund.amount_cents, currency=refund.currency,
        requested_at=refund.requested_at, updated_at=refund.updated_at,
        line_ids=list(refund.line_ids),
    )


def order_details(order: Order) -> OrderDetails:
    """An Order row (with its relations loaded) as the record the flows see."""
    captured = [p for p in order.payments if p.status == "captured"]
    return OrderDetails(
        number=order.number, status=order.status, placed_at=order.placed_at,
        currency=order.currency, total_cents=order.total_cents,
        shipping_address=order.shipping_address, customer_name=order.customer.name,
        lines=[Line(l.id, l.sku, l.name, l.quantity, l.unit_price_cents) for l in order.lines],
        shipments=[
            ShipmentInfo(
                carrier=s.carrier, tracking_number=s.tracking_number, tracking_url=s.tracking_url,
                shipped_at=s.shipped_at, eta=s.eta, delivered_at=s.delivered_at,
                events=[TrackingEvent(e.at, e.location, e.description) for e in s.events],
            )
            for s in order.shipments
        ],
        refunds=[_refund_info(r, order.number) for r in order.refunds],
        payment_method=captured[-1].method if captured else None,
    )


class SqlStoreBackend:
    """StoreBackend on SQLAlchemy; every method is one short transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = session_factory(engine)

    @classmethod
    def from_url(cls, database_url: str) -> SqlStoreBackend:
        return cls(create_engine(database_url))

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    async def close(self) -> None:
        await self._engine.dispose()

    async def _order(self, session: AsyncSession, number: str, *, lock: bool = False) -> Order:
        """The order; with `lock`, no other request changes it until this transaction ends.

        SQLite has no row locks (`FOR UPDATE` is dropped) and pysqlite begins a transaction only
        at the first write, so two refunds of one order could both read it unrefunded. There a
        write comes first: it takes the database's write lock, and the second request waits
        (busy timeout) and then reads what the first committed."""
        if lock and session.get_bind().dialect.name == "sqlite":
            await session.execute(update(Order).where(Order.number == number)
                                  .values(number=Order.number)
                                  .execution_options(synchronize_session=False))
        query: Any = select(Order).where(Order.number == number).options(*_ORDER_LOADS)
        if lock:
            query = query.with_for_update(of=Order)
        order = (await session.execute(query)).scalar_one_or_none()
        if order is None:
            raise OrderNotFound(number)
        return order

    async def verify_identity(self, order_number: str, contact: str, *, requester: str) -> OrderDetails:
        now = _now()
        async with self._sessions.begin() as session:
            await self._check_rate_limit(session, order_number, requester, now)
            order = (await session.execute(
                select(Order).where(Order.number == order_number).options(*_ORDER_LOADS)
            )).scalar_one_or_none()
            if order is not None and policy.contact_matches(
                contact, order.customer.email, order.customer.phone
            ):
                return order_details(order)
            session.add(VerificationFailure(requester=requester[:200],
                                            order_number=order_number[:16], at=now))
        raise IdentityNotVerified(order_number)

    async def _check_rate_limit(
        self, session: AsyncSession, order_number: str, requester: str, now: datetime
    ) -> None:
        failures = VerificationFailure
        per_order = await session.scalar(
            select(func.count()).select_from(failures).where(
                failures.requester == requester[:200], failures.order_number == order_number[:16],
                failures.at > now - policy.FAILURE_WINDOW,
            )
        )
        per_requester = await session.scalar(
            select(func.count()).select_from(failures).where(
                failures.requester == requester[:200], failures.at > now - policy.REQUESTER_WINDOW,
            )
        )
        if (per_order or 0) >= policy.FAILURES_PER_ORDER or (
            per_requester or 0
        ) >= policy.FAILURES_PER_REQUESTER:
            raise TooManyAttempts(order_number)

    async def find_order(self, order_number: str) -> OrderDetails:
        async with self._sessions() as session:
            return order_details(await self._order(session, order_number))

    async def cancel_order(self, order_number: str) -> OrderDetails:
        now = _now()

        async def cancel(session: AsyncSession) -> None:
            order = await self._order(session, order_number, lock=True)
            if OrderStatus(order.status) not in CHANGEABLE:
                raise OrderNotChangeable(order.status)
            paid = sum(p.amount_cents for p in order.payments if p.status == "captured")
            order.status, order.updated_at = OrderStatus.CANCELLED.value, now
            if paid:
                session.add(Refund(
                    number=await self._next_number(session, Refund, "R"), order_id=order.id,
                    line_ids=[l.id for l in order.lines], amount_cents=paid,
                    currency=order.currency, reason="order cancelled", status="approved",
                    requested_at=now, updated_at=now,
                ))

        await self._numbering(cancel)
        return await self.find_order(order_number)

    async def change_address(self, order_number: str, address: str) -> OrderDetails:
        async with self._sessions.begin() as session:
            order = await self._order(session, order_number, lock=True)
            if OrderStatus(order.status) not in CHANGEABLE:
                raise OrderNotChangeable(order.status)
            order.shipping_address, order.updated_at = address, _now()
        return await self.find_order(order_number)

    async def invoice_for(self, order_number: str) -> InvoiceDetails:
        async with self._sessions() as session:
            order = await self._order(session, order_number)
            if not order.invoices:
                raise InvoiceNotFound(order_number)
            invoice = order.invoices[-1]
            return InvoiceDetails(
                number=invoice.number, order_number=order.number, issued_at=invoice.issued_at,
                currency=invoice.currency, total_cents=invoice.total_cents,
                customer_name=order.customer.name, customer_email=order.customer.email,
                billing_address=order.shipping_address,
                lines=order_details(order).lines,
            )

    async def create_billing_case(self, order_number: str, report: PaymentReport) -> BillingCaseInfo:
        now = _now()

        async def open_case(session: AsyncSession) -> BillingCase:
            order = await self._order(session, order_number)
            case = BillingCase(
                number=await self._next_number(session, BillingCase, "BC"), order_id=order.id,
                amount_cents=report.amount_cents, currency=report.currency,
                payment_date=report.payment_date, method=report.method,
                description=report.description, status="open", opened_at=now,
            )
            session.add(case)
            return case

        case = await self._numbering(open_case)
        return BillingCaseInfo(number=case.number, order_number=order_number, opened_at=now)

    async def create_refund_request(self, order_number: str, line_ids: list[int], reason: str) -> RefundInfo:
        now = _now()

        async def request(session: AsyncSession) -> Refund:
            order = await self._order(session, order_number, lock=True)
            if order.status != OrderStatus.DELIVERED.value:
                raise RefundNotAllowed("not_delivered")
            delivered = max((s.delivered_at for s in order.shipments if s.delivered_at), default=None)
            if policy.refund_window_closed(delivered, now):
                raise RefundNotAllowed("window_closed")
            refunded = {i for r in order.refunds if r.status != "rejected" for i in r.line_ids}
            wanted = [l for l in order.lines if l.id in set(line_ids)]
            if not wanted:
                raise RefundNotAllowed("no_items")
            if any(l.id in refunded for l in wanted):
                raise RefundNotAllowed("already_refunded")
            refund = Refund(
                number=await self._next_number(session, Refund, "R"), order_id=order.id,
                line_ids=[l.id for l in wanted],
                amount_cents=sum(l.quantity * l.unit_price_cents for l in wanted),
                currency=order.currency, reason=reason, status="requested",
                requested_at=now, updated_at=now,
            )
            session.add(refund)
            return refund

        return _refund_info(await self._numbering(request), order_number)

    async def refund_status(self, order_number: str) -> list[RefundInfo]:
        return (await self.find_order(order_number)).refunds

    async def _numbering(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Runs `work`, which numbers a new refund or case, in a transaction, and again if
        another request took the same number first: numbers are counted (R70001, R70002,
        ...), two requests for different orders can count at once, and the unique index
        refuses the second (under load, a customer's refund failed that way and went to a
        person). Nothing of the refused attempt is kept."""
        for attempt in range(1, NUMBERING_ATTEMPTS + 1):
            try:
                async with self._sessions.begin() as session:
                    return await work(session)
            except IntegrityError:
                if attempt == NUMBERING_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    async def _next_number(session: AsyncSession, table: Any, prefix: str) -> str:
        count = await session.scalar(select(func.count()).select_from(table)) or 0
        return f"{prefix}{70001 + count}"
